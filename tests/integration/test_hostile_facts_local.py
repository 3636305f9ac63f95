"""A device's answer cannot set the controller's variables (docs/threat-model.md, item 1 of
issue 27), shown with real ansible-playbook runs on the controller itself (connection local),
no simulated fleet: the host's Python is a compromised interpreter (tests/integration/hostile.py)
that adds, to every module's answer, ``ansible_facts`` naming every variable the controller
reads, each with a hostile value.

- With the repository's ansible.cfg (inject_facts_as_vars = False) no such variable changes:
  each reads what the inventory set (or stays unset), and the device's answer to the facts
  step is the registered ``jetson_device``, with nothing of the hostile facts in it.
- The control run (ANSIBLE_INJECT_FACT_VARS=True) shows the attack is real: the same answer
  replaces the inventory's engine_store_dir, engine_fetch_max_mib... And there the facts step
  and the preflight refuse to run, naming the setting and where it was set (the environment
  variable, or an ansible.cfg of the user's own).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
import yaml

from tests.integration.envside import REPO, tool
from tests.integration.hostile import controller_variables, hostile_facts, install_liar
from tests.unit.platform_roots import lay_out

UNSET = "__unset__"
# What the inventory sets for the host (group_vars/all.yml): the values the run must keep.
HONEST = {"engine_store_dir": "{store}", "engine_fetch_max_mib": 7,
          "engine_models": ["ssd_mobilenet_v2_coco"], "engine_precision": "fp16",
          "engine_workspace_mib": 512, "engine_store_wait_s": 5,
          "engine_deploy_install_root": "/opt/trt-engines", "jetson_env_swap_mib": 0}
CHECK_PLAY = """---
- name: What a compromised device's answers do to the host's variables
  hosts: dev1
  gather_facts: false
  vars:
    observed: >-
      {{{{ dict(hostile_check_names
               | zip(query('ansible.builtin.vars', *hostile_check_names, default='{unset}'))) }}}}
  tasks:
    - name: Any module on the device (its answer carries the hostile facts)
      ansible.builtin.command: "true"
      changed_when: false

    - name: Record every controller variable as the next task sees it
      ansible.builtin.copy:
        content: "{{{{ observed | to_json }}}}"
        dest: "{observed_before}"
        mode: "0644"

    - name: The facts step (its answer carries them too)
      jetson_facts:
        device_root: "{device_root}"
        root_dir: "{state}"
      register: jetson_device

    - name: Record them again, and the registered answer
      ansible.builtin.copy:
        content: >-
          {{{{ {{'vars': observed, 'answer': jetson_device, 'facts': ansible_facts}} | to_json }}}}
        dest: "{observed_after}"
        mode: "0644"
"""


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    base = tmp_path_factory.mktemp("hostile-local")
    prefix = str(base / "hostile")
    liar = install_liar(base / "liar", sys.executable, hostile_facts(prefix),
                        str(base / "liar" / "facts.json"), str(base / "liar" / "lie.py"))
    inventory = base / "inventory"
    (inventory / "group_vars").mkdir(parents=True)
    honest = {k: (v.format(store=base / "store") if isinstance(v, str) else v)
              for k, v in HONEST.items()}
    (inventory / "group_vars" / "all.yml").write_text("---\n" + yaml.safe_dump(honest))
    (inventory / "hosts.yml").write_text(yaml.safe_dump({"all": {"hosts": {"dev1": {
        "ansible_connection": "local", "ansible_python_interpreter": str(liar)}}}}))
    names = sorted(controller_variables())
    (base / "names.json").write_text(json.dumps({"hostile_check_names": names}))
    playbook = base / "check.yml"
    playbook.write_text(CHECK_PLAY.format(
        unset=UNSET, observed_before=base / "before.json", observed_after=base / "after.json",
        device_root=lay_out(base / "device-root", "nano-32.7.1"), state=base / "state"))
    return {"base": base, "inventory": inventory, "playbook": playbook, "honest": honest,
            "names": names, "prefix": prefix}


def run(setup, playbook, *args, env=None):
    command = [tool("ansible-playbook"), str(playbook), "-i", str(setup["inventory"]),
               "-e", "@{}".format(setup["base"] / "names.json"), *args]
    environment = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
                       ANSIBLE_FORCE_COLOR="0", ANSIBLE_NOCOLOR="1")
    environment.update(env or {})
    started = time.monotonic()
    done = subprocess.run(command, cwd=str(REPO), env=environment, capture_output=True,
                          text=True, timeout=300, check=False)
    return done.returncode, done.stdout + done.stderr, time.monotonic() - started


# Ansible's own variables the actions read (FROM_RUN): the play's hosts.
MAGIC = {"ansible_play_hosts": ["dev1"], "ansible_play_hosts_all": ["dev1"]}


def expected(setup):
    return {name: MAGIC.get(name, setup["honest"].get(name, UNSET)) for name in setup["names"]}


def test_the_names_are_derived_and_cover_what_the_controller_reads():
    names = controller_variables()
    for name in ("engine_store_dir", "engine_fetch_max_mib", "engine_catalog",
                 "engine_build_poll_s", "engine_build_work",
                 "engine_deploy_install_root", "engine_deploy_store_dir", "jetson_env_root_dir",
                 "jetson_facts_root_dir", "engine_plan_result", "preflight_result",
                 "engine_round", "engine_round_result"):
        assert name in names, name
    assert names["engine_build_poll_s"] == "roles/engine_build/defaults/main.yml"


def test_no_answer_of_a_device_changes_a_controller_variable(setup):
    code, output, seconds = run(setup, setup["playbook"])
    print("hostile answers, repository ansible.cfg: {:.1f} s".format(seconds))
    assert code == 0, output[-3000:]
    before = json.loads((setup["base"] / "before.json").read_text())
    after = json.loads((setup["base"] / "after.json").read_text())
    assert before == expected(setup), "a module's answer changed a variable"
    # Only the facts step's own register changed: jetson_device, now the device's answer.
    registered = after["vars"].pop("jetson_device")
    wanted = expected(setup)
    del wanted["jetson_device"]
    assert after["vars"] == wanted, "the facts step's answer changed a variable"
    # The device's answer is the registered result, its platform and nothing hostile.
    answer = after["answer"]
    assert registered == answer
    assert answer["jetson"]["platform_id"].startswith("jetson-nano_l4t32.7.1")
    assert not set(answer) & (set(setup["names"]) - {"jetson_failure"}), sorted(answer)
    assert "ansible_facts" not in answer or set(answer["ansible_facts"]) <= {
        "discovered_interpreter_python"}
    # The hostile answers did arrive: as facts, under ansible_facts only.
    assert after["facts"]["engine_store_dir"] == "{}/engine_store_dir".format(setup["prefix"])
    assert not os.path.exists(setup["prefix"]), "something used a hostile value"


def test_the_attack_is_real_with_injection_on_and_then_the_facts_step_refuses(setup):
    code, output, _ = run(setup, setup["playbook"], env={"ANSIBLE_INJECT_FACT_VARS": "True"})
    before = json.loads((setup["base"] / "before.json").read_text())
    # Control: with injection on, a module's answer replaces the inventory's values.
    assert before["engine_store_dir"] == "{}/engine_store_dir".format(setup["prefix"])
    assert before["engine_fetch_max_mib"] == 0
    assert before["engine_build_poll_s"] == "{}/engine_build_poll_s".format(setup["prefix"])
    # ... and the facts step refuses to hand the device's answer over.
    assert code != 0
    message = " ".join(output.split())
    assert "jetson_facts: refused: inject_facts_as_vars is on (the environment variable " \
           "ANSIBLE_INJECT_FACT_VARS is set to 'True')" in message, output[-3000:]
    assert "Fix: unset ANSIBLE_INJECT_FACT_VARS" in message


def _config_with_injection(directory):
    """The repository's ansible.cfg with its paths made absolute and injection switched on."""
    text = (REPO / "ansible.cfg").read_text()
    for key in ("roles_path", "library", "module_utils", "action_plugins", "callback_plugins"):
        text = text.replace("\n{} = ".format(key), "\n{} = {}/".format(key, REPO))
    text = text.replace("inject_facts_as_vars = False", "inject_facts_as_vars = True")
    path = directory / "ansible.cfg"
    path.write_text(text)
    return path


def test_the_preflight_refuses_a_run_with_injection_on_and_names_the_file(setup, tmp_path):
    preflight = REPO / "tests" / "integration" / "playbooks" / "preflight_only.yml"
    config = _config_with_injection(tmp_path)
    store = setup["base"] / "store"
    code, output, _ = run(setup, preflight, env={"ANSIBLE_CONFIG": str(config)})
    message = " ".join(output.split())
    assert code != 0
    assert ("Preflight: refused: inject_facts_as_vars is on (set in {})".format(config)
            in message), output[-3000:]
    assert "set inject_facts_as_vars = False in the [defaults] section of {}".format(
        config) in message
    assert not store.exists(), "nothing written"

    code, output, _ = run(setup, preflight, env={"ANSIBLE_INJECT_FACT_VARS": "yes"})
    assert code != 0 and "the environment variable ANSIBLE_INJECT_FACT_VARS" in output
    assert not store.exists()
