"""Which pinned environment a device gets (roles/jetson_env/vars/main.yml), checked in the plan.

The pin sets and the tables that pick one per L4T release have one home, the jetson_env role's
vars file: the role reads it as its variables, the plan reads it here, so that a device whose
JetPack has no pin set is refused in the plan, with the release and the fix, before anything
is installed or pushed. The choice: a device whose builds are all ONNX takes the ONNX pin set
(no TensorFlow), one with a UFF build the TensorFlow set; each is the inventory's
(jetson_env_onnx_pin_set, jetson_env_pin_set) or, left empty, the table's for the device's
L4T major.minor; the round work carries it to the role (controller/device_work.py
environment()), which chooses nothing. So does the marker of an installed environment
(``env_marker``): the plan compares it with the device's to include the role only where the
venv lacks the round's environment, and the role writes it.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from builder.platform.detect import L4T_RELEASES, version_prefix, version_tuple

from .yaml_loader import safe_load

REPO_ROOT = Path(__file__).resolve().parents[1]
PIN_SETS_FILE = REPO_ROOT / "roles" / "jetson_env" / "vars" / "main.yml"
SHOWN_FILE = "roles/jetson_env/vars/main.yml"
# engine path -> the inventory variable that names its pin set, and the table by L4T release
VARIABLES = {"uff": "jetson_env_pin_set", "onnx": "jetson_env_onnx_pin_set"}
TABLES = {"uff": "jetson_env_pin_set_by_l4t", "onnx": "jetson_env_onnx_pin_set_by_l4t"}
# What an environment marker records (env_marker).
ENV_MARKER_KEYS = ("pin_set", "pins_sha256", "tensorrt", "python", "swap_mib")


@dataclass(frozen=True)
class PinSetTable:
    names: tuple[str, ...]
    # engine path -> {L4T major.minor: pin set name}
    by_l4t: dict[str, dict[str, str]]
    # pin set name -> the sha256 of its pins (pins_digest), which the environment marker keeps
    pins_sha256: dict[str, str]

    @classmethod
    def load(cls, path: Path = PIN_SETS_FILE) -> PinSetTable:
        data: dict[str, Any] = safe_load(path.read_text())
        sets = data["jetson_env_pin_sets"]
        return cls(tuple(sorted(sets)),
                   {engine_path: {str(line): str(name) for line, name in data[table].items()}
                    for engine_path, table in TABLES.items()},
                   {name: pins_digest(pin_set["pins"]) for name, pin_set in sets.items()})


def pins_digest(pins: list[dict[str, Any]]) -> str:
    """The sha256 of a pin set's pins, as JSON with sorted keys (json.dumps' separators: the
    text the role's Jinja ``to_json(sort_keys=true) | hash('sha256')`` made for the markers
    that devices already hold)."""
    return hashlib.sha256(json.dumps(pins, sort_keys=True).encode("utf-8")).hexdigest()


def swap_mib_for(memory_mib: int | None, swap_mib: int, swap_below_mib: int) -> int:
    """The swap file a device gets (jetson_env_swap_mib), only when it has less memory than
    jetson_env_swap_below_mib (an unknown memory counts as less); 0: swap left alone."""
    return swap_mib if swap_mib > 0 and (memory_mib or 0) < swap_below_mib else 0


def env_marker(table: PinSetTable, pin_set: str, *, tensorrt_full: str | None,
               python: str | None, swap_mib: int) -> dict[str, str | None]:
    """What the venv's environment marker (jetson_env_marker_name) holds once the jetson_env
    role installed ``pin_set`` on a device of that TensorRT package version and system Python:
    the plan includes the role only where the device's marker differs, and the role writes
    this one. A JetPack upgrade changes ``tensorrt_full``, so the environment is installed
    again for it."""
    return dict(zip(ENV_MARKER_KEYS, (pin_set, table.pins_sha256.get(pin_set, ""),
                                      tensorrt_full, python, str(swap_mib))))


@functools.cache
def the_table() -> PinSetTable:
    """The repository's table, read once per process and only when a device would build: a
    no-op rerun builds nothing and reads no pin set (its 600 lines of YAML)."""
    return PinSetTable.load()


def l4t_line(l4t: str) -> str:
    """'32.7.1' -> '32.7': the key of the tables."""
    line: str = version_prefix(l4t, 2) or l4t
    return line


def chosen_pin_set(table: PinSetTable, engine_path: str, l4t: str | None,
                   named: str = "") -> str:
    """The pin set a device of ``l4t`` gets for ``engine_path`` builds: ``named`` (the
    inventory's variable) or the table's; '' when neither has one."""
    if named:
        return named
    return table.by_l4t[engine_path].get(l4t_line(l4t), "") if l4t else ""


def jetpack_of_line(line: str) -> str | None:
    """The JetPack of an L4T major.minor's first release ('32.6' -> '4.6'), None if unknown."""
    releases = sorted((release for release in L4T_RELEASES if l4t_line(release) == line),
                      key=version_tuple)
    return L4T_RELEASES[releases[0]][0] if releases else None


def upgrade_advice(table: PinSetTable, engine_path: str, l4t: str | None) -> str:
    """'Upgrade the device to JetPack 4.6 (L4T 32.6) or later, or ' when the table has a
    later release for this path; '' when the device is newer than every release it knows."""
    current = version_tuple(l4t or "")
    later = sorted((line for line in table.by_l4t[engine_path]
                    if version_tuple(line) > current), key=version_tuple)
    if not later:
        return ""
    jetpack = jetpack_of_line(later[0])
    target = "JetPack {} (L4T {})".format(jetpack, later[0]) if jetpack \
        else "L4T {}".format(later[0])
    return "Upgrade the device to {} or later, or ".format(target)


def pin_set_problem(table: PinSetTable, host: str, engine_path: str, *, l4t: str | None,
                    jetpack: str | None, named: str = "") -> str | None:
    """Why ``host`` has no pinned environment for its ``engine_path`` builds (None when it
    has one): the release, what the table holds and what to do."""
    variable = VARIABLES[engine_path]
    name = chosen_pin_set(table, engine_path, l4t, named)
    if name and name in table.names:
        return None
    if name:
        return ("host {}: {} is '{}', which is no pin set of {}. Set it in "
                "host_vars/{}.yml or group_vars/<group>.yml to one of {}".format(
                    host, variable, name, SHOWN_FILE, host, ", ".join(table.names)))
    release = "L4T {} (JetPack {})".format(l4t, jetpack or "unknown") if l4t \
        else "an unknown L4T release"
    known = ", ".join(sorted(table.by_l4t[engine_path], key=version_tuple))
    advice = upgrade_advice(table, engine_path, l4t) if l4t else ""
    fix = "add a pin set made for {} to {} and name it in {} (host_vars/{}.yml)".format(
        "L4T " + l4t_line(l4t) if l4t else "this release", SHOWN_FILE, variable, host)
    return ("host {}: no pinned {} environment for {}: {} has pin sets for L4T {} only. "
            "{}{}".format(host, engine_path.upper(), release, TABLES[engine_path], known,
                          advice, fix if advice else fix[0].upper() + fix[1:]))
