"""The run's summary: one row per host and model (the store's report: engine_store_report.py)."""

import os
import re
import sys

# plugins/filter is on the filter path, not on sys.path: reach the planning helpers by path.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from engine_plan import already_done, host_facts, store_has  # noqa: E402

FAILED = "failed"
# The command module's "delta": H:MM:SS.ffffff
DELTA = re.compile(r"^(\d+):(\d\d):(\d\d(?:\.\d+)?)$")


def readable_delta(delta):
    """0:00:07.703662 -> 7.7 s, 0:12:34.5 -> 12m34s, 1:02:05 -> 1h02m05s (else as given)."""
    match = DELTA.match(str(delta))
    if not match:
        return str(delta)
    hours, minutes, seconds = int(match.group(1)), int(match.group(2)), float(match.group(3))
    if hours:
        return "{}h{:02d}m{:02d}s".format(hours, minutes, int(seconds))
    if minutes:
        return "{}m{:02d}s".format(minutes, int(seconds))
    return "{:.1f} s".format(seconds)


def _row(host, model, platform_id, result):
    """One summary row from ``result`` = (status, detail[, host_left]). ``host_left``: the
    detail only says that the host dropped out (the callback, which saw why, replaces it
    with the host's unreachable or failure message)."""
    status, detail = result[0], result[1]
    return {"host": host, "model": model, "platform_id": platform_id, "status": status,
            "detail": detail or "", "host_left": len(result) > 2 and result[2]}


def _collector_of(context, platform_id, model):
    """The host that brought (platform_id, model) into the store in this run, if any."""
    for host in context["hosts"]:
        plan_host = context["plan_hosts"].get(host) or {}
        if plan_host.get("platform_id") == platform_id and model in context["collected"][host]:
            return host
    return None


def _failed_peer(context, platform_id, model):
    """A host of ``platform_id`` whose build of ``model`` failed in this run, if any."""
    for host in context["hosts"]:
        outcome = context["outcomes"][host].get(model)
        if outcome and outcome["status"] == FAILED and outcome["platform_id"] == platform_id:
            return host
    return None


def _planned(entry, scope):
    """(status, detail) of a plan entry before anything ran (check mode)."""
    if entry["unsupported"]:
        return FAILED, entry["unsupported"]
    if already_done(entry, scope):
        return "cached", "in store"
    if entry["on_device"]:
        return "would collect", "engine already on the device"
    if scope == "platform" and entry["rank"] > 0:
        return "fallback", "builds if #{} fails".format(entry["rank"])
    return "would build", ""


def _this_run(host, model, context):
    """(status, detail) from what this host did with the model in this run, or None."""
    outcome = context["outcomes"][host].get(model)
    if not outcome:
        return None
    if outcome["status"] == FAILED:
        return FAILED, outcome["reason"]
    if model not in context["collected"][host]:
        return FAILED, "engine built and verified but not brought into the store"
    status = "built" if outcome["status"] == "built" else "collected"
    return status, "in {}".format(readable_delta(outcome["elapsed"])) if outcome.get(
        "elapsed") else ""


def _from_elsewhere(host, model, platform_id, entry, context):
    """(status, detail[, host_left]) of a model this host did not handle in this run."""
    if already_done(entry, context["scope"]):
        return "cached", "in store"
    if context["scope"] == "platform" and store_has(
        context["store_dir"], platform_id, model, entry["build_key"]
    ):
        builder = _collector_of(context, platform_id, model)
        return "shared", "built by {}".format(builder or "?")
    if host not in context["active"]:
        return FAILED, "host left the run before building (unreachable or failed)", True
    peer = _failed_peer(context, platform_id, model)
    if peer is not None:
        return FAILED, "not built: it failed on {} (same platform)".format(peer)
    return FAILED, "not built: no device of platform {} succeeded".format(platform_id)


def engine_summary_rows(plan, hostvars, hosts, active, check_mode=False):
    """One row per planned (host, model): built / collected / cached / shared / failed."""
    hosts = list(hosts)
    # Nothing ran on a device in check mode or when the plan left nothing to do (no round),
    # so no host's variables need reading; otherwise each host is read once (each
    # hostvars[host] computes all of its variables).
    ran = not check_mode and plan.get("pending", 1) > 0

    def this_run(name):
        return host_facts(hostvars, hosts, name, {}) if ran else {host: {} for host in hosts}

    context = {"hosts": hosts, "active": set(active), "plan_hosts": plan["hosts"],
               "scope": plan["scope"], "store_dir": plan["store_dir"],
               "outcomes": this_run("engine_build_outcomes"),
               "collected": this_run("engine_collect_outcomes")}
    rows = []
    for host in sorted(plan["hosts"]):
        host_plan = plan["hosts"][host]
        for model, entry in sorted(host_plan["models"].items()):
            platform_id = host_plan["platform_id"]
            if check_mode or entry["unsupported"]:
                result = _planned(entry, plan["scope"])
            else:
                result = _this_run(host, model, context) or _from_elsewhere(
                    host, model, platform_id, entry, context)
            rows.append(_row(host, model, platform_id, result))
    return rows


class FilterModule:
    def filters(self):
        return {
            "engine_summary_rows": engine_summary_rows,
        }
