"""library/jetson_facts.py and roles/jetson_env against laid-out roots and the simulated fleet.

- The module, run by real ansible (AnsiballZ packs builder/platform/detect.py through module_utils),
  on laid-out device roots: every reference profile, not a Jetson, JetPack without TensorRT,
  TensorRT 10 and 11 (supported, no UFF), and the device-side state it reports.
- Over real SSH on the simulated fleet: facts on every profile; the env role installs once
  (cold time and bytes pushed are printed) and a second run reports changed=0; the paramiko
  connection works once.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from pathlib import Path

import pytest
import yaml

from builder import graphsums
from builder.platform.detect import detect_platform
from tests.integration.envside import (
    FLEET_VARS,
    REPO,
    TEST_PLAYBOOKS,
    adhoc_json,
    fleet,
    make_catalog,
    playbook,
)
from tests.unit.platform_roots import PROFILES, lay_out

LOCAL = ["localhost,"]
PIN_SETS = yaml.safe_load((REPO / "roles/jetson_env/vars/main.yml").read_text())[
    "jetson_env_pin_sets"]


def facts_on(root: Path, state_dir: Path) -> dict:
    hosts = adhoc_json("localhost", LOCAL, "jetson_facts",
                       f"device_root={root} root_dir={state_dir}", "--connection=local",
                       env={"ANSIBLE_PYTHON_INTERPRETER": sys.executable})
    return hosts["localhost"]


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_module_reports_the_builders_detection_for_every_profile(tmp_path, profile):
    root = lay_out(tmp_path / "root", profile)
    result = facts_on(root, tmp_path / "absent")
    expected = detect_platform(str(root))
    if expected["tensorrt"] is None:
        pytest.fail(f"profile {profile} has no TensorRT: the test roots changed")
    assert "jetson_failure" not in result, result
    jetson = result["jetson"]
    for key in ("module", "soc", "compute_capability", "l4t", "jetpack", "tensorrt",
                "platform_id", "dla_cores", "memory_mib"):
        assert jetson[key] == expected[key], key
    assert result["changed"] is False
    state = result["jetson_state"]
    # free_mib: of the nearest existing parent (the plan refuses a device without room).
    free = state.pop("free_mib")
    assert isinstance(free, int) and free > 0
    assert state == {"root_dir": str(tmp_path / "absent"), "env_marker": None,
                     "builder_marker": None, "models": {}}


def test_tensorrt10_is_supported_through_onnx(tmp_path):
    orin = next(name for name in PROFILES if name.startswith("agx-orin"))
    result = facts_on(lay_out(tmp_path / "root", orin), tmp_path / "state")
    jetson = result["jetson"]
    assert jetson["tensorrt_generation"] == "trt10"
    assert "jetson_failure" not in result and jetson["tensorrt_has_uff"] is False


def test_tensorrt11_is_supported_through_onnx(tmp_path):
    """TensorRT 11.4.1 (JetPack 7.2.2 and later) used to fail the host ("Unsupported
    JetPack"); the jetson_env role reads tensorrt_has_uff, not the generation's name."""
    packages = {"nvidia-l4t-core": "39.2.1-20260806224157", "tensorrt": "11.4.1.6-1+cuda13.2",
                "libnvinfer11": "11.4.1.6-1+cuda13.2", "python3-libnvinfer": "11.4.1.6-1+cuda13.2",
                "libcudnn9-cuda-13": "9.20.0.46-1", "cuda-toolkit-13-2": "13.2.1-1"}
    result = facts_on(lay_out(tmp_path / "root", "thor-39.2.1", packages=packages),
                      tmp_path / "state")
    assert "jetson_failure" not in result, result
    jetson = result["jetson"]
    assert (jetson["tensorrt"], jetson["tensorrt_generation"]) == ("11.4.1", "trt11")
    assert jetson["tensorrt_has_uff"] is False


def test_uff_generations_have_uff(tmp_path):
    result = facts_on(lay_out(tmp_path / "root", "nano-32.7.1"), tmp_path / "state")
    assert result["jetson"]["tensorrt_has_uff"] is True


def test_not_a_jetson_fails_with_what_was_looked_for(tmp_path):
    root = tmp_path / "pc"
    (root / "etc").mkdir(parents=True)
    result = facts_on(root, tmp_path / "state")
    # (--tree files keep the module's result; the 'failed' flag is not among it)
    assert result["msg"].startswith("not a Jetson")
    assert "nv_tegra_release" in result["msg"]
    assert result["jetson_failure"] == "not_jetson"


def test_jetson_without_tensorrt_is_an_unsupported_jetpack(tmp_path):
    packages = {"nvidia-l4t-core": "32.7.1-20220219090432"}
    root = lay_out(tmp_path / "root", "nano-32.7.1", packages=packages)
    result = facts_on(root, tmp_path / "state")
    assert result["jetson_failure"] == "unsupported_jetpack"
    assert "jetson-nano" in result["msg"] and "L4T 32.7.1" in result["msg"]
    assert "TensorRT is not installed" in result["msg"]


def test_module_reports_the_device_side_state(tmp_path):
    state = tmp_path / "opt"
    marker = {"pin_set": "simulated-cp311", "pins_sha256": "ab" * 32}
    (state / "venv").mkdir(parents=True)
    (state / "venv" / "trt-builder-env.json").write_text(json.dumps(marker))
    installed = {"builder_version": "0.3.1", "builder_digest": "e" * 64}
    (state / "venv" / "trt-builder-installed.json").write_text(json.dumps(installed))
    work = state / "work" / "ssd_a"
    work.mkdir(parents=True)
    (work / "frozen_inference_graph.pb").write_bytes(b"graph bytes")
    # The builder recorded the export's sum (builder/graphsums.py): taken, not read again.
    (work / "ssd_a.onnx").write_bytes(b"onnx bytes")
    graphsums.record(str(work), {str(work / "ssd_a.onnx"): "f" * 64})
    (work / "TRT_ssd_a.bin").write_bytes(b"x" * 1234)
    (work / "manifest.json").write_text('{"build_key": "k1"}')
    (state / "work" / "ssd_b").mkdir()
    (state / "work" / "ssd_b" / "manifest.json").write_text("{truncated")

    result = facts_on(lay_out(tmp_path / "root", "nano-32.7.1"), state)
    got = result["jetson_state"]
    assert got["env_marker"] == marker
    assert got["builder_marker"] == installed
    assert got["models"]["ssd_a"] == {
        "graphs": {"frozen_inference_graph.pb": hashlib.sha256(b"graph bytes").hexdigest(),
                   "ssd_a.onnx": "f" * 64},
        "engines": {"TRT_ssd_a.bin": 1234},
        "build_key": "k1",
    }
    # A half-written manifest is reported as absent, not as a crash.
    assert got["models"]["ssd_b"] == {"graphs": {}, "engines": {}, "build_key": None}


def test_module_reports_the_installed_engines_under_install_root(tmp_path):
    installed = tmp_path / "trt-engines"
    versions = ("aaaaaaaaaaaa-111111111111", "bbbbbbbbbbbb-222222222222")
    for version in versions:
        (installed / "ssd_a" / version).mkdir(parents=True)
        (installed / "ssd_a" / version / "TRT_ssd_a.bin").write_bytes(b"SIMULATED engine")
        (installed / "ssd_a" / version / "manifest.json").write_text(json.dumps({
            "build_key": version[:1] * 64, "platform_id": "jetson-nano_l4t32.7.1_trt8.2.1",
            "engine_sha256": version[-1] * 64, "engine_file": "TRT_ssd_a.bin",
            "verify": {"ok": True, "fps": 40.0}}))
    (installed / "ssd_a" / "current").symlink_to(versions[1])
    (installed / "ssd_a" / "previous").symlink_to(versions[0])
    (installed / "ssd_a" / ".incoming" / "cccccccccccc-333333333333").mkdir(parents=True)
    (installed / ".deploy-venv").mkdir()
    marker = {"builder_version": "0.3.1", "builder_digest": "d" * 64}
    (installed / ".deploy-venv" / "trt-deploy-env.json").write_text(json.dumps(marker))

    hosts = adhoc_json("localhost", LOCAL, "jetson_facts",
                       "device_root={} root_dir={} install_root={}".format(
                           lay_out(tmp_path / "root", "nano-32.7.1"), tmp_path / "opt",
                           installed),
                       "--connection=local", env={"ANSIBLE_PYTHON_INTERPRETER": sys.executable})
    deployed = hosts["localhost"]["jetson_deployed"]
    assert deployed["env_marker"] == marker
    assert list(deployed["models"]) == ["ssd_a"], "dot directories are not models"
    model = deployed["models"]["ssd_a"]
    assert model["current"] == {"version": versions[1], "build_key": "b" * 64,
                                "platform_id": "jetson-nano_l4t32.7.1_trt8.2.1",
                                "engine_sha256": "2" * 64, "engine_file": "TRT_ssd_a.bin",
                                # its bytes are not the ones the manifest names
                                "intact": False}
    assert model["previous"]["version"] == versions[0]
    assert sorted(model["versions"]) == list(versions), "the incoming push is not a version"



def test_the_task_takes_its_directories_from_the_hosts_variables(tmp_path):
    """playbooks/tasks/facts.yml passes no argument: the action (plugins/action/jetson_facts.py)
    reads jetson_facts_root_dir and jetson_facts_install_root, a template among them; an
    argument the task passes wins, and an empty value leaves the module's default."""
    root = lay_out(tmp_path / "root", "nano-32.7.1")
    (tmp_path / "engines" / "ssd_a").mkdir(parents=True)
    variables = json.dumps({"jetson_facts_root_dir": "{{ base }}/state", "base": str(tmp_path),
                            "jetson_facts_install_root": str(tmp_path / "engines")})
    local = ("--connection=local", "-e", variables)
    env = {"ANSIBLE_PYTHON_INTERPRETER": sys.executable}
    facts = adhoc_json("localhost", LOCAL, "jetson_facts", f"device_root={root}", *local,
                       env=env)["localhost"]
    assert facts["jetson_state"]["root_dir"] == str(tmp_path / "state")
    assert list(facts["jetson_deployed"]["models"]) == ["ssd_a"]

    passed = adhoc_json("localhost", LOCAL, "jetson_facts",
                        f"device_root={root} root_dir={tmp_path / 'argument'}", *local, env=env)
    assert passed["localhost"]["jetson_state"]["root_dir"] == str(
        tmp_path / "argument")

    empty = adhoc_json("localhost", LOCAL, "jetson_facts", f"device_root={root}",
                       "--connection=local", "-e", '{"jetson_facts_root_dir": ""}', env=env)
    state = empty["localhost"]["jetson_state"]
    assert state["root_dir"] == "/opt/trt-builder"  # the module's default
    assert "jetson_deployed" not in empty["localhost"]

# --- over real SSH on the simulated fleet -------------------------------------------------

FLEET_PROFILES = {  # host -> (module slug, L4T) of the profile simfleet gives it
    "nano-1": ("jetson-nano", "32.7.1"),
    "tx2-1": ("jetson-tx2", "32.3.1"),
    "xavier-1": ("jetson-agx-xavier", "32.4.4"),
    "xavier-2": ("jetson-agx-xavier", "35.4.1"),
    "orin-1": ("jetson-agx-orin", "36.4.3"),
}


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    catalog = make_catalog(tmp_path_factory.mktemp("graphs"))
    with fleet(tmp_path_factory.mktemp("fleet"),
               "nano=1,tx2=1,xavier=1,xavier@35.4.1=1,orin=1") as running:
        running.env = {"ENGINE_TEST_CATALOG": str(catalog)}
        yield running


@pytest.mark.fleet
def test_facts_on_every_simulated_profile(sim):
    results = adhoc_json("all", [sim.inventory, FLEET_VARS], "jetson_facts")
    assert set(results) == set(FLEET_PROFILES)
    ids = set()
    for host, (module, l4t) in FLEET_PROFILES.items():
        jetson = results[host]["jetson"]
        assert (jetson["module"], jetson["l4t"]) == (module, l4t), host
        assert jetson["tensorrt_generation"], host  # TensorRT 10 builds from ONNX too
        ids.add(jetson["platform_id"])
        assert results[host]["jetson_state"]["env_marker"] is None
        # the module ran on the device's own Python (its JetPack's, or the stated fallback)
        python = jetson["python"].rsplit(".", 1)[0]
        assert python == sim.hosts[host]["simjetson_python"], (host, jetson["python"])
    assert len(ids) == len(FLEET_PROFILES)  # every profile is its own platform


@pytest.mark.fleet
def test_env_installs_once_then_changes_nothing(sim):
    play = TEST_PLAYBOOKS / "env_roles.yml"
    inventories = [sim.inventory, FLEET_VARS]
    cold = playbook(play, inventories, "--limit", "nano-1", env=sim.env)
    assert cold.rc == 0, cold.out[-4000:]
    assert cold.recap()["nano-1"]["changed"] > 0
    # simulated-cp36 on the nano's own Python 3.6 (TensorFlow 1.15.0), simulated-cp311 when
    # the fleet fell back to the host's Python (tests/fleet/inventory.py chooses)
    pin_set = sim.hosts["nano-1"].get("jetson_env_pin_set", "simulated-cp311")
    tensorflow = next(pin["version"] for pin in PIN_SETS[pin_set]["pins"]
                      if pin["name"] == "tensorflow-cpu")
    wheelhouse = json.loads((REPO / ".cache/wheelhouse" / pin_set / "wheelhouse.json")
                            .read_text())
    pushed = sum(record["size"] for record in wheelhouse["files"])
    print(f"\nenv role cold on one device: {cold.seconds:.1f} s, {pushed / 1e6:.1f} MB pushed")

    marker = sim.shell("nano-1", "cat /opt/trt-builder/venv/trt-builder-env.json")
    assert json.loads(marker.stdout)["pin_set"] == pin_set
    tf_version = sim.shell("nano-1", "/opt/trt-builder/venv/bin/python -c "
                           "'import tensorflow as tf; print(tf.__version__)' 2>/dev/null")
    assert tf_version.stdout.strip() == tensorflow
    assert not sim.exists("nano-1", "/opt/trt-builder/wheelhouse/" + pin_set)

    warm = playbook(play, inventories, "--limit", "nano-1", env=sim.env)
    assert warm.rc == 0, warm.out[-4000:]
    assert warm.recap()["nano-1"]["changed"] == 0, warm.out[-4000:]
    assert "Install the pinned packages" not in warm.out  # the marker skipped the install
    print(f"env role warm: {warm.seconds:.1f} s")

    # A changed pin set (another marker) makes the role run again; here: a swap of the
    # recorded TensorRT version, as after a JetPack upgrade.
    sim.shell("nano-1", "sed -i 's/\"tensorrt\": \"[^\"]*\"/\"tensorrt\": \"old\"/' "
                        "/opt/trt-builder/venv/trt-builder-env.json")
    again = playbook(play, inventories, "--limit", "nano-1", env=sim.env)
    assert again.rc == 0, again.out[-4000:]
    assert "Install the pinned packages" in again.out
    assert again.recap()["nano-1"]["changed"] >= 1  # marker rewritten, nothing reinstalled


@pytest.mark.fleet
def test_paramiko_connection_reaches_a_device(sim, tmp_path):
    # paramiko reads ~/.ssh/known_hosts only: give it the fleet's, host key checking stays on.
    (tmp_path / ".ssh").mkdir()
    shutil.copy(sim.dir / "known_hosts", tmp_path / ".ssh" / "known_hosts")
    results = adhoc_json("tx2-1", [sim.inventory, FLEET_VARS], "jetson_facts", "",
                         "--connection=paramiko", env={"HOME": str(tmp_path)})
    assert results["tx2-1"]["jetson"]["module"] == "jetson-tx2"


@pytest.mark.fleet
def test_paramiko_refuses_an_unknown_host_key(sim, tmp_path):
    (tmp_path / ".ssh").mkdir()
    (tmp_path / ".ssh" / "known_hosts").write_text("")
    results = adhoc_json("tx2-1", [sim.inventory, FLEET_VARS], "jetson_facts", "",
                         "--connection=paramiko", env={"HOME": str(tmp_path)})
    assert results["tx2-1"].get("unreachable") is True
    assert "jetson" not in results["tx2-1"]
