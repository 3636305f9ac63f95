"""What deploy_engines.yml does per host and model (controller only, once per batch):
controller/deploy_plan.py."""

from __future__ import annotations

from controller.action import ControllerAction
from controller.deploy_plan import DeploySettingsError, make_deploy_plan


class ActionModule(ControllerAction):
    ARGS = ("hosts", "store_dir", "rollback")

    def decide(self, args, task_vars):
        try:
            plan, lines = make_deploy_plan(list(args["hosts"]), task_vars["hostvars"],
                                           args["store_dir"], bool(args["rollback"]),
                                           self.setting(task_vars, "engine_signing_key"),
                                           check_mode=self.check_mode)
        except DeploySettingsError as error:
            return {"failed": True, "msg": str(error)}
        return {"msg": lines, "plan": plan}
