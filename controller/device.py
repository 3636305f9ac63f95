"""What a device reported about itself (jetson_facts), checked before anything uses it.

Devices are not trusted: every value that can end up in a controller path (platform_id, the
model directories of its work dir) is checked against a strict pattern, and a device that
sends something else is refused with what it sent. The option checks that only need the
facts (DLA cores, workspace against memory) run here, in the plan, before any install or
push; they are the builder's own checks (builder/trt/build.py), called with the inventory's
variable names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from builder.errors import UserError
from builder.trt.adapter import BuildOptions
from builder.trt.build import check_options_for_platform

from . import trust
from .selection import HostSelection

INVENTORY_NAMES = {"dla_core": "engine_dla_core", "workspace_mib": "engine_workspace_mib",
                   "precision": "engine_precision"}
COMPUTE_CAPABILITY = re.compile(r"^\d{1,2}\.\d{1,2}$")
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
    memory_mib: int | None
    dla_cores: int
    tensorrt: str | None
    compute_capability: str | None
    supported: bool
    support_reason: str | None
    root_dir: str
    free_mib: int | None
    env_installed: bool
    # model -> {"graphs": {name: sha256}, "engine_build_key": key or None} of its work dir
    work: dict

    def as_dict(self) -> dict:
        return self.__dict__.copy()


def _work_state(host: str, models: dict, engine_names: dict[str, str]) -> dict:
    source = "host {}".format(host)
    work = {}
    for model, state in (models or {}).items():
        trust.component(model, "a work directory", source, trust.MODEL_NAME)
        listed = state if isinstance(state, dict) else {}
        graphs = listed.get("graphs") if isinstance(listed.get("graphs"), dict) else {}
        engines = listed.get("engines") if isinstance(listed.get("engines"), dict) else {}
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


def device_platform(host: str, facts: dict, engine_names: dict[str, str]) -> DevicePlatform:
    """The checked platform of ``host`` from its ``ansible_facts`` (Untrusted when it lies).

    ``engine_names``: model -> engine file name (from the catalog), to tell whether the work
    dir holds a finished engine.
    """
    source = "host {}".format(host)
    platform = facts.get("jetson")
    if not isinstance(platform, dict):
        raise trust.Untrusted("{} sent no platform facts".format(source))
    platform_id = trust.component(platform.get("platform_id"), "platform_id", source)
    dla_cores = platform.get("dla_cores") or 0
    memory = platform.get("memory_mib")
    if not isinstance(dla_cores, int) or not (memory is None or isinstance(memory, int)):
        raise trust.Untrusted("{} sent dla_cores {!r} / memory_mib {!r}: not numbers".format(
            source, dla_cores, memory))
    state = facts.get("jetson_state") if isinstance(facts.get("jetson_state"), dict) else {}
    free = state.get("free_mib")
    return DevicePlatform(
        host=host, platform_id=platform_id, module=str(platform.get("module") or "unknown"),
        memory_mib=memory, dla_cores=dla_cores, tensorrt=platform.get("tensorrt"),
        compute_capability=_compute_capability(platform.get("compute_capability"), source),
        supported=bool(platform.get("supported", True)),
        support_reason=platform.get("support_reason"),
        root_dir=str(state.get("root_dir") or "the builder's directory"),
        free_mib=free if isinstance(free, int) and not isinstance(free, bool) else None,
        env_installed=isinstance(state.get("env_marker"), dict),
        work=_work_state(host, state.get("models"), engine_names))


def disk_problem(device: DevicePlatform, graph_bytes: list[int]) -> str | None:
    """Why this device has too little disk for builds of graphs of these sizes (or None)."""
    if device.free_mib is None or not graph_bytes:
        return None
    needed = (0 if device.env_installed else ENV_MIB) + sum(
        PER_MODEL_MIB + GRAPH_COPIES * size // 2**20 for size in graph_bytes)
    if device.free_mib >= needed:
        return None
    return ("device {}: {} has {} MiB free, about {} MiB are needed ({}{} model(s) to build). "
            "Free space on the device, or set jetson_facts_root_dir and jetson_env_root_dir "
            "(group_vars or host_vars) to a directory on a larger disk".format(
                device.host, device.root_dir, device.free_mib, needed,
                "" if device.env_installed else "the pinned environment, ", len(graph_bytes)))


def option_problem(selection: HostSelection, device: DevicePlatform) -> str | None:
    """Why this device cannot build with the host's options (None when it can)."""
    options = selection.options
    try:
        check_options_for_platform(
            BuildOptions(options.precision, options.workspace_mib, options.max_batch,
                         options.dla_core),
            {"module": device.module, "dla_cores": device.dla_cores,
             "memory_mib": device.memory_mib, "tensorrt": device.tensorrt,
             "compute_capability": device.compute_capability},
            names=INVENTORY_NAMES)
    except UserError as error:
        key = next((name for name in INVENTORY_NAMES.values() if str(error).startswith(name)),
                   "engine_workspace_mib")
        return "file {}: {}".format(selection.origins.get(key, "group_vars"), error)
    return None
