"""Action plugin (controller only): check the catalog and every host's selection and options.

Validates the model catalog with the builder's own checks (in this process: no module and
no interpreter is started), reads each play host's engine_* variables, checks them against
the validated catalog and
the allowed values, and names for every problem the inventory file the host gets the key
from, so that the user knows what to edit. Exports the selected models of the catalog as
the fact ``preflight_catalog`` (graph sha256 computed here, on the controller) and each
host's checked selection as ``preflight_selections`` (host -> models and build options).
Fails, with every problem in one message, when any input is wrong. Touches no device.
"""

from __future__ import annotations

import difflib
import os
import sys
from pathlib import Path

import yaml
from ansible.plugins.action import ActionBase

# The builder's own catalog checks run in this process (roles/preflight/action_plugins -> repo).
REPO_ROOT = str(Path(__file__).resolve().parents[3])
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

from builder.commands.check import catalog_report  # noqa: E402
from builder.spec.catalog import file_sha256  # noqa: E402  (needs REPO_ROOT on sys.path)

DOCUMENTATION = r"""
---
action: preflight_selection
short_description: Validate engine_* variables of every play host against the model catalog
description:
  - Controller-side check used by the preflight role; see roles/preflight/meta/argument_specs.yml.
options:
  hosts:
    description: Hosts whose variables are checked.
    type: list
    elements: str
    required: true
  catalog_path:
    description:
      - The model catalog, validated here with the builder's own checks (what
        C(python -m builder check --json) does, called in this process).
    type: path
    required: true
"""

PRECISIONS = ("fp16", "fp32")
BUILD_SCOPES = ("device", "platform")
YAML_SUFFIXES = ("", ".yml", ".yaml", ".json")
FALLBACK_FILE = "group_vars/<group>.yml or host_vars/{host}.yml"


def is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def load_yaml(path: Path):
    try:
        return yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return None  # an unreadable vars file was already reported by the inventory loader


def vars_files(base: Path, kind: str, name: str) -> list[Path]:
    """group_vars/<name>.yml, .yaml, .json, no suffix, or every file in group_vars/<name>/."""
    found = [base / kind / (name + suffix) for suffix in YAML_SUFFIXES]
    found = [path for path in found if path.is_file()]
    directory = base / kind / name
    if directory.is_dir():
        found += sorted(p for p in directory.rglob("*") if p.is_file())
    return found


def inline_defines(inventory: Path, host: str, groups: list[str], key: str) -> bool:
    """True when a YAML inventory file sets the key inline for the host or one of its groups."""
    data = load_yaml(inventory)
    if not isinstance(data, dict):
        return False
    pending = list(data.items())
    while pending:
        name, group = pending.pop()
        if not isinstance(group, dict):
            continue
        hosts = group.get("hosts")
        if isinstance(hosts, dict) and key in (hosts.get(host) or {}):
            return True
        if name in groups + ["all"] and key in (group.get("vars") or {}):
            return True
        pending += list((group.get("children") or {}).items())
    return False


class VarOrigin:
    """Finds the inventory file a host's variable comes from (host_vars before group_vars)."""

    def __init__(self, inventory_sources: list[str], playbook_dir: str):
        self.bases = []
        self.inventory_files = []
        for source in inventory_sources:
            path = Path(source)
            if path.is_dir():
                self.bases.append(path)
            elif path.is_file():
                self.bases.append(path.parent)
                self.inventory_files.append(path)
        if playbook_dir:
            self.bases.append(Path(playbook_dir))

    def find(self, host: str, groups: list[str], key: str) -> str:
        ordered_groups = [g for g in groups if g != "all"] + ["all"]
        candidates = []
        for base in self.bases:
            candidates += vars_files(base, "host_vars", host)
        for group in ordered_groups:
            for base in self.bases:
                candidates += vars_files(base, "group_vars", group)
        for path in candidates:
            data = load_yaml(path)
            if isinstance(data, dict) and key in data:
                return self.display(path)
        for inventory in self.inventory_files:
            if inline_defines(inventory, host, groups, key):
                return self.display(inventory)
        return FALLBACK_FILE.format(host=host)

    def display(self, path: Path) -> str:
        """'group_vars/nano.yml (/abs/inventory/jetsons/group_vars/nano.yml)'."""
        parts = path.parts
        for marker in ("group_vars", "host_vars"):
            if marker in parts:
                short = "/".join(parts[parts.index(marker):])
                return f"{short} ({path})"
        return str(path)


class HostChecker:
    """The checks of one host's engine_* variables; each problem is one message line."""

    def __init__(self, host, values, origin, catalog_models, catalog_path):
        self.host = host
        self.values = values
        self.origin = origin
        self.catalog_models = catalog_models
        self.catalog_path = catalog_path
        self.problems = []

    def problem(self, key, text, fix):
        where = self.origin(key)
        self.problems.append(f"host '{self.host}', file {where}, key '{key}': {text}. {fix}")

    def check(self) -> dict:
        values = self.values
        self.check_models(values.get("engine_models"))
        if values.get("engine_precision") not in PRECISIONS:
            self.problem(
                "engine_precision",
                f"{values.get('engine_precision')!r} is not a precision",
                "Use fp16 (all supported Jetsons have fast FP16) or fp32.",
            )
        self.check_int("engine_workspace_mib", 16, "a workspace in MiB, e.g. 1024 (256 on a Nano)")
        self.check_int("engine_max_batch", 1, "the implicit batch size, usually 1")
        dla_core = values.get("engine_dla_core")
        if dla_core is not None and not (is_int(dla_core) and dla_core >= 0):
            self.problem(
                "engine_dla_core",
                f"{dla_core!r} is not a DLA core number",
                "Use 0 or 1 on Xavier / AGX Orin, or null (or remove the key) for the GPU.",
            )
        catalog = values.get("engine_catalog")
        if catalog and os.path.abspath(catalog) != self.catalog_path:
            self.problem(
                "engine_catalog",
                f"{catalog} differs from the catalog of this run, {self.catalog_path}",
                "Use one catalog for the whole fleet (set engine_catalog in group_vars/all.yml).",
            )
        if values.get("engine_build_scope") not in BUILD_SCOPES:
            self.problem(
                "engine_build_scope",
                f"{values.get('engine_build_scope')!r} is not a build scope",
                "Use platform (one device per platform builds) or device (every device builds).",
            )
        return {
            "models": list(values.get("engine_models") or []),
            "precision": values.get("engine_precision"),
            "workspace_mib": values.get("engine_workspace_mib"),
            "max_batch": values.get("engine_max_batch"),
            "dla_core": dla_core,
            "build_scope": values.get("engine_build_scope"),
        }

    def check_models(self, models):
        if not isinstance(models, list) or not all(isinstance(m, str) for m in models):
            self.problem(
                "engine_models",
                f"{models!r} is not a list of model names",
                "Write a YAML list of catalog model names, e.g. [ssd_mobilenet_v2_coco].",
            )
            return
        if self.catalog_models is None:
            return  # the catalog itself is broken: its problems are reported instead
        known = sorted(self.catalog_models)
        for model in models:
            if model in self.catalog_models:
                continue
            close = difflib.get_close_matches(model, known, n=1, cutoff=0.6)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            self.problem(
                "engine_models",
                f"model '{model}' is not in the catalog {self.catalog_path}",
                f"{hint} Use one of: {', '.join(known) or '(the catalog is empty)'}; "
                "or add the model to the catalog.".lstrip(),
            )

    def check_int(self, key, minimum, meaning):
        value = self.values.get(key)
        if not (is_int(value) and value >= minimum):
            self.problem(key, f"{value!r} is not an integer >= {minimum}", f"Set {meaning}.")


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False
    _VALID_ARGS = frozenset(("hosts", "catalog_path"))

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        args = self._task.args
        catalog_path = os.path.abspath(args["catalog_path"])
        report = catalog_report(catalog_path)
        problems = [error["text"] for error in report.get("errors", [])]
        catalog = report.get("models") if not problems else None
        origin = VarOrigin(task_vars.get("ansible_inventory_sources") or [],
                           task_vars.get("playbook_dir"))
        hostvars = task_vars["hostvars"]

        options, selected = {}, set()
        for host in args["hosts"]:
            host_vars = hostvars[host]
            groups = list(host_vars.get("group_names") or [])
            values = {key: host_vars.get(key) for key in (
                "engine_models", "engine_precision", "engine_workspace_mib",
                "engine_max_batch", "engine_dla_core", "engine_build_scope", "engine_catalog")}
            checker = HostChecker(
                host, values,
                lambda key, host=host, groups=groups: origin.find(host, groups, key),
                catalog, catalog_path)
            options[host] = checker.check()
            problems += checker.problems
            selected.update(m for m in options[host]["models"] if catalog and m in catalog)

        result.update(changed=False, problems=problems)
        if problems:
            result.update(failed=True, msg="Preflight found {} problem(s), nothing was changed:\n{}"
                          .format(len(problems), "\n".join(problems)))
            return result
        exported = {}
        for name in sorted(selected):
            # A pinned sha256 was verified by the builder; an unpinned one is computed here.
            spec = catalog[name]
            exported[name] = dict(spec, sha256=spec.get("sha256") or file_sha256(spec["graph"]))
        result.update(
            msg="Preflight OK: {} host(s), models {}".format(len(args["hosts"]),
                                                          ", ".join(exported)),
            ansible_facts={"preflight_catalog": exported, "preflight_selections": options},
        )
        return result
