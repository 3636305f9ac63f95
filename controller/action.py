"""The one Ansible-facing piece of the package: the base of the controller-side actions.

Each action plugin in plugins/action/ is a few lines: it names its arguments and calls one
decision of this package. It runs in the controller's Ansible process (no module, no
interpreter start, no connection). A refusal of the trust boundary, the store or the run lock
fails the task with its message, never with a traceback.

What a run_once action decides for the whole fleet (the checked selections, the plan) is
returned as plain result keys, which reach every host through the task's register (a
run_once task registers its result for all hosts of the play), never as ``ansible_facts``:
Ansible re-wraps and cleans a host's facts each time it prepares a task for that host
(VariableManager.get_vars), and a plan of every host in every host's facts made that grow with
the square of the fleet (at 32 devices: 4.5 s of a 10 s no-op's main process,
bench/README.md). Registered variables are not re-processed.

What a person should read (the preflight's notes, the plan) the action prints itself
(``say``), through the worker's display, which Ansible forwards to the main process: a debug
task would cost the run one more worker process.
"""

from __future__ import annotations

import json

from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

from .runlock import StoreBusy
from .store import StoreError
from .trust import Untrusted

EXPECTED = (StoreError, StoreBusy, Untrusted)


class ControllerAction(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False
    ARGS: tuple[str, ...] = ()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._VALID_ARGS = frozenset(self.ARGS)

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        missing = [name for name in self.ARGS if name not in self._task.args]
        if missing:
            result.update(failed=True, msg="missing argument(s): {}".format(", ".join(missing)))
            return result
        # Plain Python values (Ansible hands over its own str subclasses, which e.g. YAML
        # dumpers refuse): the package below never sees an Ansible type.
        args = json.loads(json.dumps(dict(self._task.args)))
        try:
            result.update(self.decide(args, task_vars or {}))
        except EXPECTED as error:
            result.update(failed=True, msg=str(error))
        result.setdefault("changed", False)
        return result

    @property
    def check_mode(self) -> bool:
        return bool(self._task.check_mode)

    def decide(self, args: dict, task_vars: dict) -> dict:
        raise NotImplementedError

    @staticmethod
    def say(lines) -> None:
        """Print ``lines`` in the run's output, under the task's name."""
        for line in lines:
            Display().display("  " + str(line))
