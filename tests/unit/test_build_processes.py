"""A device's models of a round in one builder process (or one each): the commands sent, and
each model's outcome read back from the process's records (controller/device_work.py,
controller/outcome.py)."""

import json
import shlex
import subprocess
from pathlib import Path

import pytest
import yaml

from builder.commands.build import model_jobs
from builder.errors import UserError
from controller.device_work import DEADLINE_EXIT, build_processes
from controller.outcome import host_outcomes
from controller.round_result import read_round
from controller.store import EngineStore

ROOT = "/opt/trt-builder"
PYTHON = ROOT + "/venv/bin/python"
CATALOG = {name: {"name": name, "graph": "/models/{}/frozen_inference_graph.pb".format(name),
                  "sha256": "a" * 64, "num_classes": 91, "engine": "TRT_{}.bin".format(name)}
           for name in ("ssd_a", "ssd_b", "ssd_c")}
MODELS = ["ssd_a", "ssd_b", "ssd_c"]
HOST_PLAN = {"models": {name: {"build_key": name[-1] * 64} for name in MODELS}}


def processes(mode):
    return build_processes(CATALOG, MODELS, python=PYTHON, root_dir=ROOT, build_processes=mode,
                           options_args=["--precision", "fp16"],
                           deadline_s=600)


def commands_of(shell):
    """The shell command's parts between '&&', each split as the shell does."""
    return [shlex.split(part) for part in shell.split(" && ")]


def test_one_process_builds_every_model_of_the_device():
    (process,) = processes("per_device")
    assert process["models"] == MODELS
    *writes, build = commands_of(process["shell"])
    written = {part[-1]: yaml.safe_load(part[2]) for part in writes}
    assert sorted(written) == ["{}/work/{}/catalog.yml".format(ROOT, m) for m in MODELS]
    for model in MODELS:
        catalog = written["{}/work/{}/catalog.yml".format(ROOT, model)]
        assert list(catalog["models"]) == [model]  # each model's own catalog, as before
        assert catalog["models"][model]["graph"] == "frozen_inference_graph.pb"
    # One at a time (a lock), stopped at its deadline: 600 s per model, three models.
    assert build[:9] == ["exec", "flock", ROOT + "/.build.lock", "timeout", "--kill-after=30",
                         "1800", PYTHON, "-m", "builder"]
    assert (process["deadline_s"], process["async_s"], process["wait_s"]) == (1800, 1835, 1910)
    assert build[build.index("--catalog") + 1] == ROOT + "/work/{model}/catalog.yml"
    assert build[build.index("--out") + 1] == ROOT + "/work/{model}"
    assert build[build.index("--") + 1:] == MODELS
    assert {"--verify", "--json", "--precision"} <= set(build)


def test_per_model_keeps_one_process_for_each_model():
    found = processes("per_model")
    assert [p["models"] for p in found] == [[m] for m in MODELS]
    assert [p["deadline_s"] for p in found] == [600, 600, 600]
    # Each waits for the lock while the ones before it build: its clocks count them.
    assert [p["async_s"] for p in found] == [635, 1265, 1895]
    for process in found:
        build = commands_of(process["shell"])[-1]
        assert build[build.index("--") + 1:] == process["models"]


def test_no_models_no_process():
    assert build_processes(CATALOG, [], python=PYTHON, root_dir=ROOT,
                           build_processes="per_device", options_args=[],
                           deadline_s=600) == []


def builder_args(models, **paths):
    values = {"catalog": "cat.yml", "out": ".", "uff": None, "onnx": None}
    values.update(paths)
    import argparse  # noqa: PLC0415
    return argparse.Namespace(models=models, **values)


def test_the_builder_gives_each_model_its_own_paths():
    jobs = model_jobs(builder_args(MODELS[:2], catalog="/w/{model}/catalog.yml",
                                   out="/w/{model}", uff="/u/{model}.uff"))
    assert [(j.model, j.catalog, j.out, j.uff, j.onnx) for j in jobs] == [
        ("ssd_a", "/w/ssd_a/catalog.yml", "/w/ssd_a", "/u/ssd_a.uff", None),
        ("ssd_b", "/w/ssd_b/catalog.yml", "/w/ssd_b", "/u/ssd_b.uff", None)]
    (single,) = model_jobs(builder_args(["ssd_a"], out="/plain"))
    assert (single.model, single.out) == ("ssd_a", "/plain")


@pytest.mark.parametrize("models, paths, message", [
    (["ssd_a", "ssd_b"], {"out": "/w"}, "--out /w: with several models it must contain {model}"),
    (["ssd_a", "ssd_b"], {"out": "/w/{model}", "onnx": "/m.onnx"},
     "--onnx /m.onnx: with several models it must contain {model}"),
    (["ssd_a", "ssd_a"], {}, "a model is named twice: ssd_a ssd_a"),
])
def test_the_builder_refuses_shared_paths_before_building(models, paths, message):
    with pytest.raises(UserError, match=message.replace("{", r"\{").replace("}", r"\}")):
        model_jobs(builder_args(models, **paths))


def record(model, status="ok", kind=None, message="", *, seconds=1.5, verify=None):
    return {"record": 1, "command": "build", "model": model, "status": status, "kind": kind,
            "message": message, "tensorrt_lines": [], "details": {}, "seconds": seconds,
            "result": {"model": model, "verify": verify or {"ok": True}} if status == "ok"
            else None}


def process_result(models, records, rc, delta="0:00:09.000000"):
    return {"item": {"models": models, "shell": "..."}, "rc": rc, "delta": delta, "stderr": "",
            "stdout": "".join(json.dumps(r) + "\n" for r in records)}


def test_each_model_of_a_process_keeps_its_own_outcome():
    records = [record("ssd_a", seconds=61.25),
               record("ssd_b", "failed", "oom", "TensorRT could not build the engine"),
               record("ssd_c", "failed", "user", "ssd_c: bad catalog")]
    outcomes = host_outcomes([process_result(MODELS, records, rc=4)], [], HOST_PLAN, "nano-1",
                             ROOT)
    assert {m: (o["status"], o["kind"]) for m, o in outcomes.items()} == {
        "ssd_a": ("built", None), "ssd_b": ("failed", "oom"), "ssd_c": ("failed", "user")}
    assert outcomes["ssd_a"]["elapsed"] == "0:01:01.250000"  # its own time, not the process's
    assert outcomes["ssd_a"]["verify"] == {"ok": True}
    assert outcomes["ssd_b"]["build_key"] == "b" * 64


def test_the_same_outcomes_as_one_process_per_model():
    records = {"ssd_a": record("ssd_a"), "ssd_b": record("ssd_b", "failed", "tensorrt", "no"),
               "ssd_c": record("ssd_c", "failed", "verify", "insane output")}
    rcs = {"ssd_a": 0, "ssd_b": 1, "ssd_c": 1}
    together = host_outcomes([process_result(MODELS, list(records.values()), rc=1)], [],
                             HOST_PLAN, "nano-1", ROOT)
    apart = host_outcomes([process_result([m], [records[m]], rcs[m]) for m in MODELS], [],
                          HOST_PLAN, "nano-1", ROOT)

    def without_time(outcomes):
        return {m: dict(o, elapsed=None) for m, o in outcomes.items()}

    assert without_time(together) == without_time(apart)
    assert together["ssd_c"]["reason"] == "verify: insane output"


def test_a_killed_process_fails_the_models_it_left_without_a_record():
    result = process_result(MODELS, [record("ssd_a")], rc=-9)
    outcomes = host_outcomes([result], [], HOST_PLAN, "nano-1", ROOT)
    assert outcomes["ssd_a"]["status"] == "built"
    for model in ("ssd_b", "ssd_c"):
        assert outcomes[model]["status"] == "failed" and outcomes[model]["kind"] == "oom"
        assert "killed by SIGKILL" in outcomes[model]["reason"]
        assert "its builder process also built" in outcomes[model]["reason"]


def test_a_refused_command_line_fails_every_model_of_the_process():
    whole = dict(record(None, "failed", "user", "--out /w: with several models it must ..."))
    outcomes = host_outcomes([process_result(MODELS, [whole], rc=2)], [], HOST_PLAN, "nano-1",
                             ROOT)
    assert {o["kind"] for o in outcomes.values()} == {"user"}
    assert set(outcomes) == set(MODELS)


def test_records_of_models_the_process_did_not_build_are_ignored():
    records = [record("ssd_a"), record("other"), record("ssd_b")]
    outcomes = host_outcomes([process_result(["ssd_a"], records, rc=0)], [], HOST_PLAN,
                             "nano-1", ROOT)
    assert list(outcomes) == ["ssd_a"]


def test_the_indented_record_of_a_one_model_builder_is_still_read():
    single = {key: value for key, value in record("ssd_a").items() if key != "model"}
    result = dict(process_result(["ssd_a"], [], rc=0, delta="0:00:03"),
                  stdout=json.dumps(single, indent=2))
    outcome = host_outcomes([result], [], HOST_PLAN, "nano-1", ROOT)["ssd_a"]
    assert (outcome["status"], outcome["elapsed"]) == ("built", "0:00:03")


def test_a_builder_that_runs_past_its_deadline_is_stopped_on_the_device(tmp_path):
    """The process's own shell, run for real with a builder that never ends (a stand-in for
    the device's Python): coreutils timeout stops it at the deadline, and each of its models
    is failed as `deadline` with the figure and the variable to raise."""
    never_ends = tmp_path / "python"
    never_ends.write_text("#!/bin/sh\nexec sleep 600\n")
    never_ends.chmod(0o755)
    root = str(tmp_path / "root")
    for model in MODELS[:2]:
        (tmp_path / "root" / "work" / model).mkdir(parents=True)
    (process,) = build_processes(CATALOG, MODELS[:2], python=str(never_ends), root_dir=root,
                                 build_processes="per_device", options_args=[],
                                 deadline_s=1)
    ran = subprocess.run(["sh", "-c", process["shell"]], capture_output=True, text=True,
                         timeout=60, check=False)
    assert ran.returncode == DEADLINE_EXIT
    result = {"item": process, "rc": ran.returncode, "stdout": ran.stdout,
              "stderr": ran.stderr, "delta": "0:00:02"}
    outcomes = host_outcomes([result], [], HOST_PLAN, "nano-1", ROOT)
    for model in MODELS[:2]:
        assert (outcomes[model]["status"], outcomes[model]["kind"]) == ("failed", "deadline")
        assert outcomes[model]["reason"].startswith(
            "the build ran past its deadline of 2 s (engine_build_deadline_s")
        assert "raise engine_build_deadline_s in its group_vars or host_vars" in \
            outcomes[model]["reason"]


def test_a_device_that_stops_answering_fails_its_models_and_is_silent(tmp_path):
    """The controller's task timeout (no rc, `timedout`): the models fail as `deadline`, the
    read-back says the device is silent (its collect is skipped)."""
    (process,) = processes("per_device")
    timed_out = {"item": process, "failed": True, "timedout": {"frame": "", "period": 1910},
                 "msg": "The shell action failed to execute in the expected time frame"}
    outcomes = host_outcomes([timed_out], [], HOST_PLAN, "nano-1", ROOT)
    assert {o["kind"] for o in outcomes.values()} == {"deadline"}
    assert outcomes["ssd_a"]["reason"].startswith(
        "the device did not answer within 1910 s, its build's deadline (1800 s, "
        "engine_build_deadline_s) and margins")
    work = {"root_dir": ROOT, "build": list(MODELS), "collect": [], "confirm": [],
            "timing_cache": {"device_file": None}}
    read = read_round(work, HOST_PLAN, host="nano-1", started=[],
                      wait={"results": [timed_out]}, verifies=[],
                      listing={"files": [{"path": ROOT + "/work/ssd_a/manifest.json"}]},
                      previous={}, catalog={}, max_bytes=1 << 20,
                      store=EngineStore(tmp_path / "store"))
    # Nothing is fetched from it, whatever it listed.
    assert read["silent"] is True and read["fetch"] == [] and read["timing_cache_fetch"] is None
    assert {o["kind"] for o in read["outcomes"].values()} == {"deadline"}


def test_a_verified_engine_already_on_the_device_is_read_back_and_fetched(tmp_path):
    """A collect-only model: its verify's record (the round work's {model, argv} as the
    loop item) makes it on_device, and the device's listing of its work dir its fetch."""
    plan = {"models": {"ssd_a": dict(HOST_PLAN["models"]["ssd_a"], engine="TRT_ssd_a.bin")}}
    work = {"root_dir": ROOT, "build": [], "collect": ["ssd_a"], "confirm": [],
            "timing_cache": {"device_file": None}}
    verify = {"item": {"model": "ssd_a", "argv": [PYTHON, "-m", "builder", "verify"]},
              "rc": 0, "delta": "0:00:01", "stdout": json.dumps(
                  {"record": 1, "status": "ok", "result": {"ok": True}})}
    files = [{"path": "{}/work/ssd_a/{}".format(ROOT, name), "isreg": True, "islnk": False,
              "size": 10} for name in ("TRT_ssd_a.bin", "manifest.json", "catalog.yml")]
    store = EngineStore(tmp_path / "store")
    read = read_round(work, plan, host="nano-1", started=[], wait={}, verifies=[verify],
                      listing={"files": files}, previous={}, catalog={}, max_bytes=1 << 20,
                      store=store)
    assert read["outcomes"]["ssd_a"]["status"] == "on_device"
    staged = str(store.staging_dir("nano-1") / "ssd_a") + "/"
    assert [(f["name"], f["src"], f["dest"]) for f in read["fetch"]] == [
        ("TRT_ssd_a.bin", ROOT + "/work/ssd_a/TRT_ssd_a.bin", staged),
        ("manifest.json", ROOT + "/work/ssd_a/manifest.json", staged)]
    # The same verify failed: nothing is fetched.
    failed = dict(verify, rc=5, stdout=json.dumps({"record": 1, "status": "failed",
                                                   "kind": "verify", "message": "bad"}))
    read = read_round(work, plan, host="nano-1", started=[], wait={}, verifies=[failed],
                      listing={"files": files}, previous={}, catalog={}, max_bytes=1 << 20,
                      store=store)
    assert read["outcomes"]["ssd_a"]["status"] == "failed" and read["fetch"] == []


def test_a_rounds_push_is_two_device_commands_around_the_transfers(tmp_path):
    """push_commands, run by a real shell around copies standing for the transfers: the
    directories exist before, and each file is the user's alone, under its name, after."""
    from controller.device_push import push_commands, pushed_file  # noqa: PLC0415

    from .push_helpers import push_here  # noqa: PLC0415

    sources = []
    for name in ("frozen_inference_graph.pb", "odd name 'quoted'.pbtxt"):
        sources.append(tmp_path / "controller" / name)
        sources[-1].parent.mkdir(exist_ok=True)
        sources[-1].write_text("content of " + name)
    root = tmp_path / "device"
    push = [pushed_file(str(src), "{}/work/m 1".format(root), src.name, src.name)
            for src in sources]
    push.append(pushed_file(str(sources[0]), str(root / "timing-cache" / "pushed"), "c.cache",
                            "cache"))
    push_here(push)
    for item in push:
        final = Path(item["path"])
        assert final.read_text() == Path(item["src"]).read_text()
        assert final.stat().st_mode & 0o777 == 0o600
        assert not Path(item["part"]).exists()
    assert (root / "work" / "m 1").stat().st_mode & 0o077 == 0
    assert push_commands([]) == {"prepare": "", "finish": ""}


def test_the_push_first_removes_the_work_of_models_no_longer_selected(tmp_path):
    """The first command of a round's push removes the work directories it is given: a real
    one with its files, and a link planted at one, which goes without what it points at.
    With nothing to push it is the only command."""
    from controller.device_push import push_commands, pushed_file  # noqa: PLC0415

    from .push_helpers import push_here  # noqa: PLC0415

    work = tmp_path / "device" / "work"
    (work / "dropped").mkdir(parents=True)
    (work / "dropped" / "TRT_dropped.bin").write_text("SIMULATED engine")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("not the device's work")
    (work / "linked").symlink_to(outside)
    source = tmp_path / "graph.pb"
    source.write_text("graph")
    push_here([pushed_file(str(source), str(work / "kept"), "graph.pb", "graph")],
              remove=[str(work / "dropped"), str(work / "linked")])
    assert sorted(p.name for p in work.iterdir()) == ["kept"]
    assert (outside / "keep.txt").read_text() == "not the device's work"
    only = push_commands([], remove=[str(work / "kept")])
    assert only["finish"] == "" and only["prepare"].startswith("rm -rf -- ")
    subprocess.run(["sh", "-c", only["prepare"]], check=True)
    assert not (work / "kept").exists()
