"""One build round's work for every device (controller only): see controller/plan.py."""

from __future__ import annotations

from controller import plan
from controller.action import ControllerAction
from controller.device_work import (
    NO_TIMING_CACHE,
    build_processes,
    environment,
    files_to_push,
    model_work_dir,
    round_wait_s,
    stored_engine_files,
    timing_cache_work,
    venv_python,
    verify_argv,
)
from controller.store import EngineStore


def device_work(work, host_plan, device, catalog, *, root_dir, store, onnx_files=None):
    """The round's work of one device with what its tasks need: files, processes, commands."""
    python = venv_python(root_dir)
    timing_cache = dict(NO_TIMING_CACHE)
    if work["build"]:
        timing_cache = timing_cache_work(store.timing_caches(host_plan["platform_id"]),
                                         host_plan["platform_id"], device.get("tensorrt"),
                                         root_dir)
    processes = build_processes(
        catalog, work["build"], python=python, root_dir=root_dir,
        build_processes=host_plan.get("build_processes", "per_device"),
        options_args=plan.options_args(host_plan["options"]),
        deadline_s=host_plan["build_deadline_s"], timing_cache=timing_cache)
    verifies = {model: verify_argv(python, "{}/{}".format(
        model_work_dir(root_dir, model), host_plan["models"][model]["engine"]))
        for model in work["collect"]}
    # The export each ONNX build of this device takes (by its plan entry's export key).
    onnx_files = {model: (onnx_files or {})[entry["export_key"]]
                  for model, entry in ((m, host_plan["models"][m]) for m in work["build"])
                  if entry["engine_path"] == "onnx" and entry["export_key"] in (onnx_files or {})}
    paths = sorted({host_plan["models"][m]["engine_path"] for m in work["build"]
                    + work["confirm"]})
    return dict(work, root_dir=root_dir, processes=processes, verifies=verifies,
                wait_s=round_wait_s(processes),
                timing_cache=timing_cache,
                engine_paths=paths,
                env=environment(root_dir, host_plan["pin_sets"], paths),
                # The builder and its environment: to build, or to verify a stored engine.
                builder_needed=bool(work["build"] or work["confirm"]),
                push=files_to_push(catalog, work["build"], device["work"], onnx_files)
                + stored_engine_files(store, host_plan, work["confirm"]))


class ActionModule(ControllerAction):
    ARGS = ("plan", "round", "catalog", "hosts")

    def decide(self, args, task_vars):
        hostvars = task_vars["hostvars"]
        the_plan = args["plan"]
        outcomes = {host: hostvars[host].get("engine_build_outcomes") or {}
                    for host in args["hosts"] if host in the_plan["hosts"]}
        store = EngineStore(the_plan["store_dir"])
        works = plan.round_works(the_plan, int(args["round"]), store, outcomes)
        detailed = {}
        for host, work in works.items():
            # The builder directory the device reported, as the plan checked it
            # (controller/device.py): it goes into the device's command lines.
            root_dir = the_plan["devices"][host]["root_dir"]
            detailed[host] = device_work(work, the_plan["hosts"][host],
                                         the_plan["devices"][host], args["catalog"],
                                         root_dir=root_dir, store=store,
                                         onnx_files=the_plan.get("onnx_files"))
        # Registered as engine_round (a run_once register reaches every host), not facts:
        # with inject_facts_as_vars off facts are no variables, and a device's own answer to a
        # later task could replace a fact of its host, never a registered result.
        return {"round": int(args["round"]), "work": detailed}
