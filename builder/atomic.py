"""The one home of the file primitives: sha256 of bytes and files, fsync of a directory, and
writes that readers see whole (the old content or the new one, never a part).

The builder, the controller (controller/store.py, controller/signing.py) and tools/ import
them from here. module_utils/trt_deploy.py, which the deploy guard runs without this package,
keeps a copy of ``sha256_of`` that tests/unit/test_one_home.py checks against this one.
"""

import hashlib
import json
import os
import tempfile


def sha256_bytes(data):
    return hashlib.sha256(data).hexdigest()


def sha256_of(handle):
    """Hex sha256 of what a binary handle has left, read in blocks (graphs and engines are
    tens of MB; a Nano has little RAM)."""
    digest = hashlib.sha256()
    for block in iter(lambda: handle.read(1 << 20), b""):
        digest.update(block)
    return digest.hexdigest()


def file_sha256(path):
    """Hex sha256 of the file at ``path`` (a str or a pathlib.Path)."""
    with open(str(path), "rb") as handle:
        return sha256_of(handle)


def fsync_directory(path):
    """Make the renames and creations in directory ``path`` durable (power loss)."""
    fd = os.open(str(path), os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _default_file_mode():
    """0666 minus the process umask: what open() would have given the file."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def replace_atomically(path, write, prefix=".tmp-", mode=None):
    """``write(binary handle)`` into a temporary file beside ``path`` (named ``prefix``...),
    fsync, rename it over ``path``. ``mode``: the published file's, by default the one a plain
    open() would give (mkstemp creates 0600)."""
    directory = os.path.dirname(os.path.abspath(str(path)))
    fd, tmp_path = tempfile.mkstemp(prefix=prefix, dir=directory)
    try:
        os.chmod(tmp_path, _default_file_mode() if mode is None else mode)
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_path, str(path))
    except BaseException:
        if os.path.lexists(tmp_path):
            os.unlink(tmp_path)
        raise


def write_bytes(path, data, **options):
    """``data`` at ``path``, replaced atomically (``options``: replace_atomically's)."""
    replace_atomically(path, lambda handle: handle.write(data), **options)


def write_text(path, text, **options):
    write_bytes(path, text.encode("utf-8"), **options)


def write_json(path, obj, **options):
    """``obj`` as sorted, indented JSON."""
    write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n", **options)
