"""Which of a device's files may be fetched (controller only): plain files of bounded size.

The device listed its work files (ansible.builtin.find, links not followed); a link, a
non-regular file or one above engine_fetch_max_mib is refused before any byte is fetched.
"""

from __future__ import annotations

from controller.action import ControllerAction
from controller.collect import fetchable


class ActionModule(ControllerAction):
    ARGS = ("found", "models", "host_plan", "max_bytes")

    def decide(self, args, task_vars):
        allowed, refused = fetchable(args["found"], args["models"], args["host_plan"],
                                     int(args["max_bytes"]), task_vars["inventory_hostname"])
        return {"fetch": allowed, "refused": refused,
                "msg": ["{}: refused: {}".format(m, r) for m, r in sorted(refused.items())]}
