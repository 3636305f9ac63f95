"""Read one device's builder records of this round (controller only): controller/outcome.py."""

from __future__ import annotations

from controller.action import ControllerAction
from controller.build_wait import wait_results
from controller.outcome import host_outcomes
from controller.plan import refute_confirmations
from controller.store import EngineStore


class ActionModule(ControllerAction):
    ARGS = ("build_started", "build_wait", "verify_results", "host_plan", "previous", "root_dir",
            "confirm", "store_dir")

    def decide(self, args, task_vars):
        outcomes = dict(args["previous"] or {})
        build_results = wait_results(args["build_started"] or [], args["build_wait"] or {})
        outcomes.update(host_outcomes(build_results, args["verify_results"] or [],
                                      args["host_plan"], task_vars["inventory_hostname"],
                                      str(args["root_dir"])))
        for model in args["confirm"] or []:  # the summary says what these verifies were
            if (outcomes.get(model) or {}).get("status") == "on_device":
                outcomes[model] = dict(outcomes[model], details=dict(
                    outcomes[model].get("details") or {}, confirms_stored_engine=True))
        # A stored engine this device could not verify for its platform leaves the store.
        for model, where in refute_confirmations(
                EngineStore(args["store_dir"]), task_vars["inventory_hostname"],
                args["confirm"] or [], outcomes).items():
            outcomes[model] = dict(outcomes[model], reason="{}; the stored engine it was to "
                                   "verify moved to {}".format(outcomes[model]["reason"], where))
        lines = ["{}: {}{}{}".format(model, o["status"],
                                     " in " + o["elapsed"] if o["elapsed"] else "",
                                     ": " + o["reason"] if o["reason"] else "")
                 for model, o in sorted(outcomes.items())]
        verified = sorted(model for model, o in outcomes.items()
                          if o["status"] in ("built", "on_device") and o["verify"] is not None)
        # Registered (engine_build_read), then kept by the role's set_fact as
        # engine_build_outcomes: never facts, which a device's later answer could replace.
        # A builder process the controller stopped waiting for (its task's timeout): the
        # device no longer answers, so the rest of its round is skipped (device_round.yml).
        silent = any(result.get("timedout") for result in build_results)
        return {"msg": lines, "verified": verified, "outcomes": outcomes, "silent": silent}
