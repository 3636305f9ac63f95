"""The device modules' payloads are built ahead while the preflight runs
(controller/module_payloads.py, started by the fork_gc callback): the step that sends a module
finds the zip Ansible would have built, in the cache Ansible reads, and a failed build ahead
leaves the step to build its own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from types import SimpleNamespace

import pytest

from controller import module_payloads
from tests.unit.plugin_files import REPO, ansible_plugins
from tests.unit.test_fork_gc import fork_gc

# Run in a child Python: Ansible's constants (its local temporary directory, under
# ANSIBLE_LOCAL_TEMP) are fixed at import, and build_ahead forks. Prints, as JSON, whether the
# module's payload was taken from the cache (Ansible's dependency scan never ran), which
# module_utils files the payload holds, and the cache's files (Ansible removes the directory
# when the process exits).
SEND_AFTER = r"""
import json, os, sys
from ansible import constants
from ansible.executor import module_common
from ansible.parsing.dataloader import DataLoader
from ansible.plugins.loader import init_plugin_loader, module_loader
from ansible.template import Templar
from controller import module_payloads
from tests.unit.plugin_files import payload_archive

init_plugin_loader()
name, ahead = sys.argv[1], sys.argv[2] == "ahead"
status = None
if ahead:
    status = module_payloads.reap(module_payloads.build_ahead([name]), wait=True)
scanned = []
scan = module_common.recursive_finder
module_common.recursive_finder = lambda *args: scanned.append(args[0]) or scan(*args)
# As the step's action builds it: its module name, another interpreter, its own arguments.
data, _, shebang = module_common.modify_module(
    name, module_loader.find_plugin(name), {"root_dir": "/opt/x"}, Templar(loader=DataLoader()),
    task_vars={"ansible_python_interpreter": "/usr/bin/python3.6"},
    module_compression="ZIP_DEFLATED")
payload = payload_archive(data)
print(json.dumps({"status": status, "scanned": scanned, "shebang": shebang,
                  "files": sorted(payload.namelist()), "args": b"/opt/x" in data,
                  "cache": os.listdir(os.path.join(constants.DEFAULT_LOCAL_TMP,
                                                   "ansiballz_cache"))}))
"""


def send(name, ahead, tmp_path):
    done = subprocess.run(
        [sys.executable, "-c", SEND_AFTER, name, "ahead" if ahead else "late"],
        cwd=REPO, capture_output=True, text=True, check=False,
        env=dict(os.environ, ANSIBLE_LOCAL_TEMP=str(tmp_path), ANSIBLE_CONFIG=str(
            REPO / "ansible.cfg"), PYTHONPATH=str(REPO)))
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_the_step_finds_the_payload_built_ahead_with_its_own_arguments(tmp_path):
    built_late = send("jetson_facts", False, tmp_path / "late")
    assert built_late["scanned"] == ["jetson_facts"]  # without: the step scans and builds
    ahead = send("jetson_facts", True, tmp_path / "ahead")
    assert ahead["status"] == 0
    assert ahead["scanned"] == []  # the step took the zip from the cache
    assert ahead["files"] == built_late["files"]  # the same files as the step's own build
    assert "ansible/module_utils/jetson_builder/platform/detect.py" in ahead["files"]
    # The step's arguments and interpreter, not the build ahead's, are in what it sends.
    assert ahead["args"] and ahead["shebang"] == "#!/usr/bin/python3.6"
    assert ahead["cache"] == ["ansible.modules.jetson_facts-ZIP_DEFLATED"]


def test_a_failed_build_ahead_leaves_no_cache_and_no_held_lock(tmp_path):
    failed = subprocess.run(
        [sys.executable, "-c",
         "from ansible.plugins.loader import init_plugin_loader; init_plugin_loader()\n"
         "from ansible.executor.action_write_locks import action_write_locks\n"
         "from controller import module_payloads\n"
         "status = module_payloads.reap(module_payloads.build_ahead(['no_such_module']), "
         "wait=True)\n"
         "import os; from ansible import constants\n"
         "print(status, action_write_locks['no_such_module'].acquire(timeout=5),\n"
         "      os.path.exists(os.path.join(constants.DEFAULT_LOCAL_TMP, 'ansiballz_cache')))"],
        cwd=REPO, capture_output=True, text=True, check=False,
        env=dict(os.environ, ANSIBLE_LOCAL_TEMP=str(tmp_path), PYTHONPATH=str(REPO)))
    assert failed.stdout.split() == ["1", "True", "False"], failed.stderr


def plays(playbook):
    from ansible.inventory.manager import InventoryManager  # noqa: PLC0415
    from ansible.parsing.dataloader import DataLoader  # noqa: PLC0415
    from ansible.playbook import Playbook  # noqa: PLC0415
    from ansible.vars.manager import VariableManager  # noqa: PLC0415

    ansible_plugins()
    loader = DataLoader()
    variables = VariableManager(loader=loader, inventory=InventoryManager(loader=loader))
    return Playbook.load(str(REPO / playbook), variable_manager=variables,
                         loader=loader).get_plays()


def test_the_device_modules_are_the_library_and_found_in_each_playbook():
    on_disk = {path.stem for path in (REPO / "library").glob("*.py")}
    assert on_disk == module_payloads.DEVICE_MODULES
    assert [module_payloads.device_modules(play) for play in plays("build_engines.yml")] == [
        ["jetson_facts"]]
    # engine_deploy runs from a dynamic include (devices with work only): not built ahead.
    assert [module_payloads.device_modules(play) for play in plays("deploy_engines.yml")] == [
        ["jetson_facts"], []]


@pytest.mark.parametrize("playbook", ["build_engines.yml", "deploy_engines.yml"])
def test_the_callback_starts_one_build_per_run_and_reaps_it(playbook, tmp_path, monkeypatch):
    started, children = [], []

    def build_ahead(names):
        started.append(names)
        children.append(os.spawnv(os.P_NOWAIT, "/bin/true", ["true"]))
        return children[-1]

    monkeypatch.setattr(module_payloads, "build_ahead", build_ahead)
    module = fork_gc()
    monkeypatch.setattr(module.gc, "freeze", lambda: None)  # not this test process's objects
    callback = module.CallbackModule()
    for play in plays(playbook) * 2:  # a second play (or serial batch) builds nothing again
        callback.v2_playbook_on_play_start(play)
    assert started == [module_payloads.device_modules(plays(playbook)[0])]
    callback._reap(wait=True)
    assert callback.child is None
    with pytest.raises(ChildProcessError):  # reaped: no zombie left
        os.waitpid(children[0], os.WNOHANG)


def test_the_run_goes_on_when_the_child_cannot_be_forked(monkeypatch):
    def no_fork():
        raise BlockingIOError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(module_payloads.os, "fork", no_fork)
    module = fork_gc()
    monkeypatch.setattr(module.gc, "freeze", lambda: None)
    callback = module.CallbackModule()
    callback.v2_playbook_on_play_start(plays("build_engines.yml")[0])
    assert callback.child is None
    callback.v2_playbook_on_task_start(SimpleNamespace(action="jetson_facts"), False)
