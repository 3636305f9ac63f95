"""The ONNX files of the ONNX path (TensorRT >= 8.4): made once per graph on the controller,
verified there against TensorFlow, kept in the store, pushed to the devices that build from
them.

    <store>/onnx/<model>/<export key>/<model>.onnx        the graph with EfficientNMS_TRT
    <store>/onnx/<model>/<export key>/<model>.onnx.json   builder onnx's report (verification)

The export key names what the ONNX file depends on: the graph's sha256, the catalog fields
that change it (the engine-affecting ones, box_decoder among them) and the builder version;
not the engine options (precision, workspace, DLA), which only the device's build uses.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import types
from pathlib import Path
from typing import Any

from builder import __version__ as BUILDER_VERSION
from builder import buildkey
from builder.atomic import file_sha256
from builder.errors import UserError
from builder.platform import detect
from builder.trt.adapter import parse_version
from builder.trt.enginepath import choose_engine_path

from . import trust
from .store import ONNX_DIR, EngineStore, StoreError


def engine_path_of(spec: dict[str, Any], tensorrt: str | None, catalog_path: str
                   ) -> tuple[str | None, str | None]:
    """('uff' | 'onnx', None) for a model on a TensorRT version, or (None, why refused)."""
    if not tensorrt:
        return None, "TensorRT is not installed on the device"
    try:
        return choose_engine_path(types.SimpleNamespace(**spec), parse_version(tensorrt),
                                  tensorrt, catalog_path), None
    except UserError as error:
        return None, str(error)


def onnx_precision(engine_precision: str, tensorrt: str | None) -> str:
    """The tensor types of the ONNX file a build of ``engine_precision`` needs: fp16 on a
    strongly typed TensorRT (11 and later), whose engines compute in the ONNX's types;
    otherwise fp32 (the builder flag makes an fp16 engine from it)."""
    if engine_precision == "fp16" and detect.strongly_typed(tensorrt):
        return "fp16"
    return "fp32"


def export_key(spec: dict[str, Any], precision: str = "fp32") -> str:
    """What an ONNX export of ``spec`` depends on (see the module docstring); an fp16 export
    (for a strongly typed TensorRT) is another file, under another key."""
    payload = {"graph_sha256": spec["sha256"],
               "spec": {field: spec.get(field) for field in buildkey.SPEC_FIELDS},
               "pipeline_config_sha256": spec.get("pipeline_config_sha256"),
               "builder_version": BUILDER_VERSION}
    if precision != "fp32":  # the fp32 keys stay those of the stores made before fp16 ones
        payload["precision"] = precision
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def export_dir(store: EngineStore, model: str, key: str) -> Path:
    return trust.confined(store.root, ONNX_DIR, trust.component(model, "model", "the plan",
                                                                trust.MODEL_NAME), key)


def files_of(store: EngineStore, model: str, key: str) -> dict[str, str] | None:
    """{"onnx", "report"} paths of a verified export in the store, or None."""
    directory = export_dir(store, model, key)
    onnx, report = directory / (model + ".onnx"), directory / (model + ".onnx.json")
    if not (onnx.is_file() and report.is_file()):
        return None
    return {"onnx": str(onnx), "report": str(report)}


def _record(stdout: str) -> dict[str, Any] | None:
    try:
        record = json.loads(stdout)
    except ValueError:
        return None
    return record if isinstance(record, dict) and record.get("record") == 1 else None


def export(store: EngineStore, model: str, key: str, catalog_path: str,
           precision: str = "fp32") -> dict[str, str]:
    """Run ``builder onnx`` for ``model`` into the store (StoreError with its message if the
    export or its verification fails); the files' paths."""
    found = files_of(store, model, key)
    if found:
        return found
    target = export_dir(store, model, key)
    target.parent.mkdir(parents=True, exist_ok=True)
    work: Path | None = Path(tempfile.mkdtemp(prefix=".new-onnx-", dir=str(target.parent)))
    try:
        # Its own process: TensorFlow and tf2onnx stay out of Ansible's worker.
        run = subprocess.run(
            [sys.executable, "-m", "builder", "onnx", "--catalog", catalog_path, "--out",
             str(work), "--precision", precision, "--json", "--", model],
            capture_output=True, text=True, check=False,
            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
        record = _record(run.stdout)
        if run.returncode != 0 or record is None or record.get("status") != "ok":
            message = (record or {}).get("message") or (run.stderr.strip().splitlines() or [
                "exit {}".format(run.returncode)])[-1]
            raise StoreError("model {}: the {} ONNX export on the controller failed: {}".format(
                model, precision, message))
        os.chmod(str(work), 0o755)
        os.rename(str(work), str(target))
        work = None
    finally:
        if work is not None:
            shutil.rmtree(str(work), ignore_errors=True)
    made = files_of(store, model, key)
    if made is None:
        raise StoreError("model {}: the {} ONNX export on the controller left no {} and {} "
                         "in {}".format(model, precision, model + ".onnx", model + ".onnx.json",
                                        target))
    return made


def export_problems(store: EngineStore) -> dict[Path, str]:
    """{export directory: problem} of the store's ONNX exports. Reads only.

    An export is sound when both files are there, the report is builder onnx's, its
    recorded sha256 is the ONNX file's own and its verification passed. Interrupted exports
    (.new-onnx-*) are the store's leftovers (EngineStore.leftovers).
    """
    problems = {}
    root = store.root / ONNX_DIR
    for model_dir in sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else ():
        for directory in sorted(p for p in model_dir.iterdir()
                                if p.is_dir() and not p.name.startswith(".")):
            problem = _export_problem(directory, model_dir.name)
            if problem:
                problems[directory] = problem
    return problems


def _export_problem(directory: Path, model: str) -> str | None:
    onnx, report = directory / (model + ".onnx"), directory / (model + ".onnx.json")
    if not onnx.is_file() or not report.is_file():
        return "incomplete (needs {} and {})".format(onnx.name, report.name)
    try:
        data = json.loads(report.read_text())
    except (OSError, ValueError) as error:
        return "{} is unreadable: {}".format(report.name, error)
    if not isinstance(data, dict):
        return "{} is not a builder onnx report".format(report.name)
    if data.get("onnx_sha256") != file_sha256(str(onnx)):
        return "{} does not match the sha256 its report records".format(onnx.name)
    if not (data.get("verification") or {}).get("ok"):
        return "its verification against TensorFlow did not pass"
    return None


def remove_broken_exports(store: EngineStore) -> list[str]:
    """Delete the exports export_problems names (the next run makes them again, verified);
    what was done."""
    done = []
    with store.locked():
        for directory, problem in sorted(export_problems(store).items()):
            shutil.rmtree(str(directory))
            done.append("removed ONNX export {} ({})".format(directory, problem))
    return done
