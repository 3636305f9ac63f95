#!/usr/bin/env python3
"""The whole flow on a simulated fleet, for people who own no Jetson (`make demo`).

    python3 tools/demo.py [--fleet-dir .fleet/demo] [--hosts xavier=1,nano=1,tx2=1] [--keep-fleet]

1. generates the sample SSD graph of models/sample.yml with real TensorFlow (once);
2. starts a simulated fleet (one sshd per device, see tests/fleet/README.md);
3. runs `ansible-playbook build_engines.yml` against it, exactly as on a real fleet;
4. prints where the engines and the report are, the catalog and inventory it used and the
   commands to do it again by hand, and stops the fleet (also on failure) unless
   --keep-fleet. The exit code is the playbook's.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
FLEET_VARS = Path("tests") / "integration" / "fleet_vars"
SAMPLE_CATALOG = Path("models") / "sample.yml"
SAMPLE_GRAPH = Path("models") / "sample" / "ssd_mobilenet_v2_coco" / "frozen_inference_graph.pb"
STORE_DIR = Path("artifacts") / "engines"
SIMFLEET = Path("tests") / "fleet" / "simfleet.py"


def _shown(command: list) -> str:
    """A command as the user types it from the clone (repo-relative where possible)."""
    parts = []
    for part in command:
        text = str(part)
        if text.startswith(str(REPO_ROOT) + "/"):
            text = text[len(str(REPO_ROOT)) + 1:]
        parts.append(shlex.quote(text))
    return " ".join(parts)


def run(command: list, **kwargs) -> int:
    print("+ " + _shown(command), flush=True)
    return subprocess.call([str(part) for part in command], cwd=REPO_ROOT, **kwargs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fleet-dir", default=".fleet/demo")
    parser.add_argument("--hosts", default="xavier=1,nano=1,tx2=1")
    parser.add_argument("--keep-fleet", action="store_true",
                        help="leave the fleet up afterwards (stop it with the printed command)")
    args = parser.parse_args(argv)
    fleet_dir = (REPO_ROOT / args.fleet_dir).resolve()

    if not (REPO_ROOT / SAMPLE_GRAPH).is_file():
        print("Generating the sample SSD graph with TensorFlow (once)...", flush=True)
        if run([sys.executable, "tests/graphs/make_ssd_graphs.py", "models/sample",
                "--variant", "ssd_mobilenet_v2_coco"]) != 0:
            print("demo: the sample graph could not be generated (see above)", file=sys.stderr)
            return 1
    simfleet = [sys.executable, SIMFLEET]
    if (fleet_dir / "fleet.json").is_file():
        run(simfleet + ["down", "--dir", fleet_dir])  # a fleet left by an interrupted demo
    up = simfleet + ["up", "--dir", fleet_dir, "--hosts", args.hosts]
    if run(up) != 0:
        print("demo: the simulated fleet did not start (see above)", file=sys.stderr)
        return 1
    # The run is exactly the printed command: the defaults of fleet_vars, no test variables.
    env = {key: value for key, value in os.environ.items()
           if key not in ("ENGINE_TEST_CATALOG", "ENGINE_TEST_STORE")}
    playbook = [Path(sys.executable).parent / "ansible-playbook", "build_engines.yml",
                "-i", fleet_dir / "inventory.yml", "-i", FLEET_VARS]
    down = simfleet + ["down", "--dir", fleet_dir]
    try:
        status = run(playbook, env=env)
    finally:
        if not args.keep_fleet:
            run(down)
    print()
    print(f"Catalog:               {SAMPLE_CATALOG} (models chosen in {FLEET_VARS}/group_vars)")
    print(f"Inventory:             {_shown([fleet_dir / 'inventory.yml'])} "
          f"(+ group variables {FLEET_VARS})")
    print(f"Engines and manifests: {STORE_DIR}/<platform_id>/<model>/<variant>/")
    print(f"Index:                 {STORE_DIR / 'index.json'}")
    print(f"Report:                {STORE_DIR / 'report.md'} and {STORE_DIR / 'report.html'}")
    print(f"ansible-playbook exit code: {status}")
    print()
    print("Run it again by hand, from the clone" + (" (the fleet is still up):"
                                                    if args.keep_fleet else ":"))
    if not args.keep_fleet:
        print("    " + _shown(up))
    print("    " + _shown(playbook))
    print("    " + _shown(down))
    return status


if __name__ == "__main__":
    sys.exit(main())
