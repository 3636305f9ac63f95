"""Controller-side decisions of a run: build keys, store lookups, who builds what.

The build key comes from the repository's own ``builder.buildkey`` (the device computes the
same key into each manifest), so the controller and the devices cannot disagree on it.
"""

import glob
import hashlib
import json
import os
import sys

from ansible.errors import AnsibleFilterError

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

from builder import __version__ as BUILDER_VERSION  # noqa: E402  (needs REPO_ROOT on sys.path)
from builder import buildkey  # noqa: E402

SCOPES = ("platform", "device")
# The build options of a host's selection that change the engine (build_options below).
OPTION_KEYS = ("precision", "workspace_mib", "max_batch", "dla_core")
# A failed build is worth retrying on another device of the platform unless the builder said
# the input itself is wrong (exit 2): that fails the same way everywhere.
USER_ERROR_RC = 2


def engine_build_key(spec, platform_id, options):
    """Build key of one model on one platform with one host's build options.

    ``spec``: a preflight_catalog entry (``builder check --json`` spec whose ``sha256`` is the
    graph's checksum, computed on the controller when the catalog has no pin).
    """
    return buildkey.build_key(platform_id, spec["sha256"], spec, options, BUILDER_VERSION)


def builder_source_digest():
    """sha256 over the builder's sources: names the wheel, so an edit without a version bump
    still gets a fresh wheel."""
    digest = hashlib.sha256()
    paths = sorted(glob.glob(os.path.join(REPO_ROOT, "builder", "**", "*.py"), recursive=True))
    for path in paths + [os.path.join(REPO_ROOT, "pyproject.toml")]:
        digest.update(os.path.relpath(path, REPO_ROOT).encode("utf-8") + b"\0")
        with open(path, "rb") as handle:
            digest.update(handle.read() + b"\0")
    return digest.hexdigest()


def engine_store_manifest(store_dir, platform_id, model):
    """The store's manifest of (platform_id, model) as a dict, or None when absent."""
    path = os.path.join(store_dir, platform_id, model, "manifest.json")
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError:
        return None
    except ValueError as error:
        raise AnsibleFilterError(
            "engine store manifest {} is not valid JSON ({}): delete that model's directory "
            "so the next run rebuilds it".format(path, error)
        ) from error


def store_has(store_dir, platform_id, model, key):
    manifest = engine_store_manifest(store_dir, platform_id, model)
    return manifest is not None and manifest.get("build_key") == key


def _device_build_key(request, model, engine_name):
    """Build key of the engine already in the host's work dir for ``model``, or None."""
    state = (request.get("device_models") or {}).get(model) or {}
    if engine_name not in (state.get("engines") or {}):
        return None
    return (state.get("manifest") or {}).get("build_key")


def _optional_int(value, name, host):
    if value in (None, "", "None"):
        return None
    try:
        return int(value)
    except (TypeError, ValueError) as error:
        raise AnsibleFilterError(
            "host {}: {} is {!r}, expected a whole number (group_vars or host_vars)".format(
                host, name, value
            )
        ) from error


def build_options(request):
    """The host's engine-affecting options with their types restored (Jinja gives strings)."""
    raw = request["options"]
    host = request["host"]
    return {
        "precision": str(raw["precision"]),
        "workspace_mib": _optional_int(raw["workspace_mib"], "engine_workspace_mib", host),
        "max_batch": _optional_int(raw["max_batch"], "engine_max_batch", host),
        "dla_core": _optional_int(raw.get("dla_core"), "engine_dla_core", host),
    }


def engine_plan_requests(selections, hostvars, hosts):
    """One planning request per host, from the preflight's checked selection of each host
    (``preflight_selections``: models and build options) and its jetson_facts facts.

    Built on the controller in one pass over the hosts, so that planning costs no task per
    host (each task per host is a worker process on the controller).
    """
    requests = []
    for host in hosts:
        facts = host_fact(hostvars, host, "ansible_facts", {})
        platform = facts.get("jetson")
        if platform is None:
            continue  # the host failed before its facts (it is reported as such)
        selection = selections[host]
        requests.append({
            "host": host,
            "platform_id": platform["platform_id"],
            "models": list(selection["models"]),
            "options": {key: selection.get(key) for key in OPTION_KEYS},
            "device_models": (facts.get("jetson_state") or {}).get("models") or {},
            "unsupported": "" if platform.get("supported", True)
            else platform.get("support_reason") or "",
        })
    return requests


def engine_plan(requests, catalog, store_dir, scope):
    """Plan a run from every active host's request.

    requests: list of {"host", "platform_id", "models", "options", "device_models",
      "unsupported"} (device_models: ``ansible_facts.jetson_state.models`` of the host;
      unsupported: why the builder cannot run on the platform, e.g. TensorRT 10 has no UFF).
    Returns {"scope", "rounds", "store_dir", "builder_version", "conflicts",
    "hosts": {host: {"platform_id", "options", "models": {model: entry}}}} where an entry is
    {"build_key", "engine", "cached", "on_device", "rank", "unsupported"}. ``rank`` is the
    host's place among the devices that may build this engine (platform scope: the hosts of
    the platform wanting the same key, those already holding the engine first, then by name;
    device scope: 0).
    Round r is built by the hosts of rank r, for what the store still lacks when it starts.
    """
    if scope not in SCOPES:
        raise AnsibleFilterError(
            "engine_build_scope is {!r}: use one of {}".format(scope, ", ".join(SCOPES))
        )
    hosts = {}
    groups = {}  # (platform_id, model) -> {build_key: [host, ...]}
    for request in requests:
        options = build_options(request)
        platform_id = request["platform_id"]
        entries = {}
        for model in request["models"]:
            if model not in catalog:
                raise AnsibleFilterError(
                    "host {}: model {!r} is not in the catalog".format(request["host"], model)
                )
            spec = catalog[model]
            key = engine_build_key(spec, platform_id, options)
            entries[model] = {
                "build_key": key,
                "engine": spec["engine"],
                "cached": store_has(store_dir, platform_id, model, key),
                "on_device": _device_build_key(request, model, spec["engine"]) == key,
                "rank": 0,
                "unsupported": request.get("unsupported") or None,
            }
            if entries[model]["unsupported"]:
                continue  # fails with the reason, no device builds it
            groups.setdefault((platform_id, model), {}).setdefault(key, []).append(
                request["host"]
            )
        hosts[request["host"]] = {"platform_id": platform_id, "options": options, "models": entries}
    conflicts = []
    rounds = 1 if hosts else 0
    for (platform_id, model), by_key in sorted(groups.items()):
        if scope == "device":
            continue
        if len(by_key) > 1:
            conflicts.append(
                "model {} on platform {}: hosts {} ask for different build options, but in "
                "platform scope they share one engine. Give them the same engine_* options in "
                "group_vars, or set engine_build_scope: device".format(
                    model, platform_id, " / ".join(", ".join(sorted(h)) for h in by_key.values())
                )
            )
            continue
        (candidates,) = by_key.values()
        candidates.sort(key=lambda host: (not hosts[host]["models"][model]["on_device"], host))
        for rank, host in enumerate(candidates):
            hosts[host]["models"][model]["rank"] = rank
        rounds = max(rounds, len(candidates))
    return {
        "scope": scope,
        "rounds": rounds,
        "pending": _pending_entries(hosts, scope),
        "store_dir": store_dir,
        "builder_version": BUILDER_VERSION,
        "builder_digest": builder_source_digest(),
        "hosts": hosts,
        "conflicts": conflicts,
    }


def already_done(entry, scope):
    """A plan entry that needs nothing this run: its engine is in the store (device scope:
    in the store and on the device)."""
    return entry["cached"] and (scope == "platform" or entry["on_device"])


def _pending_entries(hosts, scope):
    """How many supported plan entries a build round would act on (not already_done).
    0 on a no-op rerun: no round runs at all."""
    pending = 0
    for host_plan in hosts.values():
        for entry in host_plan["models"].values():
            pending += not (entry["unsupported"] or already_done(entry, scope))
    return pending


def host_fact(hostvars, host, name, default=None):
    """A fact of another host, or ``default`` when that host never set it."""
    value = hostvars[host].get(name)
    return default if value is None else value


def host_facts(hostvars, hosts, name, default=None):
    """{host: fact} for every host. Each ``hostvars[host]`` computes all of that host's
    variables, so loops over hosts read each host once, never once per host and model."""
    return {host: host_fact(hostvars, host, name, default) for host in hosts}


def _user_errors(outcomes_by_host):
    """{(platform_id, model)} that a device failed with a user error (exit 2) in this run."""
    return {
        (outcome.get("platform_id"), model)
        for outcomes in outcomes_by_host.values()
        for model, outcome in outcomes.items()
        if outcome.get("rc") == USER_ERROR_RC
    }


def engine_round_work(plan, host, round_index, user_errors):
    """What ``host`` does in round ``round_index``: {"build": [models], "collect": [models]}.

    collect-only: the device already holds the engine (a previous run built it and could not
    bring it home). Platform scope skips what the store gained in earlier rounds and what a
    device of the platform already failed on with a user error (``user_errors``, exit 2: the
    input is wrong, another device would fail the same way).
    """
    work = {"build": [], "collect": []}
    host_plan = plan["hosts"].get(host)
    if host_plan is None:
        return work
    platform_id = host_plan["platform_id"]
    for model, entry in sorted(host_plan["models"].items()):
        if entry["rank"] != round_index or entry["unsupported"]:
            continue
        if plan["scope"] == "platform":
            if store_has(plan["store_dir"], platform_id, model, entry["build_key"]):
                continue
            if (platform_id, model) in user_errors:
                continue
        elif already_done(entry, plan["scope"]):
            continue
        work["collect" if entry["on_device"] else "build"].append(model)
    return work


def engine_round_works(plan, round_index, hostvars, hosts):
    """{host: {"build", "collect"}} of the hosts that have work in round ``round_index``
    (every other host sits the round out). Computed once per round on the controller;
    ``hosts``: the play's hosts, whose ``engine_build_outcomes`` of earlier rounds count."""
    round_index = int(round_index)  # a Jinja variable arrives as text
    user_errors = _user_errors(host_facts(hostvars, hosts, "engine_build_outcomes", {}))
    works = {}
    for host in hosts:
        work = engine_round_work(plan, host, round_index, user_errors)
        if work["build"] or work["collect"]:
            works[host] = work
    return works


def engine_plan_lines(plan):
    """Human-readable plan, one line per host and model (printed in --check and normal runs)."""
    lines = []
    for host, host_plan in sorted(plan["hosts"].items()):
        for model, entry in sorted(host_plan["models"].items()):
            if entry["unsupported"]:
                action = "cannot build: {}".format(entry["unsupported"])
            elif already_done(entry, plan["scope"]):
                action = "cached in store"
            elif entry["on_device"]:
                action = "on device, collect only"
            elif plan["scope"] == "platform" and entry["rank"] > 0:
                action = "fallback builder #{} (if the earlier ones fail)".format(entry["rank"])
            else:
                action = "build"
            lines.append(
                "{:<20} {:<28} {:<40} {} (key {})".format(
                    host, model, host_plan["platform_id"], action, entry["build_key"][:12]
                )
            )
    return lines


class FilterModule:
    def filters(self):
        return {
            "engine_build_key": engine_build_key,
            "engine_store_manifest": engine_store_manifest,
            "engine_plan_requests": engine_plan_requests,
            "engine_plan": engine_plan,
            "engine_round_works": engine_round_works,
            "engine_plan_lines": engine_plan_lines,
        }
