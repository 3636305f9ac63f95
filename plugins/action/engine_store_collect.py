"""File one host's fetched engines into the store, then clear its staging area (controller
only): controller/collect.py and controller/store.py."""

from __future__ import annotations

from controller.action import ControllerAction
from controller.collect import file_host_engines, file_timing_cache, limit_of


class ActionModule(ControllerAction):
    ARGS = ("store_dir", "models", "host_plan", "catalog", "max_bytes", "timing_cache",
            "timing_cache_fetched")

    def decide(self, args, task_vars):
        host = task_vars["inventory_hostname"]
        cache_path, cache_warning = None, None
        if args["timing_cache_fetched"] and not self.check_mode:  # before staging is removed
            cache_path, cache_warning = file_timing_cache(
                args["store_dir"], host, args["host_plan"]["platform_id"],
                list(args["timing_cache"].get("pushed") or []))
        limits = {m: limit_of(m, args["catalog"], int(args["max_bytes"])) for m in args["models"]}
        filed, refused = file_host_engines(args["store_dir"], host, args["models"],
                                           args["host_plan"], limits=limits,
                                           check_mode=self.check_mode,
                                           signing_key=self.setting(task_vars,
                                                                    "engine_signing_key"))
        result = {"changed": bool(filed) or cache_path is not None, "paths": filed,
                  "refused": refused, "timing_cache": cache_path,
                  "msg": ["{}: not filed: {}".format(m, r) for m, r in sorted(refused.items())]}
        if cache_warning:
            result["warnings"] = [cache_warning]
        return result
