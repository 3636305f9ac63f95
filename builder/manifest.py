"""The manifest next to every engine, publishing engine + manifest safely, and the
free-space check done before writing build outputs.

``manifest.json`` is the commit marker of a build: an engine file without a manifest
describing it (same sha256) is an unfinished build and must not be collected.

Keys (schema_version 1):
    schema_version, model, engine_file, engine_sha256, engine_size, graph_sha256,
    uff_sha256, build_key, spec (the catalog entry), derived (what the graph surgery
    derived; null when built from --uff), input_dims, platform (detect_platform facts),
    platform_id, tensorrt_version (the Python bindings'), tensorrt_api, precision,
    precision_source ("builder flag", or "onnx tensor types" on strongly typed TensorRT 11),
    workspace_mib, max_batch, dla_core, timing_cache, build_seconds, builder_version,
    created_utc, warnings, verify (added by ``builder verify``: see verify.py)
"""

import json
import os
import time

from . import atomic
from .errors import DiskSpaceError, UserError

MANIFEST_NAME = "manifest.json"
SCHEMA_VERSION = 1


def manifest_path(directory):
    return os.path.join(directory, MANIFEST_NAME)


def utc_now():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def new_manifest(engine_file, plan, facts):
    """The manifest dict for ``plan`` (engine bytes) saved as ``engine_file``.

    ``facts``: the build facts (model, graph_sha256, build_key, spec, platform, ...).
    """
    manifest = {
        "schema_version": SCHEMA_VERSION,
        "engine_file": engine_file,
        "engine_sha256": atomic.sha256_bytes(plan),
        "engine_size": len(plan),
        "created_utc": utc_now(),
    }
    overlap = set(manifest) & set(facts)
    if overlap:
        raise ValueError("facts may not override {}".format(sorted(overlap)))
    manifest.update(facts)
    return manifest


def publish_engine(directory, engine_file, plan, manifest):
    """Write the engine, then its manifest, so a manifest never names a missing engine.

    Order: engine bytes to a hidden staging file (fsync'd) -> drop the old manifest
    (it describes the old engine) -> rename the engine into place -> write the new
    manifest atomically. A kill at any point leaves either the previous engine with
    its manifest, or an engine with no manifest (an unfinished build), never a
    half-written engine under its real name.
    """
    engine_path = os.path.join(directory, engine_file)
    staging = os.path.join(directory, ".{}.partial".format(engine_file))
    atomic.write_bytes(staging, plan)
    try:
        old_manifest = manifest_path(directory)
        if os.path.exists(old_manifest):
            os.unlink(old_manifest)
        os.replace(staging, engine_path)
    except BaseException:
        if os.path.exists(staging):
            os.unlink(staging)
        raise
    _write_manifest(manifest_path(directory), manifest)
    # Makes the renames durable on power loss (the engine is big and costly to redo).
    atomic.fsync_directory(directory)
    return engine_path


def require_free_space(directory, needed_bytes, what):
    """UserError when ``directory`` has less than ``needed_bytes`` free for ``what``."""
    stats = os.statvfs(directory)
    free = stats.f_bavail * stats.f_frsize
    if free < needed_bytes:
        raise DiskSpaceError(
            "not enough free disk space in {} for {}: {:.1f} MiB free, about {:.1f} MiB "
            "needed. Free some space or choose another directory with --out".format(
                directory, what, free / 1048576.0, needed_bytes / 1048576.0),
            directory, free, needed_bytes)
    return free


def read_manifest(path):
    try:
        with open(path) as handle:
            data = json.load(handle)
    except ValueError as error:
        raise UserError("{} is not valid JSON ({}); rebuild the engine to get a new "
                        "manifest".format(path, error)) from error
    if not isinstance(data, dict):
        raise UserError("{}: expected a JSON object; rebuild the engine".format(path))
    return data


def record_verify(engine_path, result):
    """Add ``"verify": result`` to the manifest next to ``engine_path``, atomically.

    Returns the manifest path written, or None when there is no manifest. Refuses
    (UserError) when the manifest describes another engine file or other bytes.
    """
    path = manifest_path(os.path.dirname(os.path.abspath(engine_path)))
    if not os.path.exists(path):
        return None
    manifest = read_manifest(path)
    engine_file = os.path.basename(engine_path)
    if manifest.get("engine_file") != engine_file:
        raise UserError(
            "{} describes {!r}, not {}; verify results not recorded (verify that engine, "
            "or move {} to its own directory)".format(
                path, manifest.get("engine_file"), engine_file, engine_file)
        )
    actual = atomic.file_sha256(engine_path)
    if manifest.get("engine_sha256") != actual:
        raise UserError(
            "{}: engine_sha256 {} does not match {} (sha256 {}); the engine was replaced "
            "after its build. Rebuild it so engine and manifest agree".format(
                path, manifest.get("engine_sha256"), engine_path, actual)
        )
    manifest["verify"] = result
    _write_manifest(path, manifest)
    return path


def _write_manifest(path, manifest):
    atomic.write_json(path, manifest)
