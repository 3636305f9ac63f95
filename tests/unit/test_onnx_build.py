"""The ONNX engine path: `builder build` through the TensorRT 8.4-8.6, 10 and 11 doubles.

The .onnx comes from `builder onnx` on a generated graph (once for the module, on the
controller side); the builds run as on a device, in a subprocess per platform that sees
that platform's SIMULATED tensorrt and no TensorFlow at all.
"""

import hashlib
import json
import os
import subprocess
import sys

import pytest
import yaml

from builder import graphsums
from tests.unit.test_engine_pipeline import MODEL, REPO, Device, _explain, graphs_dir

ENGINE = "TRT_{}.bin".format(MODEL)
ONNX_PLATFORMS = ("xavier-trt8.5", "orin-nano-trt8.6", "orin-trt10")
TRT11 = "thor-trt11"

NO_TENSORFLOW = "raise ImportError('SIMULATED: no TensorFlow on this device')\n"


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """(catalog, onnx path) of MODEL, exported once by `builder onnx` on the controller."""
    out = tmp_path_factory.mktemp("exported")
    catalog = graphs_dir() / "models.yml"
    result = subprocess.run([sys.executable, "-m", "builder", "onnx", MODEL, "--catalog",
                             str(catalog), "--out", str(out)], cwd=str(REPO),
                            capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, _explain(result)
    return catalog, out / (MODEL + ".onnx")


@pytest.fixture(scope="module")
def devices(tmp_path_factory):
    base = tmp_path_factory.mktemp("onnx-devices")
    names = ONNX_PLATFORMS + ("nano-trt8.2", TRT11)
    devices = {name: Device(base / name, name) for name in names}
    # A device of the ONNX path needs no TensorFlow: make importing it fail loudly.
    blocker = base / "no-tensorflow" / "tensorflow"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text(NO_TENSORFLOW)
    for device in devices.values():
        device.blocker = str(blocker.parent)
    return devices


def build(device, catalog, out, *extra, python_options=()):
    env = device.env()
    env["PYTHONPATH"] = os.pathsep.join([device.blocker, env["PYTHONPATH"]])
    command = [sys.executable] + list(python_options) + [
        "-m", "builder", "build", MODEL, "--catalog", str(catalog), "--out", str(out),
        "--root", str(device.root)] + [str(arg) for arg in extra]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=240,
                          check=False)


@pytest.mark.parametrize("name", ONNX_PLATFORMS)
def test_onnx_engine_built_without_tensorflow(name, devices, exported, tmp_path):
    catalog, onnx_path = exported
    out = tmp_path / "out"
    result = build(devices[name], catalog, out, "--onnx", onnx_path,
                   "--timing-cache", tmp_path / "timing.cache")
    assert result.returncode == 0, _explain(result)
    assert "engine path onnx (catalog engine_path auto" in result.stderr
    data = (out / ENGINE).read_bytes()
    header_line, json_line = data.split(b"\n", 2)[:2]
    assert b"SIMULATED" in header_line
    header = json.loads(json_line)
    assert header["implicit_batch"] is False
    assert [p["op"] for p in header["plugins"]] == ["EfficientNMS_TRT"]
    assert header["bindings"][0]["name"] == "Input"
    assert header["bindings"][0]["shape"] == [1, 3, 300, 300]
    assert (tmp_path / "timing.cache").read_bytes().startswith(b"SIMULATED TensorRT timing")

    manifest = json.loads((out / "manifest.json").read_text())
    report = json.loads(onnx_path.with_name(onnx_path.name + ".json").read_text())
    assert manifest["engine_path"] == "onnx" and manifest["uff_sha256"] is None
    assert manifest["onnx_sha256"] == hashlib.sha256(onnx_path.read_bytes()).hexdigest()
    assert manifest["outputs"] == [
        {"name": "num_detections", "shape": [1, 1], "dtype": "INT32"},
        {"name": "detection_boxes", "shape": [1, 100, 4], "dtype": "FLOAT"},
        {"name": "detection_scores", "shape": [1, 100], "dtype": "FLOAT"},
        {"name": "detection_classes", "shape": [1, 100], "dtype": "INT32"}]
    assert manifest["onnx"]["verification"] == report["verification"]
    # The generated model clips after its per-class NMS, as exports from 2019 on do: the
    # NMS node returns twice keep_top_k boxes, the clip after it keeps 100 (the outputs).
    assert manifest["onnx"]["nms"]["attributes"]["max_output_boxes"] == 200
    assert manifest["spec"]["engine_path"] == "auto"
    assert manifest["precision"] == "fp16" and manifest["precision_source"] == "builder flag"
    assert header["precision"] == "fp16" and header["typing"] == "weak"
    assert sorted(os.listdir(out)) == [ENGINE, "manifest.json"]


def test_onnx_found_in_out_dir(devices, exported, tmp_path):
    catalog, onnx_path = exported
    out = tmp_path / "out"
    out.mkdir()
    for source in (onnx_path, onnx_path.with_name(onnx_path.name + ".json")):
        (out / source.name).write_bytes(source.read_bytes())
    result = build(devices["orin-trt10"], catalog, out)
    assert result.returncode == 0, _explain(result)
    # The export's sum, which the builder checked, is recorded for the facts of later runs;
    # the catalog's graph, outside the output directory, is not (nothing written there).
    sums = graphsums.recorded(str(out))
    assert list(sums) == [onnx_path.name]
    assert sums[onnx_path.name]["sha256"] == hashlib.sha256(onnx_path.read_bytes()).hexdigest()
    assert not (graphs_dir() / MODEL / graphsums.GRAPH_SUMS).exists()


def test_missing_onnx_names_the_file_and_the_command(devices, exported, tmp_path):
    catalog, _onnx_path = exported
    result = build(devices["orin-trt10"], catalog, tmp_path / "out")
    assert result.returncode == 2, _explain(result)
    expected = str(tmp_path / "out" / (MODEL + ".onnx")) + ": no such file"
    assert expected in result.stderr
    assert "python3 -m builder onnx {} --catalog".format(MODEL) in result.stderr
    assert "Traceback" not in result.stderr


def test_onnx_that_is_not_the_reported_one_is_refused(devices, exported, tmp_path):
    catalog, onnx_path = exported
    copy = tmp_path / onnx_path.name
    copy.write_bytes(onnx_path.read_bytes() + b"\0")
    report = onnx_path.with_name(onnx_path.name + ".json")
    (tmp_path / report.name).write_bytes(report.read_bytes())
    result = build(devices["xavier-trt8.5"], catalog, tmp_path / "out", "--onnx", copy)
    assert result.returncode == 2, _explain(result)
    assert "does not match" in result.stderr and "report belongs to another" in result.stderr


def test_uff_given_where_the_model_builds_from_onnx(devices, exported, tmp_path):
    catalog, _onnx_path = exported
    result = build(devices["xavier-trt8.5"], catalog, tmp_path / "out", "--uff",
                   tmp_path / "x.uff")
    assert result.returncode == 2, _explain(result)
    assert "builds from ONNX on this TensorRT" in result.stderr
    assert "engine_path: uff" in result.stderr


def _catalog(tmp_path, **changes):
    catalog = yaml.safe_load((graphs_dir() / "models.yml").read_text())
    for entry in catalog["models"].values():
        entry["graph"] = str(graphs_dir() / entry["graph"])
    catalog["models"][MODEL].update(changes)
    path = tmp_path / "models.yml"
    path.write_text(yaml.safe_dump(catalog))
    return path


def test_onnx_forced_before_trt_8_4_is_refused(devices, tmp_path):
    catalog = _catalog(tmp_path, engine_path="onnx")
    result = build(devices["nano-trt8.2"], catalog, tmp_path / "out")
    assert result.returncode == 2, _explain(result)
    assert "{}: model '{}', key 'engine_path': onnx cannot be built here".format(
        catalog, MODEL) in result.stderr
    assert "NVIDIA/TensorRT#1538" in result.stderr and "engine_path: auto" in result.stderr


def test_engine_path_forced_to_uff_on_trt_8_5_builds_uff(devices, tmp_path):
    catalog = _catalog(tmp_path, engine_path="uff")
    result = build(devices["xavier-trt8.5"], catalog, tmp_path / "out")
    # The UFF path converts the graph here, which needs TensorFlow: refused by name.
    assert result.returncode == 2, _explain(result)
    assert "engine path uff (catalog engine_path uff" in result.stderr
    assert "SIMULATED: no TensorFlow on this device" in result.stderr


def test_catalog_refuses_an_unknown_engine_path(tmp_path):
    catalog = _catalog(tmp_path, engine_path="trt")
    result = subprocess.run([sys.executable, "-m", "builder", "check", "--catalog",
                             str(catalog)], cwd=str(REPO), capture_output=True, text=True,
                            timeout=120, check=False)
    assert result.returncode == 2, _explain(result)
    assert "key 'engine_path': 'trt' is not one of auto, uff, onnx" in result.stderr


@pytest.mark.parametrize("name", ["orin-nano-trt8.6", "orin-trt10"])
def test_build_and_verify_an_onnx_engine(name, devices, exported, tmp_path):
    catalog, onnx_path = exported
    device = devices[name]
    out = tmp_path / "out"
    result = build(device, catalog, out, "--onnx", onnx_path, "--verify", "--cudart",
                   device.cudart, "--json")
    assert result.returncode == 0, _explain(result)
    manifest = json.loads(result.stdout)["result"]
    verify = manifest["verify"]
    assert verify["ok"] is True and verify["problems"] == []
    assert verify["nms_outputs"] == "EfficientNMS_TRT" and verify["keep_top_k"] == 100
    assert 0 <= verify["keep_count"] <= 100 and verify["median_ms"] > 0
    for row in verify["detections"]:
        assert 1 <= row["label"] < 91  # background class 0 is never reported
        xmin, ymin, xmax, ymax = row["box"]
        assert 0 <= xmin <= xmax <= 1 and 0 <= ymin <= ymax <= 1
    assert json.loads((out / "manifest.json").read_text())["verify"] == verify


class _Spec(object):
    name = "m"

    def __init__(self, engine_path):
        self.engine_path = engine_path


@pytest.mark.parametrize(("version", "requested", "chosen"), [
    ((8, 2, 1, 8), "auto", "uff"), ((8, 3, 9, 0), "auto", "uff"),
    ((8, 4, 0, 0), "auto", "onnx"), ((8, 6, 2, 0), "auto", "onnx"),
    ((10, 3, 0, 0), "auto", "onnx"), ((8, 5, 2, 2), "uff", "uff"),
    ((8, 4, 1, 5), "onnx", "onnx"), ((7, 1, 3, 0), "auto", "uff"),
])
def test_engine_path_choice(version, requested, chosen):
    from builder.trt.enginepath import choose_engine_path  # noqa: PLC0415

    assert choose_engine_path(_Spec(requested), version, "x", "cat.yml") == chosen


@pytest.mark.parametrize(("text", "requested", "says"), [
    ("10.3.0", "uff", "uff cannot be built here: TensorRT 10.3.0 has no UFF parser"),
    ("8.2.1.8", "onnx", "onnx cannot be built here: TensorRT 8.2.1.8 is older than 8.4"),
])
def test_engine_path_refusals_name_file_model_and_key(text, requested, says):
    from builder.errors import UserError  # noqa: PLC0415
    from builder.trt.enginepath import choose_engine_path  # noqa: PLC0415

    version = tuple(int(part) for part in text.split("."))
    with pytest.raises(UserError) as caught:
        choose_engine_path(_Spec(requested), version, text, "cat.yml")
    assert str(caught.value).startswith("cat.yml: model 'm', key 'engine_path': " + says)
    assert "Write engine_path: auto" in str(caught.value)


# -- TensorRT 11: strongly typed, precision from the ONNX's tensor types ----------------

# Every DeprecationWarning an error: the adapter must use no call 11 deprecates, and none it
# removed (those raise AttributeError in the double, as in the real bindings).
NO_DEPRECATED = ("-W", "error::DeprecationWarning")


def _engine_header(path):
    first, header = path.read_bytes().split(b"\n", 2)[:2]
    assert b"SIMULATED" in first
    return json.loads(header)


def test_trt11_builds_fp32_from_an_fp32_onnx(devices, exported, tmp_path):
    catalog, onnx_path = exported
    device = devices[TRT11]
    out = tmp_path / "out"
    result = build(device, catalog, out, "--onnx", onnx_path, "--precision", "fp32",
                   "--timing-cache", tmp_path / "timing.cache", "--verify", "--cudart",
                   device.cudart, "--json", python_options=NO_DEPRECATED)
    assert result.returncode == 0, _explain(result)
    header = _engine_header(out / ENGINE)
    assert (header["precision"], header["typing"], header["tensorrt_version"]) == (
        "fp32", "strong", "11.4.1")
    assert [p["op"] for p in header["plugins"]] == ["EfficientNMS_TRT"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["tensorrt_api"] == "11" and manifest["precision"] == "fp32"
    assert manifest["precision_source"] == "onnx tensor types"
    verify = manifest["verify"]
    assert verify["ok"] is True and verify["nms_outputs"] == "EfficientNMS_TRT"
    assert verify["device_memory_bytes"] == header["device_memory_nbytes"] > 0


def test_trt11_refuses_fp16_from_an_fp32_onnx(devices, exported, tmp_path):
    catalog, onnx_path = exported
    out = tmp_path / "out"
    result = build(devices[TRT11], catalog, out, "--onnx", onnx_path, "--precision", "fp16")
    assert result.returncode == 2, _explain(result)
    assert ("TensorRT 11.4.1 is strongly typed: fp16 needs an fp16 ONNX (float16 tensors), and "
            "{} has none".format(onnx_path)) in result.stderr
    assert "--precision fp16" in result.stderr and "Nothing was built" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (out / ENGINE).exists() and not (out / "manifest.json").exists()


@pytest.fixture(scope="module")
def exported_fp16(tmp_path_factory):
    """(catalog, onnx path) of MODEL's fp16 export (`builder onnx --precision fp16`: what the
    controller makes for engine_precision fp16 on a strongly typed TensorRT)."""
    pytest.importorskip("onnxconverter_common")
    out = tmp_path_factory.mktemp("exported-fp16")
    catalog = graphs_dir() / "models.yml"
    result = subprocess.run([sys.executable, "-m", "builder", "onnx", MODEL, "--catalog",
                             str(catalog), "--out", str(out), "--precision", "fp16"],
                            cwd=str(REPO), capture_output=True, text=True, timeout=900,
                            check=False)
    assert result.returncode == 0, _explain(result)
    return catalog, out / (MODEL + ".onnx")


def test_trt11_builds_fp16_from_an_fp16_onnx(devices, exported_fp16, tmp_path):
    catalog, onnx_path = exported_fp16
    out = tmp_path / "out"
    result = build(devices[TRT11], catalog, out, "--onnx", onnx_path, "--precision", "fp16",
                   python_options=NO_DEPRECATED)
    assert result.returncode == 0, _explain(result)
    header = _engine_header(out / ENGINE)
    assert (header["precision"], header["typing"]) == ("fp16", "strong")
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["precision"] == "fp16"
    assert manifest["precision_source"] == "onnx tensor types"
    # and the fp16 export asked for fp32 is refused the other way round
    again = build(devices[TRT11], catalog, tmp_path / "again", "--onnx", onnx_path,
                  "--precision", "fp32")
    assert again.returncode == 2, _explain(again)
    assert "fp32 needs an fp32 ONNX" in again.stderr and "has float16 tensors" in again.stderr
