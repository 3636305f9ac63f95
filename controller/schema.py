"""The user variables: name, type, range, default and a one-line doc, written once.

The preflight checks every host's values against this table, and the README's variable table
is generated from it (``python3 -m controller schema --readme``); a test keeps them in step.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from builder.platform import detect

from .guards import control_character_problem, expanded_size_exceeds
from .secrets import shown_secret

PRECISIONS = ("fp16", "fp32")
BUILD_SCOPES = ("platform", "device")
BUILD_PROCESSES = ("per_device", "per_model")
# The builder's directory on a device (venv, work directories), unless the inventory moves it.
# library/jetson_facts.py, which runs alone on the device, keeps a copy that a unit test checks
# against this one (tests/unit/test_root_dir.py).
BUILDER_ROOT_DIR = "/opt/trt-builder"
# The inventory's names for it: the facts step's and, read when that one is unset, the
# jetson_env role's older one. Both are kept; set to two values, the preflight refuses them.
ROOT_DIR_VARIABLES = ("jetson_facts_root_dir", "jetson_env_root_dir")


@dataclass(frozen=True)
class Variable:
    name: str
    type: str  # "str", "int", "list", "path", "bool", "dict", "count" (a count or a percentage)
    default: Any
    doc: str
    choices: tuple[Any, ...] = ()
    minimum: int | None = None
    maximum: int | None = None
    nullable: bool = False
    secret: bool = False
    example: str = ""

    def describe_range(self) -> str:
        if self.choices:
            return " | ".join(str(choice) for choice in self.choices)
        parts = []
        if self.minimum is not None:
            parts.append(">= {}".format(self.minimum))
        if self.maximum is not None:
            parts.append("<= {}".format(self.maximum))
        if self.nullable:
            parts.append("or null")
        return ", ".join(parts)


USER_VARIABLES = (
    Variable("engine_catalog", "path", "models/models.yml",
             "the model catalog on the controller (one for the whole fleet)"),
    Variable("engine_models", "list", [],
             "catalog model names to build on these devices", example="[ssd_mobilenet_v2_coco]"),
    Variable("engine_precision", "str", "fp16", "engine precision", choices=PRECISIONS),
    Variable("engine_workspace_mib", "int", 1024,
             "TensorRT builder workspace in MiB; below the device's memory (Nano: 256)",
             minimum=16, maximum=65536),
    Variable("engine_max_batch", "int", 1, "implicit batch size of the engines",
             minimum=1, maximum=64),
    Variable("engine_dla_core", "int", None,
             "DLA core to build for (Xavier, AGX Orin; GPU fallback on), null for the GPU",
             minimum=0, maximum=1, nullable=True),
    Variable("engine_build_scope", "str", "platform",
             "platform: hosts with equal build keys share one engine (one builds, the next of "
             "the platform takes over if it fails); device: this host builds its own",
             choices=BUILD_SCOPES),
    Variable("engine_build_processes", "str", "per_device",
             "per_device: a device builds its models of a round in one builder process "
             "(TensorFlow and TensorRT imported once, each engine released before the next); "
             "per_model: one process per model, for boards whose memory is too tight for that",
             choices=BUILD_PROCESSES),
    Variable("engine_build_deadline_s", "int", 0,
             "how long one model's build may take on the device before it is stopped and "
             "reported failed (the other devices go on); 0: {} times the platform's expected "
             "build time ({})".format(detect.BUILD_DEADLINE_FACTOR, ", ".join(
                 "{} {}".format(soc, detect.BUILD_DEADLINE_FACTOR * seconds)
                 for soc, seconds in sorted(detect.EXPECTED_BUILD_S.items()))),
             minimum=0, maximum=172800),
    Variable("engine_expected_platform", "str", "",
             "what this device must report: a kind (nano, tx2, xavier, orin, thor, ...) or a "
             "whole platform_id; empty: the kinds of its inventory groups (a device of "
             "another kind is refused)", example="orin"),
    Variable("engine_store_dir", "path", "artifacts/engines",
             "the engine store on the controller (one for the whole fleet)"),
    Variable("engine_signing_key", "path", "artifacts/signing/engine-signing.key",
             "the controller's Ed25519 key that signs each stored engine's statement (created "
             "on first use, mode 0600, never sent to a device; trusted-keys.json beside it "
             "holds the public keys the devices get)"),
    Variable("engine_graph_allowed_dirs", "list", [],
             "extra controller directories that catalog graphs may resolve into (default: "
             "only the catalog's own directory)"),
    Variable("engine_fetch_max_mib", "int", 1024,
             "largest engine or manifest the controller accepts from a device, in MiB",
             minimum=1, maximum=65536),
    Variable("engine_store_wait_s", "int", 3600,
             "how long a run waits for another run that holds the store; 0: stop at once",
             minimum=0, maximum=86400),
    Variable("engine_deploy_stage_platforms", "list", [],
             "platform_ids the devices are about to move to (a JetPack upgrade): "
             "deploy_engines.yml stages their engines beside the current one, where "
             "trt-engine-path finds them, without changing what runs",
             example="[jetson-agx-xavier_l4t35.4.1_trt8.5.2]"),
    Variable("jetson_facts_root_dir", "path", BUILDER_ROOT_DIR,
             "the builder's directory on each device (its venv and work directories); the "
             "facts step reports it and every later step uses what the device reported"),
    Variable("jetson_env_root_dir", "path", BUILDER_ROOT_DIR,
             "the older name of jetson_facts_root_dir, read when that one is unset (set "
             "one of the two, or both to the same directory)"),
    Variable("jetson_env_pin_set", "str", "",
             "the pinned environment of the devices' UFF-path builds, a name of "
             "jetson_env_pin_sets (roles/jetson_env/vars/main.yml); empty: the pin set of the "
             "device's L4T release", example="jetpack46-cp36"),
    Variable("jetson_env_onnx_pin_set", "str", "",
             "the same for the ONNX path's builds; empty: the ONNX pin set of the device's "
             "L4T release", example="jetpack6-onnx-cp310"),
    Variable("jetson_env_pip_index_url", "str", "",
             "empty: offline devices get the wheels from the controller; or a package index "
             "the devices reach (may hold credentials: never printed)", secret=True),
    Variable("jetson_env_swap_mib", "int", 0,
             "swap file to create on low-memory devices (0: leave swap alone)",
             minimum=0, maximum=65536),
    Variable("jetson_env_swap_below_mib", "int", 6144,
             "only devices with less memory than this (MiB) get the swap file",
             minimum=0, maximum=1048576),
)

# The deploy's own variables (deploy_engines.yml, roles/engine_deploy): per group or host. The
# deploy plan reads them (deploy_setting) and hands each device's values to the role; the role's
# argument_specs and the README's deploy table are checked against this table
# (tests/unit/test_schema.py).
DEPLOY_VARIABLES = (
    Variable("engine_deploy_install_root", "str", "/opt/trt-engines",
             "install root on the device (per group or host); an absolute path"),
    Variable("engine_deploy_keep", "int", 2,
             "versions kept besides current (previous always stays, for a rollback)",
             minimum=0),
    Variable("engine_deploy_rollback", "bool", False,
             "switch every selected model back to its previous version, verified, instead "
             "of deploying"),
    Variable("engine_deploy_restart", "dict", None,
             "`{systemd: detector.service}` (restarted) or `{command: \"...\"}`: run only where "
             "current changed; null: nothing to restart", nullable=True),
    Variable("engine_deploy_health", "dict", None,
             "`{command: \"...\"}` (healthy when it exits 0) or "
             "`{url: \"http://127.0.0.1:8080/health\"}` (fetched on the device, status_code "
             "default 200), with retries (3) and delay (2 s); a "
             "failure switches that device back by itself; null: no check", nullable=True),
    Variable("engine_deploy_system_python", "str", "/usr/bin/python3",
             "the device's system Python (JetPack's TensorRT bindings live in its "
             "dist-packages): the deploy venv and trt-engine-path run it"),
    Variable("engine_deploy_store_dir", "path", None,
             "the engine store the deploy reads; null: engine_store_dir, the one the deploy "
             "play's preflight checked and locked", nullable=True),
)
# The rollout: read when the play starts (serial, max_fail_percentage), so they come from -e.
# rollout() turns them into the play's batches (the deploy_rollout lookup, plugins/lookup/).
ROLLOUT_VARIABLES = (
    Variable("engine_deploy_canary", "count", 1,
             "the first batch: a count like 1, a percentage like '10%' or a fraction like 0.1 "
             "of the fleet; 0: no canary"),
    Variable("engine_deploy_batch", "count", "100%",
             "each later batch: a count or a percentage (default: the rest at once)"),
    Variable("engine_deploy_max_fail_percentage", "int", 0,
             "failed devices of a batch above this percentage stop the rollout before the "
             "next batch (0: any failed device does)", minimum=0, maximum=100),
)

BY_NAME = {variable.name: variable
           for variable in USER_VARIABLES + DEPLOY_VARIABLES + ROLLOUT_VARIABLES}
# Variables that no longer exist -> what to do instead. The preflight names a host that still
# sets one: a setting that silently does nothing would be worse than a stopped run.
RETIRED = {
    "engine_deploy_after_build": (
        "To deploy what a build run built, name both playbooks in one command: "
        "ansible-playbook build_engines.yml deploy_engines.yml -i <inventory> (the deploy runs "
        "when every build succeeded); then remove the variable"),
    "engine_build_timeout_s": (
        "Set engine_build_deadline_s instead (seconds per model, 0: the platform's default); "
        "then remove the variable"),
}
# Variables that must be equal on every host of a run (they name controller-side things).
FLEET_WIDE = ("engine_catalog", "engine_store_dir", "engine_graph_allowed_dirs",
              "engine_fetch_max_mib", "engine_store_wait_s", "engine_signing_key")


def builder_root_dir(variables: Mapping[str, Any]) -> str | None:
    """The builder's directory a host's variables set (jetson_facts_root_dir, else
    jetson_env_root_dir), None when neither does (an empty value is unset): then
    BUILDER_ROOT_DIR."""
    for name in ROOT_DIR_VARIABLES:
        value = variables.get(name)
        if value:
            return str(value)
    return None


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def shown(value: Any) -> str:
    """repr of a value for a message, bounded: a large list or mapping (a YAML alias may make
    it expand to billions of items) is described, never printed."""
    if isinstance(value, (list, tuple, dict)) and expanded_size_exceeds(value, 50):
        return "a {} of more than 50 items".format("mapping" if isinstance(value, dict)
                                                   else "list")
    text = repr(value)
    return text if len(text) <= 300 else text[:300] + "..."


CONTROL_FIX = ("Remove it: write the value on one line, in plain or quoted YAML (a block "
               "scalar `|` keeps a trailing newline; an escape like \\n in double quotes "
               "is a newline).")


def control_problem(variable: Variable, value: Any) -> str | None:
    """The control characters of a text value, or of a list's items (None when there are
    none): they would become part of a directory name or a command line."""
    if isinstance(value, str) and variable.type in ("str", "path"):
        return control_character_problem(
            value, "the value", shown_secret(value) if variable.secret else None)
    if isinstance(value, list) and variable.type == "list":
        for item in value:
            if isinstance(item, str):
                text = control_character_problem(
                    item, "model name" if variable.name == "engine_models" else "item")
                if text:
                    return text
    return None


def problem_with(variable: Variable, value: Any) -> str | None:  # noqa: PLR0911
    """What is wrong with ``value`` for ``variable`` (None when it fits); a secret's value is
    shown masked (controller/secrets.py)."""
    if value is None:
        return None if variable.nullable else "it is empty (null)"
    if variable.type == "int":
        if not is_int(value):
            return "{!r} is not a whole number".format(value)
        if variable.minimum is not None and value < variable.minimum:
            return "{} is below the minimum {}".format(value, variable.minimum)
        if variable.maximum is not None and value > variable.maximum:
            return "{} is above the maximum {}".format(value, variable.maximum)
        return None
    if variable.type == "list":
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            return "{} is not a list of names".format(shown(value))
        return None
    if variable.type == "bool":
        return None if isinstance(value, bool) else "{!r} is not true or false".format(value)
    if not isinstance(value, str):
        return "{} is not text".format(shown_secret(value) if variable.secret else shown(value))
    if variable.choices and value not in variable.choices:
        return "{!r} is not one of {}".format(value, ", ".join(variable.choices))
    return None


def fix_for(variable: Variable) -> str:
    """One sentence saying what to write instead."""
    if variable.choices:
        return "Use one of: {}.".format(", ".join(variable.choices))
    if variable.type == "int":
        return "Set a whole number {}{}.".format(
            variable.describe_range(), " (null: {})".format("the GPU") if variable.nullable
            else "")
    if variable.type == "list":
        return "Write a YAML list, e.g. {}.".format(variable.example or "[]")
    if variable.type == "bool":
        return "Write true or false."
    return "Set a text value ({}).".format(variable.doc)


def shown_default(value: Any) -> str:
    """A default as the README and the argument specs' readers write it in YAML."""
    if value in ("", []) and not isinstance(value, bool):
        return "`{!r}`".format(value).replace("'", '"')
    if value is None or isinstance(value, bool):
        return "`{}`".format(json.dumps(value))
    return "`{}`".format(value)


def readme_table(variables: tuple[Variable, ...] = USER_VARIABLES) -> str:
    """The README's table of ``variables`` (Markdown): the user variables, or the deploy's."""
    lines = ["| variable | type | default | range | meaning |", "|---|---|---|---|---|"]
    for variable in variables:
        doc = variable.doc + (" **secret**" if variable.secret else "")
        lines.append("| `{}` | {} | {} | {} | {} |".format(
            variable.name, variable.type, shown_default(variable.default),
            variable.describe_range() or "-", doc))
    return "\n".join(lines) + "\n"


TABLES = {"user": USER_VARIABLES, "deploy": DEPLOY_VARIABLES + ROLLOUT_VARIABLES}


def deploy_setting(host_vars: Mapping[str, Any], name: str) -> Any:
    """A host's value of the deploy variable ``name``, else its default (DEPLOY_VARIABLES)."""
    return host_vars.get(name, BY_NAME[name].default)


CANARY = re.compile(r"^([0-9]+%?|0?[.][0-9]+)$")
BATCH = re.compile(r"^[1-9][0-9]*%?$")
PERCENTAGE = re.compile(r"^([0-9]|[1-9][0-9]|100)$")


def rollout(values: Mapping[str, Any]) -> dict[str, Any]:
    """The play's ``serial`` (the canary batch, unless it is 0, then engine_deploy_batch) and
    ``max_fail_percentage`` from the rollout variables of ``values`` (else their defaults), and
    ``problem``: "" or what is wrong, with the fix (the play's first task fails with it)."""
    canary, batch, max_fail = (values.get(v.name, v.default) for v in ROLLOUT_VARIABLES)
    # Read on its own: the play's record step reads it after engine_deploy_batch became the
    # batch's host list (the play's set_fact).
    percentage = int(max_fail) if PERCENTAGE.match(str(max_fail)) else 0
    if not (CANARY.match(str(canary)) and BATCH.match(str(batch))
            and PERCENTAGE.match(str(max_fail))):
        return {"serial": ["100%"], "max_fail_percentage": percentage, "problem": (
            "engine_deploy_canary is {} (a count like 1, a percentage like '10%' or a fraction "
            "like 0.1 of the fleet; 0 = no canary), engine_deploy_batch is {} (a count or a "
            "percentage, default '100%'), engine_deploy_max_fail_percentage is {} (0 to 100). "
            "Fix the wrong one on the command line, e.g. -e engine_deploy_canary=1 -e "
            "engine_deploy_batch=25%.".format(canary, batch, max_fail))}
    text = str(canary)
    if float(text.rstrip("%")) == 0:
        first = []
    elif text.endswith("%"):
        first = [canary]
    elif float(text) < 1:
        first = ["{}%".format(math.ceil(float(text) * 100))]
    else:
        first = [canary]
    return {"serial": first + [batch], "max_fail_percentage": percentage, "problem": ""}
