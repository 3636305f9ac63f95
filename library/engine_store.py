#!/usr/bin/python
"""File one engine + manifest into the controller's engine store atomically; refresh the index."""

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import tempfile

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
---
module: engine_store
short_description: File a TensorRT engine and its manifest into the engine store
description:
  - Copies the engine (C(engine_file) of the manifest, normally C(TRT_<model>.bin)) and
    C(manifest.json) from a staging directory into C(<store_dir>/<platform_id>/<model>/)
    after checking the engine's sha256 against the manifest, then rewrites
    C(<store_dir>/index.json) from every manifest in the store.
  - Each index entry carries what the store's report shows: engine size and build time,
    precision, TensorRT version, the graph (file name and sha256), the platform facts
    (module, L4T, JetPack), the on-device verification (ok, FPS, median latency) and
    C(built_on), the host the engine was collected from.
  - C(built_on) is the name of the directory above C(staged_dir) when C(staged_dir) is
    C(<store_dir>/.staging/<host>/<model>) (the layout of the engine_collect role); an entry
    that is filed again unchanged keeps the host it had.
  - The model directory is assembled in a temporary directory of the same file system and
    renamed into place, so a reader sees the old entry or the new one, never a half-written one.
  - Every write happens under an exclusive C(fcntl) lock on C(<store_dir>/.lock), so two
    concurrent runs cannot interleave.
  - Reports C(changed=false) when the store already holds the same build key with the same bytes.
options:
  store_dir:
    description: Root of the engine store.
    type: path
    required: true
  platform_id:
    description: Platform the engine was built for; must match the manifest.
    type: str
    required: true
  model:
    description: Catalog model name; must match the manifest.
    type: str
    required: true
  staged_dir:
    description: Directory holding the fetched engine and its C(manifest.json).
    type: path
    required: true
author: Jetson engine builder maintainers
"""

EXAMPLES = r"""
- name: File the engine into the store
  engine_store:
    store_dir: "{{ engine_store_dir }}"
    platform_id: "{{ jetson.platform_id }}"
    model: ssd_mobilenet_v2_coco
    staged_dir: /repo/artifacts/engines/.staging/nano-1/ssd_mobilenet_v2_coco
  delegate_to: localhost
"""

RETURN = r"""
path:
  description: The model's directory in the store.
  type: str
  returned: always
engine_sha256:
  description: sha256 of the filed engine.
  type: str
  returned: always
build_key:
  description: Build key recorded in the manifest.
  type: str
  returned: always
index_changed:
  description: Whether index.json was rewritten.
  type: bool
  returned: always
"""

MANIFEST_NAME = "manifest.json"
INDEX_NAME = "index.json"
LOCK_NAME = ".lock"
# Manifest keys the store relies on; the builder writes them (see builder/manifest.py).
REQUIRED_MANIFEST_KEYS = ("model", "platform_id", "build_key", "engine_file", "engine_sha256")
# Manifest fields copied into index.json for each engine.
INDEX_FIELDS = (
    "build_key",
    "engine_sha256",
    "engine_size",
    "builder_version",
    "tensorrt_version",
    "precision",
    "created_utc",
    "build_seconds",
    "graph_sha256",
)
# The part of the manifest's "verify" result worth a line in the index (the report shows it).
VERIFY_FIELDS = ("ok", "fps", "median_ms", "verified_utc", "problems")
# The platform facts (manifest "platform", from builder/platform/detect.py) the report shows.
PLATFORM_FIELDS = ("module", "soc", "compute_capability", "l4t", "jetpack")
STAGING_NAME = ".staging"


class StoreError(Exception):
    """A staged engine that must not enter the store; the message says why and where."""


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_manifest(path):
    try:
        with open(path, encoding="utf-8") as handle:
            manifest = json.load(handle)
    except (OSError, ValueError) as error:
        raise StoreError("cannot read manifest {}: {}".format(path, error)) from error
    if not isinstance(manifest, dict):
        raise StoreError("manifest {} is not a JSON object".format(path))
    missing = [key for key in REQUIRED_MANIFEST_KEYS if key not in manifest]
    if missing:
        raise StoreError("manifest {} lacks {}".format(path, ", ".join(missing)))
    engine_file = manifest["engine_file"]
    if os.path.basename(engine_file) != engine_file or engine_file.startswith("."):
        raise StoreError("manifest {}: engine_file {!r} is not a plain file name".format(
            path, engine_file))
    return manifest


def check_staged(staged_dir, platform_id, model):
    """Return (manifest, engine sha256) of a staged engine that may enter the store."""
    manifest_path = os.path.join(staged_dir, MANIFEST_NAME)
    manifest = read_manifest(manifest_path)
    engine_path = os.path.join(staged_dir, manifest["engine_file"])
    if manifest["model"] != model:
        raise StoreError(
            "{} is for model {!r}, expected {!r}".format(manifest_path, manifest["model"], model)
        )
    if manifest["platform_id"] != platform_id:
        raise StoreError(
            "{} was built for platform {!r}, refusing to file it under {!r}".format(
                manifest_path, manifest["platform_id"], platform_id
            )
        )
    if not os.path.isfile(engine_path):
        raise StoreError("staged engine {} is missing".format(engine_path))
    actual = sha256_of(engine_path)
    if actual != manifest["engine_sha256"]:
        raise StoreError(
            "{} has sha256 {} but its manifest says {}: the transfer is corrupt, rebuild or "
            "fetch again".format(engine_path, actual, manifest["engine_sha256"])
        )
    return manifest, actual


def same_entry(entry_dir, manifest, engine_sha256):
    """True when the store entry already holds this build key with these engine bytes."""
    existing_manifest = os.path.join(entry_dir, MANIFEST_NAME)
    existing_engine = os.path.join(entry_dir, manifest["engine_file"])
    if not (os.path.isfile(existing_manifest) and os.path.isfile(existing_engine)):
        return False
    try:
        current = read_manifest(existing_manifest)
    except StoreError:
        return False  # a damaged entry is replaced
    return (
        current["build_key"] == manifest["build_key"]
        and current["engine_file"] == manifest["engine_file"]
        and current["engine_sha256"] == engine_sha256
        and sha256_of(existing_engine) == engine_sha256
    )


def fsync_dir(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def copy_synced(src, dst):
    shutil.copyfile(src, dst)
    with open(dst, "rb+") as handle:
        os.fsync(handle.fileno())
    os.chmod(dst, 0o644)


def install_entry(staged_dir, entry_dir, model, engine_file):
    """Replace entry_dir by a copy of the staged files; readers never see a partial entry."""
    parent = os.path.dirname(entry_dir)
    os.makedirs(parent, exist_ok=True)
    new_dir = tempfile.mkdtemp(prefix=".new-{}-".format(model), dir=parent)
    old_dir = None
    try:
        for name in (engine_file, MANIFEST_NAME):
            copy_synced(os.path.join(staged_dir, name), os.path.join(new_dir, name))
        os.chmod(new_dir, 0o755)
        fsync_dir(new_dir)
        if os.path.isdir(entry_dir):
            # rename(2) cannot replace a non-empty directory: move the old one aside first.
            old_dir = tempfile.mkdtemp(prefix=".old-{}-".format(model), dir=parent)
            os.rename(entry_dir, os.path.join(old_dir, model))
        os.rename(new_dir, entry_dir)
        new_dir = None
        fsync_dir(parent)
    finally:
        if new_dir is not None:
            shutil.rmtree(new_dir, ignore_errors=True)
        if old_dir is not None:
            shutil.rmtree(old_dir, ignore_errors=True)


def staging_host(store_dir, staged_dir):
    """The host of ``<store_dir>/.staging/<host>/<model>`` (engine_collect's layout), else None."""
    host_dir = os.path.dirname(os.path.normpath(staged_dir))
    staging_root = os.path.normpath(os.path.join(store_dir, STAGING_NAME))
    if os.path.dirname(host_dir) != staging_root:
        return None
    return os.path.basename(host_dir)


def read_index(store_dir):
    """The current index.json content, or an empty index when there is none yet."""
    index_path = os.path.join(store_dir, INDEX_NAME)
    if not os.path.isfile(index_path):
        return {"engines": {}}
    try:
        with open(index_path, encoding="utf-8") as handle:
            index = json.load(handle)
    except ValueError:
        return {"engines": {}}  # a damaged index is rebuilt from the manifests
    return index if isinstance(index.get("engines"), dict) else {"engines": {}}


def known_hosts(index):
    """(platform_id, model) -> (build_key, built_on) of the entries of ``index`` with a host."""
    hosts = {}
    for platform_id, models in index["engines"].items():
        for model, entry in (models or {}).items():
            if isinstance(entry, dict) and entry.get("built_on"):
                hosts[(platform_id, model)] = (entry.get("build_key"), entry["built_on"])
    return hosts


def index_entry(platform_id, model, manifest, hosts):
    """The index's summary of one manifest; ``hosts`` as returned by known_hosts()."""
    entry = {key: manifest[key] for key in INDEX_FIELDS if key in manifest}
    verify = manifest.get("verify") or {}
    entry["verify"] = {key: verify[key] for key in VERIFY_FIELDS if key in verify}
    platform = manifest.get("platform") or {}
    entry["platform"] = {key: platform[key] for key in PLATFORM_FIELDS if key in platform}
    graph = (manifest.get("spec") or {}).get("graph")
    if graph:
        entry["graph_file"] = os.path.basename(graph)
    build_key, host = hosts.get((platform_id, model), (None, None))
    if host and build_key == manifest["build_key"]:
        entry["built_on"] = host
    entry["engine"] = "{}/{}/{}".format(platform_id, model, manifest["engine_file"])
    return entry


def build_index(store_dir, hosts=None):
    """index.json content: platform_id -> model -> summary of its manifest.

    hosts: (platform_id, model) -> (build_key, host) that built it; a host is recorded for
    an entry only while the entry's build key is the one it built.
    """
    hosts = hosts or {}
    engines = {}
    for platform_id in sorted(os.listdir(store_dir)):
        platform_dir = os.path.join(store_dir, platform_id)
        if platform_id.startswith(".") or not os.path.isdir(platform_dir):
            continue
        for model in sorted(os.listdir(platform_dir)):
            manifest_path = os.path.join(platform_dir, model, MANIFEST_NAME)
            if model.startswith(".") or not os.path.isfile(manifest_path):
                continue
            manifest = read_manifest(manifest_path)
            engines.setdefault(platform_id, {})[model] = index_entry(
                platform_id, model, manifest, hosts)
    return {"format": 1, "engines": engines}


def refresh_index(module, store_dir, hosts):
    """Rewrite index.json when its content changes; return whether it changed."""
    text = json.dumps(build_index(store_dir, hosts), indent=2, sort_keys=True) + "\n"
    index_path = os.path.join(store_dir, INDEX_NAME)
    if os.path.isfile(index_path):
        with open(index_path, encoding="utf-8") as handle:
            if handle.read() == text:
                return False
    if module.check_mode:
        return True
    fd, tmp_path = tempfile.mkstemp(prefix=".index-", dir=store_dir)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(tmp_path, 0o644)
    module.atomic_move(tmp_path, index_path)
    return True


@contextlib.contextmanager
def store_lock(store_dir):
    """Exclusive lock on the store for the whole read-compare-write (released on close)."""
    with open(os.path.join(store_dir, LOCK_NAME), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def file_engine(module, params):
    store_dir = params["store_dir"]
    model = params["model"]
    manifest, engine_sha256 = check_staged(params["staged_dir"], params["platform_id"], model)
    entry_dir = os.path.join(store_dir, params["platform_id"], model)
    if not os.path.isdir(store_dir):
        if module.check_mode:
            return {"changed": True, "path": entry_dir, "engine_sha256": engine_sha256,
                    "build_key": manifest["build_key"], "index_changed": True}
        os.makedirs(store_dir)
    with store_lock(store_dir):
        entry_changed = not same_entry(entry_dir, manifest, engine_sha256)
        if entry_changed and not module.check_mode:
            install_entry(params["staged_dir"], entry_dir, model, manifest["engine_file"])
        hosts = known_hosts(read_index(store_dir))
        host = staging_host(store_dir, params["staged_dir"])
        if host and (entry_changed or (params["platform_id"], model) not in hosts):
            hosts[(params["platform_id"], model)] = (manifest["build_key"], host)
        index_changed = refresh_index(module, store_dir, hosts)
    return {
        "changed": entry_changed or index_changed,
        "path": entry_dir,
        "engine_sha256": engine_sha256,
        "build_key": manifest["build_key"],
        "index_changed": index_changed,
    }


def main():
    module = AnsibleModule(
        argument_spec={
            "store_dir": {"type": "path", "required": True},
            "platform_id": {"type": "str", "required": True},
            "model": {"type": "str", "required": True},
            "staged_dir": {"type": "path", "required": True},
        },
        supports_check_mode=True,
    )
    try:
        result = file_engine(module, module.params)
    except (StoreError, OSError) as error:
        module.fail_json(msg="engine_store: {}".format(error))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
