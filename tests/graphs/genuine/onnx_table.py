#!/usr/bin/env python3
"""Run `builder onnx` on every genuine export (and on the models of other catalogs) and print
the Markdown table of docs/genuine-exports.md: per model, what the graph says, the path it
takes and the ONNX figures (cut errors, detections matched, conversion time).

    .venv/bin/python tests/graphs/genuine/onnx_table.py [--catalog MORE.yml ...]
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from genuine import exports_dir  # noqa: E402

COLUMNS = ("model", "input", "classes", "anchors", "predictor / clip / scores",
           "UFF path (TensorRT < 8.4)", "ONNX path (8.4 and later)",
           "cut max abs error (boxes, logits, scores)", "detections matched", "seconds")


def _convert(catalog: Path, name: str, out: Path) -> tuple[dict, float]:
    started = time.monotonic()
    run = subprocess.run([sys.executable, "-m", "builder", "onnx", "--catalog", str(catalog),
                          "--out", str(out), "--json", "--", name],
                         capture_output=True, text=True, check=False,
                         cwd=str(HERE.parents[2]))
    seconds = time.monotonic() - started
    record = json.loads([line for line in run.stdout.splitlines()
                         if line.startswith('{"command"')][-1])
    return record, seconds


def _uff_path(catalog: Path, name: str) -> str:
    """What the UFF surgery says of the model: yes with GridAnchor_TRT's error, or why not."""
    from builder.errors import UserError  # noqa: PLC0415
    from builder.graph import surgery  # noqa: PLC0415
    from builder.spec.catalog import load_catalog  # noqa: PLC0415

    try:
        result = surgery.transform_model(load_catalog(str(catalog)).models[name],
                                         strict=False)
    except UserError:
        return "refused (as ONNX)"
    if result.uff_refusal:  # its first clause, without the graph's path
        return "no: " + re.sub(r" (of )?graph \S+", "", result.uff_refusal.split(": ", 1)[0])
    return "yes (GridAnchor_TRT error {:.1e})".format(result.derived["grid_anchor_max_error"])


def _row(catalog: Path, name: str, out: Path) -> list[str]:
    record, seconds = _convert(catalog, name, out)
    uff = _uff_path(catalog, name)
    if record["status"] != "ok":
        words = record["message"].split(": ", 1)[-1]
        return [name, "-", "-", "-", "-", uff,
                "refused ({}): {}".format(record["kind"], words[:140]), "-", "-",
                "{:.0f}".format(seconds)]
    report = json.loads((out / (name + ".onnx.json")).read_text())
    verification = report["verification"]
    cut = verification["cut"]["max_abs_error"]
    found = verification["detections"]
    style = "{} / {} / {}".format(report["box_predictor"], report["clip"],
                                  report["score_converter"])
    return [name, "x".join(str(d) for d in report["input"]["shape"][2:]),
            str(report["num_classes"]), str(report["anchors"]), style, uff,
            "yes" if verification["ok"] else "verification FAILED",
            ", ".join("{:.1e}".format(cut[key]) for key in ("boxes", "logits", "scores")),
            "{} of {} (2 images)".format(found["matched"], found["tensorflow"]),
            "{:.0f}".format(seconds)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--catalog", action="append", default=[], type=Path,
                        help="another catalog whose models to add (e.g. real exports)")
    args = parser.parse_args(argv)
    catalogs = [exports_dir() / "models.yml", *args.catalog]
    print("| " + " | ".join(COLUMNS) + " |")
    print("|" + "---|" * len(COLUMNS))
    with tempfile.TemporaryDirectory() as scratch:
        for catalog in catalogs:
            for name in (yaml.safe_load(catalog.read_text()) or {}).get("models") or {}:
                out = Path(scratch) / name
                print("| " + " | ".join(_row(catalog, name, out)) + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
