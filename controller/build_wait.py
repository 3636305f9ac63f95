"""Waiting for a device's builder processes, on a wall clock, with progress lines.

Ansible's own polling of an async task (``poll: N``) cannot bound a device that stops
answering: a poll that fails (the device's sshd hangs) is retried and counted as one poll
interval, however long the attempt took, and the task's ``timeout`` stops before the polling
starts. So the build is started with ``poll: 0`` and the engine_round_finish action polls each
job here: every job has a deadline on the controller's monotonic clock
(controller/device_work.py deadlines), a poll that fails is retried until then, and a job
past it is given up with ``timedout`` (read back as a ``deadline`` outcome,
controller/outcome.py). The result has the shape of Ansible's loop results (one per process,
each with its ``item``), which the outcome reader takes as before.

A poll is a long one: one shell command waits on the device, checking the jobs' files every
second, until a job ended or a window (``engine_build_poll_s``) passed, so a job costs about
one remote command per window, plus its async_status and its clean-up once it ended.

A poll that hangs (the device's sshd accepts and never answers) is cut on the same clock:
the whole wait runs ``within`` the round's wait_s (controller/device_work.py round_wait_s),
and a wait cut short gives every started process up (``wait_results``).
"""

from __future__ import annotations

import json
import re
import shlex
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType
from typing import Any, TypeVar

from .durations import format_duration

PROGRESS_EVERY_S = 15  # a person reads a line per host this often, Ansible polls faster
T = TypeVar("T")


@dataclass
class Job:
    """One builder process started on the device: its async job id and its process item."""

    jid: str
    item: dict[str, Any]
    deadline_at: float
    since: float
    printed_at: float | None = None

    @property
    def label(self) -> str:
        return ", ".join(self.item.get("models") or []) or "build"


def jobs_from(started: list[dict[str, Any]], now: float) -> tuple[list[Job], list[dict[str, Any]]]:
    """(the jobs to wait for, the results of processes that never started) from the launch
    task's loop results; each job's deadline is its process's wait_s from ``now``."""
    jobs, not_started = [], []
    for result in started:
        item: dict[str, Any] = result["item"] if isinstance(result.get("item"), dict) else {}
        jid = result.get("ansible_job_id")
        if result.get("skipped"):
            continue
        if not isinstance(jid, str) or result.get("failed"):
            not_started.append(dict(result, item=item))
            continue
        jobs.append(Job(jid, item, now + float(item.get("wait_s") or 0), now))
    return jobs, not_started


def wait_for(jobs: list[Job], status: Callable[[str], dict[str, Any] | None],
             wait: Callable[[list[str], float], set[str] | None], *, host: str, poll_s: float,
             say: Callable[[str], None], clock: Callable[[], float] = time.monotonic,
             sleep: Callable[[float], None] = time.sleep) -> list[dict[str, Any]]:
    """Wait for every job until it finished or its deadline passed; one result per job, in order.

    Each round the device itself waits for the running jobs, for at most one window:
    ``wait(jids, window_s)`` returns the ids of the jobs that finished (or None when the
    device did not answer), and only those are asked with ``status(jid)`` (the async_status
    answer, or None when the device did not answer). The window is ``poll_s``, shortened to
    the earliest deadline of a running job (at least 1 s). A round in which no job finished
    lasts at least its window (a failed attempt is retried then, until the job's deadline)."""
    results: dict[int, dict[str, Any]] = {}
    answered = True
    while True:
        now = clock()
        for index, job in enumerate(jobs):
            if index not in results and now >= job.deadline_at:
                results[index] = given_up(job)
        running = [(index, job) for index, job in enumerate(jobs) if index not in results]
        if not running:
            return [results[index] for index in range(len(jobs))]
        for _, job in running:
            if job.printed_at is None or now - job.printed_at >= PROGRESS_EVERY_S:
                job.printed_at = now
                say("  building  {}  {}  {}{}".format(
                    host, job.label, format_duration(int(now - job.since)),
                    "" if answered else "  (no answer from the device)"))
        window = max(1.0, min(poll_s, min(job.deadline_at for _, job in running) - now))
        reported = wait([job.jid for _, job in running], window)
        ended, answered = ask_ended(running, reported, status)
        results.update(ended)
        rest = window - (clock() - now)
        if not ended and rest > 0:
            sleep(rest)


def ask_ended(running: list[tuple[int, Job]], reported: set[str] | None,
              status: Callable[[str], dict[str, Any] | None]
              ) -> tuple[dict[int, dict[str, Any]], bool]:
    """(the results of the jobs the long poll named that async_status says finished, whether
    the device answered every call of the round)."""
    ended: dict[int, dict[str, Any]] = {}
    answered = reported is not None
    for index, job in running:
        if not reported or job.jid not in reported:
            continue
        answer = status(job.jid)
        if answer is None:
            answered = False
        elif answer.get("finished") or answer.get("failed"):
            ended[index] = dict(answer, item=job.item)
    return ended, answered


def given_up(job: Job) -> dict[str, Any]:
    """The result of a job past its deadline: given up on the controller's clock."""
    return {"item": job.item, "failed": True, "ansible_job_id": job.jid,
            "timedout": {"period": job.item.get("wait_s")},
            "msg": "no answer from the device within {} s".format(job.item.get("wait_s"))}


def running_record(jid: str) -> str:
    """A job file's text, whitespace removed, while its job runs.

    ansible-core's async_wrapper (2.16, ``_run_module``) writes
    ``{"started": 1, "finished": 0, "ansible_job_id": jid}`` (json.dumps) when the job starts,
    and replaces the file (written aside, then renamed) with the module's result, or a record
    of its failure or timeout, when it ends. Any other text is an ended job's: the result can
    hold arbitrary output, so only the whole text is compared."""
    record = json.dumps({"started": 1, "finished": 0, "ansible_job_id": jid})
    return re.sub(r"[ \t\r\n]", "", record)


def shell_path(path: str) -> str:
    """``path`` for the device's POSIX shell: a leading ``~`` (alone or ``~/``) is the
    shell's ``$HOME``, the rest is quoted."""
    if path == "~":
        return '"$HOME"'
    if path.startswith("~/"):
        return '"$HOME"/' + shlex.quote(path[2:])
    return shlex.quote(path)


def long_poll_command(async_dir: str, jids: list[str], window_s: float) -> str:
    """One POSIX shell command that waits on the device, checking every second, until a job
    of ``jids`` no longer runs (its job file in ``async_dir`` says anything but the running
    record, or is missing: async_status then says what happened) or ``window_s`` (whole
    seconds, at least 1) passed; it prints the ids of the jobs that ended, one per line."""
    directory = shell_path(async_dir.rstrip("/") or "/")
    checks = "; ".join("ended {}/{} {} {}".format(
        directory, shlex.quote(jid), shlex.quote(running_record(jid)), shlex.quote(jid))
        for jid in jids)
    # ended FILE RUNNING JID: prints JID unless FILE's first KiB, whitespace removed, is RUNNING.
    return (
        "ended() { [ \"$(head -c 1024 -- \"$1\" 2>/dev/null | tr -d ' \\t\\r\\n')\" = \"$2\" ]"
        " || printf '%s\\n' \"$3\"; }; "
        "i=0; while :; do o=$(" + checks + "); "
        "if [ -n \"$o\" ] || [ \"$i\" -ge " + str(max(1, int(window_s))) + " ]; then break; fi; "
        "sleep 1; i=$((i + 1)); done; "
        "[ -z \"$o\" ] || printf '%s\\n' \"$o\""
    )


def ended_jids(stdout: str, jids: list[str]) -> set[str]:
    """The jobs a long poll's output names; only the ids that were asked about count."""
    return {line.strip() for line in stdout.splitlines()} & set(jids)


class _Cut(BaseException):
    """Raised by the alarm of ``within`` (a BaseException: no ``except Exception`` of the
    code it interrupts takes it)."""


def within(seconds: float, call: Callable[[], T]) -> T | None:
    """``call()``'s value, or None when it had not returned after ``seconds`` on the
    controller's clock: a call blocked in a remote command (a poll that hangs) is interrupted
    by SIGALRM, the way Ansible's own task ``timeout`` interrupts a task. The main thread
    only (an Ansible worker runs its action there); the handler before is restored."""

    def cut(signum: int, frame: FrameType | None) -> None:
        raise _Cut

    previous = signal.signal(signal.SIGALRM, cut)
    try:
        try:
            signal.setitimer(signal.ITIMER_REAL, max(float(seconds), 0.001))
            return call()
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
    except _Cut:
        return None
    finally:
        signal.signal(signal.SIGALRM, signal.SIG_DFL if previous is None else previous)


def wait_result(not_started: list[dict[str, Any]], finished: list[dict[str, Any]] | None,
                wait_s: int) -> dict[str, Any]:
    """The wait's result: one per process (``results``, read by ``wait_results``) and whether a
    build ran (``changed``); ``finished`` None: the wait was cut after ``wait_s``
    (``within``). Whether the device went silent: ``went_silent``."""
    if finished is None:
        return {"failed": True, "timedout": {"period": wait_s},
                "msg": "the wait for the builds was cut after {} s (a poll hung)".format(wait_s)}
    return {"results": not_started + finished,
            "changed": any(job.get("rc") == 0 for job in finished)}


def went_silent(wait: dict[str, Any]) -> bool:
    """Whether the wait gave up on the device: the wait itself was cut, or a process was given
    up at its deadline. The device is then asked nothing more this run (the verifies, the
    listing and the fetch are skipped, and the read-back fetches nothing)."""
    return bool(wait.get("timedout")) or any(
        job.get("timedout") for job in wait.get("results") or [])


def wait_results(started: list[dict[str, Any]], wait: dict[str, Any]) -> list[dict[str, Any]]:
    """The processes' results: the wait's, or, when the wait itself was cut short (a poll
    hung past the round's wait_s: ``within``), every started process given up as timed out."""
    if isinstance(wait.get("results"), list):
        return list(wait["results"])
    if not wait.get("timedout"):
        return []
    return [dict(result, failed=True, timedout=wait["timedout"],
                 msg="no answer from the device within {} s".format(
                     (result.get("item") or {}).get("wait_s")))
            for result in started if not result.get("skipped")]
