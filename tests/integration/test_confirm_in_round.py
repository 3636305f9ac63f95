"""A platform's confirmation in round 0, on the simulated fleet (controller/confirm_wait.py):
the second Nano verifies the first one's engine as soon as it is filed, and an engine that
never comes does not keep it waiting: its first device's build failed (it signs the end of its
round), or that device left the run at its push (it never reaches its finish step). Either
way the second Nano builds the engine itself in round 1, as before."""

import json
import threading

import pytest

from controller import confirm_wait

FLEET = "nano=2"
MODEL = "ssd_mobilenet_v2_coco"
FIRST, SECOND = "nano-1", "nano-2"  # the first builds (ranked by name), the second confirms


def run_with(fleet, runner, tmp_path, workspace, *, fault=None, at=None):
    """(the run, {round: work}, the second Nano's round results): FIRST gets ``fault`` when a
    line starting with ``at`` is printed (from the start without ``at``); a new workspace
    gives both Nanos new work."""
    faulted = threading.Event()

    def on_line(line):
        if fault and at and not faulted.is_set() and line.startswith(at):
            fleet.fault(FIRST, fault)
            faulted.set()

    if fault and not at:
        fleet.fault(FIRST, fault)
    registered = tmp_path / "registered.jsonl"
    try:
        run = runner.run(extra_vars={"engine_workspace_mib": workspace}, on_line=on_line,
                         registered=registered)
    finally:
        fleet.fault(FIRST, "ok")
    works, second = {}, []
    for line in registered.read_text().splitlines():
        entry = json.loads(line)
        if entry["result"].get("skipped"):
            continue
        if entry["register"] == "engine_round":
            works[entry["result"]["round"]] = entry["result"]["work"]
        elif entry["register"] == "engine_round_result" and entry["host"] == SECOND:
            second.append(entry["result"])
    return run, works, second


@pytest.mark.fleet
def test_a_first_nano_that_left_at_its_push_is_not_waited_for(fleet, runner, tmp_path):
    run, works, second = run_with(fleet, runner, tmp_path, 320, fault="disk-full",
                                  at="TASK [engine_build : Push the files of the round")
    assert run.returncode != 0, run.describe()
    assert run.rows_by("built") == [(SECOND, MODEL)], run.describe()
    assert second[0]["confirm_waits"] == {MODEL: confirm_wait.LEFT}
    assert works[1][SECOND]["build"] == [MODEL]


@pytest.mark.fleet
def test_a_failed_build_ends_the_wait_and_the_second_nano_builds_in_round_1(
        fleet, runner, tmp_path):
    run, works, second = run_with(fleet, runner, tmp_path, 310, fault="oom")
    assert run.returncode != 0, run.describe()
    assert run.rows_by("built") == [(SECOND, MODEL)], run.describe()
    assert second[0]["confirm_waits"] == {MODEL: confirm_wait.SIGNED}
    assert works[1][SECOND]["build"] == [MODEL]


@pytest.mark.fleet
def test_the_second_nano_confirms_in_round_0(fleet, runner, tmp_path):
    run, works, second = run_with(fleet, runner, tmp_path, 300)
    assert run.returncode == 0, run.describe()
    assert run.rows_by("built") == [(FIRST, MODEL)], run.describe()
    assert run.rows_by("shared") == [(SECOND, MODEL)], run.describe()
    (wait,) = works[0][SECOND]["awaits"]
    assert (wait["model"], wait["builder"]) == (MODEL, FIRST)
    assert wait["wait_s"] == works[0][FIRST]["wait_s"] + confirm_wait.FILING_SLACK_S
    (round_0,) = second
    assert round_0["confirm_waits"] == {MODEL: confirm_wait.FILED}
    assert round_0["outcomes"][MODEL]["details"]["confirms_stored_engine"] is True
    assert works[1] == {}, "nothing left for round 1"
