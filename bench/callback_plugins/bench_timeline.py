"""Callback (benchmark only): when each host's tasks started and ended, as the controller saw.

Enabled by bench/steps.py next to the project's own callbacks; writes one JSON document to
the file named by BENCH_TIMELINE_FILE at the end of the run. bench/timeline.py turns it into
per-device busy and waiting times.
"""

import json
import os
import time
from pathlib import Path

from ansible.plugins.callback import CallbackBase

# Actions that run inside the controller: they never reach a device. The project's are those
# built on controller/action.py's ControllerAction (no connection) that do not ask for one
# (_requires_connection: the round finish); its other actions (engine_push, the disk check,
# the facts) work on the device.
PROJECT_ACTIONS = Path(__file__).resolve().parents[2] / "plugins" / "action"
CONTROLLER_ACTIONS = frozenset(
    prefix + name
    for prefix in ("", "ansible.builtin.", "ansible.legacy.")
    for name in ("set_fact", "debug", "assert", "fail", "set_stats", "include_tasks",
                 "include_role", "import_tasks", "import_role", "validate_argument_spec", "meta")
) | frozenset(path.stem for path in PROJECT_ACTIONS.glob("*.py")
             if "(ControllerAction)" in path.read_text(encoding="utf-8")
             and "_requires_connection = True" not in path.read_text(encoding="utf-8"))


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "bench_timeline"
    CALLBACK_NEEDS_ENABLED = True

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
            "on_device": task.action not in CONTROLLER_ACTIONS and not task.delegate_to,
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
