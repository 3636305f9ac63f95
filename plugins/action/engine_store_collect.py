"""File what one host's round fetched into the store, then clear its staging area (controller
only): controller/collect.py and controller/store.py. When the round's fetch failed
(engine_round_result.fetch_failed), what arrived is filed and the step fails with its error."""

from __future__ import annotations

from controller.action import ControllerAction
from controller.collect import file_host_engines, file_timing_cache, limit_of


class ActionModule(ControllerAction):
    ARGS = ("round_result", "timing_cache")
    FROM_RUN = {"plan": "engine_plan_result", "preflight": "preflight_result",
                "previous": "engine_round_filed"}  # this action's result of the last round

    def decide(self, args, task_vars):
        host = task_vars["inventory_hostname"]
        store_dir = args["plan"]["store_dir"]
        host_plan = args["plan"]["hosts"][host]
        round_result = args["round_result"] or {}
        previous = args["previous"] or {}
        cache_path, cache_warning = None, None
        if round_result.get("timing_cache_fetch") and not self.check_mode:  # before staging goes
            cache_path, cache_warning = file_timing_cache(
                store_dir, host, host_plan["platform_id"],
                list(args["timing_cache"].get("pushed") or []))
        models = sorted({item["model"] for item in round_result.get("fetch") or []})
        max_bytes = int(self.setting(task_vars, "engine_fetch_max_mib")) * 2**20
        limits = {m: limit_of(m, args["preflight"]["catalog"], max_bytes) for m in models}
        filed, refused = file_host_engines(store_dir, host, models, host_plan, limits=limits,
                                           check_mode=self.check_mode,
                                           signing_key=self.setting(task_vars,
                                                                    "engine_signing_key"))
        # Every round of this run so far: what was filed, and what the read-back or the store
        # refused (model -> why), which the report shows as failed.
        result = {"changed": bool(filed) or cache_path is not None,
                  "filed": dict(previous.get("filed") or {}, **filed),
                  "refused": dict(previous.get("refused") or {},
                                  **(round_result.get("refused") or {}), **refused),
                  "timing_cache": cache_path,
                  "msg": ["{}: not filed: {}".format(m, r) for m, r in sorted(refused.items())]}
        if cache_warning:
            result["warnings"] = [cache_warning]
        if round_result.get("fetch_failed"):
            # The fetch stopped (plugins/action/engine_round_finish.py): what arrived is filed
            # and the staging area cleared above; the device fails, as a failed step does.
            result.update(failed=True, msg="; ".join(
                [str(round_result["fetch_failed"])] + result["msg"]))
        return result
