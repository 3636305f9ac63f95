"""deploy_engines.yml's decisions: per host and model, what the deploy does.

For each host of the batch: its own build keys (its platform_id from jetson_facts, the graph
sha256 of the catalog, its checked engine options: the key build_engines.yml uses,
controller/keys.py), the store entry of that key (never a file name), whether that entry is
intact (hashed against its manifest before anything is pushed), and what the device already
runs (``jetson_deployed`` of the device's answer, the registered ``jetson_device``, checked field
by field: controller/device.py). Actions: ``deploy`` (push: the version is not on the
device yet), ``up_to_date``, ``refused`` (no engine for the key, or a corrupt store entry:
the device keeps its engine) and, with rollback, ``rollback``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from builder import __version__ as BUILDER_VERSION
from module_utils.trt_deploy import version_name

from . import guards, trust
from .device import DevicePlatform, deployed_models, device_platform, platform_disagreement
from .keys import host_build_keys
from .plan import builder_source_digest, confirmation_due
from .selection import HostSelection
from .store import EngineStore

REBUILD_FIX = ("run build_engines.yml (e.g. ansible-playbook build_engines.yml -i <inventory> "
               "--limit {host}) to build it, then deploy again")


def _from(current: dict[str, Any]) -> dict[str, Any]:
    """What the device runs before this run (current version, its build key and platform)."""
    return {"from_version": current.get("version"), "from_build_key": current.get("build_key"),
            "from_platform_id": current.get("platform_id")}


LINK_FIX = ("Fix: remove the link on the device (its target stays where it is), or move what it "
            "points at into the install root; the deploy follows no link below the install "
            "root (engine_deploy_install_root)")


def plan_model(host: str, model: str, key: str, platform_id: str, *, installed: dict[str, Any],
               store: EngineStore, verified: dict[str, str | None]) -> dict[str, Any]:
    """The action for one host and model. ``installed``: jetson_deployed.models[model] or {}.
    ``verified``: cache build_key -> verify() result, so each store engine is hashed once."""
    current = installed.get("current") or {}
    entry = dict(_from(current), build_key=key, platform_id=platform_id, push=False)
    if installed.get("link"):
        return dict(entry, action="refused", reason="{}: nothing was pushed. {}".format(
            installed["link"], LINK_FIX))
    found = store.lookup(key)
    if found is None:
        reason = "the store has no engine for its build key {} (platform {})".format(
            key[:12], platform_id)
        if current.get("platform_id") and current["platform_id"] != platform_id:
            reason += ("; the installed engine {} was built for {} but this device is now {} "
                       "(JetPack upgraded since the build?)").format(
                           current.get("version"), current["platform_id"], platform_id)
        return dict(entry, action="refused", reason="{}: it keeps {}. Fix: {}".format(
            reason, current.get("version") or "no engine", REBUILD_FIX.format(host=host)))
    if current.get("build_key") == key and current.get("engine_sha256") == found.engine_sha256:
        return dict(entry, action="up_to_date", version=current.get("version"))
    if confirmation_due(found, host):
        return dict(entry, action="refused", reason=(
            "the store's engine for its build key {} was built on {} and no second device of "
            "platform {} has verified it yet: until one has, it goes to {} only; it keeps {}. "
            "Fix: run build_engines.yml with {} and this host in the run (e.g. --limit {},{}): "
            "this host verifies it, then deploy again").format(
                key[:12], found.built_on, platform_id, found.built_on,
                current.get("version") or "no engine", found.built_on, found.built_on, host))
    if key not in verified:
        verified[key] = store.verify(found, full=True)  # pushed to devices: hash it
    if verified[key]:
        return dict(entry, action="refused", reason=(
            "store entry {} is corrupt: {}; nothing was pushed, it keeps {}. Fix: run "
            "build_engines.yml (its plan moves the entry to the store's .quarantine/ and "
            "rebuilds it), then deploy again").format(
                found.dir, verified[key], current.get("version") or "no engine"))
    version = version_name(key, found.engine_sha256)
    return dict(entry, action="deploy", version=version, engine_sha256=found.engine_sha256,
                variant=found.variant, push=version not in (installed.get("versions") or []),
                store_engine=str(found.engine_path), store_manifest=str(found.manifest_path))


def plan_rollback(model: str, platform_id: str, installed: dict[str, Any]) -> dict[str, Any]:
    current = installed.get("current") or {}
    previous = installed.get("previous") or {}
    entry = dict(_from(current), build_key=previous.get("build_key"), platform_id=platform_id,
                 push=False)
    if installed.get("link"):
        return dict(entry, action="refused", reason="{}: nothing was switched. {}".format(
            installed["link"], LINK_FIX))
    if not previous.get("version") or previous.get("version") == current.get("version"):
        return dict(entry, action="refused", reason=(
            "{}: no previous version to roll back to (current: {}); it keeps its engine"
            .format(model, current.get("version") or "none")))
    if previous.get("platform_id") != platform_id:
        return dict(entry, action="refused", reason=(
            "{}: the previous version {} was built for {}, this device is {}; it keeps its "
            "engine".format(model, previous["version"], previous.get("platform_id"),
                            platform_id)))
    return dict(entry, action="rollback", version=previous["version"])


SETTINGS_FILE = "group_vars/<group>.yml or host_vars/{}.yml"


def _problem(host: str, key: str, text: str, fix: str) -> str:
    return "host '{}', key '{}' ({}): {}. {}".format(host, key, SETTINGS_FILE.format(host),
                                                    text, fix)


def _check_action(host: str, key: str, value: object, forms: tuple[str, ...], fix: str
                  ) -> list[str]:
    """``value`` must be null or a dict with exactly one of ``forms`` (a non-empty string)."""
    if value is None:
        return []
    if not isinstance(value, dict) or len([f for f in forms if f in value]) != 1:
        return [_problem(host, key, "{!r} is not one of the forms {}".format(
            value, " / ".join("{{{}: ...}}".format(f) for f in forms)), fix)]
    form = next(f for f in forms if f in value)
    if not isinstance(value[form], str) or not value[form].strip():
        return [_problem(host, key, "{} is {!r}, expected a non-empty string".format(
            form, value[form]), fix)]
    problems = []
    for number in ("retries", "delay"):
        if number in value and not (isinstance(value[number], int) and value[number] >= 0):
            problems.append(_problem(host, key, "{} is {!r}, expected a whole number >= 0"
                                     .format(number, value[number]), fix))
    return problems


def settings_problems(host: str, host_vars: Mapping[str, Any]) -> list[str]:
    """Every problem of one host's engine_deploy_* settings, each with the fix."""
    problems = []
    keep = host_vars.get("engine_deploy_keep", 2)
    if not (isinstance(keep, int) and not isinstance(keep, bool) and keep >= 0):
        problems.append(_problem(host, "engine_deploy_keep", "{!r} is not a whole number >= 0"
                                 .format(keep), "Set how many earlier versions to keep, e.g. 2."))
    root = host_vars.get("engine_deploy_install_root", "/opt/trt-engines")
    if not (isinstance(root, str) and root.startswith("/") and root.rstrip("/")):
        problems.append(_problem(host, "engine_deploy_install_root", "{!r} is not an absolute "
                                 "directory".format(root), "Use e.g. /opt/trt-engines."))
    else:
        # A path on the device: not resolved here (controller/guards.py).
        why = guards.system_path_problem(root, homes={"/root"}, resolve=False) or \
            guards.control_character_problem(root, "the value")
        if why:
            problems.append(_problem(
                host, "engine_deploy_install_root", "{}: the deploy creates, switches and "
                "prunes directories there".format(why), "Give the engines a directory of "
                "their own, e.g. /opt/trt-engines."))
    problems += _check_action(
        host, "engine_deploy_restart", host_vars.get("engine_deploy_restart"),
        ("systemd", "command"), "Write {systemd: <unit>} or {command: <command line>}, or null.")
    problems += _check_action(
        host, "engine_deploy_health", host_vars.get("engine_deploy_health"), ("command", "url"),
        "Write {command: <command line>} or {url: http://...}, optionally with retries and "
        "delay, or null.")
    return problems


def plan_line(host: str, model: str, item: dict[str, Any]) -> str:
    if item["action"] == "up_to_date":
        what = "up to date ({})".format(item["version"])
    elif item["action"] == "refused":
        what = "refused: {}".format(item["reason"])
    else:
        what = "{} -> {}{}".format(item["from_version"] or "nothing", item["version"],
                                   " (rollback)" if item["action"] == "rollback" else "")
    return "{:<16} {:<26} {}".format(host, model, what)


def _checked_device(host: str, answer: dict[str, Any], selection: HostSelection
                    ) -> tuple[DevicePlatform | None, dict[str, dict[str, Any]], str]:
    """(the device's checked platform, its installed models, "") or (None, {}, why it is
    refused): its answer lies, or its platform is not what the inventory says of it."""
    try:
        device = device_platform(host, answer, {})
        deployed = deployed_models(host, answer)
    except trust.Untrusted as error:
        return None, {}, str(error)
    disagreement = platform_disagreement(selection, device)
    if disagreement:
        return None, {}, disagreement
    return device, deployed, ""


class DeploySettingsError(Exception):
    """engine_deploy_* settings that are wrong; every problem with its fix."""


def make_deploy_plan(hosts: list[str], hostvars: Mapping[str, Any], store_dir: str,
                     rollback: bool, *, check_mode: bool = False
                     ) -> tuple[dict[str, Any], list[str]]:
    """(the deploy plan of the batch, its lines) for the hosts with facts. In check mode the
    store is only read (an unreadable index is rebuilt in memory, not written)."""
    store = EngineStore(store_dir, read_only=check_mode)
    verified: dict[str, str | None] = {}
    planned: dict[str, dict[str, Any]] = {}
    lines: list[str] = []
    problems: list[str] = []
    models: dict[str, dict[str, Any]]  # model -> its action, for each host in turn
    for host in hosts:
        host_vars = hostvars[host]
        problems += settings_problems(host, host_vars)
        # The device's answer: one registered result (playbooks/tasks/facts.yml), checked.
        answer = host_vars.get("jetson_device") or {}
        if answer.get("failed") or "jetson" not in answer:
            continue  # failed or unreachable before its facts: reported as such
        checked = host_vars["preflight_result"]  # playbooks/tasks/preflight.yml
        selection = HostSelection.from_dict(checked["selections"][host])
        device, deployed, refusal = _checked_device(host, answer, selection)
        if device is None:
            models = {model: {"action": "refused", "reason": "{}; nothing was pushed".format(
                refusal), "push": False, "platform_id": None, "build_key": None,
                "from_version": None, "from_build_key": None, "from_platform_id": None}
                for model in selection.models}
            lines += [plan_line(host, model, item) for model, item in models.items()]
            planned[host] = {"platform_id": None, "models": models, "work": [], "files": [],
                             "prepare": []}
            continue
        platform_id = device.platform_id
        keys = {} if rollback else host_build_keys(
            selection, platform_id, checked["catalog"], device.tensorrt)
        models = {}
        for model in selection.models:
            installed = deployed.get(model) or {}
            if rollback:
                models[model] = plan_rollback(model, platform_id, installed)
            else:
                models[model] = plan_model(host, model, keys[model][0], platform_id,
                                           installed=installed, store=store,
                                           verified=verified)
            lines.append(plan_line(host, model, models[model]))
        work = [m for m, item in models.items() if item["action"] in ("deploy", "rollback")]
        files = [{"model": m, "version": item["version"], "src": src}
                 for m, item in sorted(models.items()) if item["push"]
                 for src in (item["store_engine"], item["store_manifest"])]
        # engine_deploy state=prepare: the push's destinations, made without following links.
        prepare = [{"model": m, "version": models[m]["version"] if models[m]["push"] else None}
                   for m in sorted(work)]
        planned[host] = {"platform_id": platform_id, "models": models,
                         "work": sorted(work), "files": files, "prepare": prepare}
    if problems:
        raise DeploySettingsError("deploy settings: {} problem(s), nothing was changed:\n{}"
                                  .format(len(problems), "\n".join(problems)))
    pending = sum(len(plan["work"]) for plan in planned.values())
    return {"hosts": planned, "pending": pending, "rollback": rollback,
            "store_dir": store_dir, "builder_version": BUILDER_VERSION,
            "builder_digest": builder_source_digest()}, lines or ["no host to plan"]
