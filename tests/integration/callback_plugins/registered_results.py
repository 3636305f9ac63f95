"""Test-only callback: every registered result of a run, one JSON line each, into the file
that ENGINE_TEST_REGISTERED names (docs/internals.md, "The route of a model": the route test
follows one model through them)."""

import json
import os

from controller.callback import ProjectCallback


class CallbackModule(ProjectCallback):
    CALLBACK_NAME = "registered_results"

    # v2_runner_on_failed also gets ignore_errors=.
    def _record(self, result, **_):
        path = os.environ.get("ENGINE_TEST_REGISTERED")
        register = result._task.register
        if not path or not register:
            return
        line = {"host": result._host.get_name(), "register": register,
                "task": result._task.get_name(), "result": result._result}
        with open(path, "a") as handle:
            handle.write(json.dumps(line, default=str) + "\n")

    v2_runner_on_ok = v2_runner_on_failed = v2_runner_on_skipped = _record
