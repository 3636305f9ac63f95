"""What the controller sends to a device for its builds: files, one-model catalogs, processes."""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path
from typing import Any

import yaml

from builder import layout
from builder.atomic import file_sha256
from builder.errors import UserError
from builder.platform.detect import TIMING_CACHE_FROM
from builder.trt.adapter import parse_version

from .device_push import push_commands, pushed_file
from .pin_sets import env_marker, the_table
from .selection import EngineOptions
from .trust import Untrusted

# preflight catalog keys that are not catalog keys: computed on the controller
# (uff_refusal: controller/preflight.py's graph check).
CONTROLLER_ONLY_KEYS = ("name", "pipeline_config_sha256", "uff_refusal")
NO_TIMING_CACHE: dict[str, Any] = {"device_file": None, "pushed_dir": None, "push": [],
                                   "pushed": []}
# A build's deadline (the host plan's build_deadline_s per model) on three clocks. On the
# device, coreutils `timeout` stops the builder at the deadline (SIGTERM, SIGKILL after
# KILL_GRACE_S) and exits DEADLINE_EXIT; Ansible's async job is a backstop ASYNC_MARGIN_S
# later. On the controller the task stops waiting ANSWER_MARGIN_S after that: a device whose
# sshd no longer answers never reports the end of its job, and ssh notices a silent
# connection only after ServerAliveInterval x ServerAliveCountMax (ansible.cfg: 60 s).
DEADLINE_EXIT = 124
KILL_GRACE_S = 30
ASYNC_MARGIN_S = 5
ANSWER_MARGIN_S = 75
# How long one poll may hang before the wait is cut short on the controller (build_wait.within,
# at the round's wait_s): ssh gives up on a silent connection after 60 s, or on a silent
# banner after its ConnectTimeout (ansible.cfg timeout) for each of its retries.
POLL_HANG_S = 120


def round_wait_s(processes: list[dict[str, Any]]) -> int:
    """The longest the controller waits for a device's builds of one round (0: none)."""
    return max((process["wait_s"] for process in processes), default=0) + POLL_HANG_S


def environment(root_dir: str, pin_sets: dict[str, str], engine_paths: list[str], *,
                device: dict[str, Any], swap_mib: int) -> dict[str, Any]:
    """What the jetson_env role installs for a device's round: the builder directory (as the
    device reported it), its venv and the venv's python, the pinned environment, whether the
    round builds from UFF, and the marker the venv then holds (``marker``,
    pin_sets.env_marker: ``device``'s tensorrt_full and python, the plan's ``swap_mib``).
    The ONNX path's pin set when every build of the round is from ONNX, else the UFF path's
    (the plan chose both: HostPlan.pin_sets). A UFF round needs JetPack's uff and
    graphsurgeon, which the plan gave it only where the device's TensorRT has a UFF parser
    (builder/trt/enginepath.py): the role checks them when ``uff`` is true, and knows no
    TensorRT generation itself."""
    path = "onnx" if engine_paths and "uff" not in engine_paths else "uff"
    pin_set = pin_sets.get(path, "")
    marker = env_marker(the_table(), pin_set, tensorrt_full=device.get("tensorrt_full"),
                        python=device.get("python"), swap_mib=swap_mib) if pin_set else None
    return {"root_dir": root_dir, "venv": layout.venv_dir(root_dir),
            "python": layout.venv_python(root_dir), "pin_set": pin_set,
            "uff": path == "uff", "marker": marker}


def model_work_dir(root_dir: str, model: str) -> str:
    """A model's work directory on the device (builder/layout.py, which the facts module walks
    too)."""
    return str(layout.model_work_dir(root_dir, model))


def device_files(spec: dict[str, Any]) -> dict[str, str]:
    """Controller path -> device file name of the files a model's build reads."""
    files = {spec["graph"]: os.path.basename(spec["graph"])}
    if spec.get("pipeline_config"):
        files[spec["pipeline_config"]] = os.path.basename(spec["pipeline_config"])
    if len(set(files.values())) != len(files):
        raise Untrusted("model {}: graph and pipeline_config have the same file name {!r}; "
                        "rename one of them in the catalog".format(
                            spec.get("name"), os.path.basename(spec["graph"])))
    return files


def files_to_push(catalog: dict[str, Any], models: list[str], work: dict[str, Any],
                  onnx_files: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """[{"src", "model", "name"}] of the files the device lacks or holds with other content.

    Graphs are compared by sha256 with what jetson_facts saw in each model's work dir, so an
    unchanged graph costs no transfer and no remote call. Other files (pipeline configs) are
    small and left to the copy module's own checksum comparison.
    """
    pushes = []
    for model in models:
        spec = catalog[model]
        on_device = (work.get(model) or {}).get("graphs") or {}
        for src, name in sorted(device_files(spec).items()):
            if src == spec["graph"] and on_device.get(name) == spec["sha256"]:
                continue
            pushes.append({"src": src, "model": model, "name": name})
        exported = (onnx_files or {}).get(model)
        if exported:  # the ONNX path: the controller's export and its report
            name = os.path.basename(exported["onnx"])
            if on_device.get(name) != file_sha256(exported["onnx"]):
                pushes.append({"src": exported["onnx"], "model": model, "name": name})
            pushes.append({"src": exported["report"], "model": model,
                           "name": os.path.basename(exported["report"])})
    return pushes


def stored_engine_files(store: Any, host_plan: dict[str, Any], models: list[str]
                        ) -> list[dict[str, Any]]:
    """[{"src", "model", "name"}]: the store's engine and manifest of each model a device
    verifies for its platform (a second device's confirmation, controller/plan.py)."""
    pushes = []
    for model in models:
        entry = store.lookup(host_plan["models"][model]["build_key"])
        if entry is not None:
            pushes += [{"src": str(path), "model": model, "name": path.name}
                       for path in (entry.engine_path, entry.manifest_path)]
    return pushes


def device_catalog_text(spec: dict[str, Any]) -> str:
    """A one-model catalog (YAML) for the device, its paths relative to the model's work dir.

    ``sha256`` (computed on the controller when the catalog had no pin) stays the pin, so the
    device refuses a graph that was damaged on the way.
    """
    entry = {key: value for key, value in spec.items()
             if key not in CONTROLLER_ONLY_KEYS and value is not None}
    entry["graph"] = os.path.basename(spec["graph"])
    if spec.get("pipeline_config"):
        entry["pipeline_config"] = os.path.basename(spec["pipeline_config"])
    return yaml.safe_dump({"version": 1, "models": {spec["name"]: entry}}, sort_keys=True)


def build_argv(python: str, models: list[str], catalog_file: str, out_dir: str, *,
               options_args: list[str]) -> list[str]:
    """The device command of one builder process; options before ``--``, the models after it.

    Several models: ``catalog_file`` and ``out_dir`` name each model's own with ``{model}``
    (the builder replaces it, builder/commands/build.py)."""
    return [python, "-m", "builder", "build", "--catalog", catalog_file, "--out", out_dir,
            "--verify", "--json", *options_args, "--", *models]


def process_groups(models: list[str], build_processes: str) -> list[list[str]]:
    """The models of each builder process: all in one (per_device), or one each (per_model)."""
    if not models:
        return []
    if build_processes == "per_model":
        return [[model] for model in models]
    return [list(models)]


def timing_cache_work(store_caches: list[Path], platform_id: str, tensorrt: str | None,
                      root_dir: str) -> dict[str, Any]:
    """Where a device's builds keep the platform's timing cache and what is pushed for them.

    ``store_caches``: the store's cache files of the platform (all pushed: the builder combines
    them into the device's own, ``<root>/timing-cache/<platform_id>.cache``, which the
    controller fetches back). NO_TIMING_CACHE before TensorRT 8.0 or when the version is
    unknown.
    """
    try:
        version = parse_version(tensorrt) if tensorrt else None
    except UserError:
        version = None
    if version is None or version[:2] < TIMING_CACHE_FROM:
        return dict(NO_TIMING_CACHE)
    directory = str(layout.timing_cache_dir(root_dir))
    names = [os.path.basename(str(path)) for path in store_caches]
    return {"device_file": "{}/{}.cache".format(directory, platform_id),
            "pushed_dir": directory + "/pushed",
            "push": [{"src": str(path), "name": name} for path, name in zip(store_caches, names)],
            "pushed": names}


def timing_cache_args(timing_cache: dict[str, Any]) -> list[str]:
    """The builder's options for a timing cache of ``timing_cache_work`` (none without one)."""
    if not timing_cache["device_file"]:
        return []
    args = ["--timing-cache", timing_cache["device_file"]]
    for name in timing_cache["pushed"]:
        args += ["--merge-timing-cache", "{}/{}".format(timing_cache["pushed_dir"], name)]
    return args


def timing_cache_prepare(timing_cache: dict[str, Any]) -> list[str]:
    """Shell commands before a build with a timing cache: the builder wants the cache's
    directory to exist, and the caches pushed in earlier rounds or runs, which this build does
    not merge (the store replaced them with the combined one), leave the device."""
    pushed_dir = shlex.quote(timing_cache["pushed_dir"])
    keep = "".join(" ! -name " + shlex.quote(name) for name in timing_cache["pushed"])
    return ["mkdir -p " + pushed_dir,
            "find {} -maxdepth 1 -type f{} -delete".format(pushed_dir, keep)]


def deadlines(deadline_s: int, queued_s: int = 0) -> dict[str, int]:
    """A builder process's clocks: its deadline on the device, its async job's limit, and how
    long the controller waits for the device's answer. ``queued_s``: the deadlines of the
    device's processes before it in this round (they run one at a time, under a lock)."""
    async_s = queued_s + deadline_s + KILL_GRACE_S + ASYNC_MARGIN_S
    return {"deadline_s": deadline_s, "async_s": async_s, "wait_s": async_s + ANSWER_MARGIN_S}


def build_processes(catalog: dict[str, Any], models: list[str], *, python: str, root_dir: str,
                    build_processes: str, options_args: list[str],
                    deadline_s: int, timing_cache: dict[str, Any] = NO_TIMING_CACHE,
                    builder_from: str | None = None) -> list[dict[str, Any]]:
    """[{"models", "label", "shell", "deadline_s", "async_s", "wait_s"}]: each builder process
    of a device's round, its shell command and its clocks (``deadline_s`` per model).

    The command writes each model's one-model catalog into the model's work directory (the
    task runs it under umask 077: a catalog names the team's graphs), then execs the builder
    under `timeout`, whose records (one per model, JSON lines) the controller reads back
    (controller/outcome.py). ``builder_from``: the pushed builder wheel on the device, when the
    venv does not hold the run's builder yet: the processes import the builder from it (pure
    Python, so zipimport runs it) and start without waiting for its install.
    """
    processes = []
    prepare = []
    queued_s = 0
    if timing_cache["device_file"]:
        prepare += timing_cache_prepare(timing_cache)
    for group in process_groups(models, build_processes):
        writes = ["printf '%s' {} > {}".format(
            shlex.quote(device_catalog_text(catalog[model])),
            shlex.quote(model_work_dir(root_dir, model) + "/catalog.yml")) for model in group]
        # {model}: the builder puts each model's name there (build_argv).
        each_work_dir = model_work_dir(root_dir, "{model}")
        argv = build_argv(python, group, each_work_dir + "/catalog.yml", each_work_dir,
                          options_args=options_args + timing_cache_args(timing_cache))
        if builder_from is not None:
            argv = ["env", "PYTHONPATH=" + builder_from, *argv]
        clocks = deadlines(deadline_s * len(group), queued_s)
        queued_s += clocks["deadline_s"] + KILL_GRACE_S
        # Started together (poll 0), the processes build one at a time: flock on the
        # builder's directory; `timeout` counts from when a process holds it.
        serial = ["flock", str(layout.build_lock(root_dir))]
        stop = ["timeout", "--kill-after={}".format(KILL_GRACE_S), str(clocks["deadline_s"])]
        processes.append(dict(clocks, models=group, label=", ".join(group), shell=" && ".join(
            [*prepare, *writes, "exec " + shlex.join(serial + stop + argv)])))
    return processes


def verify_argv(python: str, engine_path: str) -> list[str]:
    return [python, "-m", "builder", "verify", "--json", "--", engine_path]


def pushed_wheel(wheel: Path, root_dir: str) -> str:
    """Where the builder wheel lands on the device."""
    return "{}/{}".format(layout.wheels_dir(root_dir), wheel.name)


def builder_install(wheel: Path, root_dir: str, marker: dict[str, str]) -> list[str]:
    """The command that installs the pushed builder wheel into the venv, then writes the
    builder marker (builder/layout.py) that the facts read back. The old marker goes first: an
    install that fails midway leaves none, and the next run installs again."""
    marker_path = layout.builder_marker(root_dir)
    script = ('set -e; rm -f "$4"; "$1" -m pip install --quiet --no-deps --no-index '
              '--force-reinstall "$2"; printf \'%s\\n\' "$3" > "$4.part"; mv -f "$4.part" "$4"')
    return ["sh", "-c", script, "sh", layout.venv_python(root_dir), pushed_wheel(wheel, root_dir),
            json.dumps(marker, sort_keys=True), marker_path]


def needs_builder(work: dict[str, Any]) -> bool:
    """Whether a device's round (the plan's round work) runs the builder on it (a build or a
    confirming verify), or readies it for the next round's (prepare)."""
    return bool(work["build"] or work["confirm"] or work["prepare"])


def builder_state(device: dict[str, Any], marker: dict[str, str],
                  previous: dict[str, Any] | None) -> dict[str, Any]:
    """What a device's venv holds before a round: ``marker`` (the run's builder marker),
    ``current`` (the venv holds the run's builder: its facts said so, the marker its last
    install wrote, or an earlier round of this run installed it) and ``env_ensured`` (the
    environment, as ``environment`` gives it, that an earlier round of this run ensured, or
    None). ``previous``: the device's registered round result (controller/round_result.py
    finish_round), None before its first round."""
    earlier = previous or {}
    return {"marker": marker,
            "current": device.get("builder_marker") == marker
            or bool(earlier.get("builder_current")),
            "env_ensured": earlier.get("env_ensured")}


def round_work(work: dict[str, Any], host_plan: dict[str, Any], device: dict[str, Any],
               catalog: dict[str, Any], *, store: Any, wheel: Path | None,
               builder: dict[str, Any], onnx_files: dict[str, Any] | None = None
               ) -> dict[str, Any]:
    """One device's round as the roles carry it out: every path, file and command they use.

    ``work``: the plan's round work ({build, collect, confirm, remove, prepare}: model names;
    prepare: the environment and builder of the next round's models, controller/plan.py).
    ``device``: the plan's checked device (its root_dir, tensorrt, work dirs). ``wheel``: the
    builder wheel on the controller (None: no device needs it this round). ``builder``: what
    the venv holds already (``builder_state``).
    The roles loop over these items and spell no path or version themselves:
    - env: root_dir, venv python, pin set and marker (jetson_env); env_needed: whether the
      round includes jetson_env (it needs the builder, the device's marker is not this
      environment's, and no earlier round of the run ensured this same environment: a later
      round may need the other engine path's pin set);
      env_ensured: the environment ensured once the round ran (None: none this run);
    - install: the builder's install command, when the round needs the builder and the venv
      does not hold it (the wheel is one of the pushed files). The finish step runs it first,
      while the round's builds run: they import the builder from the pushed wheel, so neither
      they nor other devices' builds start later for the install;
      builder_current: whether the venv holds the run's builder once the round's install ran;
    - push: every file the round needs on the device, with its destination directory;
      push_commands: the device commands around its transfers, whose first also removes the
      work directories of models the device no longer selects (controller/device_push.py);
    - processes: the builder processes and their clocks; verifies: {model, argv} of engines
      already on the device;
    - listing: what the device lists after its builds (the models' work directories, and the
      timing cache's), read back with the builder records (controller/round_result.py).
    """
    root_dir = device["root_dir"]
    python = str(layout.venv_python(root_dir))
    builder_needed = needs_builder(work)
    install, builder_from, wheel_push = None, None, []
    if builder_needed and not builder["current"]:
        if wheel is None:
            raise ValueError("round_work: the round needs the builder wheel, none was given")
        install = builder_install(wheel, root_dir, builder["marker"])
        builder_from = pushed_wheel(wheel, root_dir)
        wheel_push = [pushed_file(str(wheel), layout.wheels_dir(root_dir), wheel.name,
                                  "builder wheel")]
    timing_cache = dict(NO_TIMING_CACHE)
    if work["build"]:
        timing_cache = timing_cache_work(store.timing_caches(host_plan["platform_id"]),
                                         host_plan["platform_id"], device.get("tensorrt"),
                                         root_dir)
    processes = build_processes(
        catalog, work["build"], python=python, root_dir=root_dir,
        build_processes=host_plan.get("build_processes", "per_device"),
        options_args=EngineOptions(**host_plan["options"]).builder_args(),
        deadline_s=host_plan["build_deadline_s"], timing_cache=timing_cache,
        builder_from=builder_from)
    models = host_plan["models"]
    verifies = [{"model": model, "argv": verify_argv(python, "{}/{}".format(
        model_work_dir(root_dir, model), models[model]["engine"]))}
        for model in work["collect"]]
    # The export each ONNX build of this device takes (by its plan entry's export key).
    exports = {model: (onnx_files or {})[models[model]["export_key"]]
               for model in work["build"] if models[model]["engine_path"] == "onnx"
               and models[model]["export_key"] in (onnx_files or {})}
    paths = sorted({models[m]["engine_path"]
                    for m in work["build"] + work["confirm"] + work["prepare"]})
    files = files_to_push(catalog, work["build"], device["work"], exports) \
        + stored_engine_files(store, host_plan, work["confirm"])
    push = [pushed_file(item["src"], model_work_dir(root_dir, item["model"]), item["name"],
                        "{}/{}".format(item["model"], item["name"])) for item in files]
    push += wheel_push
    push += [pushed_file(item["src"], timing_cache["pushed_dir"], item["name"],
                         "timing cache " + item["name"]) for item in timing_cache["push"]]
    listed = work["build"] + work["collect"]
    listing = [model_work_dir(root_dir, model) for model in listed]
    if timing_cache["device_file"]:
        listing.append(os.path.dirname(timing_cache["device_file"]))
    env = environment(root_dir, host_plan["pin_sets"], paths, device=device,
                      swap_mib=host_plan["swap_mib"])
    # The role is included only where the venv lacks this environment: the device's marker (as
    # its facts read it, unless an earlier round of this run installed another) is not it.
    env_held = env["marker"] is not None and builder["env_ensured"] is None \
        and device.get("env_marker") == env["marker"]
    # The plan's model lists the roles read; its ``remove`` goes into push_commands only.
    planned = {step: models_ for step, models_ in work.items() if step != "remove"}
    return dict(planned, root_dir=root_dir, env=env,
                env_needed=builder_needed and builder["env_ensured"] != env and not env_held,
                env_ensured=env if builder_needed else builder["env_ensured"],
                install=install,
                builder_current=builder["current"] or install is not None,
                push=push, push_commands=push_commands(push, remove=[
                    model_work_dir(root_dir, model) for model in work["remove"]]),
                processes=processes,
                wait_s=round_wait_s(processes),
                verifies=verifies, listing=listing, timing_cache=timing_cache)
