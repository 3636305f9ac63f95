"""Which of a device's files may be fetched (controller only): plain files of bounded size.

The device listed its work files (ansible.builtin.find, links not followed) and its timing
cache (ansible.builtin.stat); a link, a non-regular file or one above its limit is refused
before any byte is fetched.
"""

from __future__ import annotations

from controller.action import ControllerAction
from controller.collect import fetchable, limit_of, timing_cache_fetch


class ActionModule(ControllerAction):
    ARGS = ("found", "models", "host_plan", "catalog", "max_bytes", "timing_cache",
            "timing_cache_stat", "store_dir")

    def decide(self, args, task_vars):
        host = task_vars["inventory_hostname"]
        limits = {m: limit_of(m, args["catalog"], int(args["max_bytes"])) for m in args["models"]}
        allowed, refused = fetchable(args["found"], args["models"], args["host_plan"], limits,
                                     host)
        cache_dest, cache_refused = timing_cache_fetch(
            args["timing_cache_stat"], args["timing_cache"].get("device_file"), host,
            args["store_dir"])
        result = {"fetch": allowed, "refused": refused, "timing_cache_dest": cache_dest,
                  "msg": ["{}: refused: {}".format(m, r) for m, r in sorted(refused.items())]}
        if cache_refused:
            result["warnings"] = [cache_refused]
        return result
