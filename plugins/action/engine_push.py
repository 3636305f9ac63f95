"""Send a round's files to a device in one go (controller/device_push.py): one remote command
removes what the round drops and creates the directories, each file travels over the
connection's own transfer (sftp), one remote command puts them in place. Two remote commands
for the round instead of two per file (ansible.builtin.copy's stat and module) and one per
removed directory (ansible.builtin.file)."""

from __future__ import annotations

from ansible.plugins.action import ActionBase

from controller.device_push import carry_out, sender


class ActionModule(ActionBase):
    # False: each file goes straight to its part name, so no temporary directory of Ansible's
    # is made on the device (two remote commands fewer, and a full disk fails the push, which
    # the round's rescue reports as disk, where Ansible's mkdir made the device unreachable).
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("files", "prepare", "finish"))

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        files = list(self._task.args.get("files") or [])
        prepare = self._task.args.get("prepare") or ""
        if not files and not prepare:
            result.update(changed=False, msg="nothing to push")
            return result
        if self._task.check_mode:
            result.update(changed=True, msg="would push {} file(s)".format(len(files)))
            return result
        # A device gone (AnsibleConnectionFailure) goes up: Ansible makes it unreachable.
        problem = carry_out(files, {"prepare": prepare, "finish": self._task.args["finish"]},
                            run=self._low_level_execute_command,
                            put=sender(self._connection.put_file))
        if problem is not None:
            result.update(failed=True, msg=problem)
            return result
        result.update(changed=True, pushed=[item["label"] for item in files])
        return result
