"""What the graphs on a device cost the facts step of every run, printed as figures.

The facts module (library/jetson_facts.py) reports the sha256 of every graph in the device's
work directories, on every run, the no-op included. It takes the sum the builder recorded
(builder/graphsums.py) while the file is unchanged, and reads the file otherwise. This runs
the real module through Ansible (local connection, this machine's Python) on a laid-out Nano
root with ``--models`` work directories, each a frozen graph of ``--graph-mib`` and its ONNX
export of the same size: once with no record (every graph read, as before the record, or
after a push) and once with the builder's record.

    python3 bench/facts_graphs.py [--models 3] [--graph-mib 64] [--runs 5]
"""

import argparse
import hashlib
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from builder import graphsums  # noqa: E402
from tests.integration.envside import adhoc_json  # noqa: E402
from tests.unit.platform_roots import lay_out  # noqa: E402


def work_dirs(state, models, graph_bytes):
    """{directory: {path: sha256}} of ``models`` work directories with two graphs each."""
    sums = {}
    block = hashlib.sha256(b"bench").digest() * (1 << 15)  # 1 MiB, not all zeros
    for number in range(models):
        directory = state / "work" / "model_{}".format(number)
        directory.mkdir(parents=True)
        written = {}
        for name in ("frozen_inference_graph.pb", "model_{}.onnx".format(number)):
            path = directory / name
            with open(str(path), "wb") as handle:
                for _ in range(graph_bytes // len(block)):
                    handle.write(block)
            written[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
        sums[directory] = written
    return sums


def timed_facts(root, state, runs):
    """Median wall seconds of one facts call, and the graphs it reported."""
    walls, reported = [], None
    for _ in range(runs):
        started = time.monotonic()
        result = adhoc_json("localhost", ["localhost,"], "jetson_facts",
                            "device_root={} root_dir={}".format(root, state),
                            "--connection=local",
                            env={"ANSIBLE_PYTHON_INTERPRETER": sys.executable})["localhost"]
        walls.append(time.monotonic() - started)
        reported = {name: entry["graphs"] for name, entry in
                    result["jetson_state"]["models"].items()}
    return statistics.median(walls), reported


def graph_arguments(doc, argv):
    """The arguments of a graph benchmark (``doc``: its module docstring)."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--models", type=int, default=3)
    parser.add_argument("--graph-mib", type=int, default=64)
    parser.add_argument("--runs", type=int, default=5)
    return parser.parse_args(argv)


def main(argv=None):
    args = graph_arguments(__doc__, argv)
    with tempfile.TemporaryDirectory(prefix="bench-facts-") as scratch:
        root = lay_out(Path(scratch) / "root", "nano-32.7.1")
        state = Path(scratch) / "opt"
        sums = work_dirs(state, args.models, args.graph_mib << 20)
        unrecorded, seen_before = timed_facts(root, state, args.runs)
        for directory, written in sums.items():
            graphsums.record(str(directory), written)
        recorded, seen_after = timed_facts(root, state, args.runs)
    if seen_before != seen_after:
        print("the two runs reported different sums: {} / {}".format(seen_before, seen_after))
        return 1
    total = args.models * 2 * args.graph_mib
    print("facts step, {} models x 2 graphs of {} MiB ({} MiB), median of {} runs:".format(
        args.models, args.graph_mib, total, args.runs))
    print("  no record (every graph read): {:.2f} s".format(unrecorded))
    print("  the builder's record:         {:.2f} s".format(recorded))
    print("  saved per run:                {:.2f} s".format(unrecorded - recorded))
    return 0


if __name__ == "__main__":
    sys.exit(main())
