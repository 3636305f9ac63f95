"""The deploy follows no link (issue 27, item 3), end to end on the simulated fleet:
deploy_engines.yml on a device where links are planted in /opt/trt-engines (the model
directory, .incoming, a version directory, current pointing elsewhere, .deploy-venv,
.deploy-wheels). Each planted link is removed (where the deploy owns the entry) or refused
(the model directory), named in the run's output, and nothing outside /opt/trt-engines is
read as an engine, written or removed: a snapshot of the directory the links point into is the
same before and after, and current names a version directory inside the install root.

One fleet, one store and one build serve the module's tests, in file order.
"""

import json

import pytest

pytestmark = pytest.mark.fleet

FLEET = "orin=1"
HOST = "orin-1"
MODELS = ["ssd_mobilenet_v1_coco", "ssd_mobilenet_v2_coco"]
V1, V2 = MODELS
ROOT = "/opt/trt-engines"
OUTSIDE = "/opt/outside"
SNAPSHOT = ("cd {0} && find . -printf '%y %p %s %l\\n' | sort && "
            "find . -type f -exec sha256sum {{}} + | sort").format(OUTSIDE)


@pytest.fixture(scope="module")
def deployer(fleet, engine_runner_factory):
    builder = engine_runner_factory(fleet, MODELS)
    built = builder.run()
    assert built.returncode == 0, built.describe()

    runner = builder.deploy_runner()
    first = runner.run()
    assert first.returncode == 0, first.describe()
    return runner


def sh(fleet, command):
    done = fleet.ssh(HOST, command)
    assert done.returncode == 0, (command, done.stdout, done.stderr)
    return done.stdout


def snapshot(fleet):
    return sh(fleet, SNAPSHOT)


def current(fleet, model):
    """(link target, its manifest) of <root>/<model>/current, read on the device."""
    target = sh(fleet, "readlink {}/{}/current".format(ROOT, model)).strip()
    manifest = json.loads(sh(fleet, "cat {}/{}/{}/manifest.json".format(ROOT, model, target)))
    return target, manifest


def statuses(run):
    return {r["model"]: r for r in run.summary() if r["host"] == HOST}


def output_of(run):
    """The run's output without whitespace: Ansible wraps a warning anywhere, even at a '-'
    inside a path."""
    return "".join(run.output.split())


def squeezed(text):
    return "".join(text.split())


def test_planted_incoming_and_model_directory_links(fleet, deployer):
    version, _ = current(fleet, V1)
    sh(fleet, "mkdir -p {o}/incoming {o}/models && echo keep > {o}/sentinel".format(o=OUTSIDE))
    # V1: its version gone (so the deploy pushes it again), .incoming a link out.
    sh(fleet, "rm -rf {r}/{m}/{v} {r}/{m}/current {r}/{m}/.incoming && "
              "ln -s {o}/incoming {r}/{m}/.incoming".format(r=ROOT, m=V1, v=version, o=OUTSIDE))
    # V2: the model directory moved out and linked back.
    sh(fleet, "mv {r}/{m} {o}/models/{m} && ln -s {o}/models/{m} {r}/{m}".format(
        r=ROOT, m=V2, o=OUTSIDE))
    before = snapshot(fleet)

    run = deployer.run()
    rows = statuses(run)
    text = output_of(run)
    assert rows[V1]["status"] == "deployed", run.describe()
    assert squeezed("removed a planted link: {r}/{m}/.incoming is a symbolic link (to "
                    "{o}/incoming)".format(r=ROOT, m=V1, o=OUTSIDE)) in text, run.describe()
    assert current(fleet, V1)[0] == version
    assert rows[V2]["status"] == "refused", run.describe()
    assert rows[V2]["detail"].startswith("{r}/{m} is a symbolic link (to {o}/models/{m})".format(
        r=ROOT, m=V2, o=OUTSIDE)), rows[V2]
    assert run.returncode != 0
    assert snapshot(fleet) == before, "something was written outside {}".format(ROOT)
    assert sh(fleet, "readlink {}/{}".format(ROOT, V2)).strip() == "{}/models/{}".format(
        OUTSIDE, V2), "the refused link is left as it was"


def test_planted_version_current_and_environment_links(fleet, deployer):
    # V2 back in place, then its current pointing at a copy outside (by an absolute path
    # whose last part is the version's name).
    sh(fleet, "rm {r}/{m} && mv {o}/models/{m} {r}/{m}".format(r=ROOT, m=V2, o=OUTSIDE))
    v2_version, _ = current(fleet, V2)
    sh(fleet, "mkdir -p {o}/copy && cp -a {r}/{m}/{v} {o}/copy/ && "
              "ln -sfn {o}/copy/{v} {r}/{m}/current".format(r=ROOT, m=V2, v=v2_version, o=OUTSIDE))
    # V1: its version directory replaced by a link to a copy outside (current -> it).
    v1_version, _ = current(fleet, V1)
    sh(fleet, "cp -a {r}/{m}/{v} {o}/copy/ && rm -rf {r}/{m}/{v} && "
              "ln -s {o}/copy/{v} {r}/{m}/{v}".format(r=ROOT, m=V1, v=v1_version, o=OUTSIDE))
    # The deploy environment: the venv moved out and linked back; the wheels a link out.
    sh(fleet, "mv {r}/.deploy-venv {o}/venv && ln -s {o}/venv {r}/.deploy-venv && "
              "mkdir -p {o}/wheels && rm -rf {r}/.deploy-wheels && "
              "ln -s {o}/wheels {r}/.deploy-wheels".format(r=ROOT, o=OUTSIDE))
    before = snapshot(fleet)

    run = deployer.run()
    rows = statuses(run)
    text = output_of(run)
    assert run.returncode == 0, run.describe()
    assert {m: rows[m]["status"] for m in MODELS} == {V1: "deployed", V2: "deployed"}, \
        run.describe()
    for line in ("{r}/{m}/{v} is a symbolic link (to {o}/copy/{v})".format(
                     r=ROOT, m=V1, v=v1_version, o=OUTSIDE),
                 "{r}/.deploy-venv is a symbolic link (to {o}/venv)".format(r=ROOT, o=OUTSIDE),
                 "{r}/.deploy-wheels is a symbolic link (to {o}/wheels)".format(
                     r=ROOT, o=OUTSIDE)):
        assert squeezed(line) in text, (line, run.describe())
    for model, version in ((V1, v1_version), (V2, v2_version)):
        assert current(fleet, model)[0] == version, "current names a bare version"
        assert sh(fleet, "test -d {r}/{m}/{v} && test ! -L {r}/{m}/{v} && echo real".format(
            r=ROOT, m=model, v=version)).strip() == "real"
    assert sh(fleet, "test -d {r}/.deploy-venv && test ! -L {r}/.deploy-venv && echo real"
              .format(r=ROOT)).strip() == "real"
    assert snapshot(fleet) == before, "something was written outside {}".format(ROOT)

    again = deployer.run()
    assert again.returncode == 0 and {
        m: statuses(again)[m]["status"] for m in MODELS} == {V1: "up to date",
                                                             V2: "up to date"}, again.describe()
    assert "planted link" not in again.output

