"""What deploy_engines.yml does per host and model (controller only, once per batch):
controller/deploy_plan.py. Also builds the builder wheel the devices' deploy venvs get, when
one of them installs it (not in check mode: controller/builder_wheel.py)."""

from __future__ import annotations

import os

from ansible.module_utils.parsing.convert_bool import boolean

from controller import schema
from controller.action import ControllerAction
from controller.builder_wheel import WheelError
from controller.deploy_plan import DeploySettingsError, make_deploy_plan


class ActionModule(ControllerAction):
    ARGS = ("hosts",)
    # engine_deploy_rollback and engine_deploy_store_dir: the run's values, else their defaults
    # (controller/schema.py; a null store: the one the preflight checked and locked).
    FROM_RUN = {"rollback": "engine_deploy_rollback", "store_dir": "engine_deploy_store_dir"}

    def decide(self, args, task_vars):
        rollback = self._templar.template(args["rollback"])
        if rollback is None:
            rollback = schema.BY_NAME["engine_deploy_rollback"].default
        store_dir = self._templar.template(args["store_dir"]) or \
            task_vars["preflight_result"]["store_dir"]
        try:
            plan, lines = make_deploy_plan(list(args["hosts"]), task_vars["hostvars"],
                                           os.path.realpath(str(store_dir)),
                                           boolean(rollback, strict=False),
                                           self.setting(task_vars, "engine_signing_key"),
                                           check_mode=self.check_mode)
        except (DeploySettingsError, WheelError) as error:
            return {"failed": True, "msg": str(error)}
        return {"msg": lines, "plan": plan}
