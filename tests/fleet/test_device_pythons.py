"""`up --device-pythons`: each simulated device runs the Python of its JetPack (a real pyenv
build of the host) as /usr/bin/python3, sees the TensorRT doubles there, and Ansible modules
run on it; without a build the device falls back to the host's Python and the fleet says so."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from fleet import device_python, fleet
from fleet.fixture import SimFleet

pytestmark = pytest.mark.fleet

REPO = Path(__file__).resolve().parents[2]
ANSIBLE = Path(sys.executable).parent / "ansible"
HOSTS = {"nano-1": "3.6", "xavier-1": "3.8", "orin-1": "3.10"}   # JetPack 4, 5, 6


def _skip_unless_root():
    if os.geteuid() != 0:
        pytest.skip("the simulated fleet needs root (mount namespaces, loop devices)")


def _probe(sim, name):
    result = sim.ssh(name, "python3 -c 'import sys, tensorrt; "
                           "print(\"%d.%d\" % sys.version_info[:2], tensorrt.__version__)'")
    assert result.returncode == 0, (name, result.stderr)
    return result.stdout.split()


def test_devices_run_their_jetpacks_python_with_the_doubles_and_ansible(tmp_path):
    _skip_unless_root()
    root = device_python.pyenv_root()
    try:
        fleet.up(tmp_path / "fleet", "nano=1,xavier@35.4.1=1,orin=1", owner_pid=os.getpid(),
                 device_pythons=True)
        sim = SimFleet(tmp_path / "fleet")
        trt = {"nano-1": "8.2.1.8", "xavier-1": "8.5.2.2", "orin-1": "10.3.0"}
        for host in sim.hosts:
            name, minor = host["name"], HOSTS[host["name"]]
            build = device_python.find_build(minor, root)
            version, tensorrt = _probe(sim, name)
            assert tensorrt == trt[name]
            if build is None:   # this machine lacks the build: the fleet must say so
                assert host["python"]["fallback"] and minor in host["python"]["note"]
                continue
            assert version == minor and host["python"] == {
                "version": minor, "build": str(build), "fallback": False, "note": None}
        inventory = yaml.safe_load(sim.inventory.read_text())
        nano = inventory["all"]["children"]["nano"]["hosts"]["nano-1"]
        assert nano["simjetson_python"] == "3.6"
        ping = subprocess.run([str(ANSIBLE), "all", "-i", str(sim.inventory), "-m",
                               "ansible.builtin.ping", "-o"], capture_output=True, text=True,
                              cwd=REPO, check=False, timeout=120,
                              env=dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg")))
        assert ping.returncode == 0, ping.stdout + ping.stderr
        assert ping.stdout.count("SUCCESS") == 3
    finally:
        fleet.down(tmp_path / "fleet")


def test_without_a_build_the_device_runs_the_hosts_python_and_says_so(tmp_path, monkeypatch):
    _skip_unless_root()
    empty = tmp_path / "no-pyenv"
    (empty / "versions").mkdir(parents=True)
    monkeypatch.setattr(device_python, "pyenv_root", lambda: empty)
    try:
        state = fleet.up(tmp_path / "fleet", "nano=1", owner_pid=os.getpid(),
                         device_pythons=True)
        (host,) = state["hosts"]
        assert host["python"]["fallback"] is True and host["python"]["build"] is None
        assert host["python"]["note"].startswith(
            "nano-1: no Python 3.6 build under {}/versions (JetPack 4.6.1 ships 3.6): the "
            "device runs the host's Python".format(empty))
        sim = SimFleet(tmp_path / "fleet")
        version, _ = _probe(sim, "nano-1")
        assert version == host["python"]["version"] != "3.6"
        inventory = yaml.safe_load(sim.inventory.read_text())
        assert inventory["all"]["children"]["nano"]["hosts"]["nano-1"][
            "simjetson_python_fallback"] is True
        (row,) = fleet.status(tmp_path / "fleet")
        assert row[5] == "{} (host's: fallback)".format(version)
    finally:
        fleet.down(tmp_path / "fleet")
