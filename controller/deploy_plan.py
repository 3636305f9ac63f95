"""deploy_engines.yml's decisions: per host and model, what the deploy does.

For each host of the batch: its own build keys (its platform_id from jetson_facts, the graph
sha256 of the catalog, its checked engine options: the key build_engines.yml uses,
controller/keys.py), the store entry of that key (never a file name), whether that entry is
intact (hashed against its manifest before anything is pushed), and what the device already
runs (ansible_facts.jetson_deployed). Actions: ``deploy`` (push: the version is not on the
device yet), ``up_to_date``, ``refused`` (no engine for the key, or a corrupt store entry:
the device keeps its engine) and, with rollback, ``rollback``.
"""

from __future__ import annotations

from builder import __version__ as BUILDER_VERSION
from module_utils.trt_deploy import version_name

from .keys import host_build_keys
from .plan import builder_source_digest
from .selection import HostSelection
from .store import EngineStore

REBUILD_FIX = ("run build_engines.yml (e.g. ansible-playbook build_engines.yml -i <inventory> "
               "--limit {host}) to build it, then deploy again")


def _from(current):
    """What the device runs before this run (current version, its build key and platform)."""
    return {"from_version": current.get("version"), "from_build_key": current.get("build_key"),
            "from_platform_id": current.get("platform_id")}


def plan_model(host, model, key, platform_id, *, installed, store, verified):
    """The action for one host and model. ``installed``: jetson_deployed.models[model] or {}.
    ``verified``: cache build_key -> verify() result, so each store engine is hashed once."""
    current = installed.get("current") or {}
    entry = dict(_from(current), build_key=key, platform_id=platform_id, push=False)
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


def plan_rollback(model, platform_id, installed):
    current = installed.get("current") or {}
    previous = installed.get("previous") or {}
    entry = dict(_from(current), build_key=previous.get("build_key"), platform_id=platform_id,
                 push=False)
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


def _problem(host, key, text, fix):
    return "host '{}', key '{}' ({}): {}. {}".format(host, key, SETTINGS_FILE.format(host),
                                                    text, fix)


def _check_action(host, key, value, forms, fix):
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


def settings_problems(host, host_vars):
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
    problems += _check_action(
        host, "engine_deploy_restart", host_vars.get("engine_deploy_restart"),
        ("systemd", "command"), "Write {systemd: <unit>} or {command: <command line>}, or null.")
    problems += _check_action(
        host, "engine_deploy_health", host_vars.get("engine_deploy_health"), ("command", "url"),
        "Write {command: <command line>} or {url: http://...}, optionally with retries and "
        "delay, or null.")
    return problems


def plan_line(host, model, item):
    if item["action"] == "up_to_date":
        what = "up to date ({})".format(item["version"])
    elif item["action"] == "refused":
        what = "refused: {}".format(item["reason"])
    else:
        what = "{} -> {}{}".format(item["from_version"] or "nothing", item["version"],
                                   " (rollback)" if item["action"] == "rollback" else "")
    return "{:<16} {:<26} {}".format(host, model, what)


class DeploySettingsError(Exception):
    """engine_deploy_* settings that are wrong; every problem with its fix."""


def make_deploy_plan(hosts: list, hostvars, store_dir: str, rollback: bool) -> tuple[dict, list]:
    """(the deploy plan of the batch, its lines) for the hosts with facts."""
    store = EngineStore(store_dir)
    verified = {}
    planned, lines, problems = {}, [], []
    for host in hosts:
        host_vars = hostvars[host]
        problems += settings_problems(host, host_vars)
        facts = host_vars.get("ansible_facts") or {}
        platform = facts.get("jetson")
        if not platform:
            continue  # failed or unreachable before its facts: reported as such
        checked = host_vars["preflight_result"]  # playbooks/tasks/preflight.yml
        selection = HostSelection.from_dict(checked["selections"][host])
        platform_id = platform["platform_id"]
        deployed = (facts.get("jetson_deployed") or {}).get("models") or {}
        keys = {} if rollback else host_build_keys(
            selection, platform_id, checked["catalog"], platform.get("tensorrt"))
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
        planned[host] = {"platform_id": platform_id, "models": models,
                         "work": sorted(work), "files": files}
    if problems:
        raise DeploySettingsError("deploy settings: {} problem(s), nothing was changed:\n{}"
                                  .format(len(problems), "\n".join(problems)))
    pending = sum(len(plan["work"]) for plan in planned.values())
    return {"hosts": planned, "pending": pending, "rollback": rollback,
            "store_dir": store_dir, "builder_version": BUILDER_VERSION,
            "builder_digest": builder_source_digest()}, lines or ["no host to plan"]
