"""One run at a time per store: a lock held from the preflight to the end of the run.

Ansible runs each task in a short-lived worker process, so an fcntl lock taken by a task would
end with that task. The run lock is a file created with O_EXCL that names the run's
ansible-playbook process (the workers' parent) and its start time; it is released by the
run's last task, and a lock whose process is gone (a killed run) is stale and taken over.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

RUN_LOCK_NAME = ".run-lock"
POLL_SECONDS = 2.0


class StoreBusy(Exception):
    """Another run holds the store; the message says who and what to do."""


def process_start(pid: int) -> str | None:
    """The start time of ``pid`` in clock ticks since boot (None: no such process)."""
    try:
        with open("/proc/{}/stat".format(pid)) as handle:
            return handle.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _read(path: Path) -> dict[str, Any] | None:
    """The lock's holder; None when there is none or it is unreadable (not a JSON object)."""
    try:
        holder = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return holder if isinstance(holder, dict) else None


def holder_alive(holder: dict[str, Any]) -> bool:
    pid = holder.get("pid")
    return isinstance(pid, int) and process_start(pid) == holder.get("start")


def describe(holder: dict[str, Any]) -> str:
    return "run of pid {} by {} on {} since {} ({})".format(
        holder.get("pid"), holder.get("user"), holder.get("host"), holder.get("since"),
        holder.get("command", "?"))


def acquire(store_dir: Path, owner_pid: int, command: str, wait_s: int, *,
            say: Callable[[str], None], clock: Callable[[], float] = time.monotonic,
            sleep: Callable[[float], None] = time.sleep) -> bool:
    """Take the store's run lock for ``owner_pid``; True when newly taken, False when that
    process already holds it. Waits up to ``wait_s`` for another live run (StoreBusy after)."""
    store_dir.mkdir(parents=True, exist_ok=True)
    path = store_dir / RUN_LOCK_NAME
    me = {"pid": owner_pid, "start": process_start(owner_pid), "user": getpass.getuser(),
          "host": socket.gethostname(), "since": time.strftime("%Y-%m-%d %H:%M:%S"),
          "command": command}
    deadline = clock() + wait_s
    announced = False
    while True:
        try:
            fd = os.open(str(path), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            holder = _read(path)
            if holder and holder.get("pid") == owner_pid and holder.get("start") == me["start"]:
                return False
            if holder is None or not holder_alive(holder):
                # A killed run (or a half-written lock): its process is gone, take over.
                stale = path.with_name(RUN_LOCK_NAME + ".stale-{}".format(os.getpid()))
                try:
                    os.rename(str(path), str(stale))
                    stale.unlink()
                except FileNotFoundError:
                    pass  # another run took it over first: try again
                continue
            if wait_s <= 0:
                raise StoreBusy("the engine store {} is in use by the {}. Wait for it to "
                                "finish, or set engine_store_wait_s (seconds) to wait for "
                                "it".format(store_dir, describe(holder))) from None
            if clock() >= deadline:
                raise StoreBusy("the engine store {} is still in use by the {} after {} s "
                                "(engine_store_wait_s). Try again when it has finished".format(
                                    store_dir, describe(holder), wait_s)) from None
            if not announced:
                say("waiting for the engine store {}: in use by the {} (up to {} s, "
                    "engine_store_wait_s; 0 stops at once)".format(store_dir, describe(holder),
                                                                    wait_s))
                announced = True
            sleep(POLL_SECONDS)
            continue
        with os.fdopen(fd, "w") as handle:
            json.dump(me, handle)
        return True


def release(store_dir: Path, owner_pid: int) -> bool:
    """Remove the run lock if ``owner_pid`` holds it; True when removed."""
    path = store_dir / RUN_LOCK_NAME
    holder = _read(path)
    if holder and holder.get("pid") == owner_pid and holder.get("start") == process_start(
            owner_pid):
        path.unlink()
        return True
    return False
