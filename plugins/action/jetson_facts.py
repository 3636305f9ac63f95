"""jetson_facts with its inputs taken from the host's variables (library/jetson_facts.py runs on
the device; this runs before it, in the host's worker on the controller).

root_dir and install_root come from the host's variables when the task does not pass them:
root_dir from jetson_facts_root_dir, else jetson_env_root_dir (its older name), else the one
default (controller/schema.py BUILDER_ROOT_DIR); install_root from jetson_facts_install_root,
else the module's default. With jetson_facts_deployed (deploy_engines.yml), install_root is the
host's engine_deploy_install_root, else its default in controller/schema.py. The preflight
refused a host that sets the two root dirs apart.
The task itself carries no template: the first filter a worker's template uses (``default``,
to fall back when a variable is unset) makes that worker look through and import every filter
plugin, about 25 ms of CPU, once per device on every run, where a bare ping pays nothing
(bench/README.md).

The device's answer is not trusted (docs/threat-model.md): it never becomes facts or
variables. The module's ``ansible_facts`` (``jetson``, ``jetson_state``, ``jetson_deployed``)
come back as plain keys of this task's result, which playbooks/tasks/facts.yml registers as
``jetson_device``: one name, that no later task's answer can change, read field by field by
the controller (controller/device.py). Of the module's ``ansible_facts`` only Ansible's own
``discovered_interpreter_*`` stay facts; of its other keys only those Ansible and the roles
read. The step refuses to run when Ansible would turn facts into variables
(inject_facts_as_vars on: controller/action.py)."""

from __future__ import annotations

from ansible.errors import AnsibleError
from ansible.plugins.action import ActionBase

from controller import diskspace, schema
from controller.action import fact_injection_problem

# module argument -> the host variables it is read from, the first set one wins
FROM_HOST = {"root_dir": schema.ROOT_DIR_VARIABLES,
             "install_root": ("jetson_facts_install_root",)}
# module argument -> its value when no variable sets it (None: the module's default)
DEFAULTS = {"root_dir": schema.BUILDER_ROOT_DIR}
# The device's answer: keys of the module's ansible_facts, returned as keys of the result.
ANSWER = ("jetson", "jetson_state", "jetson_deployed")
# What else of the module's result is kept (Ansible's own keys, the module's failure kind).
KEPT = frozenset(("changed", "failed", "msg", "warnings", "deprecations", "exception", "rc",
                  "module_stdout", "module_stderr", "invocation", "unreachable", "skipped",
                  "jetson_failure", "_ansible_parsed", "_ansible_no_log"))
INTERPRETER_FACTS = "discovered_interpreter_"


def device_answer(module_result: dict) -> dict:
    """The task's result from the module's: the answer under ANSWER, Ansible's interpreter
    discovery as the only facts, nothing else of what the device sent."""
    facts = module_result.get("ansible_facts")
    facts = facts if isinstance(facts, dict) else {}
    result = {key: value for key, value in module_result.items() if key in KEPT}
    result.update((key, facts[key]) for key in ANSWER if key in facts)
    interpreter = {key: value for key, value in facts.items()
                   if isinstance(key, str) and key.startswith(INTERPRETER_FACTS)}
    if interpreter:
        result["ansible_facts"] = interpreter
    return result


class ActionModule(ActionBase):
    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        injection = fact_injection_problem()
        if injection:
            result.update(failed=True, msg="jetson_facts: " + injection)
            return result
        task_vars = task_vars or {}
        module_args = dict(self._task.args)
        for argument, variables in FROM_HOST.items():
            if argument in module_args:
                continue
            value = DEFAULTS.get(argument)
            for variable in variables:
                # An empty value is unset, as the default filter with true treated it before.
                found = self._templar.template(task_vars.get(variable) or "")
                if found:
                    value = found
                    break
            if value:
                module_args[argument] = value
        if task_vars.get("jetson_facts_deployed") and "install_root" not in module_args:
            # deploy_engines.yml: the host's engine_deploy_install_root, else the schema's.
            module_args["install_root"] = self._templar.template(
                schema.deploy_setting(task_vars, "engine_deploy_install_root"))
        try:
            result.update(device_answer(self._execute_module(
                module_name="jetson_facts", module_args=module_args, task_vars=task_vars)))
        finally:
            # Without pipelining the module went through a remote temporary directory.
            self._remove_tmp_path(self._connection._shell.tmpdir)
        if result.get("failed") and "jetson_failure" not in result:
            # The module did not answer (MODULE FAILURE): a full disk stops Ansible's module
            # wrapper before it runs (controller/diskspace.py).
            self.report_full_disk(result, task_vars, module_args)
        return result

    def report_full_disk(self, result, task_vars, module_args):
        directories = [module_args[name] for name in ("root_dir", "install_root")
                       if module_args.get(name)] + [diskspace.TEMP_DIR, diskspace.HOME]
        try:
            free = diskspace.probe(self._low_level_execute_command, directories)
        except AnsibleError as error:  # the connection went: the failure stays as it was
            self._display.vvv("jetson_facts: no disk figures: {}".format(error))
            return
        failure = " ".join(str(result.get(key) or "") for key in
                           ("msg", "module_stderr", "module_stdout", "exception"))
        message = diskspace.disk_failure(task_vars.get("inventory_hostname", "?"),
                                         self._task.get_name(), free, failure,
                                         module_args.get("root_dir"))
        if message:
            result.update(msg=message, jetson_failure=diskspace.KIND, disk_free_mib=free)
