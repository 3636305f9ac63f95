"""Each failure rule of the doubles happens, with its message, and never as an exception."""

import re

import layout
import pytest
from jetpack_harness import XAVIER, last_json
from test_jetpack_pipeline import build


def test_nms_input_order_assertion(gen, uff_files):
    verdict, log = build(gen, uff_files["order_bad"], "8.2.1.8", check_built=False)
    assert verdict["parsed"] is True and verdict["built"] is False
    assert ("Assertion `numPriors * numLocClasses * 4 == inputDims[param.inputOrder[0]].d[0]' "
            "failed.") in log


def test_nms_num_classes_assertion(gen, uff_files):
    verdict, log = build(gen, uff_files["classes_bad"], "7.1.3", check_built=False)
    assert verdict["built"] is False
    assert ("[TensorRT] INTERNAL ERROR: nmsPlugin.cpp:139:" in log and
            "Assertion `numPriors * param.numClasses == inputDims[param.inputOrder[1]].d[0]' "
            "failed." in log)


def test_unconverted_tf_op_fails_validation(gen, uff_files):
    verdict, log = build(gen, uff_files["cast"], "8.5.2.2", check_built=False)
    assert verdict["parsed"] is False
    assert re.search(r"\[TRT\] \[E\] UffParser: Validator error: \S*: Unsupported operation _Cast",
                     log)


def test_plugins_need_init_libnvinfer_plugins(gen, uff_files):
    verdict, log = build(gen, uff_files["good"], "8.2.1.8", check_built=False,
                         init_plugins=False)
    assert verdict["parsed"] is False
    assert "Unsupported operation _FlattenConcat_TRT" in log


def test_trt6_needs_the_flattenconcat_library(gen, uff_files):
    verdict, log = build(gen, uff_files["good"], "6.0.1", check_built=False,
                         load_flattenconcat=False)
    assert verdict["parsed"] is False
    assert ("[TensorRT] ERROR: UffParser: Validator error: concat_box_loc: Unsupported "
            "operation _FlattenConcat_TRT") in log


def test_uff_into_explicit_batch_network_fails(gen, uff_files):
    verdict, log = build(gen, uff_files["good"], "8.2.1.8", check_built=False, explicit=True)
    assert verdict["parsed"] is False
    assert "implicit batch" in log


@pytest.mark.parametrize(("version", "line"), [
    ("7.1.3", "[TensorRT] ERROR: ../rtSafe/safeRuntime.cpp (25) - Cuda Error in allocate: 2 "
              "(out of memory)"),
    ("8.2.1.8", "Error Code 1: Cuda Runtime (out of memory)"),
])
def test_oom_fault_fails_the_build(gen, uff_files, version, line):
    verdict, log = build(gen, uff_files["good"], version, check_built=False, fault="oom")
    assert verdict["built"] is False
    assert line in log


def test_workspace_larger_than_memory_fails(gen, uff_files):
    verdict, log = build(gen, uff_files["good"], "8.5.2.2", check_built=False,
                         workspace=8 << 30)  # 8 GiB on a 4 GB Nano
    assert verdict["built"] is False
    assert "out of memory" in log


def test_dla_on_a_device_without_dla(gen, uff_files):
    verdict, log = build(gen, uff_files["good"], "8.2.1.8", check_built=False, dla_core=0,
                         gpu_fallback=True)
    assert verdict["built"] is False
    assert "DLA core 0 is not available" in log


def test_dla_core_out_of_range(gen, uff_files):
    verdict, log = build(gen, uff_files["good"], "8.5.2.2", check_built=False, dla_core=2,
                         gpu_fallback=True, device=dict(XAVIER, tensorrt_version="8.5.2.2"))
    assert verdict["built"] is False
    assert "DLA core 2 is not available: this platform has 2 DLA core(s)" in log


def test_dla_plugins_need_gpu_fallback(gen, uff_files):
    xavier = dict(XAVIER, tensorrt_version="7.1.3")
    verdict, log = build(gen, uff_files["good"], "7.1.3", check_built=False, dla_core=1,
                         device=xavier)
    assert verdict["built"] is False
    assert "Default DLA is enabled but layer" in log
    verdict, _ = build(gen, uff_files["good"], "7.1.3", dla_core=1, gpu_fallback=True,
                       device=xavier)
    with open(verdict["plan"], "rb") as handle:
        handle.readline()
        assert b'"dla_core": 1' in handle.readline()


def test_drop_mid_build_announces_the_build(gen, uff_files, tmp_path):
    build(gen, uff_files["good"], "8.2.1.8", fault="drop-mid-build")
    markers = list(tmp_path.glob("dev-*/build-started"))
    assert len(markers) == 1
    text = markers[0].read_text()
    assert text.startswith("SIMULATED") and re.search(r"^pid=\d+$", text, re.M)


def test_slow_fault_stretches_the_build(gen, uff_files):
    fast, _ = build(gen, uff_files["good"], "8.2.1.8", device={"build_seconds": 0.1})
    slow, _ = build(gen, uff_files["good"], "8.2.1.8", fault="slow",
                    device={"build_seconds": 0.1}, extra_env={"SIMJETSON_SLOW_FACTOR": "6"})
    assert fast["build_seconds"] >= 0.1
    assert slow["build_seconds"] >= 0.6 > fast["build_seconds"]


LOGGERS = r"""
import json, warnings
import tensorrt as trt
out = {"version": trt.__version__}
class Collect(trt.ILogger):
    def __init__(self):
        trt.ILogger.__init__(self)
        self.seen = []
    def log(self, severity, msg):
        self.seen.append([int(severity), msg])
collector = Collect()
try:
    builder = trt.Builder(collector)
    builder.build_engine(builder.create_network(), builder.create_builder_config())
    out["custom"] = collector.seen
except TypeError as exc:
    out["custom_error"] = str(exc)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    with trt.Runtime(trt.Logger()) as runtime:
        out["runtime"] = runtime is not None
out["enter_warnings"] = [str(w.message) for w in caught]
trt.Logger().log(trt.Logger.ERROR, "probe line")
print(json.dumps(out))
"""


def test_loggers_and_context_managers_8x(gen):
    result = gen.run(LOGGERS, "8.2.1.8")
    out = last_json(result)
    assert out["version"] == "8.2.1.8"
    assert [1, "4: [network.cpp::validate::2633] Error Code 4: Internal Error (Network must "
               "have at least one output)"] in out["custom"]
    assert out["enter_warnings"] == [
        "Context managers for TensorRT types are deprecated. Memory will be freed "
        "automatically when the reference count reaches 0."]
    assert re.search(r"^\[\d\d/\d\d/\d{4}-\d\d:\d\d:\d\d\] \[TRT\] \[E\] probe line$",
                     result.stdout, re.M)


def test_loggers_and_context_managers_7(gen):
    result = gen.run(LOGGERS.replace("builder.create_builder_config()", "None"), "7.1.3")
    out = last_json(result)
    assert "needs TensorRT 8.0 or newer" in out["custom_error"]
    assert out["enter_warnings"] == []
    assert "[TensorRT] ERROR: probe line" in result.stderr


def test_trt80_logger_format(gen):
    result = gen.run(LOGGERS, "8.0.1.6")
    assert "[TensorRT] ERROR: probe line" in result.stderr


ONNX = r"""
import json
import tensorrt as trt
logger = trt.Logger()
builder = trt.Builder(logger)
# From 10 every network is explicit batch; 11 has no EXPLICIT_BATCH flag left.
network = builder.create_network(0 if int(trt.__version__.split(".")[0]) >= 10 else
                                 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH))
parser = trt.OnnxParser(network, logger)
ok = parser.parse(b"definitely not onnx")
try:
    import uff  # noqa: F401
    has_uff = True
except ImportError:
    has_uff = False
print(json.dumps({"ok": ok, "errors": parser.num_errors,
                  "desc": parser.get_error(0).desc(), "has_uff": has_uff,
                  "has_uff_parser": hasattr(trt, "UffParser")}))
"""


@pytest.mark.parametrize("version", ["10.3.0", "11.4.1"])
def test_trt10_and_11_have_no_uff_and_reject_non_onnx(gen, version):
    out = last_json(gen.run(ONNX, version))
    assert out["ok"] is False and out["errors"] == 1
    assert out["desc"].startswith("Failed to parse ONNX model")
    assert out["has_uff"] is False and out["has_uff_parser"] is False


def test_device_description_errors_name_the_file(gen):
    result = gen.run("import tensorrt", "8.2.1.8", check=False,
                     extra_env={"SIMJETSON_DEVICE": "/nonexistent/device.json"})
    assert result.returncode != 0
    assert "/nonexistent/device.json: not found" in result.stderr


def test_tree_and_device_must_agree(gen):
    result = gen.run("import tensorrt", "8.2.1.8", check=False,
                     extra_env={"PYTHONPATH": str(layout.site_packages_dir("trt7"))})
    assert "this dist-packages tree is trt7" in result.stderr


def test_enums_print_like_pybind(gen):
    out = last_json(gen.run(
        "import json, tensorrt as trt\n"
        "print(json.dumps([str(trt.DataType.FLOAT), str(trt.Logger.WARNING), "
        "int(trt.BuilderFlag.FP16), str(trt.TensorIOMode.INPUT)]))", "8.5.2.2"))
    assert out == ["DataType.FLOAT", "Severity.WARNING", 0, "TensorIOMode.INPUT"]
