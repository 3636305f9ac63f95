"""A device whose disk is full, on the simulated fleet: reported as `disk` with the device, the
directory and its free space, in whichever step meets it (the facts step, or a step of its build
round), and the run's summary shows it; the other device goes on. The run lock's renewer ends
with the run."""

import re
import threading

import pytest

from controller import runlock
from tests.integration.conftest import run_lock_renewers, wait_until_the_run_let_go

FLEET = "nano=1,tx2=1"
MODEL = "ssd_mobilenet_v2_coco"
FULL = "nano-1"
OTHER = "tx2-1"


def assert_the_run_let_go_of_its_store(store):
    assert not (store / runlock.RUN_LOCK_NAME).exists()
    assert wait_until_the_run_let_go(store), run_lock_renewers(store)


def assert_disk_row(run, step):
    rows = [r for r in run.summary() if r["host"] == FULL]
    assert rows and all(r["status"] == "failed" for r in rows), run.describe()
    detail = rows[0]["detail"]
    assert "device {}: its disk is full at step '{}".format(FULL, step) in detail, detail
    assert "/tmp has 0 MiB free" in detail and detail.endswith("(disk)"), detail
    assert "MODULE FAILURE" not in run.output.split("ENGINE SUMMARY")[-1]


@pytest.mark.fleet
def test_a_full_disk_fails_the_facts_step_as_disk_and_the_other_device_builds(fleet, runner):
    fleet.fault(FULL, "disk-full")
    try:
        run = runner.run()
    finally:
        fleet.fault(FULL, "ok")
    assert run.returncode != 0, run.describe()
    assert_disk_row(run, "Detect the Jetson platform")
    assert run.rows_by("built") == [(OTHER, MODEL)], run.describe()
    assert_the_run_let_go_of_its_store(runner.store)


# Each scenario fills the disk when its step starts; new engine options (workspace) give the
# device new work each time. The environment is installed by the first one only.
ROUND_STEPS = [
    ("TASK [jetson_env", 256),
    ("TASK [engine_build : Push the files of the round", 300),
    ("TASK [engine_build : Build the engines", 310),
]


def run_filling_the_disk_at(fleet, runner, step, workspace):
    """(the run, whether the disk was filled): FULL's disk fills when ``step`` starts; new
    engine options (``workspace``) give the device new work each time."""
    filled = threading.Event()

    def fill_when_the_step_starts(line):
        if not filled.is_set() and line.startswith(step):
            fleet.fault(FULL, "disk-full")
            filled.set()

    try:
        run = runner.run(extra_vars={"engine_workspace_mib": workspace},
                         on_line=fill_when_the_step_starts)
    finally:
        fleet.fault(FULL, "ok")
    return run, filled.is_set()


@pytest.mark.fleet
@pytest.mark.parametrize("step, workspace", ROUND_STEPS, ids=[s[0] for s in ROUND_STEPS])
def test_a_disk_that_fills_during_the_round_is_reported_as_disk(fleet, runner, step,
                                                                workspace):
    run, filled = run_filling_the_disk_at(fleet, runner, step, workspace)
    assert filled, run.describe()
    assert run.returncode != 0, run.describe()
    rows = [r for r in run.summary() if r["host"] == FULL]
    assert len(rows) == 1 and rows[0]["status"] == "failed", run.describe()
    detail = rows[0]["detail"]
    # The step's own report (the rescue's), or the builder's record when the build itself
    # met the full disk: both name the device, the directory and its free space.
    assert "device {}: ".format(FULL) in detail and detail.endswith("(disk)"), detail
    assert re.search(r"/\S* \(?(has )?0 MiB free", detail), detail
    assert "MODULE FAILURE" not in detail
    assert (OTHER, MODEL) in run.rows_by("built"), run.describe()
    assert_the_run_let_go_of_its_store(runner.store)


@pytest.mark.fleet
def test_a_device_cut_off_at_the_push_is_still_unreachable(fleet, runner):
    """The pushes ignore Ansible's unreachable (for the full disk's sake): a device really gone
    is found unreachable by the rescue, as before."""
    cut = threading.Event()

    def cut_at_the_push(line):
        if not cut.is_set() and line.startswith(ROUND_STEPS[1][0]):
            fleet.fault(FULL, "unreachable")
            cut.set()

    try:
        run = runner.run(extra_vars={"engine_workspace_mib": 330}, on_line=cut_at_the_push)
    finally:
        fleet.fault(FULL, "ok")
    assert cut.is_set() and run.returncode != 0, run.describe()
    assert run.recap()[FULL]["unreachable"] == 1, run.describe()
    rows = [r for r in run.summary() if r["host"] == FULL]
    assert len(rows) == 1 and rows[0]["detail"].startswith("host unreachable"), run.describe()
    assert "(disk)" not in rows[0]["detail"]
