# -*- coding: utf-8 -*-
"""What only the deploy does to the installed engines' layout (module_utils/trt_deploy.py,
which describes it and reads it): name a new version, create and remove entries, copy a
file, switch the current / previous links, choose what to prune, and read the guard's
keyring. Python 3.6 syntax: this runs on JetPack 4 devices (library/engine_deploy.py, and the
guard, module_utils/trt_engine_guard.py).

A module of its own because library/jetson_facts.py, which every device runs on every run,
needs only the reading half: Ansible sends each module_utils file a module imports whole, so
this half stays off the facts' payload (bench/README.md). The same rule holds here: no link
below the install root is followed.
"""

from __future__ import absolute_import, division, print_function

import errno
import os
import re

from .trt_deploy import (
    CLOEXEC,
    DIR_FLAGS,
    GUARD_DIR,
    GUARD_KEYS,
    KEYRING_FILE,
    VERSION_DIGEST_CHARS,
    VERSION_RE,
    PlantedLink,
    describe_link,
    kind_at,
    link_version_at,
    listdir_fd,
    open_file_at,
    read_json_at,
    versions_at,
)

# A new file, created here and nowhere else (no link followed, none replaced).
NEW_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | CLOEXEC


# ----------------------------------------------------------- naming, no-follow primitives

def version_name(build_key, engine_sha256):
    """Readable, unique version directory name of one engine build: the first characters of
    each digest, as VERSION_RE (the one description of the name) has them."""
    for name, value in (("build_key", build_key), ("engine_sha256", engine_sha256)):
        if not re.match(r"^[0-9a-f]+\Z", str(value or "")):
            raise ValueError("{} {!r} is not a hex digest".format(name, value))
    chars = VERSION_DIGEST_CHARS
    version = "{}-{}".format(build_key[:chars], engine_sha256[:chars])
    if not VERSION_RE.match(version):
        raise ValueError("build_key {!r} or engine_sha256 {!r} is shorter than {} characters"
                         .format(build_key, engine_sha256, VERSION_DIGEST_CHARS))
    return version


def open_dir_at(dir_fd, name, path):
    """A file descriptor of the directory ``name`` in ``dir_fd``; PlantedLink when it is a
    link or not a directory (``path``: its full path, for the message)."""
    try:
        return os.open(name, DIR_FLAGS, dir_fd=dir_fd)
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise PlantedLink(describe_link(path, dir_fd, name)) from error
        if error.errno == errno.ENOTDIR:
            raise PlantedLink("{} is not a directory".format(path)) from error
        raise


def remove_at(dir_fd, name):
    """Remove the entry ``name`` of ``dir_fd``: a link or a file is unlinked (a link's target
    is never touched), a directory is emptied the same way, through file descriptors, and
    removed. Nothing outside ``dir_fd`` is reached."""
    kind = kind_at(dir_fd, name)
    if kind == "missing":
        return
    if kind != "dir":
        os.unlink(name, dir_fd=dir_fd)
        return
    fd = os.open(name, DIR_FLAGS, dir_fd=dir_fd)
    try:
        for child in listdir_fd(fd):
            remove_at(fd, child)
    finally:
        os.close(fd)
    os.rmdir(name, dir_fd=dir_fd)


def ensure_dir_at(dir_fd, name, path, removed, mode=0o755):
    """The directory ``name`` of ``dir_fd``, created when missing; a link (or a file) there is
    removed first and its description appended to ``removed``. Returns its fd."""
    kind = kind_at(dir_fd, name)
    if kind not in ("missing", "dir"):
        removed.append(describe_link(path, dir_fd, name) if kind == "link"
                       else "{} is not a directory".format(path))
        os.unlink(name, dir_fd=dir_fd)
        kind = "missing"
    if kind == "missing":
        os.mkdir(name, mode, dir_fd=dir_fd)
    return open_dir_at(dir_fd, name, path)



# -------------------------------------------------------------------- the layout, written

def keyring_document_at(root_fd, root):
    """(the parsed <root>/bin/keys/trusted-keys.json or None, its path), reached without
    following a link (PlantedLink / OSError when bin or keys is not a real directory)."""
    bin_fd = open_dir_at(root_fd, GUARD_DIR, os.path.join(root, GUARD_DIR))
    try:
        keys_fd = open_dir_at(bin_fd, GUARD_KEYS, os.path.join(root, GUARD_DIR, GUARD_KEYS))
    finally:
        os.close(bin_fd)
    try:
        return read_json_at(keys_fd, KEYRING_FILE), os.path.join(root, GUARD_DIR, GUARD_KEYS,
                                                                 KEYRING_FILE)
    finally:
        os.close(keys_fd)


def copy_file_at(source_fd, target_fd, name, path, target_name=None):
    """Copy the regular file ``name`` from one directory fd to another (a new file
    ``target_name``, default the same name; 0644, fsynced), no link followed on either side."""
    source = open_file_at(source_fd, name, path)
    target = os.open(target_name or name, NEW_FILE_FLAGS, 0o644, dir_fd=target_fd)
    with os.fdopen(source, "rb") as reader, os.fdopen(target, "wb") as writer:
        for block in iter(lambda: reader.read(1 << 20), b""):
            writer.write(block)
        writer.flush()
        os.fsync(writer.fileno())


def switch_link_at(model_fd, name, version, model_dir):
    """Point <model_dir>/<name> at ``version`` atomically: a temporary link renamed over it.
    The rename replaces a link itself (never its target); a directory there is refused."""
    if kind_at(model_fd, name) not in ("missing", "link"):
        raise PlantedLink("{} is not a link: the deploy does not replace it; move it away"
                          .format(os.path.join(model_dir, name)))
    temporary = ".{}.tmp-{}".format(name, os.getpid())
    if kind_at(model_fd, temporary) != "missing":
        remove_at(model_fd, temporary)
    os.symlink(version, temporary, dir_fd=model_fd)
    os.rename(temporary, name, src_dir_fd=model_fd, dst_dir_fd=model_fd)
    os.fsync(model_fd)


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


def _with_dir(path, action):
    fd = os.open(path, DIR_FLAGS)
    try:
        return action(fd)
    finally:
        os.close(fd)


def link_version(model_dir, name):
    """link_version_at for a model directory given by path (None when it is missing)."""
    try:
        return _with_dir(model_dir, lambda fd: link_version_at(fd, name))
    except OSError:
        return None


def versions(model_dir, model=None):
    """versions_at for a model directory given by path ([] when missing or a link)."""
    model = model or os.path.basename(os.path.normpath(model_dir))
    try:
        return _with_dir(model_dir, lambda fd: versions_at(fd, model))
    except OSError:
        return []


def switch_link(model_dir, name, version):
    _with_dir(model_dir, lambda fd: switch_link_at(fd, name, version, model_dir))
