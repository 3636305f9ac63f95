"""One run at a time per store: a lock held from the preflight to the end of the run.

Ansible runs each task in a short-lived worker process, so an fcntl lock taken by a task would
end with that task. The run lock is a file that names the run's ansible-playbook process (the
workers' parent), its start time and the machine it runs on; it is released by the run's last
task.

The store may be on shared storage (NFS: two controllers, an AWX pod and a laptop), where a
process id means nothing to another machine. So the lock is a lease: a small renewer process
(``Renewer``), started by the step that took the lock, touches the lock file every
RENEW_SECONDS while the run's process lives, and ends when the lock is released, taken over or
its run is gone. Who else may take a lock over:

- on the same machine (same boot and pid namespace): when its process is gone (a killed run);
- from another machine: only when its lease has expired, i.e. the file was not touched for
  LEASE_SECONDS: by its modification time (set by the file server's clock on NFS), or, whatever
  the clocks say, after this process watched it unchanged for that long on its own clock.

Each is said with the holder's host, pid and the lease's age. docs/internals.md ("The run
lock on shared storage") says which storage this is safe on.
"""

from __future__ import annotations

import contextlib
import fcntl
import getpass
import json
import os
import select
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .durations import format_duration

# Beside the store's root layout (controller/store.py), the names of its two lock files live
# here: the lease renewer, a process of its own that every run starts, imports this module
# alone, without the store and what it imports (a tenth of a second of the run's preflight).
LOCK_NAME = ".lock"  # the store's short fcntl lock (EngineStore.locked)
RUN_LOCK_NAME = ".run-lock"

POLL_SECONDS = 2.0
# The renewer touches the lock this often, and looks this often whether it should stop.
RENEW_SECONDS = 15.0
CHECK_SECONDS = 1.0
# Another machine's lock untouched for this long is expired. With the renewal every 15 s it
# tolerates a clock difference of about 2.5 minutes between the machines (and the file
# server) before a live lock could look expired; a slower clock only makes the wait longer,
# and the watching rule bounds it.
LEASE_SECONDS = 180.0
RENEWER_START_SECONDS = 20.0
REPOSITORY = Path(__file__).resolve().parents[1]


class StoreBusy(Exception):
    """Another run holds the store; the message says who and what to do."""


def process_start(pid: int) -> str | None:
    """The start time of ``pid`` in clock ticks since boot (None: no such process)."""
    try:
        with open("/proc/{}/stat".format(pid)) as handle:
            return handle.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def machine() -> dict[str, str]:
    """Where a process id means something: this kernel's boot and this pid namespace (two
    containers of one machine share the boot, not the namespace), with the host name to say."""
    identity = {"host": socket.gethostname()}
    with contextlib.suppress(OSError):
        identity["boot_id"] = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    with contextlib.suppress(OSError):
        identity["pid_ns"] = os.readlink("/proc/self/ns/pid")
    return identity


def same_machine(holder: dict[str, Any], mine: dict[str, str]) -> bool:
    if "boot_id" in holder:
        return all(holder.get(key) == mine.get(key) for key in ("boot_id", "pid_ns"))
    return bool(holder.get("host") == mine["host"])  # a lock of the format before leases


def holder_alive(holder: dict[str, Any]) -> bool:
    """Only meaningful for a holder on this machine (``same_machine``)."""
    pid = holder.get("pid")
    return isinstance(pid, int) and process_start(pid) == holder.get("start")


def describe(holder: dict[str, Any]) -> str:
    return "run of pid {} by {} on host {} since {} ({})".format(
        holder.get("pid"), holder.get("user"), holder.get("host"), holder.get("since"),
        holder.get("command", "?"))


class Observed:
    """The lock file as read once: its holder (None: unreadable), which version of it
    (inode, modification time) and the lease's age by this machine's clock."""

    def __init__(self, holder: dict[str, Any] | None, stamp: tuple[int, int], age: float):
        self.holder = holder
        self.stamp = stamp
        self.age = age


def observe(path: Path, wall: Callable[[], float] = time.time) -> Observed | None:
    """The lock as it is now (None: there is none). Opened, not only stat'ed: on NFS an open
    revalidates the file's attributes (close-to-open), a stat may answer from a cache."""
    try:
        with open(str(path), "rb") as handle:
            info = os.fstat(handle.fileno())
            try:
                holder = json.loads(handle.read(1 << 16).decode("utf-8"))
            except (OSError, ValueError):
                holder = None
    except FileNotFoundError:
        return None
    return Observed(holder if isinstance(holder, dict) else None,
                    (info.st_ino, info.st_mtime_ns), wall() - info.st_mtime)


def lease_text(age: float) -> str:
    if age < -5:
        return ("its lease was renewed {} in the future by this host's clock (the clocks "
                "differ)".format(format_duration(round(-age))))
    return "its lease was last renewed {} ago".format(format_duration(round(max(age, 0.0))))


def _create(path: Path, me: dict[str, Any]) -> bool:
    """Make the lock, complete, in one step: written beside it, then hard-linked to its name
    (link(2) fails when the name exists, on NFS too; a lost reply to a link that did happen is
    recognised by the link count, as open(2)'s manual describes for O_EXCL on NFS)."""
    draft = path.with_name("{}.{}-{}-{}".format(RUN_LOCK_NAME, me["host"], os.getpid(),
                                                me["token"]))
    with open(str(draft), "w") as handle:
        json.dump(me, handle)
        handle.flush()
        os.fsync(handle.fileno())
    try:
        os.link(str(draft), str(path))
        return True
    except FileExistsError:
        return os.stat(str(draft)).st_nlink == 2
    finally:
        draft.unlink()


def _take_over(store_dir: Path, path: Path, judged: tuple[int, int]) -> None:
    """Remove the lock judged stale, if it is still the very file judged: takers of one store
    (and a renewer whose run is gone) do this one at a time, under the store's fcntl lock, so
    two never remove a lock a third has just made."""
    with open(str(store_dir / LOCK_NAME), "a") as serial:
        fcntl.flock(serial, fcntl.LOCK_EX)
        now = observe(path)
        if now is None or now.stamp != judged:
            return  # released, renewed or taken over meanwhile: judge again
        stale = path.with_name(RUN_LOCK_NAME + ".stale-{}".format(os.getpid()))
        os.rename(str(path), str(stale))
        stale.unlink()


class _Watch:
    """How long this run has seen another machine's lock unchanged, by its own clock."""

    def __init__(self, clock: Callable[[], float]):
        self.clock = clock
        self.stamp: tuple[int, int] | None = None
        self.since = 0.0

    def unchanged_for(self, stamp: tuple[int, int]) -> float:
        if stamp != self.stamp:
            self.stamp, self.since = stamp, self.clock()
        return self.clock() - self.since


def _verdict(seen: Observed, mine: dict[str, str], me: dict[str, Any], watch: _Watch
             ) -> tuple[str, str]:
    """("mine" | "stale" | "busy", what to say) of a lock that ``me`` found in its way."""
    holder = seen.holder
    if holder is None:
        # Damaged (a lock is complete when it appears): nobody can be named.
        return "stale", "it is not a lock this tool wrote"
    if same_machine(holder, mine):
        if holder.get("pid") == me["pid"] and holder.get("start") == me["start"]:
            return "mine", ""
        if not holder_alive(holder):
            return "stale", "of a run that is gone: the {}".format(describe(holder))
        return "busy", "the {}".format(describe(holder))
    if seen.age > LEASE_SECONDS or watch.unchanged_for(seen.stamp) >= LEASE_SECONDS:
        return "stale", ("of the {}: {}, and it expires after {} without renewal (its run "
                         "is gone, or cut off from this store)".format(
                             describe(holder), lease_text(seen.age),
                             format_duration(LEASE_SECONDS)))
    return "busy", ("the {} (another host: {}; it is taken over only once it has not been "
                    "renewed for {})".format(describe(holder), lease_text(seen.age),
                                             format_duration(LEASE_SECONDS)))


def acquire(store_dir: Path, owner_pid: int, command: str, wait_s: int, *,
            say: Callable[[str], None], clock: Callable[[], float] = time.monotonic,
            sleep: Callable[[float], None] = time.sleep,
            wall: Callable[[], float] = time.time) -> bool:
    """Take the store's run lock for ``owner_pid``; True when newly taken, False when that
    process already holds it. Waits up to ``wait_s`` for another live run (StoreBusy after).
    A stale lock is taken over and ``say`` tells whose it was."""
    store_dir.mkdir(parents=True, exist_ok=True)
    path = store_dir / RUN_LOCK_NAME
    mine = machine()
    me = dict(mine, pid=owner_pid, start=process_start(owner_pid), user=getpass.getuser(),
              since=time.strftime("%Y-%m-%d %H:%M:%S"), command=command,
              lease_s=LEASE_SECONDS, token=uuid.uuid4().hex)
    deadline = clock() + wait_s
    announced = False
    watch = _Watch(clock)
    while True:
        if _create(path, me):
            return True
        seen = observe(path, wall)
        if seen is None:
            continue  # released meanwhile
        verdict, busy = _verdict(seen, mine, me, watch)
        if verdict == "mine":
            return False
        if verdict == "stale":
            say("taking over the run lock {}".format(busy))
            _take_over(store_dir, path, seen.stamp)
            continue
        if wait_s <= 0:
            raise StoreBusy("the engine store {} is in use by {}. Wait for it to finish, or "
                            "set engine_store_wait_s (seconds) to wait for it".format(
                                store_dir, busy)) from None
        if clock() >= deadline:
            raise StoreBusy("the engine store {} is still in use by {} after {} s "
                            "(engine_store_wait_s). Try again when it has finished".format(
                                store_dir, busy, wait_s)) from None
        if not announced:
            say("waiting for the engine store {}: in use by {} (up to {} s, "
                "engine_store_wait_s; 0 stops at once)".format(store_dir, busy, wait_s))
            announced = True
        sleep(POLL_SECONDS)


def _mine(holder: dict[str, Any] | None, owner_pid: int) -> bool:
    return bool(holder) and same_machine(holder or {}, machine()) and \
        (holder or {}).get("pid") == owner_pid and \
        (holder or {}).get("start") == process_start(owner_pid)


def release(store_dir: Path, owner_pid: int) -> bool:
    """Remove the run lock if ``owner_pid`` holds it; True when removed. Its renewer sees
    that within CHECK_SECONDS and ends."""
    path = store_dir / RUN_LOCK_NAME
    seen = observe(path)
    if seen is not None and _mine(seen.holder, owner_pid):
        path.unlink()
        return True
    return False


def renew(store_dir: Path, token: str, every: float = RENEW_SECONDS,
          check: float = CHECK_SECONDS, ready: Callable[[], None] = lambda: None) -> str:
    """Keep the lease of the lock ``token`` names fresh while its run lives; returns why it
    stopped. Touches the very file it read (futimens on its descriptor: on NFS the server
    sets the time), so it never renews a lock that replaced its own."""
    path = store_dir / RUN_LOCK_NAME
    renewed_at: float | None = None
    while True:
        try:
            fd = os.open(str(path), os.O_RDONLY)
        except FileNotFoundError:
            return "released"
        try:
            try:
                holder = json.loads(os.read(fd, 1 << 16).decode("utf-8"))
            except ValueError:
                holder = None
            if not isinstance(holder, dict) or holder.get("token") != token:
                return "no longer this run's lock"
            if not holder_alive(holder):
                # Its run was killed: nobody else can release it, and a run on another
                # machine need not wait for the lease to expire. Removed as a taker would.
                info = os.fstat(fd)
                _take_over(store_dir, path, (info.st_ino, info.st_mtime_ns))
                return "its run is gone"
            if renewed_at is None or time.monotonic() - renewed_at >= every:
                os.utime(fd)
                renewed_at = time.monotonic()
                ready()
        finally:
            os.close(fd)
        time.sleep(check)


class Renewer:
    """The process that renews a run lock's lease, started before the lock is taken: it
    starts Python and imports this module (some 35 ms) while the preflight checks the run's
    inputs, then waits on its stdin for the token of the lock to renew (``start``). Without
    one (``cancel``, or the step that started it ended) it ends at once. Its own session, no
    terminal, no inherited output: once renewing it outlives the step that started it, never
    the run (``renew``). As a context manager it is cancelled on leaving unless started."""

    def __init__(self, store_dir: Path, every: float = RENEW_SECONDS,
                 check: float = CHECK_SECONDS) -> None:
        self.store_dir = store_dir
        self.process = subprocess.Popen(
            # -S: no site (the venv's packages and .pth files): the renewer needs the standard
            # library and this package alone, found from its working directory.
            [sys.executable, "-S", "-m", "controller.runlock", "renew", str(store_dir), "-",
             str(every), str(check)],
            cwd=str(REPOSITORY), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, start_new_session=True)
        self.started = False

    def __enter__(self) -> Renewer:
        return self

    def __exit__(self, *exc: object) -> None:
        if not self.started:
            self.cancel()

    def start(self, owner_pid: int) -> subprocess.Popen[bytes]:
        """Renew the lease of ``owner_pid``'s lock (which it must hold); returns the renewer
        once it has renewed it. When it does not start, the lock is released."""
        process = self.process
        assert process.stdin is not None and process.stdout is not None
        seen = observe(self.store_dir / RUN_LOCK_NAME)
        if seen is None or not _mine(seen.holder, owner_pid):
            self.cancel()
            raise StoreBusy("the run lock of {} is not held by pid {}: nothing to "
                            "renew".format(self.store_dir, owner_pid))
        assert seen.holder is not None
        with contextlib.suppress(BrokenPipeError):  # it died: said below
            process.stdin.write(str(seen.holder["token"]).encode("utf-8") + b"\n")
            process.stdin.close()
        readable, _, _ = select.select([process.stdout], [], [], RENEWER_START_SECONDS)
        started = bool(readable) and process.stdout.readline().strip() == b"renewing"
        process.stdout.close()
        if not started:
            process.kill()
            process.wait()
            release(self.store_dir, owner_pid)
            raise StoreBusy("the renewer of the run lock of {} did not start within {} "
                            "(python3 -m controller.runlock renew): the lock was released; "
                            "run again".format(self.store_dir,
                                               format_duration(RENEWER_START_SECONDS)))
        self.started = True
        return process

    def cancel(self) -> None:
        """No lock to renew: the renewer ends (closing its stdin says so), reaped here."""
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None and not pipe.closed:
                with contextlib.suppress(BrokenPipeError):
                    pipe.close()
        try:
            self.process.wait(timeout=RENEWER_START_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def hold_store(store_dir: Path, owner_pid: int, command: str, wait_s: int, *,
               say: Callable[[str], None], renewer: Renewer | None = None) -> list[str]:
    """The run's hold on its store (the preflight's step): the run lock, its renewer
    (``renewer``, started ahead, else one started now), then, since no other run can be
    writing, the leftovers of killed ones removed. Returns what was removed, as lines to
    show. The renewer is started, or cancelled whatever happens."""
    from .store import EngineStore  # noqa: PLC0415 (see LOCK_NAME)

    with renewer or Renewer(store_dir) as starting:
        if not acquire(store_dir, owner_pid, command, wait_s, say=say):
            return []  # this run holds it already (a second playbook of one command)
        starting.start(owner_pid)
    return ["removed {} (left by an interrupted run)".format(path)
            for path in EngineStore(store_dir).remove_leftovers()]


def _point_at_devnull(fd: int, mode: int) -> None:
    """Leave the pipe on ``fd`` for /dev/null (the step that started the renewer ends)."""
    devnull = os.open(os.devnull, mode)
    os.dup2(devnull, fd)
    os.close(devnull)


def main(argv: list[str]) -> int:
    """``python3 -m controller.runlock renew STORE TOKEN EVERY CHECK`` (Renewer). TOKEN ``-``:
    the first line of stdin, which is then closed (none: nothing to renew, the end)."""
    if len(argv) != 5 or argv[0] != "renew":
        print("usage: python3 -m controller.runlock renew STORE TOKEN EVERY CHECK",
              file=sys.stderr)
        return 2
    token = argv[2]
    if token == "-":
        token = sys.stdin.readline().strip()
        _point_at_devnull(sys.stdin.fileno(), os.O_RDONLY)
        if not token:
            return 0
    told: list[bool] = []

    def ready() -> None:
        if not told:
            print("renewing", flush=True)
            # Nobody reads further: leave the pipe, so that no late write can fail.
            _point_at_devnull(sys.stdout.fileno(), os.O_WRONLY)
            told.append(True)

    renew(Path(argv[1]), token, float(argv[3]), float(argv[4]), ready=ready)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
