"""Every builder command ends with one JSON record (builder/cli.py): status, kind, message,
TensorRT's lines; the exit code is decided there. One test per kind of failure."""

import json
import sys
import types

import pytest

from builder import cli
from builder.errors import DiskSpaceError, UserError, VerifyFailed
from builder.trt.adapter import TensorRTFailure
from controller.outcome import MAX_MESSAGE, outcome_of
from controller.round_result import install_problem


def fake_command(monkeypatch, raises=None, prints=None):
    """A 'fake' subcommand (this test's own), ending as told."""
    module = types.ModuleType("builder.commands.fake_for_test")

    def run(args):
        if prints is not None:
            print(json.dumps(prints))
        if raises is not None:
            raise raises
        return 0

    def add_parser(subparsers):
        parser = subparsers.add_parser("fake")
        parser.add_argument("--json", action="store_true")
        parser.set_defaults(run=run)

    module.add_parser, module.run = add_parser, run
    monkeypatch.setitem(sys.modules, "builder.commands.fake_for_test", module)
    monkeypatch.setattr(cli, "SUBCOMMANDS", (("fake", "commands.fake_for_test"),))


ENDINGS = [
    (None, None, 0),
    (UserError("catalog.yml: key 'x': bad. Fix it"), "user", 2),
    (DiskSpaceError("no room in /opt", "/opt", 10, 20), "disk", 3),
    (TensorRTFailure("TensorRT could not build", ["[TRT] [E] 4: invalid graph"]), "tensorrt", 1),
    (TensorRTFailure("TensorRT could not build", ["Error Code 1: Cuda Runtime (out of memory)"]),
     "oom", 4),
    (VerifyFailed("insane output: no detection"), "verify", 1),
    (MemoryError(), "oom", 4),
    (OSError(28, "No space left on device", "/opt/x"), "disk", 3),
    (ZeroDivisionError("division by zero"), "bug", 70),
]


@pytest.mark.parametrize("error, kind, code", ENDINGS)
def test_one_record_for_every_ending(monkeypatch, capsys, error, kind, code):
    fake_command(monkeypatch, raises=error, prints={"partial": True})
    assert cli.main(["fake", "--json"]) == code
    captured = capsys.readouterr()
    record = json.loads(captured.out)
    assert record["record"] == 1 and record["command"] == "fake"
    assert record["status"] == ("ok" if error is None else "failed")
    assert record["kind"] == kind
    assert record["result"] == {"partial": True}
    if kind == "bug":
        assert "ZeroDivisionError: division by zero" in record["message"]
        assert "Traceback" in captured.err  # for the bug report, on stderr only
    if isinstance(error, TensorRTFailure):
        assert record["tensorrt_lines"] == error.lines
    if kind == "disk" and isinstance(error, DiskSpaceError):
        assert record["details"] == {"directory": "/opt", "free_bytes": 10, "needed_bytes": 20}


@pytest.mark.parametrize("error, kind, code", ENDINGS)
def test_the_controller_judges_each_ending_as_the_builder_decided_it(monkeypatch, capsys, error,
                                                                       kind, code):
    """From the record, and from the exit code alone when the record was lost (one table of
    exit codes: builder/cli.py EXIT_CODES, which controller/outcome.py imports). Exit 1 without
    a record is Python's own for a crash before the builder started: a bug."""
    fake_command(monkeypatch, raises=error)
    rc = cli.main(["fake", "--json"])
    result = {"rc": rc, "stdout": capsys.readouterr().out, "stderr": "error: x"}
    outcome = outcome_of("m1", "k", result, built=True)
    assert (outcome.kind, rc) == (kind, code)
    lost = outcome_of("m1", "k", dict(result, stdout=""), built=True)
    assert lost.kind == ("bug" if code == 1 else kind if code else "bug")


def test_the_controller_reads_the_record_not_stderr():
    record = {"record": 1, "status": "failed", "kind": "tensorrt", "message": "could not build",
              "tensorrt_lines": ["[TRT] [E] bad"], "details": {}, "result": None}
    result = {"rc": 1, "stdout": json.dumps(record), "stderr": "error: something else",
              "item": "m1", "delta": "0:00:01.5"}
    outcome = outcome_of("m1", "k" * 64, result, built=True)
    assert (outcome.status, outcome.kind, outcome.reason) == ("failed", "tensorrt",
                                                              "could not build")
    crashed = outcome_of("m1", "k", {"rc": 1, "stdout": "",
                                     "stderr": "Traceback ...\nKeyError: 'x'"}, built=True)
    assert crashed.kind == "bug" and "KeyError: 'x'" in crashed.reason
    killed = outcome_of("m1", "k", {"rc": -9, "stdout": "", "stderr": ""}, built=True)
    assert killed.kind == "oom" and "SIGKILL" in killed.reason


def test_a_device_stderr_line_reaches_a_reason_bounded():
    # The device writes what it likes; the reason keeps its last line, cut to MAX_MESSAGE.
    flood = outcome_of("m1", "k", {"rc": 1, "stdout": "", "stderr": "first\n" + "x" * 10 ** 6},
                       built=True)
    assert flood.reason.startswith("exit 1 without a builder record: xxx")
    assert len(flood.reason) < MAX_MESSAGE + 50
    silent = outcome_of("m1", "k", {"rc": 1, "stdout": "", "stderr": "  \n"}, built=True)
    assert silent.reason.endswith("nothing on stderr")
    assert install_problem({"rc": 1, "stderr": "y" * 10 ** 6}).endswith("y" * MAX_MESSAGE)
    assert len(install_problem({"rc": 1, "stderr": "y" * 10 ** 6})) < MAX_MESSAGE + 80
    assert install_problem({"rc": 2, "msg": "pip: not found\n"}).endswith(
        "(exit code 2): pip: not found")
    assert install_problem({"rc": 0, "stderr": "warning"}) is None


def test_a_full_device_disk_names_the_device_the_directory_the_figures_and_the_fix():
    from controller.outcome import host_outcomes  # noqa: PLC0415

    record = {"record": 1, "status": "failed", "kind": "disk", "message": "no room",
              "tensorrt_lines": [], "result": None,
              "details": {"directory": "/opt/trt-builder/work/m1", "free_bytes": 5 << 20,
                          "needed_bytes": 300 << 20}}
    results = [{"item": {"models": ["m1"]}, "rc": 3, "stdout": json.dumps(record),
                "delta": "0:00:02"}]
    plan = {"models": {"m1": {"build_key": "k" * 64}}}
    outcome = host_outcomes(results, [], plan, "nano-1", "/opt/trt-builder")["m1"]
    assert outcome["kind"] == "disk"
    assert outcome["reason"] == (
        "device nano-1: not enough disk space in /opt/trt-builder/work/m1 (5 MiB free, about "
        "300 MiB needed). Free space on the device, "
        "or set jetson_facts_root_dir (group_vars or host_vars; jetson_env_root_dir too, to the "
        "same, where the inventory sets that older name) to a directory on a larger disk")


def fake_command_of_jobs(monkeypatch, endings):
    """A 'fake' subcommand whose subjects (jobs) end as ``endings`` says, one per model."""
    module = types.ModuleType("builder.commands.fake_for_test")
    ran = []

    def run(args):
        ran.append(args.model)
        print(json.dumps({"model": args.model}))
        if endings[args.model] is not None:
            raise endings[args.model]
        return 0

    def jobs(args):
        if args.models == ["refused"]:
            raise UserError("the command line is wrong")
        return [types.SimpleNamespace(**dict(vars(args), model=m)) for m in args.models]

    def add_parser(subparsers):
        parser = subparsers.add_parser("fake")
        parser.add_argument("models", nargs="+")
        parser.add_argument("--json", action="store_true")
        parser.set_defaults(run=run, jobs=jobs)

    module.add_parser, module.run = add_parser, run
    monkeypatch.setitem(sys.modules, "builder.commands.fake_for_test", module)
    monkeypatch.setattr(cli, "SUBCOMMANDS", (("fake", "commands.fake_for_test"),))
    return ran


def test_every_job_runs_and_prints_its_own_record_after_a_failure(monkeypatch, capsys):
    endings = {"a": None, "b": TensorRTFailure("could not build", ["[TRT] [E] 4: bad"]),
               "c": UserError("c: bad catalog"), "d": None}
    ran = fake_command_of_jobs(monkeypatch, endings)
    assert cli.main(["fake", "--json", "a", "b", "c", "d"]) == 1  # b failed first: TensorRT
    assert ran == ["a", "b", "c", "d"]
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["model"], r["status"], r["kind"]) for r in records] == [
        ("a", "ok", None), ("b", "failed", "tensorrt"), ("c", "failed", "user"),
        ("d", "ok", None)]
    assert [r["result"] for r in records] == [{"model": m} for m in "abcd"]
    assert all(r["seconds"] >= 0 for r in records)


def test_a_refused_command_line_is_one_record_for_no_model(monkeypatch, capsys):
    fake_command_of_jobs(monkeypatch, {})
    assert cli.main(["fake", "--json", "refused"]) == 2
    (record,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert record["model"] is None and record["kind"] == "user"
    assert record["message"] == "the command line is wrong"
