"""convert / build / verify end to end, one subprocess per TensorRT generation.

Each run gets: PYTHONPATH = repo + that generation's SIMULATED dist-packages tree,
--root = a filesystem root laid out by platform_roots (nv_tegra_release, device tree,
dpkg status, meminfo), SIMJETSON_DEVICE = a device.json with the facts detected from
that root, and the SIMULATED libcudart and FlattenConcat plugin library.
"""

import hashlib
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

from builder.platform.detect import detect_platform
from tests.unit.platform_roots import lay_out

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "jetpack"))
sys.path.insert(0, str(REPO / "tests" / "graphs"))
import layout  # noqa: E402  (tests/jetpack is not a package)
from generated import graphs_dir  # noqa: E402
from jetpack_harness import UFF_VARIANTS  # noqa: E402

MODEL = "ssd_mobilenet_v1_coco"
ENGINE = "TRT_{}.bin".format(MODEL)

R32_RELEASE = ("# R32 (release), REVISION: {}, GCID: 16294929, BOARD: {}, EABI: aarch64, "
               "DATE: Tue Aug 13 04:45:36 UTC 2019\n")


def _jetpack4_packages(l4t, tensorrt, cuda, cudnn):
    """dpkg packages of an older JetPack 4 than platform_roots' profiles have."""
    return {"nvidia-l4t-core": l4t + "-20190813000000", "tensorrt": tensorrt,
            "libnvinfer{}".format(tensorrt[0]): tensorrt, cuda[0]: cuda[1], cudnn[0]: cudnn[1]}


# name -> (platform_roots profile, lay_out overrides, TensorRT Python version).
# Some are older releases of a profile's module: release line and dpkg replaced.
PLATFORMS = {
    "nano-trt5": ("nano-32.7.1", {
        "release": R32_RELEASE.format("2.1", "t210ref"),
        "packages": _jetpack4_packages("32.2.1", "5.1.6.1-1+cuda10.0",
                                       ("cuda-toolkit-10-0", "10.0.326-1"),
                                       ("libcudnn7", "7.5.0.56-1+cuda10.0"))}, "5.1.6.1"),
    "tx2-trt6": ("tx2-32.3.1", {}, "6.0.1.10"),
    "nano-trt7": ("nano-32.7.1", {
        "release": R32_RELEASE.format("4.4", "t210ref"),
        "packages": _jetpack4_packages("32.4.4", "7.1.3.0-1+cuda10.2",
                                       ("cuda-toolkit-10-2", "10.2.89-1"),
                                       ("libcudnn8", "8.0.0.180-1+cuda10.2"))}, "7.1.3.0"),
    "xavier-trt7": ("xavier-32.4.4", {}, "7.1.3.0"),
    "nano-trt8.2": ("nano-32.7.1", {}, "8.2.1.8"),
    "xavier-trt8.2": ("xavier-32.4.4", {
        "release": R32_RELEASE.format("7.1", "t186ref"),
        "packages": _jetpack4_packages("32.7.1", "8.2.1.9-1+cuda10.2",
                                       ("cuda-toolkit-10-2", "10.2.460-1"),
                                       ("libcudnn8", "8.2.1.32-1+cuda10.2"))}, "8.2.1.8"),
    "xavier-trt8.5": ("xavier-35.4.1", {}, "8.5.2.2"),
    "orin-nano-trt8.6": ("orin-nano-36.3", {}, "8.6.2"),
    "orin-trt10": ("agx-orin-36.4.3", {}, "10.3.0"),
    # TensorRT 11.4.1 (NVIDIA's SBSA packages, JetPack 7.2.2 and later) on a Thor: strongly
    # typed, ONNX only (tests/unit/test_onnx_build.py).
    "thor-trt11": ("thor-39.2.1", {"packages": {
        "nvidia-l4t-core": "39.2.1-20260806224157", "tensorrt": "11.4.1.6-1+cuda13.2",
        "libnvinfer11": "11.4.1.6-1+cuda13.2", "python3-libnvinfer": "11.4.1.6-1+cuda13.2",
        "libcudnn9-cuda-13": "9.20.0.46-1", "cuda-toolkit-13-2": "13.2.1-1"}}, "11.4.1"),
}
BUILDING = ("nano-trt5", "tx2-trt6", "nano-trt7", "nano-trt8.2", "xavier-trt8.5",
            "orin-nano-trt8.6")


class Device(object):
    """A simulated platform on the host: device.json, fault file, filesystem root."""

    def __init__(self, base, name):
        profile, overrides, tensorrt_version = PLATFORMS[name]
        self.name = name
        self.root = Path(lay_out(base / "root", profile, **overrides))
        facts = detect_platform(str(self.root))
        self.description = {
            "name": name, "profile": profile, "module": facts["module"], "soc": facts["soc"],
            "compute_capability": facts["compute_capability"],
            "memory_mib": facts["memory_mib"], "dla_cores": facts["dla_cores"],
            "l4t": facts["l4t"], "tensorrt_version": tensorrt_version,
            "build_seconds": 0.2, "infer_ms": 2.0,
        }
        self.generation = layout.generation_for(tensorrt_version)
        # Assembled once: rebuilding it while other runs import from it would break them.
        self.site_packages = layout.site_packages_dir(self.generation)
        self.device_json = base / "device.json"
        self.device_json.write_text(json.dumps(self.description))
        self.fault = base / "fault"
        self.cudart = layout.build_cudart(base / "cuda", facts["cuda"])
        self.plugin = layout.build_flattenconcat(base / "plugins")

    def env(self, fault="ok"):
        self.fault.write_text(fault + "\n")
        return dict(
            os.environ,
            PYTHONPATH=os.pathsep.join([str(REPO), str(self.site_packages)]),
            SIMJETSON_DEVICE=str(self.device_json),
            SIMJETSON_FAULT=str(self.fault),
            TF_CPP_MIN_LOG_LEVEL="3",
        )

    def run(self, *args, fault="ok", python_options=()):
        command = [sys.executable] + list(python_options) + ["-m", "builder"]
        command += [str(arg) for arg in args]
        return subprocess.run(command, env=self.env(fault), capture_output=True, text=True,
                              timeout=240, check=False)

    def build(self, catalog, out, *extra, fault="ok", model=MODEL, python_options=()):
        return self.run("build", model, "--catalog", catalog, "--out", out, "--root",
                        self.root, "--plugin-library", self.plugin, *extra, fault=fault,
                        python_options=python_options)

    def verify(self, engine, *extra, python_options=()):
        return self.run("verify", engine, "--cudart", self.cudart, "--plugin-library",
                        self.plugin, *extra, python_options=python_options)


def _explain(result):
    return "exit {}\n--- stdout\n{}\n--- stderr\n{}".format(
        result.returncode, result.stdout, result.stderr)


@pytest.fixture(scope="module")
def graphs(tmp_path_factory):
    """The generated graphs with a catalog forcing engine_path: uff on every model.

    This module tests the UFF path on every generation that has it; from TensorRT 8.4 the
    default ('auto') is ONNX (tests/unit/test_onnx_build.py)."""
    return uff_graphs(tmp_path_factory.mktemp("uff-graphs"))


def uff_graphs(folder):
    source = graphs_dir()
    catalog = yaml.safe_load((source / "models.yml").read_text())
    for name, entry in catalog["models"].items():
        entry["engine_path"] = "uff"
        (folder / name).symlink_to(source / name)
    (folder / "models.yml").write_text(yaml.safe_dump(catalog))
    return folder


@pytest.fixture(scope="module")
def devices(tmp_path_factory):
    base = tmp_path_factory.mktemp("devices")
    return {name: Device(base / name, name) for name in PLATFORMS}


@pytest.fixture(scope="module")
def mini_uffs(devices, tmp_path_factory):
    """generation -> {variant: .uff path} of the doubles' mini SSD (reference recipe).

    These UFFs exercise build / verify independently of our graph surgery; variants
    "good" and "classes_bad" (num_classes disagreeing with the class predictor).
    """
    first_of_generation = {}
    for name in BUILDING:
        first_of_generation.setdefault(devices[name].generation, devices[name])

    def make(device):
        folder = tmp_path_factory.mktemp("uff-" + device.generation)
        env = device.env()
        env["PYTHONPATH"] += os.pathsep + str(REPO / "tests" / "jetpack")
        result = subprocess.run([sys.executable, "-c", UFF_VARIANTS], cwd=folder, env=env,
                                capture_output=True, text=True, timeout=240, check=True)
        paths = json.loads(result.stdout.strip().splitlines()[-1])
        return {variant: folder / path for variant, path in paths.items()}

    with ThreadPoolExecutor(max_workers=4) as pool:  # subprocesses: threads only wait
        made = dict(zip(first_of_generation, pool.map(make, first_of_generation.values())))
    return made


@pytest.fixture(scope="module")
def good_uff(devices, mini_uffs):
    """name -> the mini SSD "good" UFF converted for that platform's TensorRT."""
    return lambda name: mini_uffs[devices[name].generation]["good"]


@pytest.fixture(scope="module")
def built(graphs, devices, mini_uffs, tmp_path_factory):
    """One build from the mini SSD UFF per building platform: name -> (out dir, result)."""
    def build(name):
        device = devices[name]
        out = tmp_path_factory.mktemp("out-" + name)
        return out, device.build(graphs / "models.yml", out, "--uff",
                                 mini_uffs[device.generation]["good"])

    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(zip(BUILDING, pool.map(build, BUILDING)))


def _catalog_with(graphs, tmp_path, **overrides):
    """A copy of the generated catalog with keys of MODEL replaced (graph paths absolute)."""
    catalog = yaml.safe_load((graphs / "models.yml").read_text())
    for entry in catalog["models"].values():
        entry["graph"] = str(graphs / entry["graph"])
    catalog["models"][MODEL].update(overrides)
    path = tmp_path / "models.yml"
    path.write_text(yaml.safe_dump(catalog))
    return path


# -- success on every generation with UFF ---------------------------------------------

@pytest.mark.parametrize("name", BUILDING)
def test_build_writes_engine_and_manifest(name, built, devices, graphs, mini_uffs):
    out, result = built[name]
    assert result.returncode == 0, _explain(result)
    device = devices[name]
    engine = out / ENGINE
    data = engine.read_bytes()
    header = data.split(b"\n", 1)[0]
    assert b"SIMULATED" in header
    assert "compute={}".format(device.description["compute_capability"]).encode() in header
    assert "tensorrt={}".format(device.description["tensorrt_version"]).encode() in header

    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["engine_file"] == ENGINE
    assert manifest["engine_sha256"] == hashlib.sha256(data).hexdigest()
    assert manifest["engine_size"] == len(data)
    assert manifest["model"] == MODEL
    assert manifest["graph_sha256"] == hashlib.sha256(
        (graphs / MODEL / "frozen_inference_graph.pb").read_bytes()).hexdigest()
    assert manifest["uff_sha256"] == hashlib.sha256(
        mini_uffs[device.generation]["good"].read_bytes()).hexdigest()
    assert manifest["tensorrt_version"] == device.description["tensorrt_version"]
    assert manifest["platform"]["module"] == device.description["module"]
    assert manifest["platform_id"] == manifest["platform"]["platform_id"]
    assert manifest["precision"] == "fp16" and manifest["max_batch"] == 1
    assert manifest["workspace_mib"] == 256 and manifest["dla_core"] is None
    assert len(manifest["build_key"]) == 64
    assert manifest["build_seconds"] > 0
    assert manifest["spec"]["name"] == MODEL
    assert manifest["created_utc"].endswith("Z")
    assert sorted(os.listdir(out)) == [ENGINE, "manifest.json"]  # nothing half-written
    assert "] building {} with TensorRT".format(ENGINE) in result.stderr  # timestamped


def test_api_generations_chosen_by_version(built):
    apis = {name: json.loads((out / "manifest.json").read_text())["tensorrt_api"]
            for name, (out, _result) in built.items()}
    assert apis == {"nano-trt5": "5/6", "tx2-trt6": "5/6", "nano-trt7": "7",
                    "nano-trt8.2": "8.0-8.3", "xavier-trt8.5": "8.4-8.6",
                    "orin-nano-trt8.6": "8.4-8.6"}


@pytest.mark.parametrize("name", ["nano-trt8.2", "xavier-trt8.5", "orin-nano-trt8.6"])
def test_no_removed_or_warning_api_on_trt8(name, devices, graphs, good_uff, tmp_path):
    """8.x doubles raise AttributeError for what 8.0 removed and DeprecationWarning for
    build_engine / get_binding_* / context managers: make any such warning fatal."""
    strict = ["-W", "error::DeprecationWarning"]
    out = tmp_path / "out"
    result = devices[name].build(graphs / "models.yml", out, "--uff", good_uff(name),
                                 "--timing-cache", tmp_path / "timing.cache",
                                 python_options=strict)
    assert result.returncode == 0, _explain(result)
    checked = devices[name].verify(out / ENGINE, "--runs", "1", python_options=strict)
    assert checked.returncode == 0, _explain(checked)


@pytest.mark.parametrize("name", BUILDING)
def test_convert_then_build_from_the_frozen_graph(name, devices, graphs, tmp_path):
    out = tmp_path / "out"
    result = devices[name].build(graphs / "models.yml", out)
    assert result.returncode == 0, _explain(result)
    assert sorted(os.listdir(out)) == sorted([ENGINE, "manifest.json", MODEL + ".uff",
                                              MODEL + ".pbtxt"])
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["derived"]["num_classes"] == 91
    assert manifest["derived"]["input_order"] == [0, 2, 1]
    assert manifest["uff_sha256"] == hashlib.sha256(
        (out / (MODEL + ".uff")).read_bytes()).hexdigest()


def test_trt10_refuses_uff_and_names_onnx(devices, graphs, tmp_path):
    result = devices["orin-trt10"].build(graphs / "models.yml", tmp_path)
    assert result.returncode == 2, _explain(result)
    assert "key 'engine_path': uff cannot be built here" in result.stderr
    assert "TensorRT 10.3.0 has no UFF parser" in result.stderr and "JetPack 6" in result.stderr
    assert "python3 -m builder onnx {}".format(MODEL) in result.stderr
    assert "Traceback" not in result.stderr
    assert os.listdir(tmp_path) == []


def test_trt11_refuses_uff_too(devices, graphs, tmp_path):
    result = devices["thor-trt11"].build(graphs / "models.yml", tmp_path)
    assert result.returncode == 2, _explain(result)
    assert "TensorRT 11.4.1 has no UFF parser" in result.stderr
    assert "Traceback" not in result.stderr
    assert os.listdir(tmp_path) == []


def test_convert_refuses_on_trt10(devices, graphs, tmp_path):
    result = devices["orin-trt10"].run("convert", MODEL, "--catalog", graphs / "models.yml",
                                       "--out", tmp_path)
    assert result.returncode == 2, _explain(result)
    assert "has no UFF parser" in result.stderr and "tf2onnx" in result.stderr


# -- the catalog disagrees with the graph -------------------------------------------

def test_wrong_input_order_and_num_classes_caught_before_tensorrt(devices, graphs, tmp_path):
    catalog = _catalog_with(graphs, tmp_path, input_order=[1, 0, 2], num_classes=37)
    out = tmp_path / "out"
    result = devices["nano-trt8.2"].build(catalog, out)
    assert result.returncode == 2, _explain(result)
    assert "input_order" in result.stderr and "[1, 0, 2]" in result.stderr
    assert "[0, 2, 1]" in result.stderr  # what the graph says
    assert "num_classes" in result.stderr and "37" in result.stderr and "91" in result.stderr
    assert "building" not in result.stderr  # TensorRT never ran
    assert not (out / ENGINE).exists() and not (out / "manifest.json").exists()


def test_graph_not_matching_its_pin(devices, graphs, tmp_path):
    catalog = _catalog_with(graphs, tmp_path, sha256="0" * 64)
    result = devices["nano-trt8.2"].build(catalog, tmp_path / "out")
    assert result.returncode == 2, _explain(result)
    assert "sha256" in result.stderr and "0" * 64 in result.stderr


# -- TensorRT refuses -----------------------------------------------------------------

@pytest.mark.parametrize("name, expected", [
    ("nano-trt8.2", "Error Code 1: Cuda Runtime (out of memory)"),
    ("nano-trt7", "Cuda Error in allocate: 2 (out of memory)"),
])
def test_out_of_memory_build_leaves_no_engine(name, expected, *, devices, graphs, good_uff,
                                             tmp_path):
    out = tmp_path / "out"
    result = devices[name].build(graphs / "models.yml", out, "--uff", good_uff(name),
                                 fault="oom")
    assert result.returncode == 4, _explain(result)  # out of memory, not a TensorRT refusal
    assert expected in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: TensorRT could not build the engine")
    assert "NoneType" not in result.stderr and "Traceback" not in result.stderr
    assert not (out / ENGINE).exists() and not (out / "manifest.json").exists()
    assert not [n for n in os.listdir(out) if n.startswith(".")]


@pytest.mark.parametrize("name", ["nano-trt7", "nano-trt8.2"])
def test_nms_assertion_from_a_uff_with_wrong_num_classes(name, devices, graphs, mini_uffs,
                                                        tmp_path):
    out = tmp_path / "out"
    result = devices[name].build(graphs / "models.yml", out, "--uff",
                                 mini_uffs[devices[name].generation]["classes_bad"])
    assert result.returncode == 1, _explain(result)
    assert "[TensorRT] INTERNAL ERROR: nmsPlugin.cpp" in result.stderr
    assert "Assertion `numPriors * param.numClasses" in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith(
        "error: TensorRT could not build the engine")
    assert not out.exists() or os.listdir(out) == []


def test_failed_rebuild_keeps_previous_engine_and_manifest(devices, graphs, built, good_uff):
    out, first = built["nano-trt8.2"]
    assert first.returncode == 0, _explain(first)
    before = {n: (out / n).read_bytes() for n in (ENGINE, "manifest.json")}
    result = devices["nano-trt8.2"].build(graphs / "models.yml", out, "--uff",
                                          good_uff("nano-trt8.2"), fault="oom")
    assert result.returncode == 4, _explain(result)
    assert {n: (out / n).read_bytes() for n in before} == before


def test_workspace_larger_than_memory_refused(devices, graphs, tmp_path):
    device = devices["nano-trt8.2"]
    result = device.build(graphs / "models.yml", tmp_path / "out", "--workspace-mib", "8192")
    assert result.returncode == 2, _explain(result)
    assert "--workspace-mib 8192" in result.stderr
    assert "{} MiB".format(device.description["memory_mib"]) in result.stderr


# -- options ---------------------------------------------------------------------------

def test_dla_refused_on_nano(devices, graphs, tmp_path):
    result = devices["nano-trt8.2"].build(graphs / "models.yml", tmp_path / "out",
                                          "--dla-core", "0")
    assert result.returncode == 2, _explain(result)
    assert "jetson-nano has no DLA" in result.stderr


def test_dla_build_on_xavier(devices, graphs, built, good_uff, tmp_path):
    out = tmp_path / "out"
    result = devices["xavier-trt8.5"].build(graphs / "models.yml", out, "--uff",
                                            good_uff("xavier-trt8.5"),
                                            "--dla-core", "1", "--precision", "fp16")
    assert result.returncode == 0, _explain(result)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["dla_core"] == 1
    plain = json.loads((built["xavier-trt8.5"][0] / "manifest.json").read_text())
    assert manifest["build_key"] != plain["build_key"]


def test_timing_cache_created_then_reused(devices, graphs, good_uff, tmp_path):
    cache = tmp_path / "timing.cache"
    uff = good_uff("nano-trt8.2")
    recorded = []
    for round_number in (1, 2):
        out = tmp_path / "out{}".format(round_number)
        result = devices["nano-trt8.2"].build(graphs / "models.yml", out, "--uff", uff,
                                              "--timing-cache", cache)
        assert result.returncode == 0, _explain(result)
        assert "warning: timing cache" not in result.stderr
        assert cache.stat().st_size > 0
        recorded.append(json.loads((out / "manifest.json").read_text())["timing_cache"])
    assert [r["used"] for r in recorded] == [False, True]  # the second starts from timings
    assert recorded[1]["file"] == str(cache) and recorded[1]["start_bytes"] > 0


def simulated_timing_cache(device, entries, **platform):
    """A cache file as the doubles serialize it, for ``device``'s platform unless told."""
    facts = dict(device.description, **platform)
    header = "SIMULATED TensorRT timing cache | platform={}/{}/{}\n".format(
        facts["module"], facts["compute_capability"], facts["tensorrt_version"])
    return header.encode() + json.dumps(entries).encode()


def test_pushed_timing_caches_are_combined_and_a_foreign_one_dropped(devices, graphs, good_uff,
                                                                      tmp_path):
    device = devices["nano-trt8.2"]
    pushed = {"same-platform.cache": simulated_timing_cache(device, {"from_nano_2": "conv"}),
              "xavier.cache": simulated_timing_cache(devices["xavier-trt8.2"],
                                                     {"from_xavier": "conv"}),
              "other-tensorrt.cache": simulated_timing_cache(device, {"from_trt7": "conv"},
                                                             tensorrt_version="7.1.3.0"),
              "damaged.cache": b"\x00\x01 not a timing cache"}
    merge_args = []
    for name, data in pushed.items():
        (tmp_path / name).write_bytes(data)
        merge_args += ["--merge-timing-cache", tmp_path / name]
    cache = tmp_path / "device.cache"
    result = device.build(graphs / "models.yml", tmp_path / "out", "--uff",
                          good_uff("nano-trt8.2"), "--timing-cache", cache, *merge_args)
    assert result.returncode == 0, _explain(result)  # a bad cache never fails the build
    recorded = json.loads((tmp_path / "out" / "manifest.json").read_text())["timing_cache"]
    assert recorded["merged"] == ["same-platform.cache"] and recorded["used"] is True
    assert sorted(recorded["dropped"]) == ["damaged.cache", "other-tensorrt.cache",
                                           "xavier.cache"]
    for name in recorded["dropped"]:
        assert "warning: timing cache {} dropped".format(tmp_path / name) in result.stderr
    grown = cache.read_bytes().split(b"\n", 1)[1].decode()
    entries = json.loads(grown)
    assert "from_nano_2" in entries and "from_xavier" not in entries
    assert len(entries) > 1  # and this build's own timings


def test_timing_cache_ignored_with_a_warning_before_trt8(devices, graphs, good_uff, tmp_path):
    cache = tmp_path / "timing.cache"
    result = devices["nano-trt7"].build(graphs / "models.yml", tmp_path / "out", "--uff",
                                        good_uff("nano-trt7"),
                                        "--timing-cache", cache)
    assert result.returncode == 0, _explain(result)
    assert "--timing-cache ignored: TensorRT 7.1.3.0 has no timing cache" in result.stderr
    assert not cache.exists()


def test_missing_plugin_library_on_trt5(devices, graphs, good_uff, tmp_path):
    device = devices["nano-trt5"]
    result = device.run("build", MODEL, "--catalog", graphs / "models.yml", "--out",
                        tmp_path, "--root", device.root, "--uff",
                        good_uff("nano-trt5"),
                        "--plugin-library", tmp_path / "libflattenconcat.so")
    assert result.returncode == 2, _explain(result)
    assert "libflattenconcat.so" in result.stderr and "--plugin-library" in result.stderr


# -- several models in one process -------------------------------------------------------

def test_one_process_builds_several_models_past_a_failing_one(devices, graphs, mini_uffs,
                                                               tmp_path):
    """Each model gets its own record, kind and files; a TensorRT refusal and a user error
    do not stop the models after them; the exit code is the first failure's."""
    catalog = yaml.safe_load((graphs / "models.yml").read_text())
    entry = dict(catalog["models"][MODEL], graph=str(graphs / MODEL / "frozen_inference_graph.pb"))
    models = {"first": "good", "broken": "classes_bad", "last": "good"}
    catalog["models"] = {name: dict(entry, engine="TRT_{}.bin".format(name)) for name in models}
    (tmp_path / "models.yml").write_text(yaml.safe_dump(catalog))
    device = devices["nano-trt8.2"]
    for name, variant in models.items():
        (tmp_path / (name + ".uff")).symlink_to(mini_uffs[device.generation][variant])
    result = device.run("build", "--catalog", tmp_path / "models.yml", "--out",
                        tmp_path / "out" / "{model}", "--uff", tmp_path / "{model}.uff",
                        "--root", device.root, "--plugin-library", device.plugin, "--cudart",
                        device.cudart, "--verify", "--json", "--", "first", "broken",
                        "not_in_catalog", "last")
    assert result.returncode == 1, _explain(result)  # "broken": TensorRT refused it
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(r["model"], r["status"], r["kind"]) for r in records] == [
        ("first", "ok", None), ("broken", "failed", "tensorrt"),
        ("not_in_catalog", "failed", "user"), ("last", "ok", None)]
    assert "Assertion `numPriors * param.numClasses" in " ".join(records[1]["tensorrt_lines"])
    for name in ("first", "last"):
        out = tmp_path / "out" / name
        manifest = json.loads((out / "manifest.json").read_text())
        assert manifest["model"] == name and manifest["verify"]["ok"] is True
        assert records[["first", "broken", "not_in_catalog", "last"].index(name)][
            "result"]["engine_sha256"] == manifest["engine_sha256"]
        assert sorted(os.listdir(out)) == ["TRT_{}.bin".format(name), "manifest.json"]
    assert os.listdir(tmp_path / "out" / "broken") == []


# -- verify ----------------------------------------------------------------------------

@pytest.mark.parametrize("name", BUILDING)
def test_verify_records_result_in_manifest(name, built, devices):
    out, result = built[name]
    assert result.returncode == 0, _explain(result)
    checked = devices[name].verify(out / ENGINE, "--runs", "3", "--json")
    assert checked.returncode == 0, _explain(checked)
    reported = json.loads(checked.stdout)["result"]
    assert reported["ok"] is True and reported["runs"] == 3
    assert reported["median_ms"] > 0 and reported["fps"] > 0
    assert 0 <= reported["keep_count"] <= reported["keep_top_k"] == 100
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["verify"] == reported


def test_verify_with_a_ppm_image(built, devices, tmp_path):
    out, result = built["nano-trt8.2"]
    assert result.returncode == 0, _explain(result)
    image = tmp_path / "test.ppm"
    image.write_bytes(b"P6\n64 48\n255\n" + bytes(range(256)) * 36)
    checked = devices["nano-trt8.2"].verify(out / ENGINE, "--image", image, "--runs", "2",
                                            "--json")
    assert checked.returncode == 0, _explain(checked)
    assert json.loads(checked.stdout)["result"]["image"] == str(image)


@pytest.mark.parametrize("case", [
    ("nano-trt8.2", "xavier-trt8.2", "6: The engine plan file is generated on an incompatible "
                                     "device, expecting compute 7.2 got compute 5.3"),
    ("nano-trt7", "xavier-trt7", "INVALID_CONFIG: The engine plan file is generated on an "
                                 "incompatible device, expecting compute 7.2 got compute 5.3"),
    ("nano-trt7", "nano-trt8.2", "Version tag does not match"),
])
def test_engine_from_another_platform_refused(case, built, devices, tmp_path):
    built_on, run_on, expected = case
    out, result = built[built_on]
    assert result.returncode == 0, _explain(result)
    copy = tmp_path / ENGINE
    copy.write_bytes((out / ENGINE).read_bytes())
    checked = devices[run_on].verify(copy)
    assert checked.returncode == 1, _explain(checked)
    assert expected in checked.stderr
    assert checked.stderr.strip().splitlines()[-1] == \
        "error: TensorRT could not load the engine"
    assert "NoneType" not in checked.stderr and "Traceback" not in checked.stderr


def test_verify_insane_output_exits_1_and_is_recorded(built, devices, tmp_path):
    out, result = built["nano-trt8.2"]
    assert result.returncode == 0, _explain(result)
    for name in (ENGINE, "manifest.json"):
        (tmp_path / name).write_bytes((out / name).read_bytes())
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    manifest["spec"]["keep_top_k"] = 0  # any detection is now one too many
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    checked = devices["nano-trt8.2"].verify(tmp_path / ENGINE, "--runs", "1")
    recorded = json.loads((tmp_path / "manifest.json").read_text())["verify"]
    if recorded["keep_count"] == 0:
        pytest.skip("the simulated engine returned no detection for this input")
    assert checked.returncode == 1, _explain(checked)
    assert "error: insane output" in checked.stderr and "keep count" in checked.stderr
    assert recorded["ok"] is False and recorded["problems"]


def test_verify_missing_engine_is_a_user_error(devices, tmp_path):
    checked = devices["nano-trt8.2"].verify(tmp_path / ENGINE)
    assert checked.returncode == 2, _explain(checked)
    assert "no such engine file" in checked.stderr


def test_killed_build_leaves_no_engine(devices, graphs, good_uff, tmp_path):
    device = devices["nano-trt8.2"]
    slow = tmp_path / "device.json"
    slow.write_text(json.dumps(dict(device.description, build_seconds=60)))
    out = tmp_path / "out"
    env = dict(device.env(), SIMJETSON_DEVICE=str(slow))
    command = [sys.executable, "-m", "builder", "build", MODEL, "--catalog",
               str(graphs / "models.yml"), "--out", str(out), "--root", str(device.root),
               "--uff", str(good_uff("nano-trt8.2"))]
    process = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    try:
        for line in process.stderr:
            if "] building " in line:
                break
        time.sleep(0.5)  # inside TensorRT's build now
        assert process.poll() is None
        process.kill()
    finally:
        process.wait(timeout=30)
        process.stderr.close()
    assert os.listdir(out) == []


# -- convert alone -----------------------------------------------------------------------

def test_convert_writes_uff_and_pbtxt_and_json_on_stdout(devices, graphs, tmp_path):
    result = devices["nano-trt8.2"].run("convert", MODEL, "--catalog", graphs / "models.yml",
                                        "--out", tmp_path, "--json")
    assert result.returncode == 0, _explain(result)
    reported = json.loads(result.stdout)["result"]  # the converter's chatter went to stderr
    assert "UFF Version" in result.stderr
    assert reported["derived"]["input_order"] == [0, 2, 1]
    assert Path(reported["uff"]).read_bytes().startswith(b"SIMULATED UFF")
    assert "input_order [0, 2, 1]" in Path(reported["pbtxt"]).read_text()
    assert sorted(os.listdir(tmp_path)) == [MODEL + ".pbtxt", MODEL + ".uff"]


def test_convert_without_uff_names_the_package(graphs, tmp_path):
    env = dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run([sys.executable, "-m", "builder", "convert", MODEL, "--catalog",
                             str(graphs / "models.yml"), "--out", str(tmp_path)], env=env,
                            capture_output=True, text=True, timeout=240, check=False)
    assert result.returncode == 2, _explain(result)
    assert "cannot import uff" in result.stderr and "uff-converter-tf" in result.stderr
    assert os.listdir(tmp_path) == []
