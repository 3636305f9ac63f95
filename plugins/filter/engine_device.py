"""What the controller sends to a device for a build, and what it makes of the answers."""

import json
import os
import re

from ansible.errors import AnsibleFilterError

# preflight_catalog keys that are not catalog keys: computed on the controller.
CONTROLLER_ONLY_KEYS = ("name", "pipeline_config_sha256")
# Builder exit codes (builder/cli.py): 2 = the input is wrong, 1 = TensorRT failed.
EXIT_MEANING = {1: "TensorRT failure", 2: "user error"}
TRT_ERROR_LINE = re.compile(r"\[TensorRT\] (INTERNAL ERROR|ERROR): .+|\[TRT\] \[[EF]\] .+")
USER_ERROR_LINE = re.compile(r"^error: .+")
# Signals that end a build on a Jetson for a reason outside the input (rc -N or 128+N).
SIGNAL_NAMES = {9: "SIGKILL (out of memory?)", 15: "SIGTERM", 6: "SIGABRT", 11: "SIGSEGV"}


def engine_device_files(spec):
    """Controller path -> device file name of the files a model's build reads."""
    files = {spec["graph"]: os.path.basename(spec["graph"])}
    if spec.get("pipeline_config"):
        files[spec["pipeline_config"]] = os.path.basename(spec["pipeline_config"])
    if len(set(files.values())) != len(files):
        raise AnsibleFilterError(
            "model {}: graph and pipeline_config have the same file name {!r}; rename one "
            "of them in the catalog".format(spec.get("name"), os.path.basename(spec["graph"]))
        )
    return files


def engine_files_to_push(catalog, models, device_state):
    """[{"src", "model", "name"}] of the files the device lacks or holds with other content.

    Graphs are compared by sha256 with what jetson_facts saw in each model's work dir, so an
    unchanged graph costs no transfer and no remote call. Other files (pipeline configs) are
    small and left to the copy module's own checksum comparison.
    """
    pushes = []
    device_models = (device_state or {}).get("models") or {}
    for model in models:
        spec = catalog[model]
        on_device = (device_models.get(model) or {}).get("graphs") or {}
        for src, name in sorted(engine_device_files(spec).items()):
            if src == spec["graph"] and on_device.get(name) == spec["sha256"]:
                continue
            pushes.append({"src": src, "model": model, "name": name})
    return pushes


def engine_device_catalog(spec):
    """A one-model catalog for the device, its paths relative to the model's work dir.

    ``sha256`` (preflight computed it on the controller when the catalog had no pin) stays the
    pin, so the device refuses a graph that was damaged on the way.
    """
    entry = {}
    for key, value in spec.items():
        if key in CONTROLLER_ONLY_KEYS or value is None:
            continue
        entry[key] = value
    entry["graph"] = os.path.basename(spec["graph"])
    if spec.get("pipeline_config"):
        entry["pipeline_config"] = os.path.basename(spec["pipeline_config"])
    return {"version": 1, "models": {spec["name"]: entry}}


def failure_reason(result):
    """One line saying why a builder command failed: TensorRT's first error line if any."""
    if result.get("rc") is None:
        return result.get("msg") or "the command did not run"
    stderr_lines = (result.get("stderr") or "").splitlines()
    for pattern in (TRT_ERROR_LINE, USER_ERROR_LINE):
        for line in stderr_lines:
            match = pattern.search(line)
            if match:
                return match.group(0).strip()
    rc = result["rc"]
    signal = -rc if rc < 0 else rc - 128 if rc > 128 else None
    if signal in SIGNAL_NAMES:
        return "killed by {} (rc {})".format(SIGNAL_NAMES[signal], rc)
    tail = [line for line in stderr_lines if line.strip()]
    last = tail[-1].strip() if tail else "no output on stderr"
    return "{} (rc {}): {}".format(EXIT_MEANING.get(rc, "failed"), rc, last)


def _verify_summary(result):
    """The JSON printed by ``builder verify --json``, or None when it did not succeed."""
    if result.get("rc") != 0:
        return None
    try:
        return json.loads(result.get("stdout") or "")
    except ValueError:
        return None


def engine_build_outcomes(build_results, verify_results, platform_id):
    """model -> outcome of this round, from the registered loop results of build and verify.

    An outcome is {"platform_id", "status": "built" | "on_device" | "failed", "rc", "reason",
    "seconds" (build wall time as the command module measured it), "verify"}. A model verified
    without a build this round was already on the device.
    """
    outcomes = {}
    for result in build_results:
        model = result["item"]
        ok = result.get("rc") == 0
        outcomes[model] = {
            "platform_id": platform_id,
            "status": "built" if ok else "failed",
            "rc": result.get("rc"),
            "reason": None if ok else failure_reason(result),
            "elapsed": result.get("delta"),
            "verify": None,
        }
    for result in verify_results:
        if result.get("skipped"):
            continue
        model = result["item"]
        outcome = outcomes.setdefault(model, {
            "platform_id": platform_id, "status": "on_device", "rc": 0, "reason": None,
            "elapsed": None, "verify": None,
        })
        summary = _verify_summary(result)
        if summary is None:
            outcome["status"] = "failed"
            outcome["reason"] = "verify: " + failure_reason(result)
        else:
            outcome["verify"] = summary
    return outcomes


def engine_verified(outcomes, models):
    """The models among ``models`` whose engine is built (or was on the device) and verified."""
    return [
        model for model in models
        if (outcomes.get(model) or {}).get("status") in ("built", "on_device")
        and outcomes[model].get("verify") is not None
    ]


def engine_collect_files(models, host_plan):
    """[{"model", "name"}]: the engine and the manifest of each model, to fetch."""
    return [
        {"model": model, "name": name}
        for model in models
        for name in (host_plan["models"][model]["engine"], "manifest.json")
    ]


class FilterModule:
    def filters(self):
        return {
            "engine_files_to_push": engine_files_to_push,
            "engine_device_catalog": engine_device_catalog,
            "engine_build_outcomes": engine_build_outcomes,
            "engine_verified": engine_verified,
            "engine_collect_files": engine_collect_files,
        }
