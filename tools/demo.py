#!/usr/bin/env python3
"""The whole flow on a simulated fleet, for people who own no Jetson (`make demo`).

    python3 tools/demo.py [--fleet-dir .fleet/demo] [--hosts xavier=1,nano=1,tx2=1]

1. generates SSD frozen graphs and their catalog with real TensorFlow (once, cached);
2. starts a simulated fleet (one sshd per device, see tests/fleet/README.md);
3. runs `ansible-playbook build_engines.yml` against it, exactly as on a real fleet;
4. prints where the engines and the report are, and stops the fleet (also on failure).
The exit code is the playbook's.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
FLEET_VARS = REPO_ROOT / "tests" / "integration" / "fleet_vars"
STORE_DIR = REPO_ROOT / "artifacts" / "engines"

sys.path.insert(0, str(REPO_ROOT))
from tests.graphs.generated import graphs_dir  # noqa: E402  (needs the repo on sys.path)


def run(command: list[str], **kwargs) -> int:
    print("+ " + " ".join(str(part) for part in command), flush=True)
    return subprocess.call([str(part) for part in command], cwd=REPO_ROOT, **kwargs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fleet-dir", default=".fleet/demo")
    parser.add_argument("--hosts", default="xavier=1,nano=1,tx2=1")
    args = parser.parse_args(argv)
    fleet_dir = (REPO_ROOT / args.fleet_dir).resolve()

    print("Generating the SSD test graphs with TensorFlow (cached after the first run)...")
    catalog = graphs_dir() / "models.yml"
    simfleet = [sys.executable, "tests/fleet/simfleet.py"]
    run(simfleet + ["down", "--dir", fleet_dir])  # a fleet left by an interrupted demo
    if run(simfleet + ["up", "--dir", fleet_dir, "--hosts", args.hosts]) != 0:
        print("demo: the simulated fleet did not start (see above)", file=sys.stderr)
        return 1
    env = dict(os.environ, ENGINE_TEST_CATALOG=str(catalog),
               ENGINE_TEST_STORE=str(STORE_DIR))
    playbook = Path(sys.executable).parent / "ansible-playbook"
    try:
        status = run([playbook, "build_engines.yml", "-i", fleet_dir / "inventory.yml",
                      "-i", FLEET_VARS], env=env)
    finally:
        run(simfleet + ["down", "--dir", fleet_dir])
    print()
    print(f"Engines and manifests: {STORE_DIR}/<platform_id>/<model>/<variant>/")
    print(f"Index:                 {STORE_DIR / 'index.json'}")
    print(f"Report:                {STORE_DIR / 'report.md'} and {STORE_DIR / 'report.html'}")
    print(f"ansible-playbook exit code: {status}")
    return status


if __name__ == "__main__":
    sys.exit(main())
