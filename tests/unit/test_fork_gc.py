"""The fork_gc callback (plugins/callback/fork_gc.py) readies Ansible's main process before it
forks the workers: a task that calls one of the project's action plugins finds it loaded in
the main process, so every worker of the task inherits it instead of importing it."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import SimpleNamespace

from ansible.plugins.loader import action_loader

REPO = Path(__file__).resolve().parents[2]


def fork_gc():
    spec = importlib.util.spec_from_file_location(
        "fork_gc_under_test", REPO / "plugins" / "callback" / "fork_gc.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def loaded_actions():
    return {Path(path).stem for path in action_loader._module_cache}


def test_the_projects_action_of_a_task_is_loaded_when_the_task_starts():
    module = fork_gc()
    on_disk = {path.stem for path in (REPO / "plugins" / "action").glob("*.py")}
    assert on_disk == module.PROJECT_ACTIONS
    assert {"engine_preflight", "jetson_facts", "engine_round_finish"} <= module.PROJECT_ACTIONS
    action_loader.add_directory(str(REPO / "plugins" / "action"))
    callback = module.CallbackModule()
    assert "engine_plan" not in loaded_actions()
    callback.v2_playbook_on_task_start(SimpleNamespace(action="engine_plan"), False)
    assert "engine_plan" in loaded_actions()
    assert "controller.plan" in sys.modules  # what the plugin imports comes along
    before = loaded_actions()
    callback.v2_playbook_on_task_start(SimpleNamespace(action="ansible.builtin.command"), False)
    assert loaded_actions() == before  # Ansible's own actions are left to the workers
