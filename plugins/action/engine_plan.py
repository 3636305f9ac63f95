"""The plan (controller only, once per run): see controller/plan.py.

A run with nothing pending (a no-op rerun) or in check mode ends with the plan: this step then
also finishes the run (controller/report.py finish_run: the summary rows, the store's reports,
the run lock released) and says so with ``reported``, so that the play ends without one more
controller step (bench/README.md: what a no-op costs)."""

from __future__ import annotations

import os
from pathlib import Path

from controller import pin_sets, plan, report, runlock, tags, trust
from controller.action import ControllerAction
from controller.device import device_platform
from controller.preflight import selections_from
from controller.store import EngineStore


class ActionModule(ControllerAction):
    FROM_RUN = {"preflight": "preflight_result", "hosts": "ansible_play_hosts",
                "hosts_all": "ansible_play_hosts_all"}

    def decide(self, args, task_vars):
        hostvars = task_vars["hostvars"]
        checked = args["preflight"]
        catalog = checked["catalog"]
        engines = {name: spec["engine"] for name, spec in catalog.items()}
        devices, refused, named_pin_sets = {}, {}, {}
        for host in args["hosts"]:
            # The device's answer: one registered result (playbooks/tasks/facts.yml), never
            # facts; checked field by field (controller/device.py).
            host_vars = hostvars[host]  # each lookup prepares the host's variables anew
            answer = host_vars.get("jetson_device") or {}
            if answer.get("failed") or "jetson" not in answer:
                continue  # failed before its facts: reported as such
            try:
                devices[host] = device_platform(host, answer, engines)
            except trust.Untrusted as error:
                refused[host] = str(error)
            # The pin sets the inventory names for this host (the role's inputs), if any.
            named_pin_sets[host] = {path: str(host_vars.get(variable) or "")
                                    for path, variable in pin_sets.VARIABLES.items()}
        result = plan.make_plan(selections_from(checked["selections"]), devices, catalog,
                                EngineStore(checked["store_dir"], read_only=self.check_mode),
                                check_mode=self.check_mode,
                                catalog_path=checked["catalog_file"],
                                named_pin_sets=named_pin_sets)
        result["refused_hosts"] = refused
        result["devices"] = {host: device.as_dict() for host, device in devices.items()}
        # Always set, so that the play's end_play condition needs no default filter: the main
        # process would import every filter plugin for it (playbooks/build_engines.yml).
        result["reported"] = False
        lines = plan.plan_lines(result) + ["{}: refused: {}".format(h, r)
                                           for h, r in sorted(refused.items())]
        if refused:
            return dict(result, failed=True, msg=lines + result["notes"])
        self.say(lines + result["notes"])
        # The plan is the result: registered as engine_plan_result (playbooks/tasks/plan.yml).
        # Which device steps the run's --tags / --skip-tags let run (the rounds read it).
        result["steps"] = tags.device_steps(task_vars.get("ansible_run_tags"),
                                            task_vars.get("ansible_skip_tags"))
        steps = any(result["steps"].values())
        if result["pending"] == 0 or self.check_mode or not steps:
            # Work pending that the run's --tags / --skip-tags leave out: the run ends with its
            # plan, as in check mode (nothing recorded), and the store's run lock is released.
            as_planned = self.check_mode or result["pending"] > 0
            if not steps and result["pending"] > 0:
                self.say(["--tags / --skip-tags select no device step ({}): the run ends with "
                          "the plan, nothing is built".format(", ".join(tags.DEVICE_STEPS))])
            finished = report.finish_run(result, hostvars, list(args["hosts_all"]),
                                         set(args["hosts"]), checked["store_dir"],
                                         check_mode=as_planned)
            if as_planned and not self.check_mode:
                runlock.release(Path(checked["store_dir"]), os.getppid())
            # The report's keys beside the plan's: the summary rows for the callback, what was
            # written (changed), failed with its message when an engine failed.
            report_notes = finished.pop("notes")
            result.update(finished, reported=True, report_notes=report_notes)
        return result
