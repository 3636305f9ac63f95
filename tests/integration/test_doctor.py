"""tools/doctor.py on the simulated fleet: ready fleet passes, each planted problem gives one
line naming the host and what to do (and exit 1), and the advice works when followed."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest
from fleet import device_python
from fleet import fleet as fleet_ops

from tests.integration.envside import FLEET_VARS, REPO, fleet

pytestmark = pytest.mark.fleet

DOCTOR = REPO / "tools" / "doctor.py"
HOSTS = ("nano-1", "tx2-1", "xavier-1")


def doctor(*inventories, env=None):
    argv = [sys.executable, str(DOCTOR)]
    for inventory in inventories:
        argv += ["-i", str(inventory)]
    result = subprocess.run(argv, cwd="/", capture_output=True, text=True, timeout=300,
                            check=False, env=env)
    lines = result.stdout.splitlines()
    return result.returncode, lines, result


def lines_of(lines, who):
    return [line for line in lines if line.startswith(who + ":")]


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    with fleet(tmp_path_factory.mktemp("fleet"), "nano=1,tx2=1,xavier=1") as running:
        yield running


def test_ready_fleet_passes_with_each_hosts_jetpack(sim):
    code, lines, result = doctor(sim.inventory, FLEET_VARS)
    assert code == 0, result.stdout + result.stderr
    assert lines_of(lines, "nano-1")[0].startswith("nano-1: ok, Python 3.")
    assert "L4T 32.7.1 = JetPack 4.6.1" in lines_of(lines, "nano-1")[0]
    assert "L4T 32.3.1 = JetPack 4.3" in lines_of(lines, "tx2-1")[0]
    assert lines[-1] == "doctor: 3 host(s) ready"


def test_unknown_host_keys_and_the_advice_that_fixes_them(sim, tmp_path):
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text("")
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(sim.inventory.read_text().replace(str(sim.dir / "known_hosts"),
                                                           str(known_hosts)))
    code, lines, result = doctor(inventory, FLEET_VARS)
    assert code == 1
    for host in HOSTS:
        (line,) = lines_of(lines, host)
        assert "is not in {}".format(known_hosts) in line
    # Follow the advice of one host exactly as printed (in a scratch directory).
    (line,) = lines_of(lines, "nano-1")
    commands = re.findall(r"`([^`]+)`", line)
    fetch, device_side, append = commands
    fetched = subprocess.run(fetch, shell=True, cwd=tmp_path, capture_output=True, text=True,
                             check=False)
    assert fetched.returncode == 0, fetched.stderr
    # The fingerprint printed here is the one the device computes of its own key.
    on_device = sim.shell("nano-1", device_side)
    assert on_device.returncode == 0, on_device.stderr
    assert on_device.stdout.split()[1] in fetched.stdout
    subprocess.run(append, shell=True, cwd=tmp_path, check=True)
    code, lines, _ = doctor(inventory, FLEET_VARS)
    assert lines_of(lines, "nano-1")[0].startswith("nano-1: ok")
    assert len(lines_of(lines, "tx2-1")) == 1 and "is not in" in lines_of(lines, "tx2-1")[0]


def test_unreachable_and_full_disk(sim):
    sim_dir = sim.dir
    fleet_ops.fault(sim_dir, "nano-1", "unreachable")
    fleet_ops.fault(sim_dir, "tx2-1", "disk-full")
    try:
        code, lines, result = doctor(sim.inventory, FLEET_VARS)
    finally:
        fleet_ops.fault(sim_dir, "nano-1", "ok")
        fleet_ops.fault(sim_dir, "tx2-1", "ok")
    assert code == 1, result.stdout
    (nano,) = lines_of(lines, "nano-1")
    assert "unreachable" in nano and "ssh -p 2222 root@" in nano
    (tx2,) = lines_of(lines, "tx2-1")
    assert re.search(r"tx2-1: \d+ MiB free on /opt \(the builder's directory needs 2048", tx2)
    assert lines_of(lines, "xavier-1")[0].startswith("xavier-1: ok")
    assert lines[-1] == "doctor: 2 problem(s) that would stop a run"


def test_missing_python_and_missing_jetpack(sim, tmp_path):
    extra = tmp_path / "python.yml"
    extra.write_text(json.dumps({"all": {"hosts": {
        "tx2-1": {"ansible_python_interpreter": "/usr/bin/python3.99"}}}}))
    moved = sim.shell("xavier-1", "mv /etc/nv_tegra_release /etc/nv_tegra_release.off && "
                                  "cp /var/lib/dpkg/status /var/lib/dpkg/status.off && "
                                  "sed -i 's/^Package: nvidia-l4t-core$/Package: x-gone/' "
                                  "/var/lib/dpkg/status")
    assert moved.returncode == 0, moved.stderr
    try:
        code, lines, result = doctor(sim.inventory, FLEET_VARS, extra)
    finally:
        restored = sim.shell("xavier-1", "mv /etc/nv_tegra_release.off /etc/nv_tegra_release "
                                         "&& mv /var/lib/dpkg/status.off /var/lib/dpkg/status")
        assert restored.returncode == 0, restored.stderr
    assert code == 1, result.stdout
    (tx2,) = lines_of(lines, "tx2-1")
    assert "no working Python at /usr/bin/python3.99" in tx2
    assert "host_vars/tx2-1.yml" in tx2
    (xavier,) = lines_of(lines, "xavier-1")
    assert "no JetPack" in xavier and "nvidia-l4t-core" in xavier
    assert lines_of(lines, "nano-1")[0].startswith("nano-1: ok")


def test_broken_catalog_and_broken_inventory(sim, tmp_path):
    env = dict(os.environ, ENGINE_TEST_CATALOG=str(tmp_path / "none.yml"))
    code, lines, _ = doctor(sim.inventory, FLEET_VARS, env=env)
    assert code == 1
    (catalog,) = lines_of(lines, "catalog")
    assert "none.yml: file not found" in catalog
    assert "engine_catalog of nano-1, tx2-1, xavier-1" in catalog

    broken = tmp_path / "broken.yml"
    broken.write_text("all: [unclosed\n")
    code, lines, _ = doctor(broken)
    assert code == 1
    (inventory,) = lines_of(lines, "inventory")
    assert "{} does not parse".format(broken) in inventory and "line 2" in inventory


def test_jetpack7_devices_on_python_312_are_ready(tmp_path):
    """A Thor on JetPack 7.1, an Orin on 7.2.1 and an Orin with TensorRT 11 (each on its
    JetPack's Python 3.12 where the machine has that build): ready, each with its release."""
    python = "3.12" if device_python.find_build("3.12") else "%d.%d" % sys.version_info[:2]
    with fleet(tmp_path / "fleet", "thor=1,orin@39.2.1=1,orin@39.2.1+trt11=1") as jetpack7:
        code, lines, result = doctor(jetpack7.inventory, FLEET_VARS)
    assert code == 0, result.stdout + result.stderr
    expected = {
        "thor-1": "L4T 38.4.0 = JetPack 7.1, TensorRT 10.13.3, ",
        "orin-1": "L4T 39.2.1 = JetPack 7.2.1, TensorRT 10.16.2, ",
        "orin-2": "L4T 39.2.1 = JetPack 7.2.1, TensorRT 11.4.1 (strongly typed; JetPack 7.2.1 "
                  "ships 10.16), ",
    }
    for host, text in expected.items():
        (line,) = lines_of(lines, host)
        assert line.startswith("{}: ok, Python {}.".format(host, python)), line
        assert text in line, line
    assert lines[-1] == "doctor: 3 host(s) ready"
