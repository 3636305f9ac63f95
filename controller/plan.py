"""Who builds what: per host and model, the build key, the store's state, the device's rank.

The host's selection is the unit: each host's models get build keys from that host's own
options. In platform scope the hosts whose build keys are equal (same platform_id, same engine
options) share one engine: the first of them (holding it already, then by name) builds in
round 0, the next takes over in round 1 if that fails, and so on. In device scope a host
builds its own engine (the store still keeps one entry per build key). A stored engine counts
as cached only after it is verified against its manifest; a corrupt one is quarantined and
rebuilt in the same run.
"""

from __future__ import annotations

import os
from collections.abc import Collection
from dataclasses import asdict, dataclass, field
from typing import Any

from builder import __version__ as BUILDER_VERSION
from builder.platform import detect

from . import device as device_checks
from . import onnx_exports, pin_sets
from .builder_wheel import builder_source_digest
from .device import DevicePlatform
from .keys import engine_build_key
from .selection import HostSelection
from .store import EngineStore, StoreEntry


@dataclass
class PlanEntry:
    model: str
    build_key: str
    variant: str
    engine: str
    cached: bool
    on_device: bool
    rank: int = 0
    refused: str | None = None       # why this host cannot build it (options, platform)
    store_problem: str | None = None  # the stored entry was corrupt (quarantined)
    engine_path: str | None = None   # uff | onnx: what the device builds from
    export_key: str | None = None    # onnx: the controller's export it is pushed
    onnx_precision: str | None = None  # onnx: the tensor types of that export (fp32 | fp16)
    # Platform scope: the stored engine was verified by its builder only, and this host is
    # the next of its platform to verify it before it is shared (round_work).
    confirm_due: bool = False


@dataclass
class HostPlan:
    host: str
    platform_id: str
    scope: str
    options: dict[str, Any]
    models: dict[str, PlanEntry] = field(default_factory=dict)
    # Work directories of models the host no longer selects: their graphs are removed.
    stale_work: list[str] = field(default_factory=list)
    build_processes: str = "per_device"  # or per_model (engine_build_processes)
    # Seconds one model's build may take before the device counts as hung (its builder is
    # stopped, or the controller stops waiting): controller/device_work.py.
    build_deadline_s: int = 0
    # Engine path (uff | onnx) -> the pinned environment this device gets for it ('' when
    # none: its builds are refused above); the round picks one (controller/device_work.py).
    pin_sets: dict[str, str] = field(default_factory=dict)
    # The swap file the environment sets up on this device (pin_sets.swap_mib_for; 0: none).
    swap_mib: int = 0


def already_done(entry: dict[str, Any], scope: str) -> bool:
    """Nothing to do this run: in the store (device scope: and on the device)."""
    return entry["cached"] and (scope == "platform" or entry["on_device"])


class StoreState:
    """Verified lookups of the store, once per build key per plan."""

    def __init__(self, store: EngineStore, repair: bool):
        self.store = store
        self.repair = repair
        self.known: dict[str, tuple[bool, str | None]] = {}

    def cached(self, key: str) -> tuple[bool, str | None]:
        if key not in self.known:
            entry = self.store.lookup(key)
            problem = self.store.verify(entry) if entry else None
            if entry is not None and problem and self.repair:
                where = self.store.quarantine(entry, problem)
                problem = "{}; moved to {}".format(problem, where)
            self.known[key] = (entry is not None and problem is None, problem)
        return self.known[key]


def _disk_refusal(device: DevicePlatform, selection: HostSelection, catalog: dict[str, Any],
                  state: StoreState) -> str | None:
    """The device's disk against the builds it may do (what is not cached or on it already)."""
    sizes = []
    for model in selection.models:
        spec = catalog[model]
        key = engine_build_key(spec, device.platform_id, selection.options)
        on_device = (device.work.get(model) or {}).get("engine_build_key") == key
        if not on_device and not (selection.scope == "platform" and state.cached(key)[0]):
            sizes.append(os.path.getsize(spec["graph"]))
    return device_checks.disk_problem(device, sizes)


def _longest_first(key: str, groups: dict[str, list[str]], hosts: dict[str, HostPlan],
                   catalog: dict[str, Any]) -> tuple[int, str, str]:
    """Sort key of a build: the largest graph (the longest build expected) first."""
    host = groups[key][0]
    model = next(m for m, e in hosts[host].models.items() if e.build_key == key)
    return (-os.path.getsize(catalog[model]["graph"]), model, key)


def make_plan(selections: dict[str, HostSelection], devices: dict[str, DevicePlatform],
              catalog: dict[str, Any], store: EngineStore, *, check_mode: bool,
              catalog_path: str = "the catalog",
              named_pin_sets: dict[str, dict[str, str]] | None = None) -> dict[str, Any]:
    """The plan of every host with facts (``devices``: host -> DevicePlatform).

    ``named_pin_sets``: host -> {engine path: the pin set its inventory names}; a path it
    does not name takes the pin-set table's for the device's L4T release."""
    state = StoreState(store, repair=not check_mode)
    hosts: dict[str, HostPlan] = {}
    groups: dict[str, list[str]] = {}  # build key -> platform-scope hosts that want it
    for host in sorted(devices):
        device, selection = devices[host], selections[host]
        refused = device_checks.platform_disagreement(selection, device) or \
            device_checks.option_problem(selection, device)
        named = (named_pin_sets or {}).get(host, {})
        if refused is None:
            refused = _disk_refusal(device, selection, catalog, state)
        host_plan = HostPlan(host, device.platform_id, selection.scope,
                             selection.options.as_dict(),
                             stale_work=sorted(set(device.work) - set(selection.models)),
                             build_processes=selection.build_processes,
                             build_deadline_s=selection.build_deadline_s
                             or detect.default_build_deadline_s(device.platform_id),
                             swap_mib=pin_sets.swap_mib_for(device.memory_mib, selection.swap_mib,
                                                            selection.swap_below_mib))
        for model in selection.models:
            spec = catalog[model]
            key = engine_build_key(spec, device.platform_id, selection.options)
            cached, problem = state.cached(key)
            work = device.work.get(model) or {}
            path, path_refused = onnx_exports.engine_path_of(spec, device.tensorrt,
                                                             catalog_path)
            precision = onnx_exports.onnx_precision(selection.options.precision,
                                                    device.tensorrt) if path == "onnx" else None
            variant = selection.options.variant_for(detect.strongly_typed(device.tensorrt))
            on_device = work.get("engine_build_key") == key
            # Checks the device would make only after the install: the options against the
            # engine path and, where it would build, a pinned environment for its JetPack.
            if path is not None:
                builds = not on_device and not (cached and selection.scope == "platform")
                path_refused = device_checks.engine_path_problem(selection, path) or (
                    pin_sets.pin_set_problem(pin_sets.the_table(), host, path, l4t=device.l4t,
                                             jetpack=device.jetpack, named=named.get(path, ""))
                    if builds else None)
            # It may install the builder's environment (to build, or to confirm a stored
            # engine): the pin sets it would get (the table is read only then).
            if path is not None and not on_device and not host_plan.pin_sets:
                host_plan.pin_sets = {p: pin_sets.chosen_pin_set(
                    pin_sets.the_table(), p, device.l4t, named.get(p, ""))
                    for p in pin_sets.VARIABLES}
            entry = PlanEntry(model, key, variant, spec["engine"], cached, on_device,
                              refused=refused or path_refused, store_problem=problem,
                              engine_path=path,
                              export_key=onnx_exports.export_key(spec, precision)
                              if precision is not None else None, onnx_precision=precision)
            host_plan.models[model] = entry
            if entry.refused is None and selection.scope == "platform":
                groups.setdefault(key, []).append(host)
        hosts[host] = host_plan
    rounds = 1 if hosts else 0
    first_builds: dict[str, int] = {}  # host -> builds it makes in round 0 so far
    for key in sorted(groups, key=lambda k: _longest_first(k, groups, hosts, catalog)):
        candidates = groups[key]
        model = next(m for m, e in hosts[candidates[0]].models.items() if e.build_key == key)
        # The device holding the engine already goes first; then the least loaded, so that
        # a platform's builds spread over its devices (one build at a time per device).
        def order(host: str, model: str = model) -> tuple[bool, int, str]:
            return (not hosts[host].models[model].on_device, first_builds.get(host, 0), host)

        candidates.sort(key=order)
        if not hosts[candidates[0]].models[model].cached:  # only builds to make count
            first_builds[candidates[0]] = first_builds.get(candidates[0], 0) + 1
        for rank, host in enumerate(candidates):
            hosts[host].models[model].rank = rank
        rounds = max(rounds, len(candidates))
        found = state.store.lookup(key) if hosts[candidates[0]].models[model].cached else None
        confirmer = next((h for h in candidates if confirmation_due(found, h)), None)
        if confirmer is not None:
            hosts[confirmer].models[model].confirm_due = True
    plan = {
        "rounds": rounds,
        "store_dir": str(store.root),
        "builder_version": BUILDER_VERSION,
        "builder_digest": builder_source_digest(),
        "hosts": {host: asdict(host_plan) for host, host_plan in hosts.items()},
        "notes": list(store.notes),
    }
    plan["pending"] = pending_entries(plan)
    plan["exports"] = needed_exports(plan)
    store.save_verified_stats() if not check_mode else None
    return plan


def confirmation_due(found: StoreEntry | None, host: str) -> bool:
    """Platform scope: ``host`` should verify the stored engine ``found`` before it becomes
    the platform's shared entry: another host built it and no second device verified it yet.
    A platform with one device never gets one (its builder's verify is all there is, and each
    device the deploy sends it to verifies it before switching to it)."""
    return (found is not None and bool(found.built_on) and found.built_on != host
            and not found.confirmed_by)


def refute_confirmations(store: EngineStore, host: str, confirm: list[str],
                         outcomes: dict[str, dict[str, Any]]) -> dict[str, str]:
    """Quarantine each stored engine ``host`` was to verify for its platform and could not
    (its verify failed): the next device of the build key then builds its own.
    {model: where the entry went}."""
    moved = {}
    for model in confirm:
        outcome = outcomes.get(model) or {}
        found = store.lookup(str(outcome.get("build_key")))
        if outcome.get("status") != "failed" or not confirmation_due(found, host):
            continue
        assert found is not None  # confirmation_due
        moved[model] = str(store.quarantine(found, (
            "built on {}, refused by {}, a second device of its platform, which verified it "
            "before it was shared: {}".format(found.built_on, host, outcome.get("reason")))))
    return moved


def needed_exports(plan: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """{export key: {"model", "precision"}} of the ONNX files this run's builds need from
    the controller (one model may need an fp32 and an fp16 one)."""
    return {entry["export_key"]: {"model": entry["model"], "precision": entry["onnx_precision"]}
            for host_plan in plan["hosts"].values() for entry in host_plan["models"].values()
            if entry["export_key"] and not entry["refused"]
            and not already_done(entry, host_plan["scope"]) and not entry["on_device"]}


def refuse_export(plan: dict[str, Any], key: str, reason: str) -> dict[str, Any]:
    """The plan with every pending entry of the ONNX export ``key`` refused for ``reason``."""
    for host_plan in plan["hosts"].values():
        for entry in host_plan["models"].values():
            if entry["export_key"] == key and not already_done(entry, host_plan["scope"]):
                entry["refused"] = reason
    plan["pending"] = pending_entries(plan)
    plan["exports"] = needed_exports(plan)
    return plan


def pending_entries(plan: dict[str, Any]) -> int:
    """How many entries a build round would act on; 0 on a no-op rerun (no round runs)."""
    return sum(bool(not entry["refused"] and (entry.get("confirm_due") or not already_done(
        entry, host_plan["scope"])))
               for host_plan in plan["hosts"].values()
               for entry in host_plan["models"].values()) + sum(
        len(host_plan["stale_work"]) for host_plan in plan["hosts"].values())


def round_work(plan: dict[str, Any], host: str, round_index: int, store: EngineStore,
               user_errors: Collection[str | None]) -> dict[str, list[str]]:
    """What ``host`` does in round ``round_index``: {"build", "collect", "confirm", "remove",
    "prepare"}, each a list of models.

    collect-only: the device already holds the engine (a previous run built it and could not
    bring it home). Platform scope skips what the store gained in earlier rounds and the build
    keys a device already failed with a user error (the input is wrong: another device of the
    same key would fail the same way). prepare (round 0 only): the models this device is next
    in line for: it verifies the engine round 0 builds (in round 0 already, as soon as it is
    filed: controller/confirm_wait.py), or builds it in round 1 if that failed; round 0
    installs its environment and builder for them while the first devices build.
    """
    work: dict[str, list[str]] = {"build": [], "collect": [], "remove": [], "confirm": [],
                                  "prepare": []}
    host_plan = plan["hosts"].get(host)
    if host_plan is None:
        return work
    if round_index == 0:
        work["remove"] = list(host_plan["stale_work"])
        work["prepare"] = [model for model, entry in sorted(host_plan["models"].items())
                           if entry["rank"] == 1
                           and planned_step(entry, host_plan["scope"]) in (CONFIRM, FALLBACK)]
    for model, entry in sorted(host_plan["models"].items()):
        if entry["rank"] != round_index or entry["refused"]:
            continue
        if host_plan["scope"] == "platform":
            if entry["build_key"] in user_errors:
                continue
            found = store.lookup(entry["build_key"])
            if found is not None:
                # The store's engine, pushed to this device, verified and sent back: the
                # store counts it as confirmed (store.file_engine), or the controller
                # quarantines it (controller/outcome.py refuted_confirmations).
                if confirmation_due(found, host):
                    work["confirm"].append(model)
                    work["collect"].append(model)
                continue
        elif already_done(entry, "device"):
            continue
        work["collect" if entry["on_device"] else "build"].append(model)
    return work


def round_works(plan: dict[str, Any], round_index: int, store: EngineStore,
                outcomes_by_host: dict[str, dict[str, dict[str, Any]]]
                ) -> dict[str, dict[str, list[str]]]:
    """{host: work} of the hosts with work in round ``round_index``."""
    user_errors = {outcome.get("build_key") for outcomes in outcomes_by_host.values()
                   for outcome in (outcomes or {}).values() if outcome.get("kind") == "user"}
    # A device that hung (its build ran past the deadline, or it stopped answering) gets no
    # more work in this run: its builds go to the next device of their build key.
    hung = {host for host, outcomes in outcomes_by_host.items()
            if any(outcome.get("kind") == "deadline" for outcome in (outcomes or {}).values())}
    works = {}
    for host in sorted(set(plan["hosts"]) - hung):
        work = round_work(plan, host, round_index, store, user_errors)
        if any(work.values()):
            works[host] = work
    return works


# The plan's decision for one entry, the one chain: planned_step takes it, action_of says it
# in the plan's lines, controller/summary.py in the summary's rows of a check-mode run.
REFUSED, CONFIRM, CACHED, COLLECT, FALLBACK, BUILD = (
    "refused", "confirm", "cached", "collect", "fallback", "build")


def planned_step(entry: dict[str, Any], scope: str) -> str:
    """What the plan has ``entry``'s host do: one of REFUSED ... BUILD, first match wins."""
    if entry["refused"]:
        return REFUSED
    if entry.get("confirm_due"):
        return CONFIRM
    if already_done(entry, scope):
        return CACHED
    if entry["on_device"]:
        return COLLECT
    if scope == "platform" and entry["rank"] > 0:
        return FALLBACK
    return BUILD


def action_of(entry: dict[str, Any], scope: str) -> str:
    step = planned_step(entry, scope)
    if step == REFUSED:
        return "cannot build: {}".format(entry["refused"])
    if step == CONFIRM:
        return "verify the stored engine (second device of its platform, before it is shared)"
    if step == CACHED:
        return "cached in store"
    prefix = "store entry corrupt ({}), ".format(entry["store_problem"]) \
        if entry["store_problem"] else ""
    if step == COLLECT:
        return prefix + "on device, collect only"
    if entry["engine_path"] == "onnx":
        prefix += "ONNX exported on the controller, then "
    if step == FALLBACK:
        return prefix + "fallback builder #{} (if the earlier ones fail)".format(entry["rank"])
    return prefix + ("build" if scope == "platform" else "build (device scope)")


def plan_lines(plan: dict[str, Any]) -> list[str]:
    """One line per host and model (printed in --check and normal runs)."""
    lines = []
    for host, host_plan in sorted(plan["hosts"].items()):
        for model, entry in sorted(host_plan["models"].items()):
            lines.append("{:<20} {:<26} {:<38} {:<14} {} (key {})".format(
                host, model, host_plan["platform_id"], entry["variant"],
                action_of(entry, host_plan["scope"]), entry["build_key"][:12]))
    return lines
