#!/usr/bin/env python3
"""What a change bought, side by side in one run: the no-op of this checkout against the no-op
of an earlier revision, on the same fleet, each beside a bare ping.

    python3 bench/compare.py --base REV [--size 32] [--reps 3] [--kinds nano,tx2,xavier]

REV (any git revision) is checked out into a temporary worktree. One provisioned fleet of
--size mixed devices gets one cold build from this checkout; then, --reps times, the no-op of
REV, the no-op of this checkout and a bare `ansible all -m ansible.builtin.ping` run one after
the other, so that the machine's drift hits all three alike. Each variant runs its own
playbooks, plugins and controller package against the same store; each is measured as in
bench/run.py (measured.py). Prints the medians and writes bench/results/<timestamp>-compare.json.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import run as bench_run  # noqa: E402  (after sys.path)
from bench import steps  # noqa: E402
from bench.fleet_session import REPO_ROOT, BenchError  # noqa: E402
from bench.workload import Workload  # noqa: E402

FIGURES = (("wall s", "wall_s"), ("controller CPU s", "controller_cpu_s"),
           ("KiB sent per device", "bytes_to_device_per_device"))


def _worktree(revision, into):
    subprocess.run(["git", "-C", str(REPO_ROOT), "worktree", "add", "--detach", str(into),
                    revision], check=True, capture_output=True, text=True)


def _median(records, key):
    return statistics.median(record[key] for record in records)


def compare(args):
    bench = bench_run.Benchmark(bench_run._parser().parse_args(
        ["--sizes", str(args.size), "--noop-sizes", "", "--kinds", args.kinds,
         "--build-seconds", bench_run.QUICK_BUILD_SECONDS, "--processes-kind", "",
         "--results-dir", str(args.results_dir)]))
    bench.logs.mkdir(parents=True, exist_ok=True)
    base_tree = Path(tempfile.mkdtemp(prefix="bench-base-")) / "tree"
    _worktree(args.base, base_tree)
    runs = {"base": [], "this": [], "ping": []}
    try:
        bench._ensure_seed(args.size)
        workload = Workload(bench.work / "workload").prepare()
        store = bench.work / "store"
        fleet = bench._start(bench._fleet("compare", args.size, True), provisioned=True)
        try:
            bench._step("cold", fleet, workload, store, "platform")
            for rep in range(args.reps):
                for name, tree in (("base", base_tree), ("this", REPO_ROOT)):
                    print("  {} no-op {} ...".format(name, rep + 1), end=" ", flush=True)
                    record = steps.playbook_step("{}-noop-{}".format(name, rep), fleet, workload,
                                                 store_dir=store, scope="platform",
                                                 log_dir=bench.logs, tree=tree,
                                                 with_timeline=False)
                    print("{:.1f} s, rc {}".format(record["wall_s"], record["rc"]), flush=True)
                    if record["rc"] != 0:
                        raise BenchError("the {} no-op failed, see {}".format(name,
                                                                              record["log"]))
                    runs[name].append(record)
                runs["ping"].append(bench._ping("ping-{}".format(rep), fleet))
        finally:
            fleet.down()
    finally:
        subprocess.run(["git", "-C", str(REPO_ROOT), "worktree", "remove", "--force",
                        str(base_tree)], check=False, capture_output=True)
        shutil.rmtree(base_tree.parent, ignore_errors=True)
        shutil.rmtree(bench.work, ignore_errors=True)
    return runs


def table(args, runs):
    lines = ["No-op of {} against this checkout, {} devices, medians of {} runs each "
             "(one run, alternating):".format(args.base, args.size, args.reps), "",
             "| figure | base no-op | this no-op | ping | base / ping | this / ping |",
             "|---|---:|---:|---:|---:|---:|"]
    for name, key in FIGURES:
        scale = 1024.0 if key.startswith("bytes") else 1.0
        base, this, ping = (_median(runs[variant], key) / scale
                            for variant in ("base", "this", "ping"))
        lines.append("| {} | {:.2f} | {:.2f} | {:.2f} | {:.2f}x | {:.2f}x |".format(
            name, base, this, ping, base / ping, this / ping))
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="the git revision to compare with")
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--kinds", default=bench_run.DEFAULT_KINDS)
    parser.add_argument("--results-dir", type=Path, default=bench_run.RESULTS_DIR)
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("error: the benchmark starts a simulated fleet, which needs root", file=sys.stderr)
        return 2
    try:
        runs = compare(args)
    except (BenchError, subprocess.CalledProcessError) as exc:
        print("error: {}".format(getattr(exc, "stderr", None) or exc), file=sys.stderr)
        return 1
    text = table(args, runs)
    print()
    print(text)
    args.results_dir.mkdir(parents=True, exist_ok=True)
    out = args.results_dir / "{}-compare.json".format(
        bench_run.datetime.now().strftime("%Y%m%d-%H%M%S"))
    out.write_text(json.dumps({"base": args.base, "size": args.size, "reps": args.reps,
                               "table": text, "runs": runs}, indent=1) + "\n")
    print("results: {}".format(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
