"""Finding and stopping the processes of a simulated device.

A device is a mount namespace; every process in it (holder, sshd, ssh sessions,
detached builds) is found by comparing /proc/PID/ns/mnt with the holder's.
"""

import contextlib
import os
import signal
import time
from pathlib import Path

HOLDER_MARKER = "simjetson-holder"   # argv[1] of every holder process


def mount_namespace(pid):
    """'mnt:[4026532...]' of a process, or None when it is gone."""
    try:
        return os.readlink("/proc/{}/ns/mnt".format(pid))
    except (FileNotFoundError, ProcessLookupError):
        return None
    except PermissionError:
        return None  # a process outside our reach (e.g. the sandbox's init): not ours


def _all_pids():
    return [int(entry) for entry in os.listdir("/proc") if entry.isdigit()]


def _comm(pid):
    try:
        return Path("/proc/{}/comm".format(pid)).read_text().strip()
    except (FileNotFoundError, ProcessLookupError):
        return ""


def cmdline(pid):
    try:
        raw = Path("/proc/{}/cmdline".format(pid)).read_bytes()
    except (FileNotFoundError, ProcessLookupError):
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def is_zombie(pid):
    try:
        stat = Path("/proc/{}/stat".format(pid)).read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def alive(pid):
    """True for a running process (a zombie counts as gone)."""
    return bool(pid) and Path("/proc/{}".format(pid)).exists() and not is_zombie(pid)


def pids_in_namespace(namespace, exclude=()):
    """Live processes whose mount namespace is `namespace`."""
    if namespace is None:
        return []
    return [pid for pid in _all_pids()
            if pid not in exclude and mount_namespace(pid) == namespace and not is_zombie(pid)]


def sshd_pids(namespace):
    """The listener and every per-connection sshd of a device."""
    return [pid for pid in pids_in_namespace(namespace) if _comm(pid) == "sshd"]


def holders_of(device_dir_prefix):
    """{device dir: pid} of the holder processes whose device dir is under a fleet dir.

    Found by command line, so `down` also finds holders a crashed `up` never recorded.
    """
    prefix = str(device_dir_prefix).rstrip("/") + "/"
    found = {}
    for pid in _all_pids():
        args = cmdline(pid)
        if HOLDER_MARKER in args[:-1] and not is_zombie(pid):
            device_dir = args[args.index(HOLDER_MARKER) + 1]
            if device_dir.startswith(prefix):
                found[device_dir] = pid
    return found


def reap(pid):
    """Collect the exit status when `pid` is our own child (the pytest fixture case)."""
    with contextlib.suppress(ChildProcessError):  # not our child: init reaps it
        os.waitpid(pid, os.WNOHANG)


def kill_all(pids, timeout=5.0):
    """SIGKILL the pids and wait until they are gone; returns the ones that survived."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + timeout
    left = list(pids)
    while left and time.monotonic() < deadline:
        for pid in left:
            reap(pid)
        left = [pid for pid in left if alive(pid)]
        if left:
            time.sleep(0.02)
    return left


def kill_namespace(namespace, timeout=5.0):
    """Kill every process of a device until none is left (a fork race gets another round)."""
    deadline = time.monotonic() + timeout
    while True:
        pids = pids_in_namespace(namespace, exclude=(os.getpid(),))
        if not pids:
            return []
        survivors = kill_all(pids, max(0.1, deadline - time.monotonic()))
        if time.monotonic() >= deadline:
            return survivors or pids_in_namespace(namespace, exclude=(os.getpid(),))
