"""The preflight: the catalog, its paths and graphs, and every host's selection, checked on
the controller before any device is touched."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

import yaml

from builder import __version__ as BUILDER_VERSION
from builder import buildkey, graphsums
from builder.commands.check import catalog_report
from builder.spec.catalog import load_catalog

from . import guards, schema, trust
from .repository import REPOSITORY
from .selection import HostChecker, HostSelection, VarOrigin, fleet_wide_problems

GRAPH_CHECK_CACHE = REPOSITORY / ".cache" / "graph-checks"
# The sums of the catalog's graphs, read on every run for the pin check and the build keys,
# kept while each graph is unchanged (builder/graphsums.py).
GRAPH_SUMS_CACHE = REPOSITORY / ".cache" / "graph-sums.json"
GRAPH_SUMS_CACHE_MAX_BYTES = 1 << 20


def raw_variables(host_vars: Mapping[str, Any]) -> Mapping[str, Any]:
    """A host's variables as the inventory wrote them, before any templating: Ansible's
    HostVarsVars templates a value each time it is read (walking every item of a list), so a
    value is looked at raw first (controller/guards.py). A plain dict (tests) is its own."""
    raw = getattr(host_vars, "_vars", None)
    return cast("Mapping[str, Any]", raw) if raw is not None else host_vars


def oversized_variables(raw: Mapping[str, Any]) -> frozenset[str]:
    """The user variables (and retired ones) whose raw value expands past guards.MAX_ITEMS."""
    names = [v.name for v in schema.USER_VARIABLES] + list(schema.RETIRED)
    return frozenset(name for name in names
                     if name in raw and guards.expanded_size_exceeds(raw[name]))


def catalog_line(path: str, model: str, key: str) -> str:
    """'models.yml:12' of ``key`` of ``model`` in the catalog (the model's line if the key is
    not written there)."""
    try:
        root: Any = yaml.compose(Path(path).read_text())
        models = next(v for k, v in root.value if k.value == "models")
        entry = next(v for k, v in models.value if k.value == model)
        node = next((k for k, _ in entry.value if k.value == key), entry)
        return "{}:{}".format(path, node.start_mark.line + 1)
    except (OSError, yaml.YAMLError, StopIteration, AttributeError, TypeError):
        return path


def path_problems(specs: dict[str, Any], catalog_path: str, allowed_dirs: list[str]) -> list[str]:
    """Graph and pipeline_config paths must resolve inside the catalog's directory (or a
    directory the user allowed): a link to a controller secret must not reach the fleet."""
    roots = [Path(os.path.dirname(catalog_path))] + [Path(d) for d in allowed_dirs]
    problems = []
    for name, spec in sorted(specs.items()):
        for key in ("graph", "pipeline_config"):
            if not spec.get(key):
                continue
            if not trust.inside_any(spec[key], roots):
                problems.append(
                    "{}: model '{}', key '{}': {} resolves to {}, outside the catalog's "
                    "directory {}. Put the file next to the catalog, or name its directory in "
                    "engine_graph_allowed_dirs (group_vars/all.yml) if it is meant".format(
                        catalog_line(catalog_path, name, key), name, key, spec[key],
                        os.path.realpath(spec[key]), roots[0]))
    return problems


def same_engine_problems(specs: dict[str, Any], catalog_path: str,
                         selections: Mapping[str, HostSelection]) -> list[str]:
    """Two selected models with the same graph and settings would build one engine, which the
    store files under one of the names only (the name is not in the build key): refused,
    naming both and the hosts that select the second."""
    problems = []
    first_with: dict[str, str] = {}
    for name, spec in sorted(specs.items()):
        inputs = json.dumps(buildkey.model_inputs(spec["sha256"], spec), sort_keys=True)
        kept = first_with.setdefault(inputs, name)
        if kept == name:
            continue
        hosts = sorted(h for h, s in selections.items() if name in s.models)
        problems.append(
            "{}: models '{}' and '{}' ({}) have the same graph (sha256 {}) and the same "
            "settings, so they would build the same engine and the store would keep it under "
            "one name only. Remove '{}' from the catalog and select '{}' instead in "
            "engine_models (hosts that select '{}': {}), or give them different "
            "settings".format(catalog_line(catalog_path, name, "graph"), kept, name,
                              catalog_line(catalog_path, kept, "graph"), spec["sha256"][:12],
                              name, kept, name, ", ".join(hosts)))
    return problems


# Bump when the graph checks change what they find: markers of earlier checks then count
# as not checked. 2: the anchor check (builder/graph/anchors.py) and the UFF refusal.
GRAPH_CHECKS_VERSION = 2


def _graph_check_key(spec: dict[str, Any]) -> str:
    text = json.dumps({"spec": {k: v for k, v in spec.items() if k != "graph"},
                       "builder": BUILDER_VERSION, "checks": GRAPH_CHECKS_VERSION},
                      sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _passed_check(marker: Path) -> dict[str, Any] | None:
    """What a graph check that passed recorded ({"uff_refusal": text or None}), or None."""
    try:
        record = json.loads(marker.read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and "uff_refusal" in record else None


def graph_problems(specs: dict[str, Any], catalog_path: str, cache_dir: Path = GRAPH_CHECK_CACHE,
                   record: bool = True) -> tuple[list[str], list[str], dict[str, str]]:
    """(problems, notes, uff refusals) of the graph checks (builder/graph/check.py) of the
    selected models; ``uff refusals``: {model: why the UFF path cannot build it}, for the
    plan (builder/trt/enginepath.py: refused where the platform has only UFF).

    A graph that passed before (same graph sha256, same spec, same builder and checks) is not
    checked again: the check imports TensorFlow, which costs seconds. Its marker keeps the
    refusal. ``record``: false in check mode, which writes nothing (the next real run checks
    again).
    """
    problems: list[str] = []
    notes: list[str] = []
    pending: list[tuple[str, dict[str, Any], Path]] = []
    refusals: dict[str, str] = {}
    for name, spec in sorted(specs.items()):
        marker = cache_dir / (_graph_check_key(spec) + ".ok")
        passed = _passed_check(marker)
        if passed is None:
            pending.append((name, spec, marker))
        elif passed["uff_refusal"]:
            refusals[name] = passed["uff_refusal"]
    if not pending:
        return problems, notes, refusals
    # Imported here: the check module is cheap, but what it calls imports TensorFlow.
    from builder.graph.check import check_graph, tensorflow_available  # noqa: PLC0415

    if not tensorflow_available():
        return problems, ["graph checks skipped for {}: TensorFlow is not installed on the "
                          "controller (pip install -r requirements/controller.txt); the "
                          "devices check the graphs when they convert them".format(
                              ", ".join(name for name, _, _ in pending))], refusals
    catalog = load_catalog(catalog_path, models=[name for name, _, _ in pending])
    for name, _spec, marker in pending:
        found = check_graph(catalog.models[name])
        for text in found.problems:
            key = next((k for k in ("num_classes", "input_order", "input_dims",
                                    "feature_map_shapes", "aspect_ratios", "min_size",
                                    "max_size") if "{} is".format(k) in text), "graph")
            if found.uff_refusal and found.uff_refusal in text:
                key = "engine_path"  # the catalog forces uff

            problems.append("{}: {}".format(catalog_line(catalog_path, name, key), text))
        if found.uff_refusal:
            refusals[name] = found.uff_refusal
        if not found.problems and record:
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.write_text(json.dumps({"model": name, "uff_refusal": found.uff_refusal}) +
                              "\n")
    return problems, notes, refusals


def run_preflight(catalog_path: str, hosts: list[str], hostvars: Mapping[str, Any],
                  inventory_sources: list[str], playbook_dir: str | None, *,
                  check_mode: bool = False) -> dict[str, Any]:
    """{"problems", "notes", "catalog": {name: spec}, "selections": {host: selection}}.
    ``check_mode``: nothing is written (no graph check marker)."""
    catalog_path = os.path.realpath(catalog_path)
    known_sums = graphsums.read_sums(str(GRAPH_SUMS_CACHE), GRAPH_SUMS_CACHE_MAX_BYTES)
    sums_before = dict(known_sums)
    report = catalog_report(catalog_path, known_sums=known_sums)
    problems = [error["text"] for error in report.get("errors", [])]
    catalog = report.get("models") if not problems else None
    origin = VarOrigin(inventory_sources, playbook_dir)
    values_by_host, selections = {}, {}
    holds = {"the repository": str(REPOSITORY),
             "the catalog's directory": os.path.dirname(catalog_path)}
    for host in hosts:
        host_vars = hostvars[host]
        groups = list(host_vars.get("group_names") or [])
        # Looked at raw first: a value that expands past guards.MAX_ITEMS (a YAML alias bomb)
        # is refused without being templated (which would walk all of it).
        raw = raw_variables(host_vars)
        oversized = oversized_variables(raw)
        # A path the inventory does not set is the role's default (not checked per host).
        values = {v.name: None if v.name in oversized else host_vars.get(
            v.name, None if v.type == "path" else v.default) for v in schema.USER_VARIABLES}
        values.update({name: None for name in schema.RETIRED if name in raw})
        values_by_host[host] = values

        def where(key: str, host: str = host, groups: list[str] = groups) -> str:
            return origin.find(host, groups, key)

        checker = HostChecker(host, values, where, catalog, catalog_path,
                              oversized=oversized, holds=holds, groups=tuple(groups))
        selection = checker.check()
        problems += checker.problems
        if selection is not None:
            selections[host] = selection
    problems += fleet_wide_problems(
        values_by_host, lambda host, key: origin.find(
            host, list(hostvars[host].get("group_names") or []), key))
    notes: list[str] = []
    exported = {}
    if catalog is not None and not problems:
        selected = sorted({m for s in selections.values() for m in s.models})
        for name in selected:
            # A pinned sha256 was verified by the builder; an unpinned one is computed here.
            spec = catalog[name]
            exported[name] = dict(spec, sha256=spec.get("sha256") or graphsums.known_sha256(
                spec["graph"], known_sums))
        first = values_by_host[hosts[0]] if hosts else {}
        problems += path_problems(exported, catalog_path,
                                  list(first.get("engine_graph_allowed_dirs") or []))
        problems += same_engine_problems(exported, catalog_path, selections)
        if not problems:
            found, notes, refusals = graph_problems(exported, catalog_path,
                                                    GRAPH_CHECK_CACHE, not check_mode)
            problems += found
            for name, refusal in refusals.items():
                # Read by the plan (builder/trt/enginepath.py), never sent to a device.
                exported[name]["uff_refusal"] = refusal
    if catalog is not None and not check_mode:
        notes += keep_graph_sums(known_sums, sums_before, catalog)
    return {"problems": problems, "notes": notes, "catalog": exported,
            "selections": {h: s.as_dict() for h, s in selections.items()}}


def keep_graph_sums(known_sums: dict[str, Any], before: dict[str, Any],
                    catalog: dict[str, Any]) -> list[str]:
    """Write the sums of the catalog's graphs to GRAPH_SUMS_CACHE when they changed (those of
    graphs no longer in the catalog are dropped). Returns a note when it cannot be written:
    the run goes on, and the next one reads the graphs again."""
    graphs = {spec["graph"] for spec in catalog.values() if spec.get("graph")}
    kept = {path: entry for path, entry in known_sums.items() if path in graphs}
    if kept == {path: entry for path, entry in before.items() if path in graphs}:
        return []
    try:
        GRAPH_SUMS_CACHE.parent.mkdir(parents=True, exist_ok=True)
        graphsums.write_sums(str(GRAPH_SUMS_CACHE), kept)
    except OSError as error:
        return ["the graph sums were not kept ({}): the next run reads the graphs "
                "again".format(error)]
    return []


def selections_from(data: dict[str, Any]) -> dict[str, HostSelection]:
    return {host: HostSelection.from_dict(item) for host, item in data.items()}
