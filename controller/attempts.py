"""What the runs asked for and what failed, per platform and model: the store's attempts.json.

index.json knows only the engines the store holds. The report's platform x model grid also
shows what a run selected but could not build (refused in the plan, failed on the device,
not brought into the store) and why. Each run that touches devices rewrites the record from
its summary rows: a failure is kept until a later run brings that engine into the store, and
the platforms' selections are those of the latest run that planned them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .store import ATTEMPTS_NAME
from .summary import FAILED, SUCCESS

ATTEMPTS_FORMAT = 1
# Rows that only repeat another host's failure of the same build key ("not built: it failed
# on X"): the grid names the failure itself.
SECONDHAND = "not built:"


def read_attempts(store_root: Path) -> dict[str, Any]:
    """The record, or an empty one (no run yet, or a damaged file the next run rewrites)."""
    try:
        data = json.loads((Path(store_root) / ATTEMPTS_NAME).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) and data.get("format") == ATTEMPTS_FORMAT else {}


def _failure(row: dict[str, Any], entry: dict[str, Any], when: str) -> dict[str, Any]:
    return {"variant": row["variant"], "status": "refused" if entry["refused"] else FAILED,
            "reason": row["detail"], "host": row["host"], "since_utc": when}


def _same_failure(one: dict[str, Any] | None, other: dict[str, Any]) -> bool:
    if not one:
        return False
    return all(one.get(k) == other[k] for k in ("status", "reason", "host"))


def _this_run(plan: dict[str, Any], rows: list[dict[str, Any]], when: str
              ) -> tuple[dict[str, dict[str, dict[str, Any]]], dict[str, set[str]]]:
    """(platform_id -> slot -> failure, platform_id -> slots that succeeded) of a run."""
    failed: dict[str, dict[str, dict[str, Any]]] = {}
    succeeded: dict[str, set[str]] = {}
    for row in sorted(rows, key=lambda r: (r["host"], r["model"])):
        host_plan = plan["hosts"].get(row["host"])
        if not host_plan or not host_plan.get("platform_id"):
            continue
        platform_id = host_plan["platform_id"]
        slot = "{}/{}".format(row["model"], row["variant"])
        if row["status"] in SUCCESS:
            succeeded.setdefault(platform_id, set()).add(slot)
        elif row["status"] == FAILED:
            known = failed.setdefault(platform_id, {}).get(slot)
            if known is None or (known["reason"].startswith(SECONDHAND)
                                 and not row["detail"].startswith(SECONDHAND)):
                failed[platform_id][slot] = _failure(
                    row, host_plan["models"][row["model"]], when)
    return failed, succeeded


def updated_attempts(previous: dict[str, Any], plan: dict[str, Any], rows: list[dict[str, Any]],
                     when: str) -> dict[str, Any]:
    """The record after a run: ``rows`` are its summary rows (controller/summary.py), ``when``
    its UTC time (ISO 8601). A failure seen again keeps the time it was first seen, so a
    rerun that changes nothing leaves the record as it was."""
    platforms = {pid: dict(body) for pid, body in (previous.get("platforms") or {}).items()
                 if isinstance(body, dict)}
    planned: dict[str, set[str]] = {}
    for host_plan in plan["hosts"].values():
        if host_plan.get("platform_id"):
            planned.setdefault(host_plan["platform_id"], set()).update(host_plan["models"])
    failed, succeeded = _this_run(plan, rows, when)
    for platform_id, models in planned.items():
        body = platforms.setdefault(platform_id, {})
        body["selected"] = sorted(models)
        failures = dict(body.get("failures") or {})
        done = succeeded.get(platform_id, set())
        for slot in done:
            failures.pop(slot, None)
        for slot, failure in failed.get(platform_id, {}).items():
            # A failure another device of the platform made good in the same run (the next
            # device built it) is not a failure of the grid's cell.
            if slot not in done and not _same_failure(failures.get(slot), failure):
                failures[slot] = failure
        body["failures"] = failures
    return {"format": ATTEMPTS_FORMAT, "platforms": platforms,
            "hosts_without_platform": dict(plan.get("refused_hosts") or {})}
