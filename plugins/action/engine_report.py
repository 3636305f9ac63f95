"""The run's summary rows and the store's reports, then the run lock is released (controller
only): controller/summary.py, controller/report_md.py, controller/report_html.py."""

from __future__ import annotations

import os
from pathlib import Path

from controller import report, runlock
from controller.action import ControllerAction


class ActionModule(ControllerAction):
    ARGS = ("plan", "hosts", "active", "store_dir", "documents")

    def decide(self, args, task_vars):
        try:
            rows, written, notes = report.run_report(
                args["plan"], task_vars["hostvars"], list(args["hosts"]), set(args["active"]),
                args["store_dir"], documents=list(args["documents"]), check_mode=self.check_mode)
        finally:
            if args["store_dir"] and not self.check_mode:
                runlock.release(Path(args["store_dir"]), os.getppid())
        failed = [row for row in rows if row["status"] == "failed"]
        return {"rows": rows, "failed_rows": failed, "written": written, "msg": notes,
                "changed": bool(written)}
