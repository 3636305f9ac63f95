"""Read one device's round back (controller only): controller/round_result.py."""

from __future__ import annotations

from controller.action import ControllerAction
from controller.round_result import previous_outcomes, read_round
from controller.store import EngineStore


class ActionModule(ControllerAction):
    ARGS = ("work", "started", "wait", "verifies", "listing")
    FROM_RUN = {"plan": "engine_plan_result", "preflight": "preflight_result",
                "previous": "engine_round_result"}  # this action's result of the last round

    def decide(self, args, task_vars):
        host = task_vars["inventory_hostname"]
        # Registered (engine_round_result), never facts: a device's later answer could
        # replace a fact of its host, not a registered result.
        return read_round(
            args["work"], args["plan"]["hosts"][host], host=host,
            started=list(args["started"] or []), wait=dict(args["wait"] or {}),
            verifies=list(args["verifies"] or []), listing=dict(args["listing"] or {}),
            previous=previous_outcomes(args["previous"]),
            catalog=args["preflight"]["catalog"],
            max_bytes=int(self.setting(task_vars, "engine_fetch_max_mib")) * 2**20,
            store=EngineStore(args["plan"]["store_dir"]))
