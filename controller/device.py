"""What a device reported about itself (jetson_facts), checked before anything uses it.

Devices are not trusted. The device's answer reaches the controller as one registered result
(``jetson_device``: the facts task's register, plugins/action/jetson_facts.py), never as
facts or variables, and is read here field by field: every value that can end up in a
controller path (platform_id, the model directories of its work dir) is checked against a
strict pattern, every value that reaches a command line or a message (root_dir, versions,
names) against its form, and a device that sends something else is refused with what it
sent. The option checks that only need the
facts (DLA cores, workspace against memory) and the engine path (max batch on ONNX) run
here, in the plan, before any install or push; they are the builder's own checks
(builder/trt/build.py), called with the inventory's variable names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, cast

from builder.errors import UserError
from builder.platform import detect
from builder.trt.adapter import BuildOptions
from builder.trt.build import check_options_for_engine_path, check_options_for_platform
from module_utils.trt_signature import KEY_ID_RE

from . import trust
from .diskspace import MOVE_ROOT_DIR
from .pin_sets import ENV_MARKER_KEYS
from .selection import HostSelection

INVENTORY_NAMES = {"dla_core": "engine_dla_core", "workspace_mib": "engine_workspace_mib",
                   "precision": "engine_precision", "max_batch": "engine_max_batch"}
COMPUTE_CAPABILITY = re.compile(r"^\d{1,2}\.\d{1,2}\Z")
# Rough disk needs of a build on the device, to refuse before anything is pushed: the pinned
# environment once (TensorFlow 1.15 for JetPack 4 installs to ~600 MB, the simulated fleet's
# TensorFlow 2.15 to ~700 MB: with pip's temporary copies, about 1 GiB), then per model the
# graph, its transformed copy and UFF (about 3x the graph) and the engine.
ENV_MIB = 1024
PER_MODEL_MIB = 64
GRAPH_COPIES = 3


@dataclass(frozen=True)
class DevicePlatform:
    host: str
    platform_id: str
    module: str
    l4t: str | None
    jetpack: str | None
    memory_mib: int | None
    dla_cores: int
    tensorrt: str | None
    compute_capability: str | None
    root_dir: str
    free_mib: int | None
    env_installed: bool
    # The venv's environment marker (pin_sets.env_marker; None: none, or not five short texts)
    # and the two facts a marker records: JetPack's TensorRT package version, the system Python.
    env_marker: dict[str, str | None] | None
    tensorrt_full: str | None
    python: str | None
    # The builder the venv holds, as its install recorded it ({builder_version, builder_digest};
    # None: none recorded, or not two short texts): compared with the run's builder.
    builder_marker: dict[str, str] | None
    # model -> {"graphs": {name: sha256}, "engine_build_key": key or None} of its work dir
    work: dict[str, dict[str, Any]]

    def as_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


def _work_state(host: str, models: object, engine_names: dict[str, str]
                ) -> dict[str, dict[str, Any]]:
    source = "host {}".format(host)
    if models is not None and not isinstance(models, dict):
        raise trust.Untrusted("{} sent work directories {!r}: not a mapping".format(
            source, trust.shown(models)))
    work: dict[str, dict[str, Any]] = {}
    for model, state in (models or {}).items():
        trust.component(model, "a work directory", source, trust.MODEL_NAME)
        listed: dict[str, Any] = state if isinstance(state, dict) else {}
        graphs: dict[str, Any] = listed["graphs"] if isinstance(listed.get("graphs"), dict) \
            else {}
        engines: dict[str, Any] = listed["engines"] if isinstance(listed.get("engines"), dict) \
            else {}
        build_key = listed.get("build_key") if isinstance(listed.get("build_key"), str) else None
        engine = engine_names.get(model)
        work[model] = {
            "graphs": {name: digest for name, digest in graphs.items() if isinstance(digest, str)},
            "engine_build_key": build_key if engine in engines else None,
        }
    return work


def _compute_capability(value: object, source: str) -> str | None:
    """The compute capability a device reports ('8.7'), checked: digits and a dot."""
    if value is None:
        return None
    if not isinstance(value, str) or not COMPUTE_CAPABILITY.match(value):
        raise trust.Untrusted("{} sent compute_capability {!r}: not a version like 8.7".format(
            source, value))
    return value


def _count(value: object, what: str, source: str, nullable: bool) -> int | None:
    if value is None and nullable:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**40:
        raise trust.Untrusted("{} sent {} {!r}: not a whole number".format(
            source, what, trust.shown(value)))
    return value


def _env_marker(value: object) -> dict[str, str | None] | None:
    """The venv's environment marker when it has the keys of pin_sets.env_marker as short
    texts (or null), else None: like a garbled builder marker, it only costs the device the
    environment's install."""
    if not isinstance(value, dict) or set(value) != set(ENV_MARKER_KEYS):
        return None
    if all(text is None or (isinstance(text, str) and len(text) <= 128)
           for text in value.values()):
        return cast("dict[str, str | None]", dict(value))
    return None


def _builder_marker(value: object) -> dict[str, str] | None:
    """The venv's builder marker when it has the two keys as short texts, else None: a marker
    the device garbled only costs it the builder's install, so it is not refused."""
    if not isinstance(value, dict):
        return None
    marker = {key: value.get(key) for key in ("builder_version", "builder_digest")}
    if all(isinstance(text, str) and len(text) <= 128 for text in marker.values()):
        return cast("dict[str, str]", marker)
    return None


def device_platform(host: str, answer: dict[str, Any], engine_names: dict[str, str]
                    ) -> DevicePlatform:
    """The checked platform of ``host`` from its answer to jetson_facts (the registered
    ``jetson_device``: ``jetson`` and ``jetson_state``); Untrusted when it lies.

    ``engine_names``: model -> engine file name (from the catalog), to tell whether the work
    dir holds a finished engine.
    """
    source = "host {}".format(host)
    platform = answer.get("jetson")
    if not isinstance(platform, dict):
        raise trust.Untrusted("{} sent no platform facts".format(source))
    platform_id = trust.component(platform.get("platform_id"), "platform_id", source)
    dla_cores = _count(platform.get("dla_cores") or 0, "dla_cores", source, nullable=False) \
        or 0
    memory = _count(platform.get("memory_mib"), "memory_mib", source, nullable=True)
    state = answer.get("jetson_state")
    if not isinstance(state, dict):
        raise trust.Untrusted("{} sent no builder state (jetson_state)".format(source))
    free = state.get("free_mib")
    return DevicePlatform(
        host=host, platform_id=platform_id,
        module=trust.text(platform.get("module"), "module", source) or "unknown",
        l4t=trust.version(platform.get("l4t"), "l4t", source),
        jetpack=trust.version(platform.get("jetpack"), "jetpack", source),
        memory_mib=memory, dla_cores=dla_cores,
        tensorrt=trust.version(platform.get("tensorrt"), "tensorrt", source),
        compute_capability=_compute_capability(platform.get("compute_capability"), source),
        root_dir=trust.device_path(state.get("root_dir"), "root_dir", source),
        free_mib=free if isinstance(free, int) and not isinstance(free, bool) else None,
        env_installed=isinstance(state.get("env_marker"), dict),
        env_marker=_env_marker(state.get("env_marker")),
        tensorrt_full=trust.text(platform.get("tensorrt_full"), "tensorrt_full", source, 64),
        python=trust.text(platform.get("python"), "python", source, 32),
        builder_marker=_builder_marker(state.get("builder_marker")),
        work=_work_state(host, state.get("models"), engine_names))


def _installed_version(value: object, what: str, source: str) -> dict[str, Any] | None:
    """One of a model's current / previous as jetson_facts reads it, checked."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise trust.Untrusted("{} sent {} {!r}: not a version record".format(
            source, what, trust.shown(value)))
    version = value.get("version")
    if not isinstance(version, str) or not trust.DEPLOY_VERSION.match(version):
        raise trust.Untrusted("{} sent {} version {!r}: not a version name".format(
            source, what, trust.shown(version)))
    checked: dict[str, Any] = {
        "version": version,
        "engine_file": trust.text(value.get("engine_file"), what + " engine_file", source)}
    for key in ("build_key", "engine_sha256"):
        checked[key] = None if value.get(key) is None else trust.sha256_text(
            value.get(key), "{} {}".format(what, key), source)
    checked["platform_id"] = None if value.get("platform_id") is None else trust.component(
        value.get("platform_id"), what + " platform_id", source)
    if "intact" in value:  # current only: its engine hashed on the device
        checked["intact"] = value.get("intact") is not False
    return checked


def _staged(value: object, what: str, source: str) -> dict[str, dict[str, dict[str, Any]]]:
    """A model's staged engines as jetson_facts reads them ({platform_id: {variant:
    {engine_sha256, key_id, intact}}}), checked: names as path components, digests as
    digests. Only compared with the plan, never a path on the controller."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise trust.Untrusted("{} sent {} staged {!r}: not a mapping".format(
            source, what, trust.shown(value)))
    checked: dict[str, dict[str, dict[str, Any]]] = {}
    for platform_id, variants in value.items():
        trust.component(platform_id, what + " staged platform_id", source)
        if not isinstance(variants, dict):
            raise trust.Untrusted("{} sent {} staged {!r}: not a mapping".format(
                source, what, trust.shown(variants)))
        for variant, item in variants.items():
            trust.component(variant, what + " staged variant", source)
            if not isinstance(item, dict):
                raise trust.Untrusted("{} sent {} staged {}/{} {!r}: not a record".format(
                    source, what, platform_id, variant, trust.shown(item)))
            sha = item.get("engine_sha256")
            key_id = item.get("key_id")
            if key_id is not None and not (isinstance(key_id, str) and KEY_ID_RE.match(key_id)):
                raise trust.Untrusted("{} sent {} staged key_id {!r}: not a key id".format(
                    source, what, trust.shown(key_id)))
            checked.setdefault(platform_id, {})[variant] = {
                "engine_sha256": None if sha is None else trust.sha256_text(
                    sha, what + " staged engine_sha256", source),
                "key_id": key_id, "intact": item.get("intact") is True}
    return checked


def deployed_models(host: str, answer: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """What ``host`` says it has installed (``jetson_deployed`` of its answer), checked field
    by field: {model: {"current", "previous", "versions", "links", "link"}}; Untrusted when
    a field is not what jetson_facts sends."""
    source = "host {}".format(host)
    deployed = answer.get("jetson_deployed")
    if deployed is None:
        return {}
    if not isinstance(deployed, dict) or not isinstance(deployed.get("models") or {}, dict):
        raise trust.Untrusted("{} sent jetson_deployed {!r}: not what jetson_facts sends".format(
            source, trust.shown(deployed)))
    models = {}
    for model, state in (deployed.get("models") or {}).items():
        trust.component(model, "an installed model directory", source, trust.MODEL_NAME)
        what = "installed model {}".format(model)
        if not isinstance(state, dict):
            raise trust.Untrusted("{} sent {} {!r}: not a record".format(
                source, what, trust.shown(state)))
        versions = state.get("versions") or []
        links = state.get("links") or []
        if not isinstance(versions, list) or not all(
                isinstance(v, str) and trust.DEPLOY_VERSION.match(v) for v in versions):
            raise trust.Untrusted("{} sent {} versions {!r}: not version names".format(
                source, what, trust.shown(versions)))
        if not isinstance(links, list):
            raise trust.Untrusted("{} sent {} links {!r}: not a list".format(
                source, what, trust.shown(links)))
        models[model] = {
            "current": _installed_version(state.get("current"), what + " current", source),
            "previous": _installed_version(state.get("previous"), what + " previous", source),
            "versions": list(versions),
            "links": [trust.text(line, what + " link", source, max_length=4200)
                      for line in links],
            "link": trust.text(state.get("link"), what + " link", source, max_length=4200),
            "staged": _staged(state.get("staged"), what, source),
        }
    return models


def disk_problem(device: DevicePlatform, graph_bytes: list[int]) -> str | None:
    """Why this device has too little disk for builds of graphs of these sizes (or None)."""
    if device.free_mib is None or not graph_bytes:
        return None
    needed = (0 if device.env_installed else ENV_MIB) + sum(
        PER_MODEL_MIB + GRAPH_COPIES * size // 2**20 for size in graph_bytes)
    if device.free_mib >= needed:
        return None
    return ("device {}: {} has {} MiB free, about {} MiB are needed ({}{} model(s) to build). "
            "Free space on the device, {}".format(
                device.host, device.root_dir, device.free_mib, needed,
                "" if device.env_installed else "the pinned environment, ", len(graph_bytes),
                MOVE_ROOT_DIR))


def _build_options(selection: HostSelection) -> BuildOptions:
    options = selection.options
    return BuildOptions(options.precision, options.workspace_mib, options.max_batch,
                        options.dla_core)


def _refusal(selection: HostSelection, error: UserError) -> str:
    """The builder's refusal, with the inventory file of the option it names."""
    key = next((name for name in INVENTORY_NAMES.values() if str(error).startswith(name)),
               "engine_workspace_mib")
    return "file {}: {}".format(selection.origins.get(key, "group_vars"), error)


def option_problem(selection: HostSelection, device: DevicePlatform) -> str | None:
    """Why this device cannot build with the host's options (None when it can)."""
    try:
        check_options_for_platform(
            _build_options(selection),
            {"module": device.module, "dla_cores": device.dla_cores,
             "memory_mib": device.memory_mib, "tensorrt": device.tensorrt,
             "compute_capability": device.compute_capability},
            names=INVENTORY_NAMES)
    except UserError as error:
        return _refusal(selection, error)
    return None


def engine_path_problem(selection: HostSelection, engine_path: str | None) -> str | None:
    """Why the host's options cannot build a model on ``engine_path`` (None when they can):
    the builder's own check, which the device would make only after the install."""
    try:
        check_options_for_engine_path(_build_options(selection), engine_path,
                                      names=INVENTORY_NAMES)
    except UserError as error:
        return _refusal(selection, error)
    return None


def platform_disagreement(selection: HostSelection, device: DevicePlatform) -> str | None:
    """Why the device's platform is not what the inventory says of the host (None when it
    agrees, or when the inventory says nothing: no group named like a kind and no
    engine_expected_platform). The module is read from the platform_id, the store's key, so
    a device cannot pass a module check and file under another module's id."""
    if not selection.expected_platforms:
        return None
    module = detect.module_of_platform_id(device.platform_id)
    for expected, where in selection.expected_platforms:
        if expected in detect.INVENTORY_KINDS:
            if module in detect.INVENTORY_KINDS[expected]:
                continue
            said = "a {} ({}: module {})".format(
                expected, where, " or ".join(detect.INVENTORY_KINDS[expected]))
        elif expected == device.platform_id:
            continue
        else:
            said = "platform {} ({})".format(expected, where)
        return ("host {}: the inventory says it is {}, but the device reports platform {}. "
                "Nothing is built for it or sent to it. If the board was replaced or moved, "
                "put the host in the inventory group of its kind, or set "
                "engine_expected_platform in its host_vars to what it is; if not, the device "
                "is not what it claims: look at it before the next run".format(
                    selection.host, said, device.platform_id))
    return None
