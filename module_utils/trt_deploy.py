# -*- coding: utf-8 -*-
"""Device-side layout of installed engines (shared by library/engine_deploy.py and
library/jetson_facts.py). Python 3.6 syntax: this runs on JetPack 4 devices.

Layout under an install root (default /opt/trt-engines):

    <root>/<model>/<version>/TRT_<model>.bin     a complete, verified engine
    <root>/<model>/<version>/manifest.json       its manifest (plus the device's verify record)
    <root>/<model>/current  -> <version>         what a consumer loads: current/TRT_<model>.bin
    <root>/<model>/previous -> <version>         what a rollback switches back to
    <root>/<model>/.incoming/<version>/          pushed, not yet checked (never loaded)

A version directory only appears (by rename from .incoming) once its engine's sha256 matched
and the builder's verify ran it on this device; the links are switched by renaming a
temporary link over them, so a reader always sees a complete engine.
"""

from __future__ import absolute_import, division, print_function

import hashlib
import json
import os
import re
import shutil

CURRENT = "current"
PREVIOUS = "previous"
INCOMING = ".incoming"
MANIFEST = "manifest.json"
# <first 12 hex of the build key>-<first 12 hex of the engine sha256>
VERSION_RE = re.compile(r"^[0-9a-f]{12}-[0-9a-f]{12}$")
# The manifest fields the facts report per installed engine (keeps the facts payload small).
STATE_FIELDS = ("build_key", "platform_id", "engine_sha256", "engine_file")


def version_name(build_key, engine_sha256):
    """Readable, unique version directory name of one engine build."""
    for name, value in (("build_key", build_key), ("engine_sha256", engine_sha256)):
        if not re.match(r"^[0-9a-f]{12,}$", str(value or "")):
            raise ValueError("{} {!r} is not a hex digest".format(name, value))
    return "{}-{}".format(build_key[:12], engine_sha256[:12])


def file_sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_json(path):
    """Parsed JSON object, or None when missing or not a valid JSON object."""
    try:
        with open(path) as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def link_version(model_dir, name):
    """The version a link (current / previous) points at, or None (absent, or not a version)."""
    try:
        target = os.readlink(os.path.join(model_dir, name))
    except OSError:
        return None
    target = os.path.basename(target.rstrip("/"))
    return target if VERSION_RE.match(target) else None


def versions(model_dir):
    """Installed version directories, oldest activation first (directory mtime)."""
    try:
        names = os.listdir(model_dir)
    except OSError:
        return []
    found = [n for n in names if VERSION_RE.match(n) and os.path.isdir(os.path.join(model_dir, n))]
    return sorted(found, key=lambda n: (os.stat(os.path.join(model_dir, n)).st_mtime, n))


def version_summary(model_dir, version):
    """The manifest fields of STATE_FIELDS of one installed version (None when unreadable)."""
    if version is None:
        return None
    manifest = read_json(os.path.join(model_dir, version, MANIFEST))
    if manifest is None:
        return None
    summary = {key: manifest.get(key) for key in STATE_FIELDS}
    summary["version"] = version
    return summary


def model_state(model_dir):
    """What is installed for one model, read from links and manifests only (no hashing)."""
    current = link_version(model_dir, CURRENT)
    previous = link_version(model_dir, PREVIOUS)
    return {
        "current": version_summary(model_dir, current),
        "previous": version_summary(model_dir, previous),
        "versions": versions(model_dir),
    }


def install_state(install_root):
    """{model: model_state} for every model directory under the install root."""
    models = {}
    try:
        names = sorted(os.listdir(install_root))
    except OSError:
        return models
    for name in names:
        path = os.path.join(install_root, name)
        if not name.startswith(".") and os.path.isdir(path):
            models[name] = model_state(path)
    return models


def switch_link(model_dir, name, version):
    """Point <model_dir>/<name> at ``version`` atomically: a temporary link renamed over it."""
    temporary = os.path.join(model_dir, ".{}.tmp-{}".format(name, os.getpid()))
    if os.path.lexists(temporary):
        os.unlink(temporary)
    os.symlink(version, temporary)
    os.rename(temporary, os.path.join(model_dir, name))
    fsync_dir(model_dir)


def fsync_dir(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def prune_plan(ordered_versions, keep, current, previous):
    """Versions to delete: every version but ``current``, ``previous`` and the ``keep`` most
    recently activated other ones (``keep`` counts previous). ``ordered_versions``: oldest first."""
    others = [v for v in ordered_versions if v != current]
    kept = set(others[len(others) - max(int(keep), 0):]) if int(keep) > 0 else set()
    if previous in others and previous not in kept and kept:
        kept.discard(min(kept, key=others.index))
        kept.add(previous)
    elif previous in others:
        kept.add(previous)
    return [v for v in others if v not in kept]


def remove_tree(path):
    shutil.rmtree(path)
