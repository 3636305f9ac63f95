"""`up` (by default; `--host-python` opts out): each simulated device runs the Python of its
JetPack (a real pyenv build of the host) as /usr/bin/python3, sees the TensorRT doubles there,
gets the pin sets that Python can install, and Ansible modules run on it; without a build the
device falls back to the host's Python and the fleet says so."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from fleet import device_python, fleet, inventory, profiles
from fleet.fixture import SimFleet

pytestmark = pytest.mark.fleet

REPO = Path(__file__).resolve().parents[2]
ANSIBLE = Path(sys.executable).parent / "ansible"
HOSTS = {"nano-1": "3.6", "xavier-1": "3.8", "orin-1": "3.10"}   # JetPack 4, 5, 6
PIN_SETS = yaml.safe_load((REPO / "roles/jetson_env/vars/main.yml").read_text())[
    "jetson_env_pin_sets"]
# (jetson_env_pin_set, jetson_env_onnx_pin_set) each device gets on its own Python
DEVICE_PIN_SETS = {"nano-1": ("simulated-cp36", None),
                   "xavier-1": ("simulated-cp38", "simulated-onnx-cp38"),
                   "orin-1": ("simulated-onnx-cp310", "simulated-onnx-cp310")}
SIMFLEET = REPO / "tests" / "fleet" / "simfleet.py"


def _skip_unless_root():
    if os.geteuid() != 0:
        pytest.skip("the simulated fleet needs root (mount namespaces, loop devices)")


def _probe(sim, name):
    # yaml: JetPack's python3-yaml, which the deploy venv (over the system Python) imports
    result = sim.ssh(name, "python3 -c 'import sys, tensorrt, yaml; "
                           "print(\"%d.%d\" % sys.version_info[:2], tensorrt.__version__)'")
    assert result.returncode == 0, (name, result.stderr)
    return result.stdout.split()


def test_devices_run_their_jetpacks_python_with_the_doubles_and_ansible(tmp_path):
    _skip_unless_root()
    root = device_python.pyenv_root()
    try:
        fleet.up(tmp_path / "fleet", "nano=1,xavier@35.4.1=1,orin=1", owner_pid=os.getpid())
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
        hosts = {name: variables for group in yaml.safe_load(
            sim.inventory.read_text())["all"]["children"].values()
            for name, variables in group["hosts"].items()}
        for name, (uff_set, onnx_set) in DEVICE_PIN_SETS.items():
            variables, python = hosts[name], sim.host(name)["python"]
            assert variables["simjetson_python"] == python["version"]
            if python["fallback"]:   # the fleet's defaults (fleet_vars) apply
                assert "jetson_env_pin_set" not in variables, name
                continue
            assert variables["jetson_env_pin_set"] == uff_set
            assert variables.get("jetson_env_onnx_pin_set") == onnx_set
            for pin_set in {uff_set, onnx_set} - {None}:   # built for that very Python
                assert PIN_SETS[pin_set]["python"] == python["version"], pin_set
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
        state = fleet.up(tmp_path / "fleet", "nano=1", owner_pid=os.getpid())
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


def test_host_python_opts_out_and_no_pin_set_is_chosen(tmp_path):
    _skip_unless_root()
    up = subprocess.run([sys.executable, str(SIMFLEET), "up", "--dir", str(tmp_path / "fleet"),
                         "--hosts", "nano=1", "--host-python"], capture_output=True, text=True,
                        check=False, timeout=120)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        assert "note:" not in up.stdout   # no fallback to announce: the host's Python was asked
        sim = SimFleet(tmp_path / "fleet")
        (host,) = sim.hosts
        assert sim.state["device_pythons"] is False
        assert host["python"] == {"version": "%d.%d" % sys.version_info[:2], "build": None,
                                  "fallback": False, "note": None}
        version, _ = _probe(sim, "nano-1")
        assert version == host["python"]["version"]
        variables = yaml.safe_load(sim.inventory.read_text())["all"]["children"]["nano"][
            "hosts"]["nano-1"]
        assert "jetson_env_pin_set" not in variables and variables[
            "simjetson_python_fallback"] is False
    finally:
        fleet.down(tmp_path / "fleet")


def test_every_device_python_has_pin_sets_built_for_it():
    """Each JetPack Python a simulated profile runs can install the sets the fleet gives it."""
    for minor, by_path in inventory.SIMULATED_PIN_SETS.items():
        for path, name in by_path.items():
            pin_set = PIN_SETS[name]
            assert pin_set["python"] == minor, (minor, path, name)
            assert pin_set["pip_download"]["abi"].startswith("cp" + minor.replace(".", ""))
            names = {pin["name"] for pin in pin_set["pins"]}
            assert "PyYAML" in names, name   # the builder's catalog
            if name.startswith("simulated-onnx"):   # the OnnxParser double, no TensorFlow
                assert {"onnx", "numpy", "protobuf"} <= names, name
                assert not [n for n in names if n.startswith("tensorflow")], name
            else:
                assert path == "uff" and "tensorflow-cpu" in names, name
    for major in {release.major for release in profiles.RELEASES.values()}:
        # every simulated L4T release's Python has its sets
        assert device_python.PYTHON_BY_L4T_MAJOR[major] in inventory.SIMULATED_PIN_SETS, major
