"""The rescue of a device's build round (playbooks/tasks/device_round.yml): when one of its steps
failed (environment install, push, build, collect), say whether the device's disk is what
failed, naming the device, the directory and its free space (controller/diskspace.py).

It runs over the device's connection, but only a shell command that writes nothing (``df``):
on a full disk no module can run. It always fails, so the device leaves the run as the failed
step would have made it; the other devices go on. What failed is read from the rescue's own
variables (``ansible_failed_task``, ``ansible_failed_result``), never passed as an argument and
never shown: it may hold what a task hides (no_log)."""

from __future__ import annotations

import json

from ansible.errors import AnsibleConnectionFailure, AnsibleError
from ansible.plugins.action import ActionBase

from controller import diskspace


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("root_dir",))

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        root_dir = self._task.args.get("root_dir") or None
        failed_task = task_vars.get("ansible_failed_task") or {}
        step = str(failed_task.get("name") or "?") if isinstance(failed_task, dict) else "?"
        failure = json.dumps(task_vars.get("ansible_failed_result"), default=str)
        directories = ([root_dir] if root_dir else []) + [diskspace.TEMP_DIR, diskspace.HOME]
        try:
            free = diskspace.probe(self._low_level_execute_command, directories)
        except AnsibleConnectionFailure as error:
            # Really gone (not a full disk): the device is unreachable, as it would have been.
            result.update(unreachable=True, msg=str(error), changed=False)
            return result
        except AnsibleError as error:
            self._display.vvv("engine_disk: no disk figures: {}".format(error))
            free = {}
        message = diskspace.disk_failure(task_vars.get("inventory_hostname", "?"), step, free,
                                         failure, root_dir)
        if message:
            result.update(failed=True, msg=message, failure_kind=diskspace.KIND,
                          disk_free_mib=free)
        else:
            result.update(failed=True, msg="step '{}' failed (its error is above); the device's "
                          "disk has room ({})".format(step, ", ".join(
                              "{} {} MiB free".format(name, mib) for name, mib in free.items())
                              or "not measured"))
        result["changed"] = False
        return result
