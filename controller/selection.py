"""Each host's selection (models and engine options) from its group_vars / host_vars.

The host's selection is the unit of planning: two hosts of one group may differ in any
engine option or in their build scope. Every problem names the host, the inventory file the
value comes from, the key and the fix.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import yaml

from builder.platform import detect

from . import guards, schema
from .yaml_loader import safe_load

YAML_SUFFIXES = ("", ".yml", ".yaml", ".json")
FALLBACK_FILE = "group_vars/<group>.yml or host_vars/{host}.yml"


@dataclass(frozen=True)
class EngineOptions:
    """The build options that change the engine (the OPTION_FIELDS of builder/buildkey.py)."""

    precision: str
    workspace_mib: int
    max_batch: int
    dla_core: int | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def variant(self) -> str:
        """The store's name for these options, readable: fp16-ws256, fp32-dla0-b4-ws2048."""
        return self.variant_for(typed=False)

    def variant_for(self, typed: bool) -> str:
        """The variant on a TensorRT that is strongly ``typed`` (11 and later) or not: there
        the precision comes from the ONNX's tensor types, and the name says so
        (fp16-typed-ws1024); elsewhere from the builder flag (fp16-ws1024)."""
        parts = [self.precision] + (["typed"] if typed else [])
        if self.dla_core is not None:
            parts.append("dla{}".format(self.dla_core))
        if self.max_batch != 1:
            parts.append("b{}".format(self.max_batch))
        parts.append("ws{}".format(self.workspace_mib))
        return "-".join(parts)

    def builder_args(self) -> list[str]:
        args = ["--precision", self.precision, "--workspace-mib", str(self.workspace_mib),
                "--max-batch", str(self.max_batch)]
        if self.dla_core is not None:
            args += ["--dla-core", str(self.dla_core)]
        return args


@dataclass(frozen=True)
class HostSelection:
    host: str
    models: tuple[str, ...]
    options: EngineOptions
    scope: str
    # Where each value came from, for messages that name the file to edit.
    origins: dict[str, str] = field(default_factory=dict, compare=False)
    # per_device | per_model: how many builder processes the host's models of a round take.
    build_processes: str = "per_device"
    # What the inventory says the device is: (kind or platform_id, where it says so), from
    # the host's groups named like a kind and engine_expected_platform (detect.INVENTORY_KINDS).
    expected_platforms: tuple[tuple[str, str], ...] = ()
    # engine_build_deadline_s: seconds per model before a build counts as hung (0: the
    # platform's default, detect.default_build_deadline_s).
    build_deadline_s: int = 0
    # jetson_env_swap_mib and jetson_env_swap_below_mib (pin_sets.swap_mib_for).
    swap_mib: int = schema.BY_NAME["jetson_env_swap_mib"].default
    swap_below_mib: int = schema.BY_NAME["jetson_env_swap_below_mib"].default

    def as_dict(self) -> dict[str, Any]:
        return {"host": self.host, "models": list(self.models), "options": self.options.as_dict(),
                "scope": self.scope, "origins": dict(self.origins),
                "build_processes": self.build_processes,
                "expected_platforms": [list(pair) for pair in self.expected_platforms],
                "build_deadline_s": self.build_deadline_s, "swap_mib": self.swap_mib,
                "swap_below_mib": self.swap_below_mib}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HostSelection:
        return cls(host=data["host"], models=tuple(data["models"]),
                   options=EngineOptions(**data["options"]), scope=data["scope"],
                   origins=dict(data.get("origins") or {}),
                   build_processes=data.get("build_processes", "per_device"),
                   expected_platforms=tuple(
                       (str(value), str(where))
                       for value, where in data.get("expected_platforms") or ()),
                   build_deadline_s=int(data.get("build_deadline_s") or 0),
                   swap_mib=int(data.get("swap_mib", cls.swap_mib)),
                   swap_below_mib=int(data.get("swap_below_mib", cls.swap_below_mib)))


def load_yaml(path: Path) -> Any:
    try:
        return safe_load(path.read_text())
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


def inline_defines(data: Any, host: str, groups: list[str], key: str) -> bool:
    """True when a YAML inventory file's ``data`` sets the key inline for the host or one of
    its groups."""
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
        if name in [*groups, "all"] and key in (group.get("vars") or {}):
            return True
        pending += list((group.get("children") or {}).items())
    return False


class VarOrigin:
    """Finds the inventory file a host's variable comes from (host_vars before group_vars).

    Every file is looked up and parsed once per run: the preflight asks for every host's
    every variable (at 32 devices, uncached, 300 parses were 0.9 s of the preflight's 1.1 s).
    """

    def __init__(self, inventory_sources: list[str], playbook_dir: str | None):
        self.bases: list[Path] = []
        self.inventory_files: list[Path] = []
        self._files: dict[tuple[Path, str, str], list[Path]] = {}
        self._parsed: dict[Path, Any] = {}
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
            candidates += self.vars_files(base, "host_vars", host)
        for group in ordered_groups:
            for base in self.bases:
                candidates += self.vars_files(base, "group_vars", group)
        for path in candidates:
            data = self.parsed(path)
            if isinstance(data, dict) and key in data:
                return self.display(path)
        for inventory in self.inventory_files:
            if inline_defines(self.parsed(inventory), host, groups, key):
                return self.display(inventory)
        return FALLBACK_FILE.format(host=host)

    def vars_files(self, base: Path, kind: str, name: str) -> list[Path]:
        if (base, kind, name) not in self._files:
            self._files[base, kind, name] = vars_files(base, kind, name)
        return self._files[base, kind, name]

    def parsed(self, path: Path) -> Any:
        if path not in self._parsed:
            self._parsed[path] = load_yaml(path)
        return self._parsed[path]

    @staticmethod
    def display(path: Path) -> str:
        """'group_vars/nano.yml (/abs/inventory/jetsons/group_vars/nano.yml)'."""
        parts = path.parts
        for marker in ("group_vars", "host_vars"):
            if marker in parts:
                return "{} ({})".format("/".join(parts[parts.index(marker):]), path)
        return str(path)


ALIAS_FIX = ("Write the value out without YAML aliases (*name) repeated inside it: a few "
             "anchors nested in each other expand to billions of items (a 'billion laughs'), "
             "which Ansible's templating would walk before the run could report anything.")
STORE_FIX = ("Give the store a directory of its own, e.g. /srv/engine-store or the default "
             "artifacts/engines: the store keeps its lock, its index and its working directories "
             "there, and `python3 -m controller store repair` removes what looks like a "
             "killed run's leftovers in it.")
ALLOWED_FIX = ("Name the directory that holds the graphs, not a system or home directory: "
               "every file below an allowed directory can be sent to every device as a graph.")


class HostChecker:
    """The checks of one host's user variables (controller/schema.py); a message per problem.

    ``oversized``: variables whose raw value expands past guards.MAX_ITEMS (not templated, not
    in ``values``); ``holds``: {what: path} a store directory must not hold (the repository,
    the catalog's directory)."""

    def __init__(self, host: str, values: dict[str, Any], origin: Callable[[str], str],
                 catalog_models: dict[str, Any] | None, catalog_path: str, *,
                 oversized: frozenset[str] = frozenset(), holds: dict[str, str] | None = None,
                 groups: tuple[str, ...] = ()):
        self.host = host
        self.groups = groups
        self.values = values
        self.origin = origin
        self.catalog_models = catalog_models
        self.catalog_path = catalog_path
        self.oversized = oversized
        self.holds = dict(holds or {})
        self.problems: list[str] = []
        self.refused_keys: set[str] = set()

    def problem(self, key: str, text: str, fix: str) -> None:
        self.refused_keys.add(key)
        self.problems.append("host '{}', file {}, key '{}': {}. {}".format(
            self.host, self.origin(key), key, text, fix))

    def check(self) -> HostSelection | None:
        for name in sorted(self.oversized):
            self.problem(name, "the value expands to more than {} items when its YAML aliases "
                         "are followed; refused before anything expands it".format(
                             guards.MAX_ITEMS), ALIAS_FIX)
        for variable in schema.USER_VARIABLES:
            value = self.values.get(variable.name)
            if variable.name in self.oversized or (value is None and variable.type == "path"):
                continue
            control = schema.control_problem(variable, value)
            if control:
                self.problem(variable.name, control, schema.CONTROL_FIX)
                continue
            if variable.name == "engine_models":
                continue  # check_models, below
            text = schema.problem_with(variable, self.values[variable.name])
            if text:
                self.problem(variable.name, text, schema.fix_for(variable))
        self.check_directories()
        self.check_root_dirs()
        self.check_expected_platform(self.values.get("engine_expected_platform"))
        for name, instead in schema.RETIRED.items():
            if name in self.values:
                self.problem(name, "this variable was retired", instead + ".")
        if "engine_models" not in self.refused_keys:
            self.check_models(self.values.get("engine_models"))
        catalog = self.values.get("engine_catalog")
        if catalog and os.path.realpath(catalog) != self.catalog_path:
            self.problem("engine_catalog",
                         "{} differs from the catalog of this run, {}".format(
                             catalog, self.catalog_path),
                         "Use one catalog for the whole fleet (set engine_catalog in "
                         "group_vars/all.yml only).")
        if self.problems:
            return None
        values = self.values
        options = EngineOptions(values["engine_precision"], values["engine_workspace_mib"],
                                values["engine_max_batch"], values.get("engine_dla_core"))
        keys = ("engine_models", "engine_precision", "engine_workspace_mib", "engine_max_batch",
                "engine_dla_core", "engine_build_scope")
        return HostSelection(self.host, tuple(values.get("engine_models") or ()), options,
                             values["engine_build_scope"],
                             {key: self.origin(key) for key in keys},
                             build_processes=values["engine_build_processes"],
                             expected_platforms=self.expected_platforms(),
                             build_deadline_s=values["engine_build_deadline_s"],
                             swap_mib=values["jetson_env_swap_mib"],
                             swap_below_mib=values["jetson_env_swap_below_mib"])

    def expected_platforms(self) -> tuple[tuple[str, str], ...]:
        """What the inventory says this device is: each group of the host named like a kind,
        and engine_expected_platform when set."""
        expected = [(kind, "its inventory group '{}'".format(group)) for group in self.groups
                    for kind in [detect.inventory_kind(group)] if kind]
        claimed = self.values.get("engine_expected_platform")
        if claimed:
            expected.append((claimed, "engine_expected_platform in {}".format(
                self.origin("engine_expected_platform"))))
        return tuple(expected)

    def check_expected_platform(self, value: Any) -> None:
        """engine_expected_platform: empty, a kind, or a platform_id as devices report it."""
        if not isinstance(value, str) or not value or "engine_expected_platform" in \
                self.refused_keys:
            return
        if value in detect.INVENTORY_KINDS or detect.module_of_platform_id(value):
            return
        self.problem("engine_expected_platform",
                     "{!r} is neither a kind nor a platform_id".format(value),
                     "Write a kind ({}) or the device's whole platform_id as the build's plan "
                     "prints it (e.g. jetson-agx-orin_l4t36.4.3_trt10.3.0), or remove the "
                     "key.".format(", ".join(sorted(detect.INVENTORY_KINDS))))

    def check_directories(self) -> None:
        """A store or an allowed graph directory that is a system path, a home directory, or
        one that holds the repository or the catalog: refused (controller/guards.py)."""
        store = self.values.get("engine_store_dir")
        if isinstance(store, str) and store and "engine_store_dir" not in self.refused_keys:
            why = guards.system_path_problem(store, holds=self.holds)
            if why:
                self.problem("engine_store_dir", why, STORE_FIX)
        allowed = self.values.get("engine_graph_allowed_dirs")
        if isinstance(allowed, list) and "engine_graph_allowed_dirs" not in self.refused_keys:
            for directory in allowed:
                why = guards.system_path_problem(directory) if isinstance(directory, str) \
                    else None
                if why:
                    self.problem("engine_graph_allowed_dirs", why, ALLOWED_FIX)

    def check_root_dirs(self) -> None:
        """jetson_facts_root_dir and jetson_env_root_dir name one directory (the facts step
        reads the first, else the second): set to two, the host is refused."""
        first, second = schema.ROOT_DIR_VARIABLES
        values = [self.values.get(name) for name in schema.ROOT_DIR_VARIABLES]
        if not all(isinstance(value, str) and value for value in values) or \
                values[0] == values[1] or self.refused_keys & set(schema.ROOT_DIR_VARIABLES):
            return
        self.problem(second, "it is {!r}, but {} is {!r} (in {}): both name the builder's "
                     "directory on the device".format(values[1], first, values[0],
                                                      self.origin(first)),
                     "Set only {} (remove {}), or give both the same directory.".format(
                         first, second))

    def check_models(self, models: Any) -> None:
        variable = schema.BY_NAME["engine_models"]
        text = schema.problem_with(variable, models)
        if text:
            self.problem("engine_models", text, schema.fix_for(variable))
            return
        if self.catalog_models is None:
            return  # the catalog itself is broken: its problems are reported instead
        known = sorted(self.catalog_models)
        for model in models:
            if model in self.catalog_models:
                continue
            close = difflib.get_close_matches(model, known, n=1, cutoff=0.6)
            hint = "Did you mean '{}'? ".format(close[0]) if close else ""
            self.problem("engine_models",
                         "model '{}' is not in the catalog {}".format(model, self.catalog_path),
                         "{}Use one of: {}; or add the model to the catalog.".format(
                             hint, ", ".join(known) or "(the catalog is empty)"))


def fleet_wide_problems(values_by_host: dict[str, dict[str, Any]],
                        origin: Callable[[str, str], str]
                        ) -> list[str]:
    """Variables that name controller-side things must be equal on every host."""
    problems = []
    for name in schema.FLEET_WIDE:
        seen: dict[str, list[str]] = {}
        for host, values in values_by_host.items():
            seen.setdefault(repr(values.get(name)), []).append(host)
        if len(seen) > 1:
            detail = "; ".join("{} on {}".format(value, ", ".join(sorted(hosts)[:3]) + (
                " ..." if len(hosts) > 3 else "")) for value, hosts in sorted(seen.items()))
            first = sorted(values_by_host)[0]
            problems.append(
                "key '{}' differs between hosts ({}), file {}: it names one thing on the "
                "controller for the whole run. Set it once, in group_vars/all.yml".format(
                    name, detail, origin(first, name)))
    return problems
