"""JetPack 7 on the simulated fleet: build, collect and deploy with the real playbooks over SSH.

One fleet of three JetPack 7 devices, each on the Python its JetPack ships (3.12, from the
machine's pyenv build; the host's Python where that build is missing, which fleet.json says):

- orin-1: AGX Orin on JetPack 7.2.1 (L4T 39.2.1), TensorRT 10.16: fp16 by the builder flag;
- thor-1: AGX Thor developer kit (T5000) on JetPack 7.1 (L4T 38.4.0), TensorRT 10.13;
- orin-2: AGX Orin with TensorRT 11.4.1 (NVIDIA's SBSA packages, JetPack 7.2.2 and later;
  ASSUMED on L4T 39.2.1, tests/fleet/profiles.py): strongly typed, so its fp16 engine is
  built from the fp16 ONNX export the controller makes and verifies (variant fp16-typed-...).

Each builds the sample model (ssd_mobilenet_v2_coco, ONNX path: TensorRT 10 and 11 have no
UFF parser) into its own platform's store entry; deploy_engines.yml then installs each
device its own platform's engine. The tests run in file order on the same fleet and store.
"""

import hashlib
import json
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
from fleet import device_python

from tests.integration.envside import FLEET_VARS, REPO, TEST_PLAYBOOKS, playbook

pytestmark = pytest.mark.fleet

FLEET = "orin@39.2.1=1,thor=1,orin@39.2.1+trt11=1"
MODEL = "ssd_mobilenet_v2_coco"
ROOT_DIR = "/opt/trt-builder"
INSTALL_ROOT = "/opt/trt-engines"
WORKSPACE = 512   # tests/integration/fleet_vars/group_vars/all.yml
# host -> (platform_id, variant, precision_source, TensorRT, JetPack the detection names)
EXPECTED = {
    "orin-1": ("jetson-agx-orin_l4t39.2.1_trt10.16.2", "fp16-ws{}".format(WORKSPACE),
               "builder flag", "10.16.2.10", "7.2.1"),
    "thor-1": ("jetson-t5000_l4t38.4.0_trt10.13.3", "fp16-ws{}".format(WORKSPACE),
               "builder flag", "10.13.3.9", "7.1"),
    "orin-2": ("jetson-agx-orin_l4t39.2.1_trt11.4.1", "fp16-typed-ws{}".format(WORKSPACE),
               "onnx tensor types", "11.4.1.6", "7.2.1"),
}
# The pin set a device on its JetPack's Python 3.12 gets (tests/fleet/inventory.py), and the
# fleet's default for a device on the host's Python (tests/integration/fleet_vars).
PIN_SET = {"3.12": "simulated-onnx-cp312"}
HOST_PIN_SET = "simulated-onnx-cp311"


@pytest.fixture(scope="module")
def timings():
    record = {}
    yield record
    print("JetPack 7 scenario wall times (s): {}".format(json.dumps(record, sort_keys=True)))


def sha256_file(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def timed(record, name, run):
    record[name] = round(run.seconds, 1)
    print("scenario {}: {:.1f} s".format(name, run.seconds))
    return run


def device_python_of(fleet, host):
    """(X.Y the device runs, its pin set) as the fleet recorded them."""
    python = fleet.host(host)["python"]
    if python["fallback"]:
        return python["version"], HOST_PIN_SET
    return python["version"], PIN_SET[python["version"]]


@pytest.mark.fleet
def test_jetpack7_devices_run_their_jetpacks_python(fleet):
    wanted = "3.12" if device_python.find_build("3.12") else "%d.%d" % sys.version_info[:2]
    for host in EXPECTED:
        version, _ = device_python_of(fleet, host)
        assert version == wanted, (host, fleet.host(host)["python"])
        probe = fleet.ssh(host, "/usr/bin/python3 -c 'import sys, tensorrt; print("
                                "\"%d.%d\" % sys.version_info[:2], tensorrt.__version__)'")
        assert probe.returncode == 0, probe.stderr
        assert probe.stdout.split() == [wanted, EXPECTED[host][3]], host


@pytest.mark.fleet
def test_each_jetpack7_platform_builds_its_own_engine(fleet, runner, timings):
    run = timed(timings, "build", runner.run())

    assert run.returncode == 0, run.describe()
    assert run.builds() == sorted((host, MODEL) for host in EXPECTED), run.describe()
    rows = {r["host"]: r for r in run.summary()}
    for host, (platform_id, variant, _, _, _) in EXPECTED.items():
        assert (rows[host]["platform_id"], rows[host]["variant"], rows[host]["status"]) == (
            platform_id, variant, "built"), run.describe()
    # The detection says where the TensorRT is not the JetPack's (11.4.1 on L4T 39.2.1).
    assert "TensorRT 11.4.1 installed, JetPack for L4T 39.2.1 ships 10.16" in " ".join(
        run.output.split()), run.describe()

    index = json.loads((runner.store / "index.json").read_text())
    entries = {e["platform_id"]: (rel, e) for rel, e in index["entries"].items()}
    assert sorted(entries) == sorted(p for p, *_ in EXPECTED.values())
    exports = {json.loads(path.read_text())["precision"]: json.loads(path.read_text())
               for path in runner.store.glob("onnx/{}/*/*.onnx.json".format(MODEL))}
    assert sorted(exports) == ["fp16", "fp32"], "one fp32 export (TensorRT 10), one fp16 (11)"
    for host, (platform_id, variant, source, tensorrt, jetpack) in EXPECTED.items():
        rel, summary = entries[platform_id]
        assert rel == "{}/{}/{}".format(platform_id, MODEL, variant)
        entry_dir = runner.store / rel
        manifest = json.loads((entry_dir / "manifest.json").read_text())
        engine = entry_dir / manifest["engine_file"]
        assert (manifest["precision"], manifest["precision_source"]) == ("fp16", source), host
        assert (manifest["engine_path"], manifest["tensorrt_version"]) == ("onnx", tensorrt)
        assert manifest["engine_sha256"] == sha256_file(engine) == summary["engine_sha256"]
        assert manifest["verify"]["ok"] is True, "verified on its device before collection"
        assert engine.read_bytes().startswith(b"SIMULATED TensorRT engine plan")
        assert "tensorrt={}".format(tensorrt).encode() in engine.read_bytes()[:4096]
        platform = manifest["platform"]
        assert (platform["jetpack"], platform["python"].rsplit(".", 1)[0]) == (
            jetpack, device_python_of(fleet, host)[0]), platform
        # The ONNX it was built from: the fp16 export on TensorRT 11, the fp32 one on 10.
        export = exports["fp16" if source == "onnx tensor types" else "fp32"]
        assert manifest["onnx"]["onnx_sha256"] == export["onnx_sha256"], host
        assert manifest["onnx"]["verification"]["ok"] is True
        # The device's environment: the pin set of its Python, on that Python.
        marker = json.loads(fleet.ssh(host, "cat {}/venv/trt-builder-env.json".format(
            ROOT_DIR)).stdout)
        assert (marker["pin_set"], marker["python"]) == (
            device_python_of(fleet, host)[1], platform["python"]), marker
    thor = entries[EXPECTED["thor-1"][0]][1]["platform"]
    assert (thor["module"], thor["soc"]) == ("jetson-t5000", "tegra264")
    check_reports_show_jetpack7(runner.store)


class _PlatformCells(HTMLParser):
    """platform_id -> the text of its cell in report.html's engines table."""

    def __init__(self):
        super().__init__()
        self.cells, self._platform = {}, None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "td" and attrs.get("class") == "platform" and "data-value" in attrs:
            self._platform = attrs["data-value"]
            self.cells[self._platform] = ""

    def handle_endtag(self, tag):
        if tag == "td":
            self._platform = None

    def handle_data(self, data):
        if self._platform is not None:
            self.cells[self._platform] += data


def check_reports_show_jetpack7(store):
    """Both reports name each platform's JetPack 7 release, TensorRT and Python 3.12, the
    Thor as a Thor, and the typed variant of TensorRT 11."""
    markdown = (store / "report.md").read_text()
    page = _PlatformCells()
    html = (store / "report.html").read_text()
    page.feed(html)
    facts = {
        "orin-1": "JetPack 7.2.1 · L4T 39.2.1 · TensorRT 10.16.2.10",
        "thor-1": "Thor · JetPack 7.1 · L4T 38.4.0 · TensorRT 10.13.3.9",
        "orin-2": "JetPack 7.2.1 · L4T 39.2.1 · TensorRT 11.4.1.6",
    }
    for host, (platform_id, variant, *_) in EXPECTED.items():
        (line,) = [line for line in markdown.splitlines()
                   if line.startswith("| {} (".format(platform_id))]
        assert "({} · Python ".format(facts[host]) in line, line
        assert "| {} (onnx) |".format(variant) in line and "| {} |".format(host) in line
        assert facts[host] in page.cells[platform_id], page.cells[platform_id]
    assert "<tspan>jetson-t5000 (Thor)</tspan>" in html
    assert "| {} | verified {} |".format(EXPECTED["orin-2"][0], EXPECTED["orin-2"][1]) in markdown


@pytest.mark.fleet
def test_an_engine_of_tensorrt_10_is_refused_by_tensorrt_11_on_the_same_orin(fleet, runner):
    """Same module, same L4T, another TensorRT: why the store keeps them apart."""
    (engine,) = (runner.store / EXPECTED["orin-1"][0] / MODEL).glob("*/TRT_{}.bin".format(MODEL))
    target = "/tmp/{}".format(engine.name)
    fleet.device_path("orin-2", target).write_bytes(engine.read_bytes())
    result = fleet.ssh("orin-2", "{}/venv/bin/python -m builder verify {} --json".format(
        ROOT_DIR, target))
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "Version tag does not match" in result.stderr or \
        "not compatible with this version of TensorRT" in result.stderr, result.stderr


@pytest.mark.fleet
def test_second_run_builds_nothing(runner, timings):
    run = timed(timings, "second_run", runner.run())
    assert run.returncode == 0, run.describe()
    assert run.builds() == [], run.describe()
    assert {(r["host"], r["status"]) for r in run.summary()} == {
        (host, "cached") for host in EXPECTED}, run.describe()
    assert all(counts["changed"] == 0 for counts in run.recap().values()), run.recap()


@pytest.fixture(scope="module")
def deployer(runner):
    """The same inventory, catalog and store, running deploy_engines.yml."""
    return runner.deploy_runner()


@pytest.mark.fleet
def test_deploy_installs_each_device_its_platforms_engine(fleet, deployer, timings):
    run = timed(timings, "deploy", deployer.run())
    assert run.returncode == 0, run.describe()
    assert {(r["host"], r["model"], r["status"]) for r in run.summary()} == {
        (host, MODEL, "deployed") for host in EXPECTED}, run.describe()
    installed = {}
    for host, (platform_id, variant, source, tensorrt, _) in EXPECTED.items():
        current = fleet.device_path(host, "{}/{}/current".format(INSTALL_ROOT, MODEL))
        assert current.is_symlink(), host
        engine = (current / "TRT_{}.bin".format(MODEL)).read_bytes()
        manifest = json.loads((current / "manifest.json").read_text())
        (stored,) = (deployer.store / platform_id / MODEL / variant).glob("TRT_*.bin")
        assert engine == stored.read_bytes(), "{} runs its own platform's engine".format(host)
        assert (manifest["platform_id"], manifest["precision_source"],
                manifest["tensorrt_version"]) == (platform_id, source, tensorrt)
        assert manifest["verify"]["ok"] is True, "verified on the device itself"
        installed[host] = engine
    assert len(set(installed.values())) == len(EXPECTED), "three platforms, three engines"
    record = json.loads((deployer.store / "deployments.json").read_text())
    assert {host: record["hosts"][host][MODEL]["platform_id"] for host in EXPECTED} == {
        host: expected[0] for host, expected in EXPECTED.items()}


@pytest.mark.fleet
def test_a_real_jetpack7_device_gets_the_jetpack7_pin_set_by_its_l4t(runner):
    """Without the fleet's pin sets, the plan's choice (controller/pin_sets.py) is by the L4T
    release (38.4 and 39.2 -> jetpack7-onnx-cp312, Python 3.12, ONNX path). Its wheels are
    aarch64: the x86 simulated devices refuse them, and the failure names the set chosen."""
    unset = {"jetson_env_pin_set": "", "jetson_env_onnx_pin_set": "",
             "env_roles_engine_paths": ["onnx"]}
    for host in ("orin-1", "thor-1"):   # a fresh venv (the x86 PyYAML 6.0.2 would satisfy pip)
        assert runner.fleet.ssh(host, "rm -rf {}/venv".format(ROOT_DIR)).returncode == 0
    run = playbook(TEST_PLAYBOOKS / "env_roles.yml", [runner.fleet.inventory, FLEET_VARS],
                   "--limit", "orin-1,thor-1", "-e", json.dumps(unset),
                   env={"ENGINE_TEST_CATALOG": str(runner.catalog)})
    assert run.rc != 0, run.out[-3000:]
    for host in ("orin-1", "thor-1"):
        assert ("host '{}': pip could not install the pinned packages of pin set "
                "'jetpack7-onnx-cp312'".format(host)) in run.out, run.out[-3000:]
    wheelhouse = json.loads((REPO / ".cache/wheelhouse/jetpack7-onnx-cp312/wheelhouse.json")
                            .read_text())
    assert wheelhouse["files"] and all("-cp312-" in f["name"] and "aarch64" in f["name"]
                                       for f in wheelhouse["files"]), wheelhouse
