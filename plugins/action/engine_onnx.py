"""The ONNX files this run's builds need, exported and verified on the controller into the
store (controller only, once per run): controller/onnx_exports.py."""

from __future__ import annotations

from controller import onnx_exports, plan
from controller.action import ControllerAction
from controller.store import EngineStore, StoreError


class ActionModule(ControllerAction):
    ARGS = ("plan", "catalog_path")

    def decide(self, args, task_vars):
        the_plan = args["plan"]
        store = EngineStore(the_plan["store_dir"])
        files, lines = {}, []
        made = False
        for key, wanted in sorted(the_plan["exports"].items()):
            model = wanted["model"]
            try:
                made = made or onnx_exports.files_of(store, model, key) is None
                files[key] = onnx_exports.export(store, model, key, args["catalog_path"],
                                                 wanted["precision"])
                lines.append("{} ({}): {}".format(model, wanted["precision"], files[key]["onnx"]))
            except StoreError as error:
                the_plan = plan.refuse_export(the_plan, key, str(error))
                lines.append(str(error))
        return {"msg": lines, "changed": made,
                "plan": dict(the_plan, onnx_files=files)}  # shared as engine_plan_result
