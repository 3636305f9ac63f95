# -*- coding: utf-8 -*-
"""Device-side layout of installed engines and its reading (shared by library/engine_deploy.py
and library/jetson_facts.py; what only the deploy does to it is module_utils/trt_deploy_write.py).
Python 3.6 syntax: this runs on JetPack 4 devices.

Layout under an install root (default /opt/trt-engines):

    <root>/<model>/<version>/TRT_<model>.bin     a complete, verified engine
    <root>/<model>/<version>/manifest.json       its manifest (plus the device's verify record)
    <root>/<model>/current  -> <version>         what a consumer loads: current/TRT_<model>.bin
    <root>/<model>/previous -> <version>         what a rollback switches back to
    <root>/<model>/.incoming/<version>/          pushed, not yet checked (never loaded)
    <root>/.deploy-venv/  <root>/.deploy-wheels/ the deploy environment (engine_deploy role)

Staged engines (engine_deploy state=stage), side by side per platform, beside the versions:

    <root>/<model>/<platform_id>/<variant>/TRT_<model>.bin  manifest.json  statement.json
    <root>/<model>/.stage-incoming/<platform_id>/<variant>/  pushed, not yet checked
    <root>/bin/trt-engine-path  <root>/bin/lib/              the guard (trt_engine_guard.py)
    <root>/bin/keys/trusted-keys.json                        the public keys it accepts
    <root>/bin/guard.json                                    what was installed (facts read it)

``bin`` is therefore not a model directory.

A version directory only appears (by rename from .incoming) once its engine's sha256 matched
and the builder's verify ran it on this device; the links are switched by renaming a
temporary link over them, so a reader always sees a complete engine.

No link below the root is followed. The root itself is the operator's setting
(engine_deploy_install_root) and is opened as given; every path below it is reached from the
directory file descriptor of its parent, one component at a time, with O_NOFOLLOW (and
``follow_symlinks=False`` for stat), so a link planted in the tree (the model directory,
``.incoming``, a version directory, a file in one) is seen as a link, never as what it points
at. The only links the layout has are ``current`` and ``previous``, and they are read as
text: their target must be a bare version name. A planted link is removed (where the deploy
owns the entry: ``.incoming`` and what is under it, version-named entries, the deploy
environment's directories) or refused (the model directory: the deploy cannot know what it
is for), and named either way.
"""

from __future__ import absolute_import, division, print_function

import errno
import hashlib
import json
import os
import re
import stat

CURRENT = "current"
PREVIOUS = "previous"
INCOMING = ".incoming"
MANIFEST = "manifest.json"
STATEMENT = "statement.json"
STAGE_INCOMING = ".stage-incoming"
GUARD_DIR = "bin"
GUARD_KEYS = "keys"
GUARD_MARKER = "guard.json"
KEYRING_FILE = "trusted-keys.json"  # its format: module_utils/trt_signature.py
# A staged platform_id or variant directory (the store's components are no looser).
STAGED_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*\Z")
DEPLOY_VENV = ".deploy-venv"
DEPLOY_WHEELS = ".deploy-wheels"
# The env markers: what the roles installed, compared with what a run needs (jetson_facts
# reads them): <install_root>/.deploy-venv/<DEPLOY_ENV_MARKER> (roles/engine_deploy) and
# <root_dir>/venv/<BUILDER_ENV_MARKER> (roles/jetson_env's jetson_env_marker_name). The roles
# spell them in YAML; tests/unit/test_one_home.py checks those copies against these.
DEPLOY_ENV_MARKER = "trt-deploy-env.json"
BUILDER_ENV_MARKER = "trt-builder-env.json"
# <first 12 hex of the build key>-<first 12 hex of the engine sha256>; \Z, not $: "$" also
# matches before a trailing newline.
# An installed engine's version directory: <build_key>-<engine_sha256>, each cut to its first
# VERSION_DIGEST_CHARS characters (trt_deploy_write.version_name makes it).
VERSION_DIGEST_CHARS = 12
VERSION_RE = re.compile(r"^[0-9a-f]{%d}-[0-9a-f]{%d}\Z" % (VERSION_DIGEST_CHARS,
                                                            VERSION_DIGEST_CHARS))
# The manifest fields the facts report per installed engine (keeps the facts payload small).
STATE_FIELDS = ("build_key", "platform_id", "engine_sha256", "engine_file")

CLOEXEC = getattr(os, "O_CLOEXEC", 0)
DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | CLOEXEC
FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | CLOEXEC


class PlantedLink(Exception):
    """A symbolic link (or another kind of entry) where the layout has a directory or a
    file; the message names the path and what it points at."""


def engine_file_name(model):
    return "TRT_{}.bin".format(model)


# -------------------------------------------------------------------- no-follow primitives

def kind_at(dir_fd, name):
    """'missing', 'link', 'dir', 'file' or 'other' for ``name`` in the directory ``dir_fd``
    (lstat: a link is a link)."""
    try:
        mode = os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode
    except OSError as error:
        if error.errno in (errno.ENOENT, errno.ENOTDIR):
            return "missing"
        raise
    if stat.S_ISLNK(mode):
        return "link"
    if stat.S_ISDIR(mode):
        return "dir"
    if stat.S_ISREG(mode):
        return "file"
    return "other"


def link_target_at(dir_fd, name):
    try:
        return os.readlink(name, dir_fd=dir_fd)
    except OSError:
        return None


def describe_link(path, dir_fd, name):
    return "{} is a symbolic link (to {})".format(path, link_target_at(dir_fd, name))


def open_file_at(dir_fd, name, path):
    """A file descriptor of the regular file ``name`` in ``dir_fd`` (PlantedLink else)."""
    try:
        fd = os.open(name, FILE_FLAGS, dir_fd=dir_fd)
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise PlantedLink(describe_link(path, dir_fd, name)) from error
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise PlantedLink("{} is not a regular file".format(path))
    return fd


def open_root(install_root, create=False):
    """The install root's directory file descriptor (the operator's path, followed), or None
    when it does not exist and ``create`` is false."""
    if create and not os.path.isdir(install_root):
        os.makedirs(install_root, 0o755)
    try:
        return os.open(install_root, os.O_RDONLY | os.O_DIRECTORY | CLOEXEC)
    except OSError as error:
        if error.errno in (errno.ENOENT, errno.ENOTDIR) and not create:
            return None
        raise


def listdir_fd(dir_fd):
    return os.listdir(dir_fd)


def read_json_at(dir_fd, name):
    """Parsed JSON object of the regular file ``name`` in ``dir_fd``, or None (missing, a
    link, not a regular file, not valid JSON, not an object)."""
    try:
        fd = open_file_at(dir_fd, name, name)
    except (OSError, PlantedLink):
        return None
    try:
        with os.fdopen(fd) as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


# A copy of builder/atomic.py's (the deploy guard runs this module without the builder
# package); tests/unit/test_one_home.py keeps the two the same.
def sha256_of(handle):
    """Hex sha256 of what a binary handle has left, read in blocks (graphs and engines are
    tens of MB; a Nano has little RAM)."""
    digest = hashlib.sha256()
    for block in iter(lambda: handle.read(1 << 20), b""):
        digest.update(block)
    return digest.hexdigest()


def sha256_fd(fd):
    """Hex sha256 of the open file ``fd`` (closed after)."""
    with os.fdopen(fd, "rb") as handle:
        return sha256_of(handle)


# -------------------------------------------------------------------- the layout, read

def link_version_at(model_fd, name):
    """The version a link (current / previous) names, or None: absent, not a link, or a
    target that is not a bare version name (``/elsewhere/<version>`` is not one)."""
    if kind_at(model_fd, name) != "link":
        return None
    target = link_target_at(model_fd, name)
    return target if target and VERSION_RE.match(target) else None


def intact_version_at(model_fd, version, model):
    """True when ``version`` is a real directory holding a regular manifest.json and
    TRT_<model>.bin (no link anywhere); nothing is hashed."""
    if not VERSION_RE.match(version) or kind_at(model_fd, version) != "dir":
        return False
    fd = os.open(version, DIR_FLAGS, dir_fd=model_fd)
    try:
        return (kind_at(fd, MANIFEST) == "file"
                and kind_at(fd, engine_file_name(model)) == "file")
    finally:
        os.close(fd)


def versions_at(model_fd, model):
    """Intact version directories, oldest activation first (directory mtime)."""
    found = [name for name in listdir_fd(model_fd) if intact_version_at(model_fd, name, model)]
    times = {name: os.stat(name, dir_fd=model_fd, follow_symlinks=False).st_mtime
             for name in found}
    return sorted(found, key=lambda name: (times[name], name))


def planted_links_at(model_fd, model_dir):
    """Links in a model directory that the layout does not have: every link but current and
    previous naming a bare version (descriptions, for the facts and the deploy's messages)."""
    found = []
    for name in sorted(listdir_fd(model_fd)):
        if kind_at(model_fd, name) != "link":
            continue
        if name in (CURRENT, PREVIOUS) and link_version_at(model_fd, name):
            continue
        found.append(describe_link(os.path.join(model_dir, name), model_fd, name))
    return found


def version_summary_at(model_fd, version, model):
    """The manifest fields of STATE_FIELDS of one intact version (None otherwise)."""
    if version is None or not intact_version_at(model_fd, version, model):
        return None
    fd = os.open(version, DIR_FLAGS, dir_fd=model_fd)
    try:
        manifest = read_json_at(fd, MANIFEST)
    finally:
        os.close(fd)
    if manifest is None:
        return None
    summary = {key: manifest.get(key) for key in STATE_FIELDS}
    summary["version"] = version
    return summary


def current_summary_at(model_fd, model):
    """version_summary_at of current, with ``intact``: its engine's bytes (hashed, no link
    followed) still have the manifest's sha256 (an engine altered on the device is not)."""
    summary = version_summary_at(model_fd, link_version_at(model_fd, CURRENT), model)
    if summary is None:
        return None
    fd = os.open(summary["version"], DIR_FLAGS, dir_fd=model_fd)
    try:
        actual = sha256_fd(open_file_at(fd, engine_file_name(model), model))
    except (OSError, PlantedLink):
        actual = None
    finally:
        os.close(fd)
    summary["intact"] = actual is not None and actual == summary.get("engine_sha256")
    return summary


def model_state_at(model_fd, model, model_dir):
    """What is installed for one model, read from links and manifests (the current engine
    and the staged ones hashed: jetson_facts reports this for deploy runs only)."""
    return {
        "current": current_summary_at(model_fd, model),
        "previous": version_summary_at(model_fd, link_version_at(model_fd, PREVIOUS), model),
        "versions": versions_at(model_fd, model),
        "links": planted_links_at(model_fd, model_dir),
        "staged": staged_state_at(model_fd, model),
    }


def staged_platforms_at(model_fd):
    """The platform_id directories of a model: real directories that are not versions,
    current / previous or hidden."""
    return sorted(name for name in listdir_fd(model_fd)
                  if STAGED_NAME_RE.match(name) and not VERSION_RE.match(name)
                  and name not in (CURRENT, PREVIOUS) and kind_at(model_fd, name) == "dir")


def staged_variants_at(platform_fd):
    return sorted(name for name in listdir_fd(platform_fd)
                  if STAGED_NAME_RE.match(name) and kind_at(platform_fd, name) == "dir")


def staged_engine_at(variant_fd, model):
    """What one staged directory holds, as its statement says (the signature is not checked
    here: the guard and the deploy do that), and whether its engine's bytes match the sha256
    the statement names (hashed, no link followed)."""
    statement = read_json_at(variant_fd, STATEMENT)
    payload = None
    if statement is not None and isinstance(statement.get("payload"), str):
        try:
            payload = json.loads(statement["payload"])
        except ValueError:
            payload = None
    if not isinstance(payload, dict):
        return {"engine_sha256": None, "key_id": None, "intact": False}
    claimed = payload.get("engine_sha256")
    try:
        actual = sha256_fd(open_file_at(variant_fd, engine_file_name(model), model))
    except (OSError, PlantedLink):
        actual = None
    return {"engine_sha256": claimed, "key_id": statement.get("key_id"),
            "intact": actual is not None and actual == claimed}


def staged_state_at(model_fd, model):
    """{platform_id: {variant: staged_engine_at}} of one model directory."""
    staged = {}
    for platform_id in staged_platforms_at(model_fd):
        platform_fd = os.open(platform_id, DIR_FLAGS, dir_fd=model_fd)
        try:
            for variant in staged_variants_at(platform_fd):
                variant_fd = os.open(variant, DIR_FLAGS, dir_fd=platform_fd)
                try:
                    staged.setdefault(platform_id, {})[variant] = staged_engine_at(variant_fd,
                                                                                   model)
                finally:
                    os.close(variant_fd)
        finally:
            os.close(platform_fd)
    return staged


def install_state(install_root):
    """{model: model_state} for every model directory under the install root. A model
    directory that is a link is reported as ``{"link": description}`` and not entered."""
    models = {}
    root_fd = open_root(install_root)
    if root_fd is None:
        return models
    try:
        for name in sorted(listdir_fd(root_fd)):
            if name.startswith(".") or name == GUARD_DIR:
                continue
            path = os.path.join(install_root, name)
            kind = kind_at(root_fd, name)
            if kind == "link":
                models[name] = {"link": describe_link(path, root_fd, name), "current": None,
                                "previous": None, "versions": [], "links": []}
            elif kind == "dir":
                fd = os.open(name, DIR_FLAGS, dir_fd=root_fd)
                try:
                    models[name] = model_state_at(fd, name, path)
                finally:
                    os.close(fd)
    finally:
        os.close(root_fd)
    return models


def _json_in_subdir(install_root, subdir, name):
    """<root>/<subdir>/<name> as JSON, read without following a link; None when missing or
    when <subdir> is a link."""
    root_fd = open_root(install_root)
    if root_fd is None:
        return None
    try:
        if kind_at(root_fd, subdir) != "dir":
            return None
        fd = os.open(subdir, DIR_FLAGS, dir_fd=root_fd)
        try:
            return read_json_at(fd, name)
        finally:
            os.close(fd)
    finally:
        os.close(root_fd)


def deploy_env_marker(install_root, marker_name=DEPLOY_ENV_MARKER):
    """The deploy environment's marker (<root>/.deploy-venv/<marker_name>); None when missing
    or when .deploy-venv is a link."""
    return _json_in_subdir(install_root, DEPLOY_VENV, marker_name)


def guard_marker(install_root):
    """<root>/bin/guard.json (what the deploy installed of the guard and its keys); None when
    missing."""
    return _json_in_subdir(install_root, GUARD_DIR, GUARD_MARKER)


def root_links(install_root):
    """Links at the root's own entries of the deploy environment (.deploy-venv,
    .deploy-wheels): descriptions."""
    root_fd = open_root(install_root)
    if root_fd is None:
        return []
    try:
        return [describe_link(os.path.join(install_root, name), root_fd, name)
                for name in (DEPLOY_VENV, DEPLOY_WHEELS, GUARD_DIR)
                if kind_at(root_fd, name) == "link"]
    finally:
        os.close(root_fd)


# -------------------------------------------------------------------- path-based helpers

def read_json(path):
    """Parsed JSON object, or None when missing or not a valid JSON object."""
    try:
        with open(path) as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


