"""jetson_facts with its inputs taken from the host's variables (library/jetson_facts.py runs on
the device; this runs before it, in the host's worker on the controller).

root_dir and install_root come from jetson_facts_root_dir and jetson_facts_install_root when
the task does not pass them; unset, the module's own defaults apply. The task itself carries no
template: the first filter a worker's template uses (``default``, to fall back when a variable
is unset) makes that worker look through and import every filter plugin, about 25 ms of
CPU, once per device on every run, where a bare ping pays nothing (bench/README.md)."""

from __future__ import annotations

from ansible.plugins.action import ActionBase

# module argument -> the host variable it is read from
FROM_HOST = {"root_dir": "jetson_facts_root_dir", "install_root": "jetson_facts_install_root"}


class ActionModule(ActionBase):
    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        module_args = dict(self._task.args)
        for argument, variable in FROM_HOST.items():
            # An empty value is unset, as the default filter with true treated it before.
            value = self._templar.template(task_vars.get(variable) or "")
            if argument not in module_args and value:
                module_args[argument] = value
        try:
            result.update(self._execute_module(module_name="jetson_facts",
                                               module_args=module_args, task_vars=task_vars))
        finally:
            # Without pipelining the module went through a remote temporary directory.
            self._remove_tmp_path(self._connection._shell.tmpdir)
        return result
