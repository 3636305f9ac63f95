"""`ansible-playbook build_engines.yml` with --tags / --skip-tags on a simulated Orin
(README, "Steps and tags"): the preflight, facts, plan and report run under any tags; a run
whose tags leave out every device step ends with its plan; --tags env installs the
environment and builds nothing; --skip-tags collect builds and leaves the engine on the device,
which the next run collects without building it again. The tests run in file order on one
fleet and store."""

import pytest

from controller import runlock

MODEL = "ssd_mobilenet_v2_coco"
FLEET = "orin=1"
HOST = "orin-1"
ROOT_DIR = "/opt/trt-builder"


def statuses(run):
    return {(row["host"], row["model"]): row["status"] for row in run.summary()}


def lock_released(runner):
    return not (runner.store / runlock.RUN_LOCK_NAME).exists()


@pytest.mark.fleet
def test_tags_without_a_device_step_end_with_the_plan(fleet, runner):
    run = runner.run("--tags", "facts")
    assert run.returncode == 0, run.describe()
    assert "select no device step (env, build, collect): the run ends with the plan" \
        in run.output, run.describe()
    assert "Preflight OK" in run.output  # always: the preflight is never skipped
    assert statuses(run) == {(HOST, MODEL): "would build"}
    assert fleet.ssh(HOST, "test -e " + ROOT_DIR).returncode == 1
    assert lock_released(runner)


@pytest.mark.fleet
def test_skipping_the_preflight_by_name_skips_nothing(fleet, runner):
    run = runner.run("--skip-tags", "preflight,facts,plan,report", "--check")
    assert run.returncode == 0, run.describe()
    assert "Preflight OK" in run.output
    assert statuses(run) == {(HOST, MODEL): "would build"}


@pytest.mark.fleet
def test_tags_env_installs_the_environment_and_builds_nothing(fleet, runner):
    run = runner.run("--tags", "env")
    assert run.returncode == 0, run.describe()
    assert statuses(run) == {(HOST, MODEL): "would build"}, run.describe()
    assert run.builds() == []
    marker = fleet.ssh(HOST, "cat {}/venv/trt-builder-env.json".format(ROOT_DIR))
    assert marker.returncode == 0 and "pin_set" in marker.stdout, run.describe()
    assert fleet.ssh(HOST, "test -e {}/work/{}".format(ROOT_DIR, MODEL)).returncode == 1
    assert not list(runner.store.glob("jetson-*/{}".format(MODEL)))
    assert lock_released(runner)


@pytest.mark.fleet
def test_skip_tags_collect_leaves_the_engine_on_the_device_for_the_next_run(fleet, runner):
    run = runner.run("--skip-tags", "collect")
    assert run.builds() == [(HOST, MODEL)], run.describe()
    assert not list(runner.store.glob("jetson-*/{}".format(MODEL)))
    engine = "{}/work/{}/TRT_{}.bin".format(ROOT_DIR, MODEL, MODEL)
    assert fleet.ssh(HOST, "test -s " + engine).returncode == 0
    # Not in the store: the summary says so, and the exit code.
    assert statuses(run) == {(HOST, MODEL): "failed"} and run.returncode != 0
    assert lock_released(runner)

    rerun = runner.run()
    assert rerun.returncode == 0, rerun.describe()
    assert rerun.builds() == []  # collected, not built again
    assert statuses(rerun) == {(HOST, MODEL): "collected"}, rerun.describe()
    assert list(runner.store.glob("jetson-*/{}/*/TRT_{}.bin".format(MODEL, MODEL)))
