"""One build round's work for every device (controller only): controller/plan.py decides who
does what, controller/device_work.py spells it out for the roles."""

from __future__ import annotations

from ansible import context

from controller import plan
from controller.action import ControllerAction
from controller.builder_wheel import ensure_wheel, installed_marker
from controller.confirm_wait import awaited
from controller.device_work import builder_state, needs_builder, round_work
from controller.round_result import REGISTERED, previous_outcomes
from controller.store import EngineStore


class ActionModule(ControllerAction):
    ARGS = ("plan", "round", "catalog", "hosts")

    def decide(self, args, task_vars):
        hostvars = task_vars["hostvars"]
        the_plan = args["plan"]
        outcomes = {host: previous_outcomes(hostvars[host].get(REGISTERED))
                    for host in args["hosts"] if host in the_plan["hosts"]}
        store = EngineStore(the_plan["store_dir"])
        store.clear_round_signs()  # no device's round began or ended yet
        works = plan.round_works(the_plan, int(args["round"]), store, outcomes)
        marker = installed_marker(the_plan["builder_digest"], the_plan["builder_version"])
        builder = {host: builder_state(the_plan["devices"][host], marker,
                                       hostvars[host].get(REGISTERED))
                   for host in works}
        # Built once per builder source, when a device of this round must install it.
        wheel = None
        if any(needs_builder(work) and not builder[host]["current"]
               for host, work in works.items()):
            wheel = ensure_wheel(the_plan["builder_digest"], the_plan["builder_version"])
        # The device's root_dir is the one it reported, as the plan checked it
        # (controller/device.py): it goes into the device's command lines.
        detailed = {host: round_work(work, the_plan["hosts"][host], the_plan["devices"][host],
                                     args["catalog"], store=store, wheel=wheel,
                                     builder=builder[host],
                                     onnx_files=the_plan.get("onnx_files"))
                    for host, work in works.items()}
        # A device readied for round 1 confirms in this round what its build key's first
        # device files meanwhile (controller/confirm_wait.py).
        waits = awaited(detailed, the_plan["hosts"], forks=int(context.CLIARGS.get("forks") or 0))
        for host, host_waits in waits.items():
            detailed[host]["awaits"] = host_waits
        # Registered as engine_round (a run_once register reaches every host), not facts:
        # with inject_facts_as_vars off facts are no variables, and a device's own answer to a
        # later task could replace a fact of its host, never a registered result.
        return {"round": int(args["round"]), "next_round": int(args["round"]) + 1,
                "work": detailed}
