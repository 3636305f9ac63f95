"""Graph sums taken while a file is unchanged, instead of reading tens of MB again.

The builder records its graph's and ONNX export's sums in its output directory (``record``),
which the facts step reads on every run (``recorded``, ``graph_sha256``); the preflight keeps
the catalog graphs' sums in a cache of its own (``known_sha256``: controller/preflight.py).
A sum holds while the file's size, mtime, inode and ctime are unchanged (a graph pushed since
is a new inode; one edited in place gets a new ctime even with its mtime set back). A file
changed within RACY_SECONDS of being read is not kept: file times are coarse. A wrong sum
could only skip a push or pass a pin; the builder refuses a graph that is not the pinned one.
"""

import json
import os
import time

from .atomic import file_sha256, write_json

# The files the facts report per model (a TensorFlow graph, the controller's ONNX export).
GRAPH_SUFFIXES = (".pb", ".onnx")
GRAPH_SUMS = ".graph-sums.json"
# Written by the builder for a handful of files; anything larger is not this file.
MAX_BYTES = 64 * 1024
RACY_SECONDS = 2.0


def stamp(path):
    """What says that ``path`` is unchanged: [size, mtime_ns, inode, ctime_ns]."""
    info = os.stat(path)
    return [info.st_size, info.st_mtime_ns, info.st_ino, info.st_ctime_ns]


def _taken(entry, current):
    """The sum of ``entry`` ({"sha256", "stamp"}) when its stamp is ``current``, else None."""
    if isinstance(entry, dict) and isinstance(entry.get("sha256"), str) \
            and entry.get("stamp") == current:
        return entry["sha256"]
    return None


def record(directory, sums):
    """Record ``sums`` ({path: sha256}) for the graphs among them that are directly in
    ``directory`` (the builder writes in its output directory only)."""
    directory = os.path.abspath(directory)
    files = {}
    for given, sha256 in sums.items():
        path = os.path.abspath(given)
        if os.path.dirname(path) == directory and path.endswith(GRAPH_SUFFIXES):
            files[os.path.basename(path)] = {"sha256": sha256, "stamp": stamp(path)}
    if files:
        write_sums(os.path.join(directory, GRAPH_SUMS), files)


def read_sums(path, max_bytes=MAX_BYTES):
    """{key: {"sha256", "stamp"}} of the record at ``path``; empty when there is none, or it is
    not a record (larger than ``max_bytes``, not JSON, another shape)."""
    try:
        if os.path.getsize(path) > max_bytes:
            return {}
        with open(path) as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return {}
    files = data.get("files") if isinstance(data, dict) else None
    return files if isinstance(files, dict) else {}


def write_sums(path, files):
    """Write the record at ``path`` (atomically: a reader sees the old one or the new one)."""
    write_json(path, {"version": 1, "files": files})


def recorded(directory):
    """{name: {"sha256", "stamp"}} the builder recorded in ``directory``."""
    return read_sums(os.path.join(directory, GRAPH_SUMS))


def graph_sha256(directory, name, sums):
    """The sha256 of graph ``name`` in ``directory``: its recorded sum (``sums``: what
    ``recorded`` returned) while the file is unchanged, else read from the file."""
    path = os.path.join(directory, name)
    return _taken(sums.get(name), stamp(path)) or file_sha256(path)


def known_sha256(path, known):
    """The sha256 of ``path``: the one ``known`` ({path: entry}) holds while the file is
    unchanged, else read from the file and put into ``known`` (unless the file changed while
    read, or too recently to be told apart from a later change)."""
    before = stamp(path)
    sha256 = _taken(known.get(path), before)
    if sha256 is not None:
        return sha256
    sha256 = file_sha256(path)
    settled = max(before[1], before[3]) < (time.time() - RACY_SECONDS) * 1e9
    if settled and stamp(path) == before:
        known[path] = {"sha256": sha256, "stamp": before}
    else:
        known.pop(path, None)
    return sha256
