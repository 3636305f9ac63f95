"""File one host's fetched engines into the store, then clear its staging area (controller
only): controller/collect.py and controller/store.py."""

from __future__ import annotations

from controller.action import ControllerAction
from controller.collect import file_host_engines


class ActionModule(ControllerAction):
    ARGS = ("store_dir", "models", "host_plan", "max_bytes")

    def decide(self, args, task_vars):
        host = task_vars["inventory_hostname"]
        filed, refused = file_host_engines(args["store_dir"], host, args["models"],
                                           args["host_plan"], max_bytes=int(args["max_bytes"]),
                                           check_mode=self.check_mode)
        return {"changed": bool(filed), "paths": filed, "refused": refused,
                "msg": ["{}: not filed: {}".format(m, r) for m, r in sorted(refused.items())]}
