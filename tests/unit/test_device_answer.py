"""A device's answer to the facts step, on the controller (issue 27, item 1): it becomes one
registered result, never facts or variables (plugins/action/jetson_facts.py), and the
controller reads it field by field (controller/device.py), for the build's plan and for the
deploy's (controller/deploy_plan.py). The run refuses to start when Ansible would turn facts
into variables (controller/action.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from builder.commands.check import catalog_report
from controller import deploy_plan
from controller.device import deployed_models, device_platform
from controller.keys import host_build_keys
from controller.selection import HostSelection
from controller.store import EngineStore
from controller.trust import Untrusted
from tests.integration.hostile import controller_variables, hostile_facts

from .plugin_files import load
from .store_helpers import staged

REPO = Path(__file__).resolve().parents[2]
FACTS_ACTION = load("plugins/action/jetson_facts.py", "jetson_facts_action_under_test")
NANO = "jetson-nano_l4t32.7.1_trt8.2.1"
VERSION = "aaaaaaaaaaaa-111111111111"


def platform(**changes):
    value = {"platform_id": NANO, "module": "jetson-nano", "tensorrt": "8.2.1.8",
             "compute_capability": "5.3", "dla_cores": 0, "memory_mib": 3964}
    value.update(changes)
    return value


def answer(jetson=None, state=None, deployed=None):
    result = {"jetson": jetson or platform(),
              "jetson_state": dict({"root_dir": "/opt/trt-builder", "free_mib": 9000,
                                    "env_marker": None, "models": {}}, **(state or {}))}
    if deployed is not None:
        result["jetson_deployed"] = {"install_root": "/opt/trt-engines", "env_marker": None,
                                     "models": deployed, "links": []}
    return result


# ---------------------------------------------------------------- the facts action's result

def test_the_answer_is_kept_under_its_keys_and_nothing_else_becomes_facts():
    hostile = hostile_facts("/tmp/hostile")
    module_result = {
        "changed": False, "warnings": ["jetson-nano: a warning"],
        "ansible_facts": dict(hostile, discovered_interpreter_python="/usr/bin/python3",
                              **answer(deployed={})),
        # Keys a device may add to its answer: none of them reaches the task's result.
        "engine_store_dir": "/etc", "ansible_stats": {"data": {"x": 1}},
        "_ansible_delegated_vars": {"ansible_host": "evil"}, "jetson_device": "forged",
    }
    result = FACTS_ACTION.device_answer(module_result)
    assert set(result) == {"changed", "warnings", "jetson", "jetson_state", "jetson_deployed",
                           "ansible_facts"}
    assert result["ansible_facts"] == {"discovered_interpreter_python": "/usr/bin/python3"}
    assert result["jetson"] == platform()
    assert len(hostile) == len(controller_variables()) > 100


def test_a_failed_detection_keeps_its_failure_and_platform():
    result = FACTS_ACTION.device_answer({"failed": True, "msg": "Unsupported JetPack",
                                         "jetson_failure": "unsupported_jetpack",
                                         "ansible_facts": {"jetson": platform()}})
    assert result == {"failed": True, "msg": "Unsupported JetPack",
                      "jetson_failure": "unsupported_jetpack", "jetson": platform()}


# ---------------------------------------------------------------- the guard

def _injection_message(env, config=None):
    """controller.action.fact_injection_problem() in a fresh process (Ansible reads its
    configuration once, at import)."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    environment.update(env, ANSIBLE_CONFIG=str(config or REPO / "ansible.cfg"))
    done = subprocess.run(
        [sys.executable, "-c", "from controller.action import fact_injection_problem as f; "
                               "import json; print(json.dumps(f()))"],
        cwd=str(REPO), env=environment, capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def test_the_repository_configuration_switches_injection_off():
    assert _injection_message({}) is None


def test_injection_on_is_refused_naming_where_it_was_set(tmp_path):
    message = _injection_message({"ANSIBLE_INJECT_FACT_VARS": "1"})
    assert message.startswith("refused: inject_facts_as_vars is on (the environment variable "
                              "ANSIBLE_INJECT_FACT_VARS is set to '1')")
    assert "engine_store_dir" in message and "Nothing was changed." in message

    own = tmp_path / "ansible.cfg"
    own.write_text("[defaults]\ninject_facts_as_vars = true\n")
    assert "(set in {})".format(own) in _injection_message({}, own)

    bare = tmp_path / "bare.cfg"
    bare.write_text("[defaults]\nforks = 5\n")
    message = _injection_message({}, bare)
    assert "Ansible's default: the configuration in use ({}) does not set it".format(bare) \
        in message
    assert "add inject_facts_as_vars = False to the [defaults] section of {}".format(bare) \
        in message


# ---------------------------------------------------------------- field by field

@pytest.mark.parametrize("field, value, refused", [
    ("platform_id", "jetson-nano_l4t32.7.1_trt8.2.1\n", "sent platform_id"),
    ("tensorrt", "8.2.1\n", "sent tensorrt"),
    ("tensorrt", "$(reboot)", "sent tensorrt"),
    ("module", "jetson\nnano", "sent module"),
    ("dla_cores", True, "sent dla_cores"),
    ("memory_mib", "4096", "sent memory_mib"),
    ("compute_capability", "5.3\n", "sent compute_capability"),
    ("l4t", "32.7.1\n", "sent l4t"),
    ("jetpack", "4.6; reboot", "sent jetpack"),
])
def test_each_platform_field_is_checked(field, value, refused):
    with pytest.raises(Untrusted, match=refused):
        device_platform("nano-1", answer(platform(**{field: value})), {})


@pytest.mark.parametrize("root_dir", ["relative/dir", "/opt/../etc", "/opt/trt\n-builder",
                                      None, ["/opt"], "/" + "x" * 2000])
def test_the_builder_directory_must_be_an_absolute_plain_path(root_dir):
    with pytest.raises(Untrusted, match="sent root_dir"):
        device_platform("nano-1", answer(state={"root_dir": root_dir}), {})


@pytest.mark.parametrize("state, refused", [
    ({"models": ["m"]}, "sent work directories"),
    ({"models": {"../m": {}}}, "sent a work directory"),
    (None, "sent no builder state"),
])
def test_the_builder_state_is_checked(state, refused):
    value = answer(state=state or {})
    if state is None:
        del value["jetson_state"]
    with pytest.raises(Untrusted, match=refused):
        device_platform("nano-1", value, {})


def test_a_truthful_answer_passes():
    device = device_platform("nano-1", answer(), {})
    assert (device.platform_id, device.root_dir, device.tensorrt) == (
        NANO, "/opt/trt-builder", "8.2.1.8")


def installed(version=VERSION, **changes):
    value = {"version": version, "build_key": "a" * 64, "platform_id": NANO,
             "engine_sha256": "1" * 64, "engine_file": "TRT_m.bin"}
    value.update(changes)
    return value


@pytest.mark.parametrize("models, refused", [
    ({"../etc": {}}, "installed model directory"),
    ({"m": {"current": installed("../../etc")}}, "current version"),
    ({"m": {"current": installed(build_key="zz")}}, "current build_key"),
    ({"m": {"previous": installed(platform_id="a/b")}}, "previous platform_id"),
    ({"m": {"versions": [VERSION + "\n"]}}, "versions"),
    ({"m": {"link": "x\x00y"}}, "link"),
    ({"m": "not a record"}, "not a record"),
])
def test_each_installed_field_is_checked(models, refused):
    with pytest.raises(Untrusted, match=refused):
        deployed_models("nano-1", answer(deployed=models))


# ---------------------------------------------------------------- the deploy plan reads it

class HostVars(dict):
    """hostvars as the deploy plan reads them: one host, its registered answer and the
    preflight's selection."""


@pytest.fixture
def catalog(tmp_path):
    """One model as the preflight exports it (the spec with its defaults and graph sha256)."""
    (tmp_path / "m.pb").write_bytes(b"graph")
    (tmp_path / "models.yml").write_text("version: 1\nmodels:\n  m:\n    graph: m.pb\n"
                                         "    num_classes: 91\n")
    report = catalog_report(str(tmp_path / "models.yml"), check_graphs=False)
    return {name: dict(spec, sha256="c" * 64) for name, spec in report["models"].items()}


def deploy_hostvars(host_answer, catalog, expected=()):
    selection = {"host": "nano-1", "models": ["m"], "scope": "platform",
                 "options": {"precision": "fp16", "workspace_mib": 256, "max_batch": 1,
                             "dla_core": None}, "origins": {},
                 "expected_platforms": [list(pair) for pair in expected]}
    return HostVars({"nano-1": {"jetson_device": host_answer, "preflight_result": {
        "selections": {"nano-1": selection}, "catalog": catalog}}})


def test_a_device_that_lies_in_its_installed_state_is_refused_without_a_push(tmp_path,
                                                                           catalog):
    lying = answer(deployed={"m": {"current": installed("../../../etc/cron.d")}})
    plan, lines = deploy_plan.make_deploy_plan(["nano-1"], deploy_hostvars(lying, catalog),
                                               str(tmp_path / "store"), False)
    host = plan["hosts"]["nano-1"]
    assert host["work"] == [] and host["files"] == [] and host["prepare"] == []
    assert host["models"]["m"]["action"] == "refused"
    assert "host nano-1 sent installed model m current version '../../../etc/cron.d'" in \
        host["models"]["m"]["reason"]
    assert "refused" in lines[0]


def test_a_model_directory_that_is_a_link_is_refused_naming_it(tmp_path, catalog):
    link = "/opt/trt-engines/m is a symbolic link (to /data/elsewhere)"
    state = answer(deployed={"m": {"link": link, "current": None, "previous": None,
                                   "versions": [], "links": []}})
    for rollback in (False, True):
        plan, _ = deploy_plan.make_deploy_plan(["nano-1"], deploy_hostvars(state, catalog),
                                               str(tmp_path / "store"), rollback)
        item = plan["hosts"]["nano-1"]["models"]["m"]
        assert item["action"] == "refused" and item["reason"].startswith(link), item
        assert "follows no link below the install root" in item["reason"]


def test_the_deploy_sends_no_engine_of_a_platform_the_inventory_does_not_agree_on(tmp_path,
                                                                                  catalog):
    """A device of group nano that reports the TX2's platform would be sent the TX2's stored
    engine: the deploy refuses it, nothing is pushed; with no claim the same answer deploys."""
    tx2 = "jetson-tx2_l4t32.7.1_trt8.2.1"
    claiming = answer(jetson=platform(platform_id=tx2, module="jetson-tx2"), deployed={})
    selection = HostSelection.from_dict(deploy_hostvars(claiming, catalog)["nano-1"][
        "preflight_result"]["selections"]["nano-1"])
    key, variant = host_build_keys(selection, tx2, catalog, "8.2.1.8")["m"]
    store = tmp_path / "store"
    staged(tmp_path / "staged", "m", tx2, key, selection.options.as_dict())
    signing_key = tmp_path / "controller" / "engine-signing.key"
    for host in ("tx2-1", "tx2-2"):  # built on one TX2, verified by a second one
        EngineStore(store, signing_key=signing_key).file_engine(
            tmp_path / "staged", platform_id=tx2, model="m", variant=variant, build_key=key,
            built_on=host, max_bytes=1 << 20)
    taken_at_its_word, _ = deploy_plan.make_deploy_plan(
        ["nano-1"], deploy_hostvars(claiming, catalog), str(store), False, str(signing_key))
    assert taken_at_its_word["hosts"]["nano-1"]["models"]["m"]["action"] == "deploy"
    plan, lines = deploy_plan.make_deploy_plan(
        ["nano-1"], deploy_hostvars(claiming, catalog, [("nano", "its inventory group 'nano'")]),
        str(store), False, str(signing_key))
    host = plan["hosts"]["nano-1"]
    assert host["work"] == [] and host["files"] == [] and host["prepare"] == []
    assert host["models"]["m"]["action"] == "refused"
    assert "the inventory says it is a nano" in host["models"]["m"]["reason"]
    assert "reports platform {}".format(tx2) in lines[0]
