"""A simulated JetPack 4 device on its own Python 3.6 (simfleet up's default): the
whole playbook runs there, Ansible modules, the pinned environment (TensorFlow 1.15 from
PyPI, pinned pip first) and the builder, and the engine is built."""

from __future__ import annotations

import json

import pytest
import yaml
from fleet import device_python, profiles

from tests.integration.envside import FLEET_VARS, REPO, fleet, make_catalog, playbook

pytestmark = pytest.mark.fleet


def test_playbook_builds_on_a_python_36_device(tmp_path):
    if device_python.find_build("3.6") is None:
        pytest.skip("no pyenv Python 3.6 build on this machine (`pyenv root`/versions/3.6.*)")
    catalog = make_catalog(tmp_path / "graphs")
    with fleet(tmp_path / "fleet", "nano=1") as sim:
        host = json.loads((sim.dir / "fleet.json").read_text())["hosts"][0]
        assert host["python"]["version"] == "3.6" and not host["python"]["fallback"]
        assert sim.hosts["nano-1"]["jetson_env_pin_set"] == "simulated-cp36"
        store = tmp_path / "store"
        run = playbook(REPO / "build_engines.yml", [sim.inventory, FLEET_VARS],
                       env={"ENGINE_TEST_CATALOG": str(catalog), "ENGINE_TEST_STORE": str(store)})
        assert run.rc == 0, run.out[-5000:]
        venv = sim.shell("nano-1", "/opt/trt-builder/venv/bin/python -c 'import sys, "
                                   "tensorflow as tf; print(sys.version.split()[0], "
                                   "tf.__version__)' 2>/dev/null")
        assert venv.stdout.split() == [host["python"]["build"].rsplit("/", 1)[1], "1.15.0"]
        marker = json.loads(sim.shell(
            "nano-1", "cat /opt/trt-builder/venv/trt-builder-env.json").stdout)
        assert marker["pin_set"] == "simulated-cp36"
        release = profiles.profile("nano").release
        engines = list(store.glob("jetson-nano_l4t{}_*/ssd_mobilenet_v2_coco/"
                                  "*/TRT_ssd_mobilenet_v2_coco.bin".format(release.l4t)))
        assert len(engines) == 1, sorted(p.name for p in store.rglob("*"))
        assert engines[0].read_bytes().startswith(b"SIMULATED TensorRT engine plan")


def test_forced_uff_builds_on_a_jetpack_5_device_on_python_38(tmp_path):
    """`engine_path: uff` on TensorRT 8.5: the device's Python 3.8 gets simulated-cp38
    (TensorFlow 2.13, the last tensorflow-cpu for cp38) and the builder converts to UFF there."""
    if device_python.find_build("3.8") is None:
        pytest.skip("no pyenv Python 3.8 build on this machine (`pyenv root`/versions/3.8.*)")
    catalog = make_catalog(tmp_path / "graphs")
    data = yaml.safe_load(catalog.read_text())
    for spec in data["models"].values():
        spec["engine_path"] = "uff"
    catalog.write_text(yaml.safe_dump(data, sort_keys=False))
    with fleet(tmp_path / "fleet", "xavier@35.4.1=1") as sim:
        host = json.loads((sim.dir / "fleet.json").read_text())["hosts"][0]
        assert host["python"]["version"] == "3.8" and not host["python"]["fallback"]
        store = tmp_path / "store"
        run = playbook(REPO / "build_engines.yml", [sim.inventory, FLEET_VARS],
                       env={"ENGINE_TEST_CATALOG": str(catalog), "ENGINE_TEST_STORE": str(store)})
        assert run.rc == 0, run.out[-5000:]
        marker = json.loads(sim.shell(
            "xavier-1", "cat /opt/trt-builder/venv/trt-builder-env.json").stdout)
        assert marker["pin_set"] == "simulated-cp38"
        (manifest,) = store.glob("*/ssd_mobilenet_v2_coco/*/manifest.json")
        assert json.loads(manifest.read_text())["engine_path"] == "uff"
