"""The run lock's file and the renewal of its lease (controller/runlock.py takes and holds it).

Every run's preflight starts the renewer, ``python3 -S -m controller.lease renew``, a Python
of its own, and waits for its first renewal. So this module imports the few standard modules
that renewing needs and nothing else: with the run lock's whole module (the host name, user
name, subprocesses, typing, pathlib) the renewer took about 40 ms to start, on the path of
every run (bench/README.md). tests/unit/test_runlock.py holds it to that.
"""

from __future__ import annotations

import fcntl
import json
import os
import sys
import time

# Not typing.TYPE_CHECKING: importing typing is part of what this module saves. Type checkers
# take any constant of this name as theirs; the annotations are strings (the import from
# __future__), so these names are needed only by them.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path
    from typing import Any

# The store's root layout (controller/store.py) names its two lock files from here.
LOCK_NAME = ".lock"  # the store's short fcntl lock (EngineStore.locked)
RUN_LOCK_NAME = ".run-lock"
# The renewer touches the lock this often, and looks this often whether it should stop.
RENEW_SECONDS = 15.0
CHECK_SECONDS = 1.0
READY_LINE = b"renewing"


def run_lock_path(store_dir: str | os.PathLike[str]) -> str:
    return os.path.join(str(store_dir), RUN_LOCK_NAME)


def process_start(pid: int) -> str | None:
    """The start time of ``pid`` in clock ticks since boot (None: no such process)."""
    try:
        with open("/proc/{}/stat".format(pid)) as handle:
            return handle.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def holder_alive(holder: dict[str, Any]) -> bool:
    """Only meaningful for a holder on this machine (runlock.same_machine)."""
    pid = holder.get("pid")
    return isinstance(pid, int) and process_start(pid) == holder.get("start")


class Observed:
    """The lock file as read once: its holder (None: unreadable), which version of it
    (inode, modification time) and the lease's age by this machine's clock."""

    def __init__(self, holder: dict[str, Any] | None, stamp: tuple[int, int], age: float):
        self.holder = holder
        self.stamp = stamp
        self.age = age


def observe(path: str | Path, wall: Callable[[], float] = time.time) -> Observed | None:
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


def take_over(store_dir: str | Path, judged: tuple[int, int]) -> None:
    """Remove the lock judged stale, if it is still the very file judged: takers of one store
    (and a renewer whose run is gone) do this one at a time, under the store's fcntl lock, so
    two never remove a lock a third has just made."""
    path = run_lock_path(store_dir)
    with open(os.path.join(str(store_dir), LOCK_NAME), "a") as serial:
        fcntl.flock(serial, fcntl.LOCK_EX)
        now = observe(path)
        if now is None or now.stamp != judged:
            return  # released, renewed or taken over meanwhile: judge again
        stale = "{}.stale-{}".format(path, os.getpid())
        os.rename(path, stale)
        os.unlink(stale)


def renew(store_dir: str | Path, token: str, every: float = RENEW_SECONDS,
          check: float = CHECK_SECONDS, ready: Callable[[], None] = lambda: None) -> str:
    """Keep the lease of the lock ``token`` names fresh while its run lives; returns why it
    stopped. Touches the very file it read (futimens on its descriptor: on NFS the server
    sets the time), so it never renews a lock that replaced its own."""
    path = run_lock_path(store_dir)
    renewed_at: float | None = None
    while True:
        try:
            fd = os.open(path, os.O_RDONLY)
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
                take_over(store_dir, (info.st_ino, info.st_mtime_ns))
                return "its run is gone"
            if renewed_at is None or time.monotonic() - renewed_at >= every:
                os.utime(fd)
                renewed_at = time.monotonic()
                ready()
        finally:
            os.close(fd)
        time.sleep(check)


def _point_at_devnull(fd: int, mode: int) -> None:
    """Leave the pipe on ``fd`` for /dev/null (the step that started the renewer ends)."""
    devnull = os.open(os.devnull, mode)
    os.dup2(devnull, fd)
    os.close(devnull)


def main(argv: list[str]) -> int:
    """``python3 -m controller.lease renew STORE TOKEN EVERY CHECK`` (runlock.Renewer). TOKEN
    ``-``: the first line of stdin, which is then closed (none: nothing to renew, the end)."""
    if len(argv) != 5 or argv[0] != "renew":
        print("usage: python3 -m controller.lease renew STORE TOKEN EVERY CHECK",
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
            sys.stdout.buffer.write(READY_LINE + b"\n")
            sys.stdout.flush()
            # Nobody reads further: leave the pipe, so that no late write can fail.
            _point_at_devnull(sys.stdout.fileno(), os.O_WRONLY)
            told.append(True)

    renew(argv[1], token, float(argv[3]), float(argv[4]), ready=ready)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
