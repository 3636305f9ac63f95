"""File one host's fetched engines into the store, then clear its staging area (controller
only): controller/collect.py and controller/store.py."""

from __future__ import annotations

from controller.action import ControllerAction
from controller.collect import file_host_engines, limit_of


class ActionModule(ControllerAction):
    ARGS = ("store_dir", "models", "host_plan", "catalog", "max_bytes")

    def decide(self, args, task_vars):
        host = task_vars["inventory_hostname"]
        limits = {m: limit_of(m, args["catalog"], int(args["max_bytes"])) for m in args["models"]}
        filed, refused = file_host_engines(args["store_dir"], host, args["models"],
                                           args["host_plan"], limits=limits,
                                           check_mode=self.check_mode)
        return {"changed": bool(filed), "paths": filed, "refused": refused,
                "msg": ["{}: not filed: {}".format(m, r) for m, r in sorted(refused.items())]}
