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

# The lock file, its names and its renewal: controller/lease.py (what the renewer imports).
from .lease import (
    CHECK_SECONDS,
    READY_LINE,
    RENEW_SECONDS,
    RUN_LOCK_NAME,
    Observed,
    holder_alive,
    observe,
    process_start,
    run_lock_path,
    take_over,
)
from .repository import REPOSITORY

POLL_SECONDS = 2.0
# Another machine's lock untouched for this long is expired. With the renewal every 15 s it
# tolerates a clock difference of about 2.5 minutes between the machines (and the file
# server) before a live lock could look expired; a slower clock only makes the wait longer,
# and the watching rule bounds it.
LEASE_SECONDS = 180.0
RENEWER_START_SECONDS = 20.0


class StoreBusy(Exception):
    """Another run holds the store; the message says who and what to do."""


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


def describe(holder: dict[str, Any]) -> str:
    return "run of pid {} by {} on host {} since {} ({})".format(
        holder.get("pid"), holder.get("user"), holder.get("host"), holder.get("since"),
        holder.get("command", "?"))


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
    path = Path(run_lock_path(store_dir))
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
            take_over(store_dir, seen.stamp)
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
    path = Path(run_lock_path(store_dir))
    seen = observe(path)
    if seen is not None and _mine(seen.holder, owner_pid):
        path.unlink()
        return True
    return False


class Renewer:
    """The process that renews a run lock's lease, started before the lock is taken: it
    starts Python and imports controller/lease.py (some 20 ms) while the preflight checks the
    run's inputs, then waits on its stdin for the token of the lock to renew (``start``). Without
    one (``cancel``, or the step that started it ended) it ends at once. Its own session, no
    terminal, no inherited output: once renewing it outlives the step that started it, never
    the run (``renew``). As a context manager it is cancelled on leaving unless started."""

    def __init__(self, store_dir: Path, every: float = RENEW_SECONDS,
                 check: float = CHECK_SECONDS) -> None:
        self.store_dir = store_dir
        self.process = subprocess.Popen(
            # -S: no site (the venv's packages and .pth files): the renewer needs the standard
            # library and this package alone, found from its working directory.
            [sys.executable, "-S", "-m", "controller.lease", "renew", str(store_dir), "-",
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
        seen = observe(run_lock_path(self.store_dir))
        if seen is None or not _mine(seen.holder, owner_pid):
            self.cancel()
            raise StoreBusy("the run lock of {} is not held by pid {}: nothing to "
                            "renew".format(self.store_dir, owner_pid))
        assert seen.holder is not None
        with contextlib.suppress(BrokenPipeError):  # it died: said below
            process.stdin.write(str(seen.holder["token"]).encode("utf-8") + b"\n")
            process.stdin.close()
        readable, _, _ = select.select([process.stdout], [], [], RENEWER_START_SECONDS)
        started = bool(readable) and process.stdout.readline().strip() == READY_LINE
        process.stdout.close()
        if not started:
            process.kill()
            process.wait()
            release(self.store_dir, owner_pid)
            raise StoreBusy("the renewer of the run lock of {} did not start within {} "
                            "(python3 -m controller.lease renew): the lock was released; "
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
    # Imported here: the store and what it imports cost every import of this module.
    from .store import EngineStore  # noqa: PLC0415

    with renewer or Renewer(store_dir) as starting:
        if not acquire(store_dir, owner_pid, command, wait_s, say=say):
            return []  # this run holds it already (a second playbook of one command)
        starting.start(owner_pid)
    return ["removed {} (left by an interrupted run)".format(path)
            for path in EngineStore(store_dir).remove_leftovers()]
