"""The base of the controller-side actions (with controller/callback.py, the base of the
callback plugins, the package's Ansible-facing pieces).

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
from collections.abc import Iterable
from typing import Any

from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

from . import schema
from .runlock import StoreBusy
from .store import StoreError
from .trust import Untrusted

EXPECTED = (StoreError, StoreBusy, Untrusted)
SETTING = "inject_facts_as_vars"


def fact_injection_problem() -> str | None:
    """Why this run must not go on (None when it may): Ansible's INJECT_FACTS_AS_VARS on.

    With it on, every fact a module returns becomes a variable of its host, ranked above
    group_vars and host_vars: a compromised device answering any task (not only the facts
    step) with ``ansible_facts: {engine_store_dir: /etc, engine_fetch_max_mib: 65536}``
    would steer what the controller does for it. The repository's ansible.cfg switches it
    off; a user's own ansible.cfg, or ANSIBLE_INJECT_FACT_VARS, may switch it on again: the
    preflight (the first step of both playbooks) and the facts step stop the run then.
    """
    from ansible import constants  # noqa: PLC0415 (Ansible's configuration, read when asked)

    value, origin = constants.config.get_config_value_and_origin("INJECT_FACTS_AS_VARS")
    if not value:
        return None
    config_file = constants.CONFIG_FILE or "no ansible.cfg was found"
    if str(origin).startswith("env:"):
        where = "the environment variable ANSIBLE_INJECT_FACT_VARS is set to {!r}".format(
            os.environ.get("ANSIBLE_INJECT_FACT_VARS"))
        fix = "unset ANSIBLE_INJECT_FACT_VARS (or set it to False)"
    elif origin == "default":
        where = ("Ansible's default: the configuration in use ({}) does not set it".format(
            config_file))
        fix = ("run with this repository's ansible.cfg (the default from its directory, or "
               "ANSIBLE_CONFIG=<repository>/ansible.cfg), or add {} = False to the "
               "[defaults] section of {}".format(SETTING, config_file))
    else:
        where = "set in {}".format(origin)
        fix = "set {} = False in the [defaults] section of {}".format(SETTING, origin)
    return ("refused: {} is on ({}). With it on, Ansible makes every fact a device returns a "
            "variable of that host, ranked above group_vars and host_vars, so a compromised "
            "device could set engine_store_dir, engine_fetch_max_mib or any other variable "
            "the controller reads for it. Fix: {}. Nothing was changed.".format(
                SETTING, where, fix))


class ControllerAction(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False
    ARGS: tuple[str, ...] = ()  # required
    # argument -> the run's variable it is read from when the task does not pass it (None when
    # the run has no such variable yet, e.g. no plan after a failed preflight).
    FROM_RUN: dict[str, str] = {}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._VALID_ARGS = frozenset(self.ARGS) | frozenset(self.FROM_RUN)

    def run(self, tmp: str | None = None, task_vars: dict[str, Any] | None = None
            ) -> dict[str, Any]:
        result: dict[str, Any] = super().run(tmp, task_vars)
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

    def decide(self, args: dict[str, Any], task_vars: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def setting(self, task_vars: dict[str, Any], name: str) -> Any:
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
    def say(lines: Iterable[object]) -> None:
        """Print ``lines`` in the run's output, under the task's name."""
        for line in lines:
            Display().display("  " + str(line))
