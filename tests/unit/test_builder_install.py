"""The builder wheel rides the round's push, and is installed only where the device's venv does
not hold the run's builder (controller/device_work.py, plugins/action/engine_round.py): the
venv's builder marker as the facts read it (controller/device.py), or an earlier round of the
same run. The install command is run here for real by sh, against a stand-in for the venv's
python: the marker is written only after pip succeeded."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from builder import layout
from controller import plan as planning
from controller.builder_wheel import installed_marker
from controller.device import device_platform
from controller.device_work import builder_install, builder_state, needs_builder, round_work
from controller.store import EngineStore
from controller.trust import Untrusted
from tests.unit import test_engine_plan
from tests.unit.store_helpers import file_entry
from tests.unit.test_engine_plan import NANO, devices, make

catalog = test_engine_plan.catalog  # the fixture: two models as the preflight exports them

MARKER = installed_marker("d" * 64, "0.1.0")
WHEEL_NAME = "jetson_engine_builder-0.1.0-py3-none-any.whl"


@pytest.fixture
def wheel(tmp_path):
    path = tmp_path / "wheels" / WHEEL_NAME
    path.parent.mkdir()
    path.write_bytes(b"wheel")
    return path


def works_of(catalog, tmp_path, wheel, current):
    """Round 0's work of nano-1 (builds m1) and nano-2 (builds m2), ``current``: {host: bool}."""
    hosts = devices({"nano-1": NANO, "nano-2": NANO})
    plan = make(hosts, catalog, tmp_path / "store")
    store = EngineStore(tmp_path / "store")
    works = planning.round_works(plan, 0, store, {})
    return {host: round_work(work, plan["hosts"][host], hosts[host].as_dict(), catalog,
                             store=store, wheel=wheel,
                             builder={"marker": MARKER, "current": current[host],
                                      "env_ensured": None})
            for host, work in works.items()}


def test_the_wheel_goes_with_the_push_only_where_the_venv_lacks_the_builder(catalog, tmp_path,
                                                                           wheel):
    works = works_of(catalog, tmp_path, wheel, {"nano-1": False, "nano-2": True})
    lacking, holding = works["nano-1"], works["nano-2"]
    wheels = [item for item in lacking["push"] if item["label"] == "builder wheel"]
    assert wheels == [{"src": str(wheel), "dest": "/opt/trt-builder/wheels/",
                       "label": "builder wheel",
                       "part": "/opt/trt-builder/wheels/.{}.part".format(WHEEL_NAME),
                       "path": "/opt/trt-builder/wheels/" + WHEEL_NAME}]
    assert "/opt/trt-builder/wheels" in lacking["push_commands"]["prepare"]
    assert lacking["install"][:2] == ["sh", "-c"] and lacking["builder_current"] is True
    assert [i for i in holding["push"] if i["label"] == "builder wheel"] == []
    assert holding["install"] is None and holding["builder_current"] is True
    # The builds do not wait for the install (the finish step's): they import the builder
    # from the pushed wheel; where the venv holds it, from the venv.
    from_wheel = "env PYTHONPATH=/opt/trt-builder/wheels/{} ".format(WHEEL_NAME)
    assert [from_wheel + "/opt/trt-builder/venv/bin/python -m builder build" in p["shell"]
            for p in lacking["processes"]] == [True]
    assert [("PYTHONPATH" in p["shell"], "venv/bin/python -m builder build" in p["shell"])
            for p in holding["processes"]] == [(False, True)]


def test_a_round_without_the_builder_needs_no_wheel(catalog, tmp_path):
    hosts = devices({"nano-1": NANO})
    plan = make(hosts, catalog, tmp_path / "store")
    work = test_engine_plan.work(remove=["m2"])
    assert not needs_builder(work)
    detailed = round_work(work, plan["hosts"]["nano-1"], hosts["nano-1"].as_dict(), catalog,
                          store=EngineStore(tmp_path / "store"), wheel=None,
                          builder={"marker": MARKER, "current": False,
                                   "env_ensured": None})
    assert detailed["install"] is None and detailed["push"] == []
    assert detailed["builder_current"] is False  # the next round that builds installs it
    # The dropped model's work directory goes in the push's first command, and nowhere else.
    assert detailed["push_commands"]["prepare"] == "rm -rf -- /opt/trt-builder/work/m2"
    assert "remove" not in detailed


def test_a_round_that_needs_the_builder_without_a_wheel_is_a_controller_error(catalog,
                                                                             tmp_path):
    with pytest.raises(ValueError, match="needs the builder wheel"):
        works_of(catalog, tmp_path, None, {"nano-1": False, "nano-2": True})


@pytest.mark.parametrize("marker, previous, current", [
    (MARKER, None, True),
    (dict(MARKER, builder_digest="e" * 64), None, False),  # the builder's sources changed
    (dict(MARKER, builder_version="0.0.9"), None, False),
    (None, None, False),
    (None, {"builder_current": True}, True),  # installed by an earlier round of this run
    (None, {"builder_current": False}, False),
])
def test_the_venv_holds_the_run_s_builder(marker, previous, current):
    assert builder_state({"builder_marker": marker}, MARKER, previous)["current"] is current


@pytest.mark.parametrize("sent, kept", [
    (MARKER, MARKER),
    (dict(MARKER, extra="ignored"), MARKER),
    ({"builder_version": "0.1.0"}, None),
    ({"builder_version": "0.1.0", "builder_digest": 7}, None),
    ({"builder_version": "0.1.0", "builder_digest": "x" * 129}, None),
    ("0.1.0", None),
    (None, None),
])
def test_the_facts_marker_is_kept_only_as_two_short_texts(sent, kept):
    device = device_platform("nano-1", {
        "jetson": {"platform_id": NANO, "tensorrt": "8.2.1"},
        "jetson_state": {"root_dir": "/opt/trt-builder", "builder_marker": sent}}, {})
    assert device.builder_marker == kept


ENV_MARKER = {"pin_set": "simulated-cp36", "pins_sha256": "a" * 64,
              "tensorrt": "8.2.1.8-1+cuda10.2", "python": "3.6.15", "swap_mib": "0"}


@pytest.mark.parametrize("sent, kept", [
    (ENV_MARKER, ENV_MARKER),
    (dict(ENV_MARKER, tensorrt=None), dict(ENV_MARKER, tensorrt=None)),
    (dict(ENV_MARKER, extra="x"), None),          # not a marker the role writes
    (dict(ENV_MARKER, swap_mib=0), None),
    (dict(ENV_MARKER, python="3" * 129), None),
    ("simulated-cp36", None),
    (None, None),
])
def test_the_environment_marker_is_kept_only_as_the_roles_five_texts(sent, kept):
    """A garbled marker only costs the device the environment's install: it is not refused."""
    device = device_platform("nano-1", {
        "jetson": {"platform_id": NANO, "tensorrt": "8.2.1", "python": "3.6.15",
                   "tensorrt_full": "8.2.1.8-1+cuda10.2"},
        "jetson_state": {"root_dir": "/opt/trt-builder", "env_marker": sent}}, {})
    assert device.env_marker == kept
    assert (device.tensorrt_full, device.python) == ("8.2.1.8-1+cuda10.2", "3.6.15")


def test_a_tensorrt_package_version_that_is_no_line_of_text_is_refused():
    with pytest.raises(Untrusted, match="tensorrt_full"):
        device_platform("nano-1", {
            "jetson": {"platform_id": NANO, "tensorrt": "8.2.1",
                       "tensorrt_full": "8.2.1\n$(reboot)"},
            "jetson_state": {"root_dir": "/opt/trt-builder"}}, {})


@pytest.fixture
def venv(tmp_path):
    """<root>/venv/bin/python: a stand-in for pip that logs its arguments, and fails when
    <root>/fail exists; the pushed wheel in <root>/wheels."""
    root = tmp_path / "root"
    python = Path(layout.venv_python(str(root)))
    python.parent.mkdir(parents=True)
    python.write_text('#!/bin/sh\n[ -e "{0}/fail" ] && {{ echo pip failed >&2; exit 3; }}\n'
                      'echo "$@" >> "{0}/pip.log"\n'.format(root))
    python.chmod(0o755)
    Path(layout.wheels_dir(str(root))).mkdir()
    return root


def install(root, wheel):
    return subprocess.run(builder_install(wheel, str(root), MARKER), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True, check=False)


def test_the_install_writes_the_marker_after_pip_succeeded(venv, wheel):
    done = install(venv, wheel)
    assert done.returncode == 0, done.stderr
    assert (venv / "pip.log").read_text().split() == [
        "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", "--force-reinstall",
        "{}/{}".format(layout.wheels_dir(str(venv)), WHEEL_NAME)]
    marker = Path(layout.builder_marker(str(venv)))
    assert json.loads(marker.read_text()) == MARKER
    assert sorted(p.name for p in marker.parent.iterdir()) == ["bin", marker.name]


def test_a_failed_install_leaves_no_marker_not_even_the_old_one(venv, wheel):
    marker = Path(layout.builder_marker(str(venv)))
    marker.write_text(json.dumps(installed_marker("0" * 64, "0.0.9")))
    (venv / "fail").touch()
    done = install(venv, wheel)
    assert done.returncode == 3 and "pip failed" in done.stderr
    assert not marker.exists() and not Path(str(marker) + ".part").exists()


def test_a_later_round_ensures_the_environment_only_when_it_needs_another(catalog, tmp_path,
                                                                         wheel):
    """Round 0 ensured nano-1's environment: a later round that needs the same one does not
    include jetson_env again, one that needs the other engine path's pin set does."""
    first = works_of(catalog, tmp_path, wheel, {"nano-1": False, "nano-2": False})["nano-1"]
    assert first["env_needed"] is True and first["env_ensured"] == first["env"]
    hosts = devices({"nano-1": NANO})
    plan = make(hosts, catalog, tmp_path / "store")
    host_plan, device = plan["hosts"]["nano-1"], hosts["nano-1"].as_dict()
    store = EngineStore(tmp_path / "store")
    later = test_engine_plan.work(build=["m2"])
    previous = {"builder_current": first["builder_current"], "env_ensured": first["env"]}
    again = round_work(later, host_plan, device, catalog, store=store, wheel=wheel,
                       builder=builder_state(device, MARKER, previous))
    assert again["env_needed"] is False and again["install"] is None
    assert again["env_ensured"] == first["env"]
    other = dict(first["env"], pin_set="another-pin-set", uff=not first["env"]["uff"])
    switched = round_work(later, host_plan, device, catalog, store=store, wheel=wheel,
                          builder=builder_state(device, MARKER, dict(previous,
                                                                     env_ensured=other)))
    assert switched["env_needed"] is True and switched["env_ensured"] == switched["env"]


def test_the_environment_is_installed_only_where_the_devices_marker_is_not_the_rounds(
        catalog, tmp_path, wheel):
    """The plan makes the marker the role would write (controller/pin_sets.py env_marker) and
    includes jetson_env only where the device's, as its facts read it, differs: a JetPack
    upgrade (another TensorRT package) or another pin set installs again."""
    hosts = devices({"nano-1": NANO})
    plan = make(hosts, catalog, tmp_path / "store")
    host_plan = plan["hosts"]["nano-1"]
    store = EngineStore(tmp_path / "store")
    build = test_engine_plan.work(build=["m1"])
    facts = dict(hosts["nano-1"].as_dict(), tensorrt_full="8.2.1.8-1+cuda10.2", python="3.6.9")

    def work_on(device, previous=None):
        return round_work(build, host_plan, device, catalog, store=store, wheel=wheel,
                          builder=builder_state(device, MARKER, previous))

    marker = work_on(facts)["env"]["marker"]
    assert marker == {"pin_set": "simulated-cp36", "pins_sha256": marker["pins_sha256"],
                      "tensorrt": "8.2.1.8-1+cuda10.2", "python": "3.6.9", "swap_mib": "0"}
    assert work_on(dict(facts, env_marker=None))["env_needed"] is True
    assert work_on(dict(facts, env_marker=marker))["env_needed"] is False
    upgraded = dict(facts, env_marker=dict(marker, tensorrt="8.0.1.6-1+cuda10.2"))
    assert work_on(upgraded)["env_needed"] is True
    # An earlier round of this run installed another environment: the facts' marker is stale.
    other = dict(work_on(facts)["env"], pin_set="another-pin-set")
    assert work_on(dict(facts, env_marker=marker), {"env_ensured": other})["env_needed"] is True


def test_the_device_next_in_line_is_readied_in_round_0_and_round_1_installs_nothing(
        catalog, tmp_path, wheel):
    """nano-3 is next in line for m2 (nano-2 builds it): round 0 ensures its environment and
    installs the builder while nano-2 builds, so its round 1, the verify of nano-2's engine,
    includes neither."""
    hosts = devices({"nano-1": NANO, "nano-2": NANO, "nano-3": NANO})
    plan = make(hosts, catalog, tmp_path / "store")
    store = EngineStore(tmp_path / "store")
    host_plan, device = plan["hosts"]["nano-3"], hosts["nano-3"].as_dict()
    first = planning.round_works(plan, 0, store, {})["nano-3"]
    assert first == test_engine_plan.work(prepare=["m2"]) and needs_builder(first)
    readied = round_work(first, host_plan, device, catalog, store=store, wheel=wheel,
                         builder=builder_state(device, MARKER, None))
    # Installed by the finish step, while the builds run (they do not start later for it).
    assert readied["env_needed"] is True
    assert readied["install"][:2] == ["sh", "-c"] and readied["builder_current"]
    assert [item["label"] for item in readied["push"]] == ["builder wheel"]
    assert readied["processes"] == [] and readied["verifies"] == [] and readied["listing"] == []
    # nano-2 filed m2: nano-3 verifies it in round 1 with what round 0 readied.
    file_entry(tmp_path / "store", plan["hosts"]["nano-2"], "m2", host="nano-2")
    store = EngineStore(tmp_path / "store")
    second = planning.round_works(plan, 1, store, {})["nano-3"]
    assert second == test_engine_plan.work(collect=["m2"], confirm=["m2"])
    previous = {"builder_current": readied["builder_current"],
                "env_ensured": readied["env_ensured"]}
    verifying = round_work(second, host_plan, device, catalog, store=store, wheel=None,
                           builder=builder_state(device, MARKER, previous))
    assert verifying["env_needed"] is False and verifying["install"] is None
    assert [v["model"] for v in verifying["verifies"]] == ["m2"]
