"""Which of a device's files may be fetched (controller only): plain files of bounded size.

The device listed its work files (ansible.builtin.find, links not followed); a link, a
non-regular file or one above engine_fetch_max_mib is refused before any byte is fetched.
"""

from __future__ import annotations

from controller.action import ControllerAction
from controller.collect import fetchable, limit_of


class ActionModule(ControllerAction):
    ARGS = ("found", "models", "host_plan", "catalog", "max_bytes")

    def decide(self, args, task_vars):
        limits = {m: limit_of(m, args["catalog"], int(args["max_bytes"])) for m in args["models"]}
        allowed, refused = fetchable(args["found"], args["models"], args["host_plan"], limits,
                                     task_vars["inventory_hostname"])
        return {"fetch": allowed, "refused": refused,
                "msg": ["{}: refused: {}".format(m, r) for m, r in sorted(refused.items())]}
