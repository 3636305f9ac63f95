"""A deploy batch's outcomes, summary rows and <store>/deployments.json (controller only):
controller/deployments.py."""

from __future__ import annotations

from controller.action import ControllerAction
from controller.deployments import record_batch


class ActionModule(ControllerAction):
    ARGS = ("hosts", "batch", "active", "store_dir", "max_fail_percentage")

    def decide(self, args, task_vars):
        return record_batch(list(args["hosts"]), set(args["batch"]), set(args["active"]),
                            task_vars["hostvars"], store_dir=args["store_dir"],
                            max_fail_percentage=int(args["max_fail_percentage"]),
                            check_mode=self.check_mode)
