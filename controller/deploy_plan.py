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

import hashlib
import json
import posixpath
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from builder.atomic import file_sha256
from builder.platform.detect import tensorrt_of_platform_id
from module_utils.trt_deploy import (
    DEPLOY_WHEELS,
    GUARD_DIR,
    GUARD_KEYS,
    GUARD_MARKER,
    INCOMING,
    KEYRING_FILE,
    STAGE_INCOMING,
    STATEMENT,
)
from module_utils.trt_deploy_write import (
    version_name,
)

from . import guards, schema, signing, trust
from .builder_wheel import builder_source_digest, ensure_wheel, installed_marker, wheel_path
from .device import DevicePlatform, deployed_models, device_platform, platform_disagreement
from .device_push import SHARED, push_commands, pushed_file
from .keys import host_build_keys
from .repository import REPOSITORY
from .selection import HostSelection
from .store import EngineStore, StoreEntry

# The guard <root>/bin/trt-engine-path (engine_deploy state=prepare, guard): these repository
# files at the same relative paths under <root>/bin/lib/ (the builder's own platform
# detection, not a copy of it), and the launcher made from GUARD_TEMPLATE.
GUARD_FILES = ("module_utils/trt_engine_guard.py", "module_utils/trt_signature.py",
               "module_utils/trt_deploy.py", "module_utils/trt_deploy_write.py",
               "builder/__init__.py", "builder/errors.py",
               "builder/platform/__init__.py", "builder/platform/detect.py")
GUARD_TEMPLATE = "roles/engine_deploy/templates/trt-engine-path.j2"
STAGE_SETTING = "engine_deploy_stage_platforms"

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
    if model == GUARD_DIR:
        return dict(entry, action="refused", reason=(
            "<install root>/{} holds the guard trt-engine-path, a model cannot be installed "
            "there: rename the model in the catalog".format(GUARD_DIR)))
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
    damaged = current.get("intact") is False  # altered on the device: pushed again
    if current.get("build_key") == key and current.get("engine_sha256") == found.engine_sha256 \
            and not damaged:
        return dict(entry, action="up_to_date", version=current.get("version"))
    why = entry_problem(store, found, verified)
    if why:
        return dict(entry, action="refused", reason="{}; nothing was pushed, it keeps {}".format(
            why, current.get("version") or "no engine"))
    version = version_name(key, found.engine_sha256)
    return dict(entry, action="deploy", version=version, engine_sha256=found.engine_sha256,
                variant=found.variant, push=version not in (installed.get("versions") or [])
                or (damaged and current.get("version") == version),
                store_engine=str(found.engine_path), store_manifest=str(found.manifest_path),
                store_statement=str(found.dir / STATEMENT))


def entry_problem(store: EngineStore, found: StoreEntry, verified: dict[str, str | None]
                  ) -> str | None:
    """Why a store entry must not reach a device (its engine does not match its manifest, or
    its statement is missing, altered or signed by a key the fleet does not accept), with
    the fix; None when it may. Cached per build key in ``verified``."""
    key = found.build_key
    if key not in verified:
        corrupt = store.verify(found, full=True)  # pushed to devices: hash it
        if corrupt:
            verified[key] = (
                "store entry {} is corrupt: {}. Fix: run build_engines.yml (its plan moves "
                "the entry to the store's .quarantine/ and rebuilds it), then deploy again"
                .format(found.dir, corrupt))
        else:
            try:
                unsigned: object = store.statement_problem(found)
            except signing.SigningError as error:
                unsigned = error
            verified[key] = None if unsigned is None else (
                "store entry {} has no valid statement: {}. Fix: python3 -m controller store "
                "check {} names every such entry; store repair re-signs those of an intact "
                "engine with a missing or retired-key statement and quarantines the others "
                "(rebuilt by the next build_engines.yml)".format(found.dir, unsigned,
                                                                  store.root))
    return verified[key]


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
    keep = schema.deploy_setting(host_vars, "engine_deploy_keep")
    if not (isinstance(keep, int) and not isinstance(keep, bool) and keep >= 0):
        problems.append(_problem(host, "engine_deploy_keep", "{!r} is not a whole number >= 0"
                                 .format(keep), "Set how many earlier versions to keep, e.g. 2."))
    root = schema.deploy_setting(host_vars, "engine_deploy_install_root")
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
    targets = host_vars.get(STAGE_SETTING) or []
    if targets and not stage_targets(host_vars):
        problems.append(_problem(host, STAGE_SETTING, "{!r} is not a list of platform_ids"
                                 .format(targets), "List platform_ids as the store names them "
                                 "(e.g. jetson-agx-xavier_l4t35.4.1_trt8.5.2: python3 -m builder "
                                 "platform on a device of that JetPack prints it), or [] ."))
    problems += _check_action(
        host, "engine_deploy_restart", schema.deploy_setting(host_vars, "engine_deploy_restart"),
        ("systemd", "command"), "Write {systemd: <unit>} or {command: <command line>}, or null.")
    problems += _check_action(
        host, "engine_deploy_health", schema.deploy_setting(host_vars, "engine_deploy_health"),
        ("command", "url"),
        "Write {command: <command line>} or {url: http://...}, optionally with retries and "
        "delay, or null.")
    return problems


def stage_targets(host_vars: Mapping[str, Any]) -> list[str]:
    """The host's engine_deploy_stage_platforms when it is a list of platform_ids, else []
    (settings_problems names it)."""
    targets = host_vars.get(STAGE_SETTING) or []
    if isinstance(targets, list) and all(
            isinstance(p, str) and trust.PATH_COMPONENT.match(p) and tensorrt_of_platform_id(p)
            for p in targets):
        return list(targets)
    return []


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


def _stage_host(host_vars: Mapping[str, Any], models: dict[str, dict[str, Any]], *,
                deployed: dict[str, dict[str, Any]], answer: dict[str, Any],
                context: dict[str, Any]) -> dict[str, Any]:
    """The host's staging (engine_deploy state=stage) and guard install: {stage,
    stage_files, stage_view, stage_platforms, guard, device_work}."""
    items, files, view = [], [], {}
    needed = False
    for model, item in sorted(models.items()):
        if item["action"] == "refused" and (deployed.get(model) or {}).get("link"):
            continue  # a model directory that is a link: nothing is written there
        staging = stage_model(model, item, deployed.get(model) or {}, context=context)
        items += staging["items"]
        files += staging["files"]
        view[model] = staging["view"]
        needed = needed or staging["needed"]
    python = str(host_settings(host_vars)["system_python"])
    marker = {"guard_digest": guard_digest(python), "keyring_sha256": context["keyring_sha256"]}
    found = (answer.get("jetson_deployed") or {}).get("guard_marker")
    # Without a keyring (nothing was ever signed) every entry is refused: nothing to install.
    install = found != marker and context["keyring_sha256"] is not None
    work = [m for m, item in models.items() if item["action"] in ("deploy", "rollback")]
    prepare_stage = sorted({(f["model"], f["platform_id"], f["variant"]) for f in files})
    return {"stage": items, "stage_files": files, "stage_view": view,
            "prepare_stage": [{"model": m, "platform_id": p, "variant": v}
                              for m, p, v in prepare_stage],
            "stage_platforms": list(context["targets"]),
            "guard": {"install": install, "marker": marker, "python": python,
                      "files": guard_host_files(python, marker) if install else []},
            "device_work": bool(work) or needed or install}


# The deploy variables each device's tasks use (roles/engine_deploy: engine_deploy_settings),
# without their engine_deploy_ prefix.
HOST_SETTINGS = ("install_root", "keep", "restart", "health", "system_python")


def host_settings(host_vars: Mapping[str, Any]) -> dict[str, Any]:
    """The host's deploy settings (its values, else the defaults of controller/schema.py)."""
    settings = {name: schema.deploy_setting(host_vars, "engine_deploy_" + name)
                for name in HOST_SETTINGS}
    # An empty system Python is the default one (as the guard's launcher needs one).
    settings["system_python"] = settings["system_python"] or \
        schema.BY_NAME["engine_deploy_system_python"].default
    return settings


def env_marker() -> dict[str, str]:
    """What the deploy venv must hold (trt-deploy-env.json, which jetson_facts reads back)."""
    return installed_marker(builder_source_digest())


def plan_wheel(planned: Mapping[str, dict[str, Any]], digest: str, check_mode: bool
               ) -> dict[str, str]:
    """The builder wheel the devices that install the deploy venv get: {src, name}, built on
    the controller when one of them needs it (controller/builder_wheel.py); in check mode
    only its path (the repository is not written)."""
    needed = any(plan.get("env", {}).get("install") for plan in planned.values())
    path = ensure_wheel(digest) if needed and not check_mode else wheel_path(digest)
    return {"src": str(path), "name": path.name}


def host_push(plan: Mapping[str, Any], wheel: Mapping[str, str]) -> list[dict[str, str]]:
    """Every file a device's deploy sends (plugins/action/engine_push.py, after engine_deploy
    state=prepare readied the directories): the builder wheel when the deploy venv is
    installed, each new engine with its manifest and statement beside the installed versions
    (<model>/.incoming/<version>/, never loaded from there), and the engines staged for other
    platforms (<model>/.stage-incoming/<platform_id>/<variant>/)."""
    root = str((plan.get("settings") or {}).get("install_root") or "")
    push = []
    if (plan.get("env") or {}).get("install"):
        push.append(pushed_file(wheel["src"], posixpath.join(root, DEPLOY_WHEELS), wheel["name"],
                                "builder wheel " + wheel["name"]))
    for item in plan.get("files") or []:
        name = posixpath.basename(item["src"])
        push.append(pushed_file(item["src"], posixpath.join(
            root, item["model"], INCOMING, item["version"]), name, "{}/{}/{}".format(
            item["model"], item["version"], name)))
    for item in plan.get("stage_files") or []:
        name = posixpath.basename(item["src"])
        push.append(pushed_file(item["src"], posixpath.join(
            root, item["model"], STAGE_INCOMING, item["platform_id"], item["variant"]), name,
            "{}/{}/{}/{}".format(item["model"], item["platform_id"], item["variant"], name)))
    return push


class DeploySettingsError(Exception):
    """engine_deploy_* settings that are wrong; every problem with its fix."""


def guard_launcher(python: str) -> str:
    """The launcher bin/trt-engine-path running ``python`` (GUARD_TEMPLATE rendered)."""
    return (REPOSITORY / GUARD_TEMPLATE).read_text(encoding="utf-8").replace(
        "{{ engine_deploy_system_python }}", python)


def guard_files(keyring_file: Path | None) -> list[dict[str, str]]:
    """The guard's files every device gets (engine_deploy state=prepare, O(guard)), relative
    to <root>/bin/: GUARD_FILES under lib/, lib/module_utils/__init__.py, the keyring."""
    files = [{"path": "lib/" + name, "mode": "0644",
              "content": (REPOSITORY / name).read_text(encoding="utf-8")}
             for name in GUARD_FILES]
    files.append({"path": "lib/module_utils/__init__.py", "mode": "0644", "content": ""})
    if keyring_file is not None:
        files.append({"path": "{}/{}".format(GUARD_KEYS, KEYRING_FILE), "mode": "0644",
                      "content": keyring_file.read_text(encoding="utf-8")})
    return files


def guard_host_files(python: str, marker: dict[str, Any]) -> list[dict[str, str]]:
    """A device's own guard files, after guard_files(): the launcher, then guard.json (last:
    a run cut short installs again; jetson_facts reads it back)."""
    return [{"path": "trt-engine-path", "mode": "0755", "content": guard_launcher(python)},
            {"path": GUARD_MARKER, "mode": "0644",
             "content": json.dumps(marker, indent=4, sort_keys=True, separators=(",", ": "))
             + "\n"}]


def guard_digest(python: str) -> str:
    """What the guard installed with ``python`` is made of (its files, the launcher)."""
    digest = hashlib.sha256(python.encode())
    for name in GUARD_FILES + (GUARD_TEMPLATE,):
        digest.update(name.encode() + b"\0" + (REPOSITORY / name).read_bytes() + b"\0")
    return digest.hexdigest()


def statement_key_id(found: StoreEntry) -> str | None:
    """The key that signed a store entry's statement (None when it has none readable)."""
    try:
        document = json.loads((found.dir / STATEMENT).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    key_id = document.get("key_id") if isinstance(document, dict) else None
    return key_id if isinstance(key_id, str) else None


def _renewed_statement(item: dict[str, Any], staged: dict[str, Any], platform_id: str,
                       variant: str, store: EngineStore) -> str | None:
    """The store entry's statement to push for the engine current runs, when the entry was
    re-signed with another key than the device's copy carries (and its statement holds)."""
    if item["action"] != "up_to_date":
        return None  # a deploy pushes the entry's statement with it; a rollback has none
    found = store.lookup(item["build_key"])
    if found is None:  # up to date: current runs this entry's engine
        return None
    try:
        if store.statement_problem(found) is not None:
            return None
    except signing.SigningError:
        return None
    device_key = ((staged.get(platform_id) or {}).get(variant) or {}).get("key_id")
    if device_key == statement_key_id(found):
        return None
    return str(found.dir / STATEMENT)


def _staged_ok(staged: dict[str, Any], platform_id: str, variant: str, sha: str | None,
               key_id: str | None = None) -> bool:
    """The device says it has this engine staged, intact (and signed by ``key_id``)."""
    item = (staged.get(platform_id) or {}).get(variant) or {}
    return bool(item.get("intact") and sha and item.get("engine_sha256") == sha
                and (key_id is None or item.get("key_id") == key_id))


def stage_model(model: str, item: dict[str, Any], installed: dict[str, Any], *,
                context: dict[str, Any]) -> dict[str, Any]:
    """What the stage step does for one model: {items, files, view, needed}. ``item``: the
    model's deploy action; ``context``: selection, platform_id, targets, catalog, store,
    verified."""
    platform_id = context["platform_id"]
    staged = installed.get("staged") or {}
    items: list[dict[str, Any]] = []
    files: list[dict[str, Any]] = []
    view: dict[str, dict[str, Any]] = {}
    needed = item["action"] in ("deploy", "rollback")
    current = installed.get("current") or {}
    variant = host_build_keys(context["selection"], platform_id, context["catalog"],
                              tensorrt_of_platform_id(platform_id))[model][1]
    if item["action"] in ("deploy", "rollback") or (
            current.get("version") and current.get("platform_id") == platform_id):
        items.append({"model": model, "platform_id": platform_id, "source": "current"})
        sha = item.get("engine_sha256") if item["action"] == "deploy" else \
            current.get("engine_sha256")
        needed = needed or not _staged_ok(staged, platform_id, variant, sha)
        view[platform_id] = {"variant": variant, "engine_sha256": sha, "status": "current",
                             "detail": "the engine current runs"}
        renewed = _renewed_statement(item, staged, platform_id, variant, context["store"])
        if renewed is not None:  # re-signed since it was installed (key rotation)
            items[-1].update(statement="pushed", variant=variant)
            files.append({"model": model, "platform_id": platform_id, "variant": variant,
                          "src": renewed})
            needed = True
    elif (staged.get(platform_id) or {}).get(variant, {}).get("intact"):
        # current runs an engine of another platform (an upgrade outside the tool, and no
        # engine in the store for the new one): what was staged for this one stays.
        items.append({"model": model, "platform_id": platform_id, "source": "staged",
                      "variant": variant})
        view[platform_id] = {"variant": variant, "status": "staged",
                             "engine_sha256": staged[platform_id][variant]["engine_sha256"],
                             "detail": "staged before"}
    for target in context["targets"]:
        key, variant = host_build_keys(context["selection"], target, context["catalog"],
                                       tensorrt_of_platform_id(target))[model]
        found = context["store"].lookup(key)
        if found is None:
            view[target] = {"variant": variant, "engine_sha256": None, "status": "not staged",
                            "detail": "the store has no engine for {} (build key {}): build it "
                            "on a device already on that JetPack (ansible-playbook "
                            "build_engines.yml --limit <that device>), then deploy again"
                            .format(target, key[:12])}
            if (staged.get(target) or {}).get(variant, {}).get("intact"):
                # What an earlier deploy staged there stays until the store has a newer one.
                items.append({"model": model, "platform_id": target, "source": "staged",
                              "variant": variant})
                view[target]["detail"] += "; the engine staged before stays"
            continue
        why = entry_problem(context["store"], found, context["verified"])
        if why:
            view[target] = {"variant": variant, "engine_sha256": found.engine_sha256,
                            "status": "refused", "detail": why}
            continue
        items.append({"model": model, "platform_id": target, "source": "pushed",
                      "variant": variant, "build_key": key,
                      "engine_sha256": found.engine_sha256})
        view[target] = {"variant": variant, "engine_sha256": found.engine_sha256,
                        "status": "staged", "detail": "build key {}".format(key[:12])}
        if _staged_ok(staged, target, variant, found.engine_sha256, statement_key_id(found)):
            items[-1].update(source="staged")
            continue
        needed = True
        files += [{"model": model, "platform_id": target, "variant": variant, "src": str(src)}
                  for src in (found.engine_path, found.manifest_path, found.dir / STATEMENT)]
    wanted = {i["platform_id"] for i in items}
    needed = needed or any(p not in wanted for p in staged)
    return {"items": items, "files": files, "view": view, "needed": needed}


def make_deploy_plan(hosts: list[str], hostvars: Mapping[str, Any], store_dir: str,
                     rollback: bool, signing_key: str | None = None, *,
                     check_mode: bool = False) -> tuple[dict[str, Any], list[str]]:
    """(the deploy plan of the batch, its lines) for the hosts with facts. ``signing_key``
    (engine_signing_key): its keyring is what the devices get and what each engine's
    statement must verify against. In check mode the store is only read (an unreadable index
    is rebuilt in memory, not written)."""
    store = EngineStore(store_dir, signing_key=signing_key, read_only=check_mode)
    keyring_file = signing.keyring_path(store.signing_key) if store.signing_key else None
    keyring_sha256 = file_sha256(str(keyring_file)) \
        if keyring_file and keyring_file.is_file() else None
    verified: dict[str, str | None] = {}
    marker = env_marker()  # what every deploy venv must hold
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
                             "prepare": [], "stage": [], "stage_files": [], "stage_view": {},
                             "prepare_stage": [], "stage_platforms": [],
                             "device_work": False, "guard": None,
                             "settings": host_settings(host_vars),
                             "env": {"install": False, "marker": marker}}
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
                 for src in (item["store_engine"], item["store_manifest"],
                             item["store_statement"])]
        # engine_deploy state=prepare: the push's destinations, made without following links.
        prepare = [{"model": m, "version": models[m]["version"] if models[m]["push"] else None}
                   for m in sorted(work)]
        planned[host] = {"platform_id": platform_id, "models": models,
                         "work": sorted(work), "files": files, "prepare": prepare}
        planned[host].update(_stage_host(host_vars, models, deployed=deployed, answer=answer,
                                         context={
            "selection": selection, "platform_id": platform_id, "catalog": checked["catalog"],
            "store": store, "verified": verified,
            "targets": [p for p in stage_targets(host_vars) if p != platform_id],
            "keyring_sha256": keyring_sha256}))
        found_env = (answer.get("jetson_deployed") or {}).get("env_marker")
        planned[host]["settings"] = host_settings(host_vars)
        # The deploy venv is installed where the device has work and its marker differs.
        planned[host]["env"] = {"marker": marker, "install": bool(
            planned[host]["device_work"]) and found_env != marker}
        lines += ["{:<16} {:<26} staged for {}: {} ({})".format(
            host, model, target, view["status"], view["variant"])
            for model, targets in sorted(planned[host]["stage_view"].items())
            for target, view in sorted(targets.items()) if target != platform_id]
    if problems:
        raise DeploySettingsError("deploy settings: {} problem(s), nothing was changed:\n{}"
                                  .format(len(problems), "\n".join(problems)))
    pending = sum(len(plan["work"]) for plan in planned.values())
    wheel = plan_wheel(planned, marker["builder_digest"], check_mode)
    for plan in planned.values():
        plan["push"] = host_push(plan, wheel)
        plan["push_commands"] = push_commands(plan["push"], SHARED)
    return {"hosts": planned, "pending": pending, "rollback": rollback,
            "store_dir": store_dir, "keyring": str(keyring_file) if keyring_file else None,
            "guard_files": guard_files(Path(keyring_file) if keyring_file else None)
            if any((plan.get("guard") or {}).get("install") for plan in planned.values())
            else [],
            "wheel": wheel,
            }, lines or ["no host to plan"]
