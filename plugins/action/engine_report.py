"""The run's summary rows and the store's reports, then the run lock is released (controller
only): controller/summary.py, controller/report_md.py, controller/report_html.py. Fails the
task, and so the run, when an engine failed; the engine_summary callback prints the rows
either way."""

from __future__ import annotations

import os
from pathlib import Path

from controller import report, runlock
from controller.action import ControllerAction


class ActionModule(ControllerAction):
    ARGS = ("plan", "hosts", "active", "store_dir")

    def decide(self, args, task_vars):
        try:
            rows, written, notes = report.run_report(
                args["plan"], task_vars["hostvars"], list(args["hosts"]), set(args["active"]),
                args["store_dir"], check_mode=self.check_mode)
        finally:
            if args["store_dir"] and not self.check_mode:
                runlock.release(Path(args["store_dir"]), os.getppid())
        failed = [row for row in rows if row["status"] == "failed"]
        result = {"failed_rows": failed, "written": written, "notes": notes,
                  "changed": bool(written), "msg": "reports written: {}".format(
                      ", ".join(written) or "none (unchanged)")}
        if args["plan"]:  # no plan (the run stopped before it): no rows to show
            result["summary_rows"] = rows
        if failed:
            result.update(failed=True, msg="{} engine(s) failed: {} (reasons in the summary "
                          "below)".format(len(failed), ", ".join(
                              "{}/{}".format(row["host"], row["model"]) for row in failed)))
        return result
