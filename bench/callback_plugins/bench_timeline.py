"""Callback (benchmark only): when each host's tasks started and ended, as the controller saw.

Enabled by bench/steps.py next to the project's own callbacks; writes one JSON document to
the file named by BENCH_TIMELINE_FILE at the end of the run. bench/timeline.py turns it into
per-device busy and waiting times.
"""

import functools
import json
import os
import time

from ansible.plugins.loader import action_loader

from controller.action import ControllerAction
from controller.callback import ProjectCallback

# Actions that run inside the controller: they never reach a device. The project's are the
# action plugins built on controller/action.py's ControllerAction that do not ask for a
# connection (_requires_connection: the round finish); its other actions (engine_push, the
# disk check, the facts) work on the device.
BUILTIN_CONTROLLER_ACTIONS = frozenset(
    prefix + name
    for prefix in ("", "ansible.builtin.", "ansible.legacy.")
    for name in ("set_fact", "debug", "assert", "fail", "set_stats", "include_tasks",
                 "include_role", "import_tasks", "import_role", "validate_argument_spec", "meta")
)


@functools.lru_cache(maxsize=None)
def works_on_controller(action):
    """Whether the task's action never reaches a device (its plugin class, as Ansible loads it)."""
    if action in BUILTIN_CONTROLLER_ACTIONS:
        return True
    plugin = action_loader.get(action, class_only=True)
    return (isinstance(plugin, type) and issubclass(plugin, ControllerAction)
            and not plugin._requires_connection)


class CallbackModule(ProjectCallback):
    CALLBACK_NAME = "bench_timeline"

    def __init__(self):
        super().__init__()
        self.started = {}
        self.events = []

    def v2_runner_on_start(self, host, task):
        self.started[(host.get_name(), task._uuid)] = time.time()

    def _done(self, result, status):
        host = result._host.get_name()
        task = result._task
        start = self.started.pop((host, task._uuid), None)
        if start is None:
            return
        self.events.append({
            "host": host, "task": task.get_name(), "start": start, "end": time.time(),
            "status": status,
            "on_device": not works_on_controller(task.action) and not task.delegate_to,
            # The round's finish step: how long its wait for the builds took (the rest of the
            # step verifies, lists and fetches).
            "builds_wait_s": result._result.get("builds_wait_s"),
        })

    def v2_runner_on_ok(self, result):
        self._done(result, "ok")

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._done(result, "failed")

    def v2_runner_on_skipped(self, result):
        self._done(result, "skipped")

    def v2_runner_on_unreachable(self, result):
        self._done(result, "unreachable")

    def v2_playbook_on_stats(self, stats):
        path = os.environ.get("BENCH_TIMELINE_FILE")
        if path:
            with open(path, "w", encoding="utf-8") as handle:
                json.dump({"events": self.events}, handle)
