"""The run's summary rows and the store's reports, then the run lock is released (controller
only): controller/report.py (finish_run). Fails the task, and so the run, when an engine
failed; the engine_summary callback prints the rows either way. A run with nothing pending, or
in check mode, does not reach it: the plan step finishes such a run itself (engine_plan.py)."""

from __future__ import annotations

from controller import report
from controller.action import ControllerAction


class ActionModule(ControllerAction):
    FROM_RUN = {"plan": "engine_plan_result", "preflight": "preflight_result",
                "hosts": "ansible_play_hosts_all", "active": "ansible_play_hosts"}

    def decide(self, args, task_vars):
        # No plan, or a plan that refused a host (the run stopped there): the summary has no
        # rows. The store is the preflight's, or, when the preflight did not get that far
        # (nothing to release then), the run's setting.
        plan = args["plan"] if args["plan"] and not args["plan"].get("failed") else {}
        store_dir = (plan.get("store_dir") or (args["preflight"] or {}).get("store_dir")
                     or self.setting(task_vars, "engine_store_dir"))
        return report.finish_run(plan, task_vars["hostvars"], list(args["hosts"]),
                                 set(args["active"]), store_dir, check_mode=self.check_mode)
