"""Waiting for a device's builder processes, on a wall clock, with progress lines.

Ansible's own polling of an async task (``poll: N``) cannot bound a device that stops
answering: a poll that fails (the device's sshd hangs) is retried and counted as one poll
interval, however long the attempt took, and the task's ``timeout`` stops before the polling
starts. So the build is started with ``poll: 0`` and the engine_build_wait action polls each
job here: every job has a deadline on the controller's monotonic clock
(controller/device_work.py deadlines), a poll that fails is retried until then, and a job
past it is given up with ``timedout`` (read back as a ``deadline`` outcome,
controller/outcome.py). The result has the shape of Ansible's loop results (one per process,
each with its ``item``), which the outcome reader takes as before.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .durations import format_duration

PROGRESS_EVERY_S = 15  # a person reads a line per host this often, Ansible polls faster


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


def wait_for(jobs: list[Job], status: Callable[[str], dict[str, Any] | None], *, host: str,
             poll_s: float, say: Callable[[str], None], clock: Callable[[], float] = time.monotonic,
             sleep: Callable[[float], None] = time.sleep) -> list[dict[str, Any]]:
    """Poll every job until it finished or its deadline passed; one result per job, in order.

    ``status(jid)``: the async_status answer, or None when the device did not answer (the
    attempt failed; it is retried until the job's deadline)."""
    results: dict[int, dict[str, Any]] = {}
    while len(results) < len(jobs):
        for index, job in enumerate(jobs):
            if index in results:
                continue
            answer = status(job.jid)
            if answer is not None and (answer.get("finished") or answer.get("failed")):
                results[index] = dict(answer, item=job.item)
                continue
            now = clock()
            if now >= job.deadline_at:
                results[index] = {"item": job.item, "failed": True, "ansible_job_id": job.jid,
                                  "timedout": {"period": job.item.get("wait_s")},
                                  "msg": "no answer from the device within {} s".format(
                                      job.item.get("wait_s"))}
                continue
            if job.printed_at is None or now - job.printed_at >= PROGRESS_EVERY_S:
                job.printed_at = now
                say("  building  {}  {}  {}{}".format(
                    host, job.label, format_duration(int(now - job.since)),
                    "" if answer is not None else "  (no answer from the device)"))
        if len(results) < len(jobs):
            sleep(poll_s)
    return [results[index] for index in range(len(jobs))]


def wait_results(started: list[dict[str, Any]], wait: dict[str, Any]) -> list[dict[str, Any]]:
    """The processes' results: the wait's, or, when the wait itself was cut short (its task's
    timeout: a poll hung), every started process given up as timed out."""
    if isinstance(wait.get("results"), list):
        return list(wait["results"])
    if not wait.get("timedout"):
        return []
    return [dict(result, failed=True, timedout=wait["timedout"],
                 msg="no answer from the device within {} s".format(
                     (result.get("item") or {}).get("wait_s")))
            for result in started if not result.get("skipped")]
