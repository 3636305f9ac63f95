"""The sha256 of the graphs in a model's work directory, recorded by the builder so that the
facts step (library/jetson_facts.py, every run, the no-op included) need not read them again.

A frozen graph is tens of MB, and the facts report the sum of every graph on the device so the
plan knows which to push. The builder hashes its graph and its ONNX export anyway (it checks
them against the catalog's pin); it records each sum in its output directory with the file's
size, mtime and inode. The facts take a recorded sum only while all three are unchanged: a
graph pushed since is a new file (another inode) and is hashed again. A wrong sum could only
make the plan skip a push, and the builder then refuses the graph that is not the pinned one.
"""

import json
import os

from .atomic import file_sha256, write_json

# The files the facts report per model (a TensorFlow graph, the controller's ONNX export).
GRAPH_SUFFIXES = (".pb", ".onnx")
GRAPH_SUMS = ".graph-sums.json"
# Written by the builder for a handful of files; anything larger is not this file.
MAX_BYTES = 64 * 1024


def _stamp(path):
    info = os.stat(path)
    return [info.st_size, info.st_mtime_ns, info.st_ino]


def record(directory, sums):
    """Record ``sums`` ({path: sha256}) for the graphs among them that are directly in
    ``directory`` (the builder writes in its output directory only)."""
    directory = os.path.abspath(directory)
    files = {}
    for given, sha256 in sums.items():
        path = os.path.abspath(given)
        if os.path.dirname(path) == directory and path.endswith(GRAPH_SUFFIXES):
            files[os.path.basename(path)] = {"sha256": sha256, "stamp": _stamp(path)}
    if files:
        write_json(os.path.join(directory, GRAPH_SUMS), {"version": 1, "files": files})


def recorded(directory):
    """{name: {"sha256", "stamp"}} recorded in ``directory``; empty when there is no record
    or it is not one the builder wrote."""
    path = os.path.join(directory, GRAPH_SUMS)
    try:
        if os.path.getsize(path) > MAX_BYTES:
            return {}
        with open(path) as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return {}
    files = data.get("files") if isinstance(data, dict) else None
    return files if isinstance(files, dict) else {}


def graph_sha256(directory, name, sums):
    """The sha256 of graph ``name`` in ``directory``: its recorded sum (``sums``: what
    ``recorded`` returned) while the file is unchanged, else read from the file."""
    path = os.path.join(directory, name)
    entry = sums.get(name)
    if isinstance(entry, dict) and isinstance(entry.get("sha256"), str) \
            and entry.get("stamp") == _stamp(path):
        return entry["sha256"]
    return file_sha256(path)
