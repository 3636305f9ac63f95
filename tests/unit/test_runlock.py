"""One run at a time per store (controller/runlock.py): a second run waits with who holds
it, or stops at once; a killed run's lock is taken over."""

import os
import subprocess
import sys

import pytest

from controller import runlock


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
