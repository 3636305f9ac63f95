"""A device that hangs mid-build is bounded; every other device's engines are stored.

Three devices of three platforms build the sample model with a short build deadline
(engine_build_deadline_s: 20). nano-1's builder never ends (fault `hang`: the device still
answers), tx2-1's sshd stops answering the moment its build starts (fault
`freeze-mid-build`: every sshd of the device SIGSTOPped, connections accepted and never
answered). The run must end, report both as failed with the reason, and store xavier-1's
engine in the same run.
"""

import pytest

from controller.device_work import deadlines

pytestmark = pytest.mark.fleet

MODEL = "ssd_mobilenet_v2_coco"
FLEET = "nano=1,tx2=1,xavier=1"
DEADLINE_S = 20


def test_a_hung_builder_and_a_silent_device_end_the_run_with_the_others_stored(fleet, runner):
    fleet.fault("nano-1", "hang")
    fleet.fault("tx2-1", "freeze-mid-build")
    try:
        run = runner.run(extra_vars={"engine_build_deadline_s": DEADLINE_S,
                                     "engine_precision": "fp32"})
    finally:
        fleet.fault("nano-1", "ok")
        fleet.fault("tx2-1", "ok")
    wait_s = deadlines(DEADLINE_S)["wait_s"]
    print("hung-device run: {:.1f} s (deadline {} s, the controller waits at most {} s for a "
          "silent device)".format(run.seconds, DEADLINE_S, wait_s))
    rows = {row["host"]: row for row in run.summary()}
    assert rows["xavier-1"]["status"] == "built", run.describe()
    assert rows["nano-1"]["status"] == "failed", run.describe()
    assert "the build ran past its deadline of {} s".format(DEADLINE_S) in \
        rows["nano-1"]["detail"], run.describe()
    assert rows["tx2-1"]["status"] == "failed", run.describe()
    assert "the device did not answer within {} s".format(wait_s) in rows["tx2-1"]["detail"], \
        run.describe()
    assert run.returncode != 0  # failed engines fail the run
    stored = sorted(p.parent.parent.parent.name for p in runner.store.glob("*/*/*/manifest.json"))
    assert [name.split("_")[0] for name in stored] == ["jetson-agx-xavier"], stored
    # The next run, the faults lifted, builds what is missing and nothing more.
    rerun = runner.run(extra_vars={"engine_build_deadline_s": 600, "engine_precision": "fp32"})
    assert rerun.returncode == 0, rerun.describe()
    # nano-1 builds again; tx2-1's builder finished while its sshd was stopped, so its engine
    # waits on the device and is only verified and collected.
    assert rerun.rows_by("built") == [("nano-1", MODEL)], rerun.describe()
    assert rerun.rows_by("collected") == [("tx2-1", MODEL)], rerun.describe()
    assert len(list(runner.store.glob("*/*/*/manifest.json"))) == 3
