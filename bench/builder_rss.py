"""Peak RSS of the builder process by the number of models it builds (1, 2, 3 ...).

Runs the real builder CLI (`python -m builder build --verify --json`, what the engine_build
role runs) on the generated SSD test graphs, against the SIMULATED TensorRT doubles of a
Nano with TensorRT 8.2 (tests/jetpack) and the real TensorFlow of this machine (the UFF
conversion imports it): once as one process building N models (engine_build_processes:
per_device), once as N processes of one model each (per_model). Peak RSS is each process's
own ru_maxrss (os.wait4), CPU its user + sys. The doubles allocate no engine-sized memory:
the figures say what the Python side (TensorFlow, the conversion, the builder) costs and
whether it grows with the models of one process, not what a real TensorRT build needs.

    .venv/bin/python bench/builder_rss.py              # 1, 2 and 3 models
    .venv/bin/python bench/builder_rss.py --max-models 2 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests" / "jetpack"), str(REPO / "tests" / "graphs")]

import layout  # noqa: E402  (tests/jetpack is not a package)
from generated import graphs_dir  # noqa: E402

from builder.platform.detect import detect_platform  # noqa: E402
from tests.unit.platform_roots import lay_out  # noqa: E402

MODELS = ("ssd_mobilenet_v1_coco", "ssd_mobilenet_v2_coco", "ssd_inception_v2_coco")
PROFILE = "nano-32.7.1"
TENSORRT = "8.2.1.8"


class SimulatedNano:
    """A Nano's filesystem root, device.json, CUDA runtime and plugin library, on this host."""

    def __init__(self, base: Path):
        self.root = lay_out(base / "root", PROFILE)
        facts = detect_platform(str(self.root))
        description = {"name": "nano-rss", "profile": PROFILE, "module": facts["module"],
                       "soc": facts["soc"], "compute_capability": facts["compute_capability"],
                       "memory_mib": facts["memory_mib"], "dla_cores": facts["dla_cores"],
                       "l4t": facts["l4t"], "tensorrt_version": TENSORRT,
                       "build_seconds": 0.2, "infer_ms": 2.0}
        (base / "device.json").write_text(json.dumps(description))
        (base / "fault").write_text("ok\n")
        self.env = dict(os.environ, SIMJETSON_DEVICE=str(base / "device.json"),
                        SIMJETSON_FAULT=str(base / "fault"), TF_CPP_MIN_LOG_LEVEL="3",
                        PYTHONPATH=os.pathsep.join([str(REPO), str(layout.site_packages_dir(
                            layout.generation_for(TENSORRT)))]))
        self.cudart = layout.build_cudart(base / "cuda", facts["cuda"])
        self.plugin = layout.build_flattenconcat(base / "plugins")

    def build_argv(self, models, out: Path) -> list[str]:
        return [sys.executable, "-m", "builder", "build", "--catalog",
                str(graphs_dir() / "models.yml"), "--out", str(out / "{model}"), "--root",
                str(self.root), "--plugin-library", str(self.plugin), "--cudart",
                str(self.cudart), "--workspace-mib", "256", "--verify", "--json", "--",
                *models]


def measured_run(argv: list[str], env: dict, logs: Path) -> dict:
    """Wall, CPU and peak RSS of one builder process; every model's record must be ok."""
    logs.mkdir(parents=True, exist_ok=True)
    with open(logs / "stdout", "w") as stdout, open(logs / "stderr", "w") as stderr:
        started = time.monotonic()
        process = subprocess.Popen(argv, env=env, stdout=stdout, stderr=stderr)
        _pid, status, usage = os.wait4(process.pid, 0)
        wall = time.monotonic() - started
    process.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    records = [json.loads(line) for line in (logs / "stdout").read_text().splitlines()]
    failed = [r.get("model") for r in records if r.get("status") != "ok"]
    if process.returncode != 0 or failed or not records:
        tail = (logs / "stderr").read_text().strip().splitlines()[-5:]
        raise SystemExit("builder exit {} (failed: {}):\n{}".format(
            process.returncode, failed, "\n".join(tail)))
    return {"wall_s": round(wall, 2), "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
            "peak_rss_mib": round(usage.ru_maxrss / 1024, 1)}


def measure(count: int, device: SimulatedNano, work: Path) -> dict:
    models = MODELS[:count]
    together = measured_run(device.build_argv(models, work / "together"), device.env,
                            work / "logs" / "together")
    apart = [measured_run(device.build_argv([model], work / "apart"), device.env,
                          work / "logs" / ("apart-" + model)) for model in models]
    return {"models": count, "one_process": together,
            "process_per_model": {
                "wall_s": round(sum(r["wall_s"] for r in apart), 2),
                "cpu_s": round(sum(r["cpu_s"] for r in apart), 2),
                "peak_rss_mib": max(r["peak_rss_mib"] for r in apart)}}


def table(rows: list[dict]) -> str:
    lines = ["| models | one process: peak RSS | CPU | wall | one process per model: "
             "largest peak RSS | CPU (sum) | wall (sum) |", "|---|---|---|---|---|---|---|"]
    for row in rows:
        one, apart = row["one_process"], row["process_per_model"]
        lines.append("| {} | {} MiB | {} s | {} s | {} MiB | {} s | {} s |".format(
            row["models"], one["peak_rss_mib"], one["cpu_s"], one["wall_s"],
            apart["peak_rss_mib"], apart["cpu_s"], apart["wall_s"]))
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-models", type=int, default=3, choices=range(1, len(MODELS) + 1))
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="builder-rss-") as scratch:
        base = Path(scratch)
        device = SimulatedNano(base / "device")
        rows = [measure(count, device, base / "run-{}".format(count))
                for count in range(1, args.max_models + 1)]
    print("SIMULATED TensorRT doubles (Nano, TensorRT {}) + real TensorFlow (the UFF "
          "conversion):".format(TENSORRT))
    print(table(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
