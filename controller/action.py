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

The steps every run takes (preflight, plan, report) read their inputs from the run's own
variables (``FROM_RUN``: the registered results of the steps before, the play's host lists), not
from templated task arguments: each worker process compiles every template of its task anew,
and templating the catalog or the plan walks every string in it. On a no-op rerun of one device
that was 0.02 to 0.03 s per step, in a run whose whole overhead over a ping is a few tenths of a
second (bench/README.md). A task can still pass any of them as an argument, which wins.

What a person should read (the preflight's notes, the plan) the action prints itself
(``say``), through the worker's display, which Ansible forwards to the main process: a debug
task would cost the run one more worker process.
"""

from __future__ import annotations

import json
import os

from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

from . import schema
from .runlock import StoreBusy
from .store import StoreError
from .trust import Untrusted

EXPECTED = (StoreError, StoreBusy, Untrusted)


class ControllerAction(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False
    ARGS: tuple[str, ...] = ()  # required
    # argument -> the run's variable it is read from when the task does not pass it (None when
    # the run has no such variable yet, e.g. no plan after a failed preflight).
    FROM_RUN: dict[str, str] = {}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._VALID_ARGS = frozenset(self.ARGS) | frozenset(self.FROM_RUN)

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        missing = [name for name in self.ARGS if name not in self._task.args]
        if missing:
            result.update(failed=True, msg="missing argument(s): {}".format(", ".join(missing)))
            return result
        args = {name: task_vars.get(variable) for name, variable in self.FROM_RUN.items()}
        args.update(self._task.args)
        # Plain Python values (Ansible hands over its own str subclasses, which e.g. YAML
        # dumpers refuse): the package below never sees an Ansible type.
        args = json.loads(json.dumps(args))
        try:
            result.update(self.decide(args, task_vars))
        except EXPECTED as error:
            result.update(failed=True, msg=str(error))
        result.setdefault("changed", False)
        return result

    @property
    def check_mode(self) -> bool:
        return bool(self._task.check_mode)

    def decide(self, args: dict, task_vars: dict) -> dict:
        raise NotImplementedError

    def setting(self, task_vars: dict, name: str):
        """The run's value of the fleet-wide user variable ``name`` (templated: an inventory
        may compute it), else its default (controller/schema.py); a path made absolute and
        resolved, a default path from the project's directory (the playbooks' parent)."""
        variable = schema.BY_NAME[name]
        if name in task_vars:
            value = self._templar.template(task_vars[name])
        elif variable.type == "path":
            value = os.path.join(task_vars["playbook_dir"], os.pardir, variable.default)
        else:
            value = variable.default
        return os.path.realpath(str(value)) if variable.type == "path" else value

    @staticmethod
    def say(lines) -> None:
        """Print ``lines`` in the run's output, under the task's name."""
        for line in lines:
            Display().display("  " + str(line))
