"""One run at a time per store (controller/runlock.py): a second run waits with who holds
it, or stops at once; a killed run's lock is taken over; another host's lock only once its
lease has expired; the renewer keeps the lease and ends with the run; the run that holds the
lock removes what a killed filing left."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from controller import runlock
from controller.durations import format_duration

REPO = Path(__file__).resolve().parents[2]


def sleeper():
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])


def test_a_second_run_stops_at_once_naming_the_holder(tmp_path):
    holder = sleeper()
    try:
        assert runlock.acquire(tmp_path, holder.pid, "ansible-playbook build_engines.yml", 0,
                               say=print)
        with pytest.raises(runlock.StoreBusy) as busy:
            runlock.acquire(tmp_path, os.getpid(), "second", 0, say=print)
        text = str(busy.value)
        assert "pid {}".format(holder.pid) in text and "build_engines.yml" in text
        assert "engine_store_wait_s" in text
    finally:
        holder.kill()
        holder.wait()


def test_a_waiting_run_says_who_it_waits_for_then_gives_up(tmp_path):
    holder = sleeper()
    said, now = [], [0.0]
    try:
        runlock.acquire(tmp_path, holder.pid, "first", 0, say=said.append)

        def sleep(seconds):
            now[0] += seconds

        with pytest.raises(runlock.StoreBusy, match="still in use .* after 5 s"):
            runlock.acquire(tmp_path, os.getpid(), "second", 5, say=said.append,
                            clock=lambda: now[0], sleep=sleep)
        assert len(said) == 1 and "pid {}".format(holder.pid) in said[0]
    finally:
        holder.kill()
        holder.wait()


def test_the_lock_of_a_killed_run_is_taken_over_and_released_by_its_owner(tmp_path):
    holder = sleeper()
    runlock.acquire(tmp_path, holder.pid, "killed", 0, say=print)
    holder.kill()
    holder.wait()
    assert runlock.acquire(tmp_path, os.getpid(), "next", 0, say=print) is True
    assert runlock.acquire(tmp_path, os.getpid(), "next", 0, say=print) is False  # already mine
    assert not runlock.release(tmp_path, holder.pid)
    assert runlock.release(tmp_path, os.getpid())
    assert not (tmp_path / runlock.RUN_LOCK_NAME).exists()


@pytest.mark.parametrize("content", ["[1]", "0", '"me"'])
def test_a_lock_that_is_not_a_json_object_is_taken_over(tmp_path, content):
    (tmp_path / runlock.RUN_LOCK_NAME).write_text(content)
    assert not runlock.release(tmp_path, os.getpid())
    assert runlock.acquire(tmp_path, os.getpid(), "next", 0, say=print) is True
    assert runlock.release(tmp_path, os.getpid())


# ---------------------------------------------------------------- another host's lock
# A run on another machine (shared storage) is simulated by its lock: another host name and
# boot, a pid that means nothing here, and the lock file's time as the last renewal.
OTHER_HOST = "build-box-2"
OTHER_PID = 4242


def foreign_lock(store_dir, renewed_ago):
    path = store_dir / runlock.RUN_LOCK_NAME
    path.write_text(json.dumps({
        "pid": OTHER_PID, "start": "123", "user": "ci", "host": OTHER_HOST,
        "boot_id": "another-machine", "pid_ns": "pid:[1]", "since": "2026-12-06 06:00:00",
        "command": "ansible-playbook build_engines.yml", "lease_s": runlock.LEASE_SECONDS,
        "token": "theirs"}))
    when = time.time() - renewed_ago
    os.utime(path, (when, when))
    return path


def test_a_fresh_lease_of_another_host_is_refused_naming_its_host_pid_and_age(tmp_path):
    lock = foreign_lock(tmp_path, renewed_ago=30)
    before = lock.read_bytes()
    with pytest.raises(runlock.StoreBusy) as busy:
        runlock.acquire(tmp_path, os.getpid(), "second", 0, say=print)
    text = str(busy.value)
    assert "host {}".format(OTHER_HOST) in text and "pid {}".format(OTHER_PID) in text
    assert re.search(r"last renewed (29|30|31) s ago", text), text
    assert format_duration(runlock.LEASE_SECONDS) in text
    assert lock.read_bytes() == before


def test_an_expired_lease_of_another_host_is_taken_over_saying_so(tmp_path):
    foreign_lock(tmp_path, renewed_ago=runlock.LEASE_SECONDS + 100)
    said = []
    assert runlock.acquire(tmp_path, os.getpid(), "next", 0, say=said.append) is True
    assert len(said) == 1 and said[0].startswith("taking over the run lock"), said
    assert "host {}".format(OTHER_HOST) in said[0] and "pid {}".format(OTHER_PID) in said[0]
    assert format_duration(runlock.LEASE_SECONDS + 100) + " ago" in said[0]
    holder = json.loads((tmp_path / runlock.RUN_LOCK_NAME).read_text())
    assert holder["pid"] == os.getpid() and holder["host"] == socket.gethostname()
    assert runlock.release(tmp_path, os.getpid())


def test_a_waiting_run_takes_over_a_lease_once_it_saw_no_renewal_for_the_lease(tmp_path):
    """Whatever the clocks: a lease unchanged for LEASE_SECONDS of the waiting run's own
    clock has expired (here the lock's time stays 30 s old by the wall clock)."""
    foreign_lock(tmp_path, renewed_ago=30)
    said, now = [], [0.0]

    def sleep(seconds):
        now[0] += seconds

    assert runlock.acquire(tmp_path, os.getpid(), "next", 3600, say=said.append,
                           clock=lambda: now[0], sleep=sleep) is True
    assert said[0].startswith("waiting for the engine store") and OTHER_HOST in said[0]
    assert said[1].startswith("taking over the run lock") and OTHER_HOST in said[1]
    assert runlock.LEASE_SECONDS <= now[0] < runlock.LEASE_SECONDS + 2 * runlock.POLL_SECONDS
    assert runlock.release(tmp_path, os.getpid())


def test_a_lease_that_is_renewed_is_never_taken_over(tmp_path):
    lock = foreign_lock(tmp_path, renewed_ago=30)
    now = [0.0]

    def sleep(seconds):  # the other host's renewer touches its lock meanwhile
        now[0] += seconds
        when = time.time() - 10
        os.utime(lock, ns=(int(when * 1e9), int(when * 1e9) + int(now[0] * 1e3)))

    with pytest.raises(runlock.StoreBusy, match="still in use .* after 600 s"):
        runlock.acquire(tmp_path, os.getpid(), "next", 600, say=print,
                        clock=lambda: now[0], sleep=sleep)
    assert json.loads(lock.read_text())["host"] == OTHER_HOST


# ---------------------------------------------------------------- the renewer
def wait_for(condition, seconds=10.0):
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def lease_age(store_dir):
    return runlock.observe(store_dir / runlock.RUN_LOCK_NAME).age


def test_the_renewer_keeps_the_lease_fresh_and_release_stops_it(tmp_path):
    holder = sleeper()
    try:
        assert runlock.acquire(tmp_path, holder.pid, "first", 0, say=print)
        renewer = runlock.Renewer(tmp_path, every=0.2, check=0.05).start(holder.pid)
        lock = tmp_path / runlock.RUN_LOCK_NAME
        old = time.time() - 1000
        os.utime(lock, (old, old))  # as if the lease were about to expire
        assert wait_for(lambda: lease_age(tmp_path) < 5), lease_age(tmp_path)
        assert renewer.poll() is None
        assert runlock.release(tmp_path, holder.pid)
        assert renewer.wait(timeout=5) == 0
        assert not lock.exists()
    finally:
        holder.kill()
        holder.wait()


def test_the_renewer_ends_with_its_run_and_removes_the_lock(tmp_path):
    holder = sleeper()
    assert runlock.acquire(tmp_path, holder.pid, "killed", 0, say=print)
    renewer = runlock.Renewer(tmp_path, every=0.2, check=0.05).start(holder.pid)
    holder.kill()
    holder.wait()
    assert renewer.wait(timeout=5) == 0
    assert not (tmp_path / runlock.RUN_LOCK_NAME).exists()


def test_the_renewer_never_renews_a_lock_that_replaced_its_own(tmp_path):
    holder = sleeper()
    try:
        assert runlock.acquire(tmp_path, holder.pid, "first", 0, say=print)
        renewer = runlock.Renewer(tmp_path, every=0.2, check=0.05).start(holder.pid)
        replaced = tmp_path / "replacement"
        foreign_lock(tmp_path, renewed_ago=0).rename(replaced)
        os.replace(replaced, tmp_path / runlock.RUN_LOCK_NAME)  # taken over meanwhile
        old = time.time() - 1000
        os.utime(tmp_path / runlock.RUN_LOCK_NAME, (old, old))
        assert renewer.wait(timeout=5) == 0
        assert lease_age(tmp_path) > 999
    finally:
        holder.kill()
        holder.wait()


def test_a_renewer_started_ahead_renews_once_the_lock_is_taken(tmp_path):
    # The preflight starts it before checking the inputs, and gives it to hold_store.
    holder = sleeper()
    try:
        renewer = runlock.Renewer(tmp_path, every=0.2, check=0.05)
        assert runlock.hold_store(tmp_path, holder.pid, "run", 0, say=print,
                                  renewer=renewer) == []
        assert renewer.started and renewer.process.poll() is None
        old = time.time() - 1000
        os.utime(tmp_path / runlock.RUN_LOCK_NAME, (old, old))
        assert wait_for(lambda: lease_age(tmp_path) < 5), lease_age(tmp_path)
        assert runlock.release(tmp_path, holder.pid)
        assert renewer.process.wait(timeout=5) == 0
    finally:
        holder.kill()
        holder.wait()


def test_a_renewer_started_ahead_ends_when_no_lock_is_taken(tmp_path):
    # The inputs had problems (the preflight leaves the with block), or this run held the
    # lock already: the renewer ends at once, reaped, and the store is untouched.
    with runlock.Renewer(tmp_path / "store") as unused:
        pass
    assert unused.process.returncode == 0 and not (tmp_path / "store").exists()
    holder = sleeper()
    try:
        assert runlock.acquire(tmp_path, holder.pid, "first", 0, say=print)
        second = runlock.Renewer(tmp_path)
        assert runlock.hold_store(tmp_path, holder.pid, "again", 0, say=print,
                                  renewer=second) == []
        assert second.process.returncode == 0 and not second.started
        busy = runlock.Renewer(tmp_path)
        with pytest.raises(runlock.StoreBusy):  # another run's lock: nothing to renew
            busy.start(holder.pid + 1)
        assert busy.process.returncode == 0
    finally:
        holder.kill()
        holder.wait()


# ---------------------------------------------------------------- a killed filing
KILL_AT_INSTALL = """
import os, signal, sys
from pathlib import Path
from controller import store
from tests.unit.store_helpers import staged

def killed(path):  # the temporary is complete, the rename not yet done: SIGKILL
    os.kill(os.getpid(), signal.SIGKILL)

store.atomic.fsync_directory = killed
staging = Path(sys.argv[2])
staged(staging, "m1", "jetson-nano_l4t32.7.1_trt8.2.1", "a" * 64)
store.EngineStore(sys.argv[1]).file_engine(
    staging, platform_id="jetson-nano_l4t32.7.1_trt8.2.1", model="m1", variant="fp16-ws512",
    build_key="a" * 64, built_on="nano-1", max_bytes=1 << 20)
"""


def store_tool(*args):
    return subprocess.run([sys.executable, "-m", "controller", "store", *map(str, args)],
                          cwd=str(REPO), capture_output=True, text=True, check=False)


def test_a_killed_filings_temporary_is_removed_by_the_next_run_under_the_lock(tmp_path):
    store_dir = tmp_path / "engines"
    filing = subprocess.run([sys.executable, "-c", KILL_AT_INSTALL, str(store_dir),
                             str(tmp_path / "staged")], cwd=str(REPO), check=False,
                            capture_output=True, text=True)
    assert filing.returncode == -signal.SIGKILL, filing.stderr
    leftover = list((store_dir / "jetson-nano_l4t32.7.1_trt8.2.1" / "m1").glob(".new-fp16-ws512-*"))
    assert len(leftover) == 1 and (leftover[0] / "TRT_m1.bin").is_file()
    for _ in range(2):  # no run cleaned: the tool keeps reporting it
        checked = store_tool("check", store_dir)
        assert checked.returncode == 1 and "interrupted run: {}".format(leftover[0]) in \
            checked.stdout, checked.stdout

    holder = sleeper()
    try:
        said = runlock.hold_store(store_dir, holder.pid, "next", 0, say=print)
        assert said == ["removed {} (left by an interrupted run)".format(leftover[0])]
        assert not leftover[0].exists()
        assert runlock.release(tmp_path / "engines", holder.pid)
    finally:
        holder.kill()
        holder.wait()
    checked = store_tool("check", store_dir)
    assert "interrupted run" not in checked.stdout, checked.stdout


def test_the_renewer_imports_only_what_renewing_needs():
    """Every run starts the renewer (python3 -S -m controller.lease) and waits for its first
    renewal: it must import neither the store, nor the run lock's module, nor the standard
    modules only taking a lock needs (host and user names, subprocesses, typing, pathlib)."""
    probe = "import sys, controller.lease; print(' '.join(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-S", "-c", probe], cwd=str(runlock.REPOSITORY),
                          capture_output=True, text=True, check=True)
    imported = done.stdout.split()
    assert [m for m in imported if m.startswith("controller")] == [
        "controller", "controller.lease"], done.stdout
    heavy = ("socket", "subprocess", "getpass", "uuid", "typing", "pathlib")
    assert not set(heavy) & set(imported), done.stdout
