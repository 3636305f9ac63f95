"""The TensorRT 11 double: strongly typed only, and the calls 11 removed are gone.

What 11 removed and what it kept is the 11.x column of docs/reference/tensorrt-python-api.yaml
(NVIDIA's 10.x -> 11.x migration guide, the 11.0/11.1 binding sources). Each removed call is
probed on 11 (AttributeError, as the real bindings) and on 10.3 (still there), and an engine's
precision follows its ONNX's tensor types.
"""

import json

import numpy as np
import pytest
from jetpack_harness import last_json
from onnx import TensorProto, helper, numpy_helper
from test_jetpack_onnx_parser import _nms_model

# name -> an expression that touches it (trt, builder, config, network, engine in scope).
REMOVED_IN_11 = {
    "BuilderFlag.FP16": "trt.BuilderFlag.FP16",
    "BuilderFlag.INT8": "trt.BuilderFlag.INT8",
    "BuilderFlag.BF16": "trt.BuilderFlag.BF16",
    "BuilderFlag.OBEY_PRECISION_CONSTRAINTS": "trt.BuilderFlag.OBEY_PRECISION_CONSTRAINTS",
    "BuilderFlag.PREFER_PRECISION_CONSTRAINTS": "trt.BuilderFlag.PREFER_PRECISION_CONSTRAINTS",
    "NetworkDefinitionCreationFlag.EXPLICIT_BATCH":
        "trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH",
    "Builder.platform_has_fast_fp16": "builder.platform_has_fast_fp16",
    "Builder.platform_has_fast_int8": "builder.platform_has_fast_int8",
    "IInt8Calibrator": "trt.IInt8Calibrator",
    "IInt8EntropyCalibrator2": "trt.IInt8EntropyCalibrator2",
    "IBuilderConfig.int8_calibrator": "config.int8_calibrator",
    "ICudaEngine.device_memory_size": "engine.device_memory_size",
    "ICudaEngine.has_implicit_batch_dimension": "engine.has_implicit_batch_dimension",
    "UffParser": "trt.UffParser",
}
KEPT_IN_11 = {
    "NetworkDefinitionCreationFlag.STRONGLY_TYPED":
        "int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)",
    "ICudaEngine.device_memory_size_v2": "engine.device_memory_size_v2",
    "BuilderFlag.GPU_FALLBACK": "int(trt.BuilderFlag.GPU_FALLBACK)",
    "BuilderFlag.TF32": "int(trt.BuilderFlag.TF32)",
    "Builder.build_serialized_network": "builder.build_serialized_network",
    "IBuilderConfig.set_memory_pool_limit": "config.set_memory_pool_limit",
    "IPluginCreator": "trt.IPluginCreator",
    "OnnxParser": "trt.OnnxParser",
}

PROBE = r"""
import json, warnings
import tensorrt as trt
exprs = json.loads(input())
logger = trt.Logger(trt.Logger.ERROR)
builder = trt.Builder(logger)
config = builder.create_builder_config()
network = builder.create_network(0)
header = {"bindings": [], "max_batch_size": 1, "implicit_batch": False, "plugins": []}
engine = trt.ICudaEngine(b"", header, logger)
report = {}
for name, expr in exprs.items():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            value = eval(expr)
            report[name] = {"ok": True, "value": value if isinstance(value, int) else None}
        except AttributeError as error:
            report[name] = {"ok": False, "error": str(error)}
    report[name]["warnings"] = [str(w.message) for w in caught
                                if issubclass(w.category, DeprecationWarning)]
print(json.dumps(report))
"""


def probe(gen, version, exprs):
    return last_json(gen.run(PROBE, version, input=json.dumps(exprs)))


def test_removed_calls_raise_attribute_error_on_11(gen):
    report = probe(gen, "11.4.1", dict(REMOVED_IN_11, **KEPT_IN_11))
    refused = sorted(name for name in REMOVED_IN_11 if not report[name]["ok"])
    assert refused == sorted(REMOVED_IN_11)
    for name in REMOVED_IN_11:
        assert report[name]["error"], name
    assert all(report[name]["ok"] for name in KEPT_IN_11), report
    # STRONGLY_TYPED is 0 in 11 (1 in 10.x): code must not hard-code its bit.
    assert report["NetworkDefinitionCreationFlag.STRONGLY_TYPED"]["value"] == 0


def test_the_same_calls_work_on_10(gen):
    removed = dict(REMOVED_IN_11)
    del removed["UffParser"]  # gone since 10.0
    report = probe(gen, "10.3.0", removed)
    assert all(report[name]["ok"] for name in removed), report
    report = probe(gen, "10.3.0", {"flag": KEPT_IN_11[
        "NetworkDefinitionCreationFlag.STRONGLY_TYPED"]})
    assert report["flag"]["value"] == 1


@pytest.mark.parametrize(("version", "v1", "v1_warns", "v2"), [
    ("10.0.1", True, False, False),   # device_memory_size_v2 came with 10.1
    ("10.3.0", True, True, True),     # device_memory_size warns from 10.1
    ("10.16.2", True, True, True),
    ("11.4.1", False, False, True),   # and is gone in 11
    ("8.6.2", True, False, False),
])
def test_device_memory_size_per_version(gen, version, v1, v1_warns, v2):  # noqa: PLR0917
    report = probe(gen, version, {"v1": "engine.device_memory_size",
                                  "v2": "engine.device_memory_size_v2",
                                  "calibrator": "config.int8_calibrator"})
    assert report["v1"]["ok"] is v1 and report["v2"]["ok"] is v2
    assert bool(report["v1"]["warnings"]) is v1_warns
    if v1_warns:
        assert report["v1"]["warnings"] == [
            "Use Deprecated in TensorRT 10.1. Superseded by get_device_memory_size_v2 instead."]
        assert report["calibrator"]["warnings"] == [
            "Use Deprecated in TensorRT 10.1. Superseded by explicit quantization. instead."]


PLUGINS = r"""
import json
import tensorrt as trt
logger = trt.Logger(trt.Logger.ERROR)
trt.init_libnvinfer_plugins(logger, "")
print(json.dumps(sorted(c.name for c in trt.get_plugin_registry().plugin_creator_list)))
"""


def test_plugins_of_11(gen):
    """11.0 removed the nms, normalize, clip, leakyRelu (and batchedNMS) plugins; the V2
    plugins it kept, EfficientNMS_TRT among them, are deprecated but registered."""
    eleven = last_json(gen.run(PLUGINS, "11.4.1"))
    ten = last_json(gen.run(PLUGINS, "10.16.2"))
    assert "EfficientNMS_TRT" in eleven and "EfficientNMS_TRT" in ten
    assert sorted(set(ten) - set(eleven)) == ["BatchedNMS_TRT", "Clip_TRT", "LReLU_TRT",
                                              "NMS_TRT", "Normalize_TRT"]


# -- the typing rule ----------------------------------------------------------------

def _cast_model(fp16):
    """x (float32) -> Conv -> Relu -> y (float32); with ``fp16`` the conv and relu run in
    float16 between two Casts, as an ONNX converted with its I/O types kept."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 8, 8])
    dtype = np.float16 if fp16 else np.float32
    weights = numpy_helper.from_array(np.ones((4, 3, 1, 1), dtype), "weights")
    nodes = []
    source = "x"
    if fp16:
        nodes.append(helper.make_node("Cast", ["x"], ["x16"], name="to16",
                                      to=TensorProto.FLOAT16))
        source = "x16"
    nodes.append(helper.make_node("Conv", [source, "weights"], ["conv"], name="conv"))
    nodes.append(helper.make_node("Relu", ["conv"], ["relu" if fp16 else "y"], name="relu"))
    if fp16:
        nodes.append(helper.make_node("Cast", ["relu"], ["y"], name="to32",
                                      to=TensorProto.FLOAT))
    graph = helper.make_graph(nodes, "cast", [x], [y], initializer=[weights])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


BUILD = r"""
import json
import tensorrt as trt
args = json.loads(input())
logger = trt.Logger(trt.Logger.WARNING)
trt.init_libnvinfer_plugins(logger, "")
builder = trt.Builder(logger)
flags = 0
if args["strongly_typed"]:
    flags = 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
network = builder.create_network(flags)
parser = trt.OnnxParser(network, logger)
assert parser.parse_from_file(args["path"]), [str(parser.get_error(i))
                                              for i in range(parser.num_errors)]
config = builder.create_builder_config()
config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, 1 << 26)
if args["fp16_flag"]:
    config.set_flag(trt.BuilderFlag.FP16)
dtypes = sorted({str(network.get_layer(i).get_output(0).dtype)
                 for i in range(network.num_layers)})
plan = builder.build_serialized_network(network, config)
out = {"built": plan is not None, "dtypes": dtypes}
if plan is not None:
    first, header = bytes(plan).split(b"\n", 2)[:2]
    out["first_line"] = first.decode()
    out["header"] = json.loads(header)
print(json.dumps(out))
"""


def build(gen, tmp_path, version, *, fp16, strongly_typed=False, fp16_flag=False):
    path = tmp_path / ("fp16.onnx" if fp16 else "fp32.onnx")
    path.write_bytes(_cast_model(fp16).SerializeToString())
    result = gen.run(BUILD, version, input=json.dumps(
        {"path": str(path), "strongly_typed": strongly_typed, "fp16_flag": fp16_flag}))
    return last_json(result), result.stdout + result.stderr


@pytest.mark.parametrize(("fp16", "precision"), [(False, "fp32"), (True, "fp16")])
def test_engine_precision_follows_the_onnx_types_on_11(gen, tmp_path, fp16, precision):
    verdict, _log = build(gen, tmp_path, "11.4.1", fp16=fp16)
    assert verdict["built"] is True
    assert verdict["first_line"].startswith("SIMULATED TensorRT engine plan")
    header = verdict["header"]
    assert (header["precision"], header["typing"], header["precision_source"]) == (
        precision, "strong", "tensor types")
    assert ("DataType.HALF" in verdict["dtypes"]) is fp16


def test_strongly_typed_on_10_when_asked(gen, tmp_path):
    verdict, _log = build(gen, tmp_path, "10.16.2", fp16=True, strongly_typed=True)
    assert (verdict["header"]["precision"], verdict["header"]["typing"]) == ("fp16", "strong")
    weak, _log = build(gen, tmp_path, "10.16.2", fp16=False, fp16_flag=True)
    assert (weak["header"]["precision"], weak["header"]["typing"],
            weak["header"]["precision_source"]) == ("fp16", "weak", "builder flags")


def test_strongly_typed_network_refuses_the_fp16_flag_on_10(gen, tmp_path):
    verdict, log = build(gen, tmp_path, "10.3.0", fp16=True, strongly_typed=True,
                         fp16_flag=True)
    assert verdict["built"] is False
    assert ("IBuilder::buildSerializedNetwork: Error Code 3: API Usage Error (Parameter check "
            "failed, condition: !config.getFlag(BuilderFlag::kFP16). )") in log


def test_efficient_nms_onnx_builds_on_11(gen, tmp_path):
    path = tmp_path / "nms.onnx"
    path.write_bytes(_nms_model().SerializeToString())
    result = gen.run(BUILD, "11.4.1", input=json.dumps(
        {"path": str(path), "strongly_typed": False, "fp16_flag": False}))
    verdict = last_json(result)
    assert verdict["built"] is True
    assert [p["op"] for p in verdict["header"]["plugins"]] == ["EfficientNMS_TRT"]
    assert verdict["header"]["precision"] == "fp32"
