"""Action plugin (controller only): decide, per host and model, what deploy_engines.yml does.

For each host of the batch: its own build keys (its platform_id from jetson_facts, the
graph sha256 of the catalog, its checked engine_* options: the key build_engines.yml uses),
the store entry of that key (never a file name), whether that entry is intact, and what the
device already runs (ansible_facts.jetson_deployed). Actions: ``deploy`` (push: the version
is not on the device yet), ``up_to_date``, ``refused`` (no engine for the key, or a corrupt
store entry: the device keeps its engine) and, with rollback, ``rollback``.

All store and key lookups are in the "store adapter" section below (DeployStore.lookup,
DeployStore.verify, host_build_keys), shaped like controller.store.EngineStore and
controller.keys.host_build_keys, so that they can be swapped for the controller package.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

REPO_ROOT = Path(__file__).resolve().parents[3]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

DOCUMENTATION = r"""
---
action: engine_deploy_plan
short_description: Per host and model, the store entry of the host's own build key, the action
description:
  - Controller-side step of the engine_deploy role (roles/engine_deploy/meta/argument_specs.yml).
options:
  hosts:
    description: Hosts to plan (the batch).
    type: list
    elements: str
    required: true
  store_dir:
    description: The engine store.
    type: path
    required: true
  rollback:
    description: Plan a switch back to each model's previous version instead of a deploy.
    type: bool
    default: false
"""

# ---------------------------------------------------------------- store adapter
# The only place that knows the store's layout and how build keys are made. Today: the
# format-1 store (<store>/<platform_id>/<model>/manifest.json, index.json "engines") and
# plugins/filter/engine_plan.py's engine_build_key. Tomorrow: controller.store.EngineStore
# and controller.keys.host_build_keys, which have the same shapes.

OPTION_KEYS = ("precision", "workspace_mib", "max_batch", "dla_core")
DEFAULT_VARIANT = "default"


def _load(relative, name):
    """A repository file that is not a package (plugins/filter, module_utils) as a module."""
    spec = importlib.util.spec_from_file_location(name, REPO_ROOT / relative)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _engine_plan_filters():
    return _load("plugins/filter/engine_plan.py", "engine_deploy_engine_plan")


# The device's own layout helpers (version names, sha256): one copy for both sides.
TRT_DEPLOY = _load("module_utils/trt_deploy.py", "engine_deploy_trt_deploy")
version_name = TRT_DEPLOY.version_name


class StoreEntry:
    """One engine of the store (the attributes of controller.store.StoreEntry)."""

    def __init__(self, store_dir, platform_id, model, variant, record):
        self.platform_id = platform_id
        self.model = model
        self.variant = variant
        self.build_key = record.get("build_key")
        self.engine_sha256 = record.get("engine_sha256")
        self.engine_size = record.get("engine_size")
        self.engine_path = str(Path(store_dir) / record["engine"])
        self.dir = os.path.dirname(self.engine_path)
        self.manifest_path = os.path.join(self.dir, "manifest.json")
        self._manifest = None

    @property
    def manifest(self):
        if self._manifest is None:
            with open(self.manifest_path, encoding="utf-8") as handle:
                self._manifest = json.load(handle)
        return self._manifest


class DeployStore:
    """lookup(build_key) and verify(entry) over the store (controller.store.EngineStore's)."""

    def __init__(self, store_dir):
        self.store_dir = str(store_dir)
        self._entries = None

    def _index(self):
        path = os.path.join(self.store_dir, "index.json")
        try:
            with open(path, encoding="utf-8") as handle:
                index = json.load(handle)
        except FileNotFoundError:
            return {}
        except ValueError as error:
            raise AnsibleActionFail(
                "engine store index {} is not valid JSON ({}): run build_engines.yml once, it "
                "rewrites the index from the manifests".format(path, error)) from error
        return index.get("engines") or {}

    def lookup(self, build_key):
        """The entry holding ``build_key``, or None."""
        if self._entries is None:
            self._entries = {}
            for platform_id, models in sorted(self._index().items()):
                for model, record in sorted((models or {}).items()):
                    if isinstance(record, dict) and record.get("build_key") and record.get(
                            "engine"):
                        self._entries[record["build_key"]] = StoreEntry(
                            self.store_dir, platform_id, model, DEFAULT_VARIANT, record)
        return self._entries.get(build_key)

    def verify(self, entry):
        """None when the entry is intact, else why it is corrupt (engine vs manifest vs index)."""
        try:
            manifest = entry.manifest
        except (OSError, ValueError) as error:
            return "its manifest {} cannot be read: {}".format(entry.manifest_path, error)
        if manifest.get("build_key") != entry.build_key:
            return "its manifest {} has build key {} but the index says {}".format(
                entry.manifest_path, manifest.get("build_key"), entry.build_key)
        try:
            actual = TRT_DEPLOY.file_sha256(entry.engine_path)
        except OSError as error:
            return "its engine {} cannot be read: {}".format(entry.engine_path, error)
        if actual != manifest.get("engine_sha256") or actual != entry.engine_sha256:
            return "its engine {} has sha256 {} but its manifest says {}".format(
                entry.engine_path, actual, manifest.get("engine_sha256"))
        return None


def host_build_keys(selection, platform_id, catalog):
    """{model: (build_key, variant)} of one host (controller.keys.host_build_keys's shape).

    selection: preflight_selections[host]; catalog: preflight_catalog."""
    filters = _engine_plan_filters()
    options = {key: selection.get(key) for key in OPTION_KEYS}
    return {
        model: (filters.engine_build_key(catalog[model], platform_id, options), DEFAULT_VARIANT)
        for model in selection["models"]
    }

# ---------------------------------------------------------------- end of the store adapter


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
        verified[key] = store.verify(found)
    if verified[key]:
        return dict(entry, action="refused", reason=(
            "store entry {} is corrupt: {}; nothing was pushed, it keeps {}. Fix: delete {} and "
            "run build_engines.yml to rebuild it").format(
                found.dir, verified[key], current.get("version") or "no engine", found.dir))
    version = version_name(key, found.engine_sha256)
    return dict(entry, action="deploy", version=version, engine_sha256=found.engine_sha256,
                push=version not in (installed.get("versions") or []),
                store_engine=found.engine_path, store_manifest=found.manifest_path)


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


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False
    _VALID_ARGS = frozenset(("hosts", "store_dir", "rollback"))

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        args = self._task.args
        hostvars = task_vars["hostvars"]
        store = DeployStore(args["store_dir"])
        rollback = bool(args.get("rollback", False))
        verified = {}
        hosts, lines, problems = {}, [], []
        for host in args["hosts"]:
            host_vars = hostvars[host]
            problems += settings_problems(host, host_vars)
            facts = host_vars.get("ansible_facts") or {}
            platform = facts.get("jetson")
            if not platform:
                continue  # failed or unreachable before its facts: reported as such
            selection = host_vars["preflight_selections"][host]
            platform_id = platform["platform_id"]
            deployed = (facts.get("jetson_deployed") or {}).get("models") or {}
            keys = {} if rollback else host_build_keys(
                selection, platform_id, host_vars["preflight_catalog"])
            models = {}
            for model in selection["models"]:
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
            hosts[host] = {"platform_id": platform_id, "models": models, "work": sorted(work),
                           "files": files}
        if problems:
            raise AnsibleActionFail("deploy settings: {} problem(s), nothing was changed:\n{}"
                                    .format(len(problems), "\n".join(problems)))
        filters = _engine_plan_filters()
        pending = sum(len(plan["work"]) for plan in hosts.values())
        result.update(changed=False, msg=lines or ["no host to plan"], plan={
            "hosts": hosts, "pending": pending, "rollback": rollback,
            "store_dir": args["store_dir"], "builder_version": filters.BUILDER_VERSION,
            "builder_digest": filters.builder_source_digest()})
        return result
