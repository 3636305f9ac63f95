"""Fault switches of a simulated device; each can be flipped while a run is going on.

    ok              clears every fault (sshd back, ballast gone, watcher stopped)
    unreachable     sshd listener and all sessions killed: connections refused
    slow, oom       only the fault file: the JetPack doubles read it on every build
    disk-full       a ballast file fills the device's disk image: real ENOSPC on
                    /root, /opt, /tmp, /var/tmp
    drop-mid-build  a watcher cuts every ssh session when a build announces itself
                    (/etc/simjetson/build-started) and refuses connections for a while
    hang            the JetPack doubles' build blocks (the device still answers) until
                    the fault changes: a builder that never ends
    freeze-mid-build  a watcher stops (SIGSTOP) every sshd of the device when a build
                    announces itself: connections are accepted and never answered, the
                    sessions open already go silent; until the fault changes (SIGCONT)
"""

import errno
import os
import signal
import subprocess
import sys
from pathlib import Path

from fleet import device_dir, procs, sshd_ctl

KINDS = ("ok", "unreachable", "slow", "oom", "disk-full", "drop-mid-build", "hang",
         "freeze-mid-build")
WATCHED = ("drop-mid-build", "freeze-mid-build")  # the faults a watcher acts out
WATCHER_MARKER = "simjetson-watcher"
BALLAST = device_dir.DEVICE_DISK_MOUNT + "/.simjetson-ballast"


def device_path(holder_pid, path):
    """A path inside the device, reached from the host through /proc/PID/root."""
    return Path("/proc/{}/root{}".format(holder_pid, path))


def write_fault_file(holder_pid, kind):
    target = device_path(holder_pid, "/etc/simjetson/fault")
    temporary = target.with_name("fault.tmp")
    temporary.write_text(kind + "\n")
    os.replace(temporary, target)


def fill_disk(holder_pid):
    """Allocate every free block of the device disk into the ballast file."""
    ballast = device_path(holder_pid, BALLAST)
    with open(ballast, "ab") as handle:
        for _ in range(64):
            stats = os.statvfs(ballast.parent)
            chunk = stats.f_bavail * stats.f_frsize
            if chunk == 0:
                return
            size = os.fstat(handle.fileno()).st_size
            # Extent metadata needs blocks too: halve until an allocation fits.
            while chunk >= stats.f_frsize:
                try:
                    os.posix_fallocate(handle.fileno(), size, chunk)
                    break
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
                    chunk //= 2
            else:
                return


def empty_disk(holder_pid):
    ballast = device_path(holder_pid, BALLAST)
    if ballast.exists():
        ballast.unlink()


def watcher_pids(fleet_dir, host=None):
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        args = procs.cmdline(int(pid))
        if WATCHER_MARKER in args[:-2]:
            at = args.index(WATCHER_MARKER)
            if args[at + 1] == str(fleet_dir) and host in (None, args[at + 2]):
                found.append(int(pid))
    return found


def start_watcher(fleet_dir, host, holder_pid, drop_seconds, log_path, *,
                  kind="drop-mid-build"):
    watcher = Path(__file__).resolve().parent / "watcher.py"
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            [sys.executable, str(watcher), WATCHER_MARKER, str(fleet_dir), host,
             str(holder_pid), str(drop_seconds), kind],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
    return process.pid


def stop_watchers(fleet_dir, host=None):
    survivors = procs.kill_all(watcher_pids(fleet_dir, host))
    if survivors:
        raise RuntimeError("drop-mid-build watchers {} survived SIGKILL".format(survivors))


def thaw_sshd(holder_pid):
    """SIGCONT every sshd of the device (after freeze-mid-build)."""
    for pid in procs.sshd_pids(procs.mount_namespace(holder_pid)):
        try:
            os.kill(pid, signal.SIGCONT)
        except ProcessLookupError:
            continue


def restore_sshd(holder_pid, address, port):
    if not sshd_ctl.running(holder_pid):
        try:
            sshd_ctl.start(holder_pid)
        except sshd_ctl.SshdError:
            if not sshd_ctl.running(holder_pid):  # else a watcher won the race: fine
                raise
    if sshd_ctl.wait_listening([(address, port)]):
        raise sshd_ctl.SshdError("sshd of {} is not listening on {}:{}: {}".format(
            holder_pid, address, port, sshd_ctl.log_tail(holder_pid)))


def apply(fleet_dir, host, kind, drop_seconds=5.0):
    """Switch `host` (a fleet.json host entry, holder running) to fault `kind`."""
    if kind not in KINDS:
        raise ValueError("unknown fault {!r}; one of: {}".format(kind, ", ".join(KINDS)))
    holder = host["holder_pid"]
    # Leave the previous fault first: faults do not stack.
    stop_watchers(fleet_dir, host["name"])
    thaw_sshd(holder)
    empty_disk(holder)
    if kind != "unreachable":
        restore_sshd(holder, host["address"], host["port"])
    marker = device_path(holder, "/etc/simjetson/build-started")
    if kind in WATCHED and marker.exists():
        marker.unlink()  # only a build that starts from now on triggers the drop
    write_fault_file(holder, kind)
    if kind == "unreachable":
        sshd_ctl.cut(holder)
    elif kind == "disk-full":
        fill_disk(holder)
    elif kind in WATCHED:
        log = Path(fleet_dir) / "devices" / host["name"] / "watcher.log"
        start_watcher(fleet_dir, host["name"], holder, drop_seconds, log, kind=kind)
