"""A compromised device cannot steer the controller (issue 27, item 1), end to end on the
simulated fleet: build_engines.yml, then deploy_engines.yml, over SSH, with one device whose
Python answers every module call with ``ansible_facts`` naming every variable the controller
reads (derived in tests/integration/hostile.py: controller/schema.py, the roles' defaults,
vars and argument_specs, the registers and set_facts, the actions' inputs) with hostile
values: another store directory, a fetch limit of 0, another catalog and model list, another
install root, fake host plans and round work...

Nothing of it changes what the controller does: both devices build, each engine is filed under
its own platform in the run's store with the run's limits, the deploy installs each device its
own platform's engine under the run's install root, and no hostile path is created on the
controller or on a device.
"""

import json
import uuid
from pathlib import Path

import pytest

from tests.integration.hostile import hostile_facts, install_liar

pytestmark = pytest.mark.fleet

# Two platforms on the ONNX path (no TensorFlow on the devices): the compromised one and an
# honest one whose store entry it must not replace.
FLEET = "orin=1,thor=1"
HOSTILE = "orin-1"
HONEST = "thor-1"
MODEL = "ssd_mobilenet_v2_coco"
INSTALL_ROOT = "/opt/trt-engines"
PREFIX = "/tmp/hostile-{}".format(uuid.uuid4().hex[:12])
LOG = "/opt/hostile/calls.log"


@pytest.fixture(scope="module")
def hostile_vars(fleet, tmp_path_factory):
    """The compromised interpreter on HOSTILE, and an inventory source naming it."""
    real = "/usr/bin/python3"
    directory = fleet.device_path(HOSTILE, "/opt/hostile")
    install_liar(directory, real, hostile_facts(PREFIX), "/opt/hostile/facts.json",
                 "/opt/hostile/lie.py")
    # Every call leaves a line: the test shows the device really answered with the facts.
    lie = directory / "lie.py"
    lie.write_text(lie.read_text().replace(
        "sys.stdout.write(text)",
        "open({!r}, 'a').write('called\\n')\nsys.stdout.write(text)".format(LOG)))
    variables = tmp_path_factory.mktemp("hostile-vars")
    (variables / "host_vars").mkdir()
    (variables / "hosts.yml").write_text("---\nall: {}\n")
    (variables / "host_vars" / "{}.yml".format(HOSTILE)).write_text(
        "---\nansible_python_interpreter: /opt/hostile/python3\n")
    return variables


@pytest.fixture(scope="module")
def runner(fleet, hostile_vars, engine_runner_factory):
    built = engine_runner_factory(fleet, [MODEL])
    built.inventories = [fleet.inventory, hostile_vars]
    return built


@pytest.fixture(scope="module")
def deployer(runner):
    return runner.deploy_runner()


def assert_no_hostile_path(fleet, runner):
    prefix = PREFIX.rsplit("/", 1)[1]
    assert not list(runner.store.parent.glob("**/" + prefix + "*"))
    assert not fleet.device_path(HOSTILE, PREFIX).exists()
    assert not fleet.device_path(HONEST, PREFIX).exists()
    assert not Path(PREFIX).exists(), "the controller used a hostile value"


def calls(fleet):
    path = fleet.device_path(HOSTILE, LOG)
    return len(path.read_text().splitlines()) if path.exists() else 0


def test_a_compromised_device_does_not_steer_the_build(fleet, runner):
    run = runner.run()
    print("build with a compromised device: {:.1f} s, {} hostile answers".format(
        run.seconds, calls(fleet)))
    assert run.returncode == 0, run.describe()
    assert calls(fleet) > 5, "every module of the device answered through the liar"
    rows = {r["host"]: r for r in run.summary()}
    assert {h: rows[h]["status"] for h in (HOSTILE, HONEST)} == {
        HOSTILE: "built", HONEST: "built"}, run.describe()
    index = json.loads((runner.store / "index.json").read_text())
    platforms = {rows[h]["platform_id"]: h for h in (HOSTILE, HONEST)}
    assert sorted(e["platform_id"] for e in index["entries"].values()) == sorted(platforms)
    for rel, entry in index["entries"].items():
        assert entry["built_on"] == platforms[entry["platform_id"]], rel
        assert (runner.store / rel / "manifest.json").is_file()
    assert_no_hostile_path(fleet, runner)


def test_a_compromised_device_does_not_steer_the_deploy(fleet, deployer):
    before = calls(fleet)
    run = deployer.run()
    assert run.returncode == 0, run.describe()
    assert calls(fleet) > before
    rows = {r["host"]: r for r in run.summary()}
    assert {h: rows[h]["status"] for h in (HOSTILE, HONEST)} == {
        HOSTILE: "deployed", HONEST: "deployed"}, run.describe()
    record = json.loads((deployer.store / "deployments.json").read_text())
    for host in (HOSTILE, HONEST):
        link = fleet.device_path(host, "{}/{}/current".format(INSTALL_ROOT, MODEL))
        manifest = json.loads((link / "manifest.json").read_text())
        assert manifest["platform_id"] == rows[host]["platform_id"]
        assert record["hosts"][host][MODEL]["version"] == link.readlink().name
    assert_no_hostile_path(fleet, deployer)
