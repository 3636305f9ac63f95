"""What a device reported about itself (jetson_facts), checked before anything uses it.

Devices are not trusted: every value that can end up in a controller path (platform_id, the
model directories of its work dir) is checked against a strict pattern, and a device that
sends something else is refused with what it sent. The option checks that only need the
facts (DLA cores, workspace against memory) run here, in the plan, before any install or
push; they are the builder's own checks (builder/trt/build.py), called with the inventory's
variable names.
"""

from __future__ import annotations

from dataclasses import dataclass

from builder.errors import UserError
from builder.trt.adapter import BuildOptions
from builder.trt.build import check_options_for_platform

from . import trust
from .selection import HostSelection

INVENTORY_NAMES = {"dla_core": "engine_dla_core", "workspace_mib": "engine_workspace_mib"}


@dataclass(frozen=True)
class DevicePlatform:
    host: str
    platform_id: str
    module: str
    memory_mib: int | None
    dla_cores: int
    tensorrt: str | None
    supported: bool
    support_reason: str | None
    # model -> {"graphs": {name: sha256}, "engine_build_key": key or None} of its work dir
    work: dict

    def as_dict(self) -> dict:
        return self.__dict__.copy()


def _work_state(host: str, models: dict, engine_names: dict[str, str]) -> dict:
    source = "host {}".format(host)
    work = {}
    for model, state in (models or {}).items():
        trust.component(model, "a work directory", source, trust.MODEL_NAME)
        state = state if isinstance(state, dict) else {}
        graphs = state.get("graphs") if isinstance(state.get("graphs"), dict) else {}
        engines = state.get("engines") if isinstance(state.get("engines"), dict) else {}
        manifest = state.get("manifest") if isinstance(state.get("manifest"), dict) else {}
        engine = engine_names.get(model)
        work[model] = {
            "graphs": {name: digest for name, digest in graphs.items() if isinstance(digest, str)},
            "engine_build_key": manifest.get("build_key") if engine in engines else None,
        }
    return work


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
    return DevicePlatform(
        host=host, platform_id=platform_id, module=str(platform.get("module") or "unknown"),
        memory_mib=memory, dla_cores=dla_cores, tensorrt=platform.get("tensorrt"),
        supported=bool(platform.get("supported", True)),
        support_reason=platform.get("support_reason"),
        work=_work_state(host, state.get("models"), engine_names))


def option_problem(selection: HostSelection, device: DevicePlatform) -> str | None:
    """Why this device cannot build with the host's options (None when it can)."""
    options = selection.options
    try:
        check_options_for_platform(
            BuildOptions(options.precision, options.workspace_mib, options.max_batch,
                         options.dla_core),
            {"module": device.module, "dla_cores": device.dla_cores,
             "memory_mib": device.memory_mib},
            names=INVENTORY_NAMES)
    except UserError as error:
        key = "engine_dla_core" if "dla_core" in str(error) else "engine_workspace_mib"
        return "file {}: {}".format(selection.origins.get(key, "group_vars"), error)
    return None
