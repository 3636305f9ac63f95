"""The run's summary: one row per host and model (built, collected, cached, shared, failed)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import plan as steps
from .durations import delta_seconds, format_duration
from .plan import already_done

# A row's status (the summary, attempts.json, the reports).
FAILED = "failed"
BUILT, COLLECTED, CACHED, SHARED = "built", "collected", "cached", "shared"
SUCCESS = (BUILT, COLLECTED, CACHED, SHARED)
# A row's (status, detail), with True third when the host left the run.
Status = tuple[str, str] | tuple[str, str, bool]


def readable_delta(delta: object) -> str:
    """0:00:07.703662 -> 7.7 s, 0:12:34.5 -> 12m 34s, 1:02:05 -> 1h 02m 05s (else as given):
    the tool's one duration format (controller/durations.py)."""
    seconds = delta_seconds(delta)
    return str(delta) if seconds is None else format_duration(seconds)


def _planned(entry: dict[str, Any], scope: str) -> Status:
    """(status, detail) of a plan entry before anything ran (check mode): the plan's step
    (controller/plan.py's planned_step). A confirmation is of an engine in the store."""
    step = steps.planned_step(entry, scope)
    if step == steps.REFUSED:
        return FAILED, entry["refused"]
    if step in (steps.CONFIRM, steps.CACHED):
        return CACHED, "in store"
    corrupt = "store entry corrupt, " if entry["store_problem"] else ""
    if step == steps.COLLECT:
        return "would collect", corrupt + "engine already on the device"
    if step == steps.FALLBACK:
        return "fallback", "builds if #{} fails".format(entry["rank"])
    return "would build", corrupt.rstrip(", ")


class RunFacts:
    """What the hosts did in this run (their outcome and collect facts)."""

    def __init__(self, outcomes: dict[str, dict[str, dict[str, Any]]],
                 collected: dict[str, dict[str, str]], active: set[str]) -> None:
        self.outcomes = outcomes      # host -> model -> outcome
        self.collected = collected    # host -> model -> store path
        self.active = active          # hosts still in the play

    def collector_of(self, build_key: str, plan: dict[str, Any]) -> str | None:
        for host, models in self.collected.items():
            for model in models or {}:
                entry = plan["hosts"].get(host, {}).get("models", {}).get(model)
                if entry and entry["build_key"] == build_key:
                    return host
        return None

    def failed_peer(self, build_key: str) -> str | None:
        for host, outcomes in self.outcomes.items():
            for outcome in (outcomes or {}).values():
                if outcome.get("status") == FAILED and outcome.get("build_key") == build_key:
                    return host
        return None


def _this_run(host: str, model: str, facts: RunFacts) -> Status | None:
    outcome = (facts.outcomes.get(host) or {}).get(model)
    if not outcome:
        return None
    if outcome["status"] == FAILED:
        return FAILED, "{} ({})".format(outcome["reason"], outcome["kind"])
    if model not in (facts.collected.get(host) or {}):
        if host not in facts.active:  # the host failed in the collect: the callback says why
            return FAILED, "built and verified, but not brought into the store", True
        return FAILED, "built and verified, but not brought into the store (see the " \
                       "collect step's error above)"
    if (outcome.get("details") or {}).get("confirms_stored_engine"):
        return SHARED, "verified here, a second device of its platform, before it was shared"
    status = BUILT if outcome["status"] == BUILT else COLLECTED
    elapsed = outcome.get("elapsed")
    # "device run": the whole device command (conversion, build, verify), not TensorRT's
    # build alone, which the report shows as "TensorRT build" (controller/report_md.py).
    return status, "device run {}".format(readable_delta(elapsed)) if elapsed else ""


def _from_elsewhere(host: str, entry: dict[str, Any], scope: str, facts: RunFacts,
                    plan: dict[str, Any], *, in_store: Callable[[str], bool]) -> Status:
    if already_done(entry, scope):
        return CACHED, "in store"
    if scope == "platform" and in_store(entry["build_key"]):
        return SHARED, "built by {}".format(facts.collector_of(entry["build_key"], plan)
                                              or "an earlier run")
    if host not in facts.active:
        return FAILED, "host left the run before building (unreachable or failed)", True
    peer = facts.failed_peer(entry["build_key"])
    if peer is not None:
        return FAILED, "not built: it failed on {} (same build key)".format(peer)
    return FAILED, "not built: no device with this build key succeeded"


def summary_rows(plan: dict[str, Any], facts: RunFacts | None, in_store: Callable[[str], bool]
                 ) -> list[dict[str, Any]]:
    """One row per planned (host, model). ``facts`` None: nothing ran (check mode, no-op).
    ``in_store(build_key)``: whether the store holds the key now."""
    rows = []
    for host in sorted(plan["hosts"]):
        host_plan = plan["hosts"][host]
        for model, entry in sorted(host_plan["models"].items()):
            if facts is None or entry["refused"]:
                result = _planned(entry, host_plan["scope"])
            else:
                result = _this_run(host, model, facts) or _from_elsewhere(
                    host, entry, host_plan["scope"], facts, plan, in_store=in_store)
            rows.append({"host": host, "model": model, "platform_id": host_plan["platform_id"],
                         "variant": entry["variant"], "status": result[0],
                         "detail": result[1] or "", "host_left": len(result) > 2})
    return rows
