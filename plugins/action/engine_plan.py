"""The plan (controller only, once per run): see controller/plan.py."""

from __future__ import annotations

from controller import plan, trust
from controller.action import ControllerAction
from controller.device import device_platform
from controller.preflight import selections_from
from controller.store import EngineStore


class ActionModule(ControllerAction):
    ARGS = ("selections", "catalog", "catalog_path", "store_dir", "hosts")

    def decide(self, args, task_vars):
        hostvars = task_vars["hostvars"]
        catalog = args["catalog"]
        engines = {name: spec["engine"] for name, spec in catalog.items()}
        devices, refused = {}, {}
        for host in args["hosts"]:
            facts = hostvars[host].get("ansible_facts") or {}
            if "jetson" not in facts:
                continue  # failed before its facts: reported as such
            try:
                devices[host] = device_platform(host, facts, engines)
            except trust.Untrusted as error:
                refused[host] = str(error)
        result = plan.make_plan(selections_from(args["selections"]), devices, catalog,
                                EngineStore(args["store_dir"], read_only=self.check_mode),
                                check_mode=self.check_mode,
                                catalog_path=args["catalog_path"])
        result["refused_hosts"] = refused
        result["devices"] = {host: device.as_dict() for host, device in devices.items()}
        lines = plan.plan_lines(result) + ["{}: refused: {}".format(h, r)
                                           for h, r in sorted(refused.items())]
        if refused:
            return dict(result, failed=True, msg=lines + result["notes"])
        self.say(lines + result["notes"])
        # The plan is the result: registered as engine_plan_result (playbooks/tasks/plan.yml).
        return result
