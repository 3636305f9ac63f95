"""The environment step of a device by engine path: bytes pushed and wall time, side by side.

One simulated fleet (a Nano: UFF, TensorFlow in its pin set; a JetPack 5 Xavier and an AGX
Orin: ONNX, no TensorFlow), the env roles run on each device alone (preflight, facts,
jetson_env: tests/integration/playbooks/env_roles.yml), cold, then warm. Two byte figures:
the pin set's wheel files (what the controller's wheelhouse holds for it), and the bytes on
the wire to the device during the cold step (nftables counters, bench/traffic.py: SSH
traffic with headers: the wheels pushed from the wheelhouse, the modules and SSH itself).

    python3 bench/env_step.py
"""

import json
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.traffic import Counters  # noqa: E402
from tests.integration.envside import (  # noqa: E402
    FLEET_VARS,
    TEST_PLAYBOOKS,
    fleet,
    make_catalog,
    playbook,
)

HOSTS = "nano=1,xavier@35.4.1=1,orin=1"
PATHS = {"nano-1": "uff", "xavier-1": "onnx", "orin-1": "onnx"}


def wheelhouse_bytes(pin_set):
    record = REPO / ".cache" / "wheelhouse" / pin_set / "wheelhouse.json"
    return sum(item["size"] for item in json.loads(record.read_text())["files"])


def main():
    with tempfile.TemporaryDirectory() as work:
        catalog = make_catalog(Path(work) / "graphs")
        with fleet(Path(work) / "fleet", HOSTS) as sim:
            env = {"ENGINE_TEST_CATALOG": str(catalog)}
            rows = []
            for host, path in PATHS.items():
                extra = ["-e", json.dumps({"env_roles_engine_paths": [path]})]
                counters = Counters([device_address(sim, host)]).install()
                try:
                    cold = playbook(TEST_PLAYBOOKS / "env_roles.yml",
                                    [sim.inventory, FLEET_VARS], "--limit", host, *extra, env=env)
                    sent = counters.read()[host]["bytes_to_device"]
                finally:
                    counters.remove()
                warm = playbook(TEST_PLAYBOOKS / "env_roles.yml", [sim.inventory, FLEET_VARS],
                                "--limit", host, *extra, env=env)
                assert cold.rc == 0 and warm.rc == 0, (cold.out[-3000:], warm.out[-3000:])
                marker = json.loads(sim.shell(host, "cat /opt/trt-builder/venv/"
                                                    "trt-builder-env.json").stdout)
                rows.append((host, path, marker["pin_set"], wheelhouse_bytes(marker["pin_set"]),
                             sent, cold.seconds, warm.seconds))
    print("| device | engine path | pin set | pin set's wheels | sent to the device (cold) "
          "| cold env step s | warm s |")
    print("|---|---|---|---:|---:|---:|---:|")
    for host, path, pin_set, size, sent, cold, warm in rows:
        print("| {} | {} | {} | {:.1f} MB | {:.1f} MB | {:.1f} | {:.1f} |".format(
            host, path, pin_set, size / 1e6, sent / 1e6, cold, warm))


def device_address(sim, host):
    """{"name", "address", "port"} of ``host`` from the fleet's own record."""
    record = json.loads((sim.dir / "fleet.json").read_text())
    found = next(h for h in record["hosts"] if h["name"] == host)
    return {"name": host, "address": found["address"], "port": found["port"]}


if __name__ == "__main__":
    main()
