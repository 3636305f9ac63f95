"""deploy_engines.yml's record: the outcome of every planned host and model, the summary
rows (for the engine_summary callback) and <store>/deployments.json (under the store's lock).

Outcomes come from what each host registered in roles/engine_deploy (the plan, the switch,
the restart, the health check and the automatic rollback); a host of the batch that is no
longer active dropped out (unreachable or failed) in the middle of its deploy.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .report import write_reports
from .store import DEPLOYMENTS_NAME as RECORD_NAME
from .store import EngineStore, write_json_atomic

# Outcomes that mean "this device runs the engine it should".
GOOD = ("deployed", "up to date", "rolled back")
# What check mode reports for a device that a real run would change (not a failure).
CHECK_MODE = ("would deploy", "would roll back")
# Outcomes that count as a failed device for the staged rollout (max_fail_percentage).
STOPS_ROLLOUT = ("failed", "health rolled back", "unreachable")


def utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _by_item(registered: object) -> dict[str, dict[str, Any]]:
    """{model: result} of a registered loop over models (item = model name)."""
    if not isinstance(registered, dict):
        return {}
    return {r["item"]: r for r in registered.get("results") or []
            if isinstance(r, dict) and "item" in r and not r.get("skipped")}


def _health_failure(host_vars: Mapping[str, Any]) -> str | None:
    """Why the restart or health check failed on this host, or None (or not run)."""
    for name in ("engine_deploy_restarted_unit", "engine_deploy_restarted_command"):
        result = host_vars.get(name)
        if isinstance(result, dict) and result.get("failed") and not result.get("skipped"):
            return "restart failed: {}".format(_one_line(result.get("msg") or result.get(
                "stderr")))
    for name in ("engine_deploy_health_command", "engine_deploy_health_url"):
        result = host_vars.get(name)
        if not isinstance(result, dict) or result.get("skipped") or not result:
            continue
        if result.get("failed") or result.get("rc", 0) != 0:
            detail = result.get("stderr") or result.get("msg") or result.get("stdout")
            return "health check failed after {} attempt(s): {}".format(
                result.get("attempts", 1), _one_line(detail))
    return None


def _one_line(text: object, limit: int = 200) -> str:
    text = " ".join(str(text or "no output").split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def model_outcome(item: dict[str, Any], switch: dict[str, Any] | None,
                  undo: dict[str, Any] | None, health_failure: str | None, *,
                  check_mode: bool = False, error: object = None) -> dict[str, Any]:
    """{status, detail, version, build_key, platform_id, health} of one host and model."""
    kept = {"version": item.get("from_version"), "build_key": item.get("from_build_key"),
            "platform_id": item.get("from_platform_id"), "health": "not checked"}
    if item["action"] == "refused":
        return dict(kept, status="refused", detail=item["reason"])
    if item["action"] == "up_to_date":
        return dict(kept, status="up to date", detail=item["version"])
    change = "{} -> {}".format(item.get("from_version") or "nothing", item["version"])
    if check_mode:
        status = "would roll back" if item["action"] == "rollback" else "would deploy"
        return dict(kept, status=status, detail=change)
    if switch is None:
        return dict(kept, status="failed", detail="not switched ({} planned): {}; current "
                    "unchanged".format(change, _one_line(error or "the host stopped before "
                                                         "the switch", 400)))
    if switch.get("failed"):
        return dict(kept, status="failed", detail="{}; current unchanged".format(
            _one_line(switch.get("msg"), 400)))
    return switched_outcome(item, switch, undo, health_failure, kept)


def switched_outcome(item: dict[str, Any], switch: dict[str, Any], undo: dict[str, Any] | None,
                     health_failure: str | None, kept: dict[str, Any]) -> dict[str, Any]:
    """The outcome of a model whose engine_deploy task succeeded (then restart and health)."""
    new = {"version": item["version"], "build_key": item.get("build_key"),
           "platform_id": item["platform_id"]}
    change = "{} -> {}".format(item.get("from_version") or "nothing", item["version"])
    if not switch.get("changed"):
        return dict(new, status="up to date", detail=item["version"], health="not checked")
    if health_failure is None:
        status = "rolled back" if item["action"] == "rollback" else "deployed"
        return dict(new, status=status, detail=change, health="ok")
    if undo is not None and not undo.get("failed") and undo.get("changed"):
        return dict(kept, status="health rolled back", detail="{} ({}); switched back to {}"
                    .format(health_failure, change, undo.get("version")),
                    health=health_failure)
    reason = _one_line(undo.get("msg")) if undo else "no rollback ran"
    return dict(new, status="failed", detail="{} ({}); the rollback failed too: {}".format(
        health_failure, change, reason), health=health_failure)


def staged_outcomes(plan: dict[str, Any], host_vars: Mapping[str, Any]
                    ) -> dict[str, dict[str, dict[str, Any]]]:
    """{model: {platform_id: {variant, engine_sha256, status, detail}}}: what is staged on
    the host for each platform (the stage step's outcome where it ran, else the plan's view:
    nothing had to change). Status: current, staged, up to date, not staged, refused."""
    staged = {model: {platform: dict(view) for platform, view in targets.items()}
              for model, targets in (plan.get("stage_view") or {}).items()}
    ran = host_vars.get("engine_deploy_staged")
    if not isinstance(ran, dict) or ran.get("skipped"):
        return staged
    if ran.get("failed") and not ran.get("staged"):
        for targets in staged.values():
            for view in targets.values():
                if view["status"] in ("current", "staged"):
                    view.update(status="refused", detail="the stage step failed: {}".format(
                        _one_line(ran.get("msg"))))
        return staged
    for outcome in ran.get("staged") or []:
        if not isinstance(outcome, dict) or outcome.get("status") == "removed":
            continue
        targets = staged.setdefault(str(outcome.get("model")), {})
        view = targets.setdefault(str(outcome.get("platform_id")), {})
        view.update({key: outcome.get(key) for key in ("status", "detail")})
        if outcome.get("status") != "refused":
            view.update(variant=outcome.get("variant"), engine_sha256=outcome.get(
                "engine_sha256"))
    return staged


def host_outcomes(plan: dict[str, Any], host_vars: Mapping[str, Any], check_mode: bool
                  ) -> dict[str, dict[str, Any]]:
    switches = _by_item(host_vars.get("engine_deploy_switch"))
    undos = _by_item(host_vars.get("engine_deploy_undo"))
    health_failure = _health_failure(host_vars)
    error = host_vars.get("engine_deploy_error")
    staged = staged_outcomes(plan, host_vars)
    return {model: dict(model_outcome(item, switches.get(model), undos.get(model),
                                      health_failure, check_mode=check_mode, error=error),
                        staged=staged.get(model) or {})
            for model, item in sorted(plan["models"].items())}


def write_record(store_dir: str, outcomes: dict[str, dict[str, dict[str, Any]]], when: str
                 ) -> Path:
    """Merge this batch's outcomes into deployments.json, atomically, under the store lock.

    deployments.json = {"format": 1, "hosts": {host: {model: {version, build_key,
    platform_id, when, health, status, detail, staged, changed_utc}}}}; ``staged``:
    staged_outcomes' {platform_id: {variant, engine_sha256, status, detail}};
    ``changed_utc`` is when ``current`` last changed (kept from the earlier record when it
    did not)."""
    store = EngineStore(store_dir)
    path = store.root / RECORD_NAME
    with store.locked():
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            record = {}  # none yet, or damaged: rewritten from this run on
        if not isinstance(record, dict) or not isinstance(record.get("hosts"), dict):
            record = {"format": 1, "hosts": {}}
        for host, models in outcomes.items():
            host_record = record["hosts"].setdefault(host, {})
            for model, outcome in models.items():
                earlier = host_record.get(model) or {}
                changed = outcome["status"] in ("deployed", "rolled back")
                same = not changed and outcome["version"] == earlier.get("version")
                health = earlier.get("health") if same and outcome["health"] == "not checked" \
                    else outcome["health"]
                host_record[model] = dict(
                    {key: outcome[key] for key in ("version", "build_key", "platform_id",
                                                   "status", "detail")},
                    health=health or outcome["health"],
                    staged=outcome.get("staged") or {},
                    when=when,
                    changed_utc=when if changed or outcome["version"] != earlier.get(
                        "version") else earlier.get("changed_utc"))
        write_json_atomic(path, record)
    return path


def summary_rows(outcomes_by_host: dict[str, dict[str, dict[str, Any]]],
                 plans: dict[str, dict[str, Any]], pending_hosts: list[str], stopped: str
                 ) -> list[dict[str, Any]]:
    rows = []
    for host in sorted(outcomes_by_host):
        for model, outcome in outcomes_by_host[host].items():
            rows.append({"host": host, "model": model,
                         "platform_id": plans[host]["platform_id"],
                         "status": outcome["status"], "detail": outcome["detail"],
                         "host_left": outcome.get("host_left", False)})
    for host in sorted(pending_hosts):
        detail = ("not touched: the rollout stopped after {}".format(stopped) if stopped
                  else "waits for a later batch")
        rows.append({"host": host, "model": "-", "status": "not deployed", "detail": detail})
    return rows


def record_batch(hosts: list[str], batch: set[str], active: set[str], hostvars: Mapping[str, Any],
                 *, store_dir: str, max_fail_percentage: int, check_mode: bool
                 ) -> dict[str, Any]:
    """The batch's outcomes, rows and record (what the engine_deploy_record action returns)."""
    result: dict[str, Any] = {}
    plans: dict[str, dict[str, Any]] = {}
    outcomes: dict[str, dict[str, dict[str, Any]]] = {}
    this_batch: dict[str, dict[str, dict[str, Any]]] = {}
    pending: list[str] = []
    for host in hosts:
        host_vars = hostvars[host]
        if host not in batch and host_vars.get("engine_deploy_batch") is None:
            pending.append(host)  # a later batch: no task ran for it yet
            continue
        planned = host_vars.get("engine_deploy_planned") or {}
        plan = (planned.get("plan") or {}).get("hosts", {}).get(host)
        if plan is None:
            continue  # failed or unreachable before its plan: the callback reports it
        plans[host] = plan
        if host not in batch:
            earlier = host_vars.get("engine_deploy_recorded") or {}
            outcomes[host] = (earlier.get("outcomes") or {}).get(host) or {}
            continue
        host_result = host_outcomes(plan, host_vars, check_mode)
        # A device without work (or in check mode) ended its play on purpose.
        if host not in active and plan["work"] and not check_mode:
            for outcome in host_result.values():
                if outcome["status"] not in ("refused", "up to date"):
                    outcome.update(status="unreachable", host_left=True)
        this_batch[host] = outcomes[host] = host_result
    bad = sorted(h for h in batch if h not in plans or any(
        o["status"] in STOPS_ROLLOUT for o in this_batch.get(h, {}).values()))
    limit = max_fail_percentage
    stopped = ""
    if pending and bad and 100.0 * len(bad) / len(batch) > limit:
        stopped = "{} of the {} host(s) of batch {} failed ({})".format(
            len(bad), len(batch), ", ".join(sorted(batch)), ", ".join(bad))
    if not check_mode and this_batch:
        result["record"] = str(write_record(store_dir, this_batch, utc_now()))
        result["reports"] = write_reports(EngineStore(store_dir))  # the fleet view
    rows = summary_rows(outcomes, plans, pending, stopped)
    result.update(
        changed=False, rows=rows, outcomes=this_batch, stop_hosts=bad,
        not_ok=sorted(h for h in batch if h not in this_batch or any(
            o["status"] not in GOOD + CHECK_MODE for o in this_batch[h].values())),
        msg=["{host} {model}: {status} {detail}".format(**r) for r in rows
             if r.get("host") in this_batch])
    return result
