"""The SIMULATED OnnxParser reads real ONNX files: operator tables, plugins, EfficientNMS rules.

Each case writes a small ONNX model with the real `onnx` package, then parses it in a
subprocess that sees one TensorRT generation's doubles.
"""

import json

import numpy as np
import onnx
import pytest
from jetpack_harness import last_json
from onnx import TensorProto, helper, numpy_helper

PARSE = r"""
import json, sys
import tensorrt as trt
logger = trt.Logger(trt.Logger.WARNING)
args = json.loads(input())
builder = trt.Builder(logger)
if args["plugins"]:
    trt.init_libnvinfer_plugins(logger, "")
flags = 0 if int(trt.__version__.split(".")[0]) >= 10 or not args["explicit"] else (
    1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH))
network = builder.create_network(flags)
parser = trt.OnnxParser(network, logger)
ok = parser.parse_from_file(args["path"])
errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
outputs = [{"name": network.get_output(i).name, "shape": list(network.get_output(i).shape),
            "dtype": str(network.get_output(i).dtype)} for i in range(network.num_outputs)]
built = None
if ok:
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, 1 << 26)
    built = builder.build_serialized_network(network, config) is not None
print(json.dumps({"ok": bool(ok), "errors": errors, "outputs": outputs, "built": built}))
"""

N, C, K = 6, 3, 4


def _nms_model(*, anchors_count=N, scores_type=TensorProto.FLOAT, plugin_version="1",
               box_coding=1, opset=13, extra_node=None):
    boxes = helper.make_tensor_value_info("boxes", TensorProto.FLOAT, [1, N, 4])
    scores = helper.make_tensor_value_info("scores", scores_type, [1, N, C])
    anchors = numpy_helper.from_array(np.ones((1, anchors_count, 4), np.float32), "anchors")
    outputs = [
        helper.make_tensor_value_info("num_detections", TensorProto.INT32, [1, 1]),
        helper.make_tensor_value_info("detection_boxes", TensorProto.FLOAT, [1, K, 4]),
        helper.make_tensor_value_info("detection_scores", TensorProto.FLOAT, [1, K]),
        helper.make_tensor_value_info("detection_classes", TensorProto.INT32, [1, K]),
    ]
    nodes = [helper.make_node("Sigmoid", ["scores"], ["activated"], name="sigmoid")]
    if extra_node is not None:
        nodes.append(extra_node)
    nodes.append(helper.make_node(
        "EfficientNMS_TRT", ["boxes", "activated", "anchors"],
        [o.name for o in outputs], name="nms", plugin_version=plugin_version,
        score_threshold=0.1, iou_threshold=0.5, max_output_boxes=K, background_class=0,
        score_activation=0, class_agnostic=0, box_coding=box_coding))
    graph = helper.make_graph(nodes, "nms", [boxes, scores], outputs, initializer=[anchors])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _mod_model():
    """Mod: 'N' in the TensorRT 8.4 table, 'Y' in 10.x."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    divisor = numpy_helper.from_array(np.full((1, 4), 3.0, np.float32), "divisor")
    node = helper.make_node("Mod", ["x", "divisor"], ["y"], name="remainder", fmod=1)
    graph = helper.make_graph([node], "mod", [x], [y], initializer=[divisor])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def parse(gen, tmp_path, model, version, *, plugins=True, explicit=True, raw=None):
    path = tmp_path / "model.onnx"
    path.write_bytes(raw if raw is not None else model.SerializeToString())
    args = {"path": str(path), "plugins": plugins, "explicit": explicit}
    result = gen.run(PARSE, version, input=json.dumps(args))
    return last_json(result), result.stdout + result.stderr


@pytest.mark.parametrize("version", ["8.4.1.5", "8.6.2", "10.3.0", "11.4.1"])
def test_efficient_nms_parses_and_builds(gen, tmp_path, version):
    verdict, _log = parse(gen, tmp_path, _nms_model(), version)
    assert verdict["ok"] is True and verdict["built"] is True, verdict
    assert [(o["name"], o["shape"]) for o in verdict["outputs"]] == [
        ("num_detections", [1, 1]), ("detection_boxes", [1, K, 4]),
        ("detection_scores", [1, K]), ("detection_classes", [1, K])]
    assert [o["dtype"].rsplit(".", 1)[-1] for o in verdict["outputs"]] == [
        "INT32", "FLOAT", "FLOAT", "INT32"]


def test_plugin_not_registered_without_init_libnvinfer_plugins(gen, tmp_path):
    verdict, log = parse(gen, tmp_path, _nms_model(), "8.5.2.2", plugins=False)
    assert verdict["ok"] is False
    assert verdict["errors"] == ['In node 1 (importFallbackPluginImporter): UNSUPPORTED_NODE: '
                                 'Assertion failed: creator && "Plugin not found, are the '
                                 'plugin name, version, and namespace correct?"']
    assert 'While parsing node number 1 [EfficientNMS_TRT -> "num_detections"]' in log


def test_plugin_version_must_exist(gen, tmp_path):
    verdict, _log = parse(gen, tmp_path, _nms_model(plugin_version="2"), "10.3.0")
    assert verdict["ok"] is False
    assert "In node 1 with name: nms and operator: EfficientNMS_TRT" in verdict["errors"][0]
    assert "Plugin not found" in verdict["errors"][0]


def test_anchor_count_must_equal_the_boxes(gen, tmp_path):
    verdict, _log = parse(gen, tmp_path, _nms_model(anchors_count=N + 1), "8.6.2")
    assert verdict["ok"] is False
    assert "anchors N ({}) == boxes N ({})".format(N + 1, N) in verdict["errors"][0]


def test_scores_must_be_float(gen, tmp_path):
    model = _nms_model(scores_type=TensorProto.INT32)
    model.graph.node[0].op_type = "Identity"  # keep the int32 scores up to the plugin
    verdict, _log = parse(gen, tmp_path, model, "10.3.0")
    assert verdict["ok"] is False
    assert "input activated is float32 or float16 (got int32)" in verdict["errors"][0]


def test_box_coding_is_checked(gen, tmp_path):
    verdict, _log = parse(gen, tmp_path, _nms_model(box_coding=2), "8.4.1.5")
    assert verdict["ok"] is False
    assert "mParam.boxCoding == 0 || mParam.boxCoding == 1" in verdict["errors"][0]


@pytest.mark.parametrize(("version", "parsed"), [("8.5.2.2", False), ("10.3.0", True)])
def test_operator_tables_per_version(gen, tmp_path, version, parsed):
    verdict, log = parse(gen, tmp_path, _mod_model(), version)
    assert verdict["ok"] is parsed, verdict
    if not parsed:
        assert "In node 0 (importFallbackPluginImporter): UNSUPPORTED_NODE" in verdict["errors"][0]
        assert 'While parsing node number 0 [Mod -> "y"]' in log


def test_opset_range(gen, tmp_path):
    model = _nms_model(opset=17)
    old, _log = parse(gen, tmp_path, model, "8.4.1.5")
    assert old["ok"] is False and "Unsupported ONNX opset 17" in old["errors"][0]
    new, _log = parse(gen, tmp_path, model, "10.3.0")
    assert new["ok"] is True, new


def test_not_an_onnx_file(gen, tmp_path):
    verdict, _log = parse(gen, tmp_path, None, "10.3.0", raw=b"SIMULATED UFF graph\n{}")
    assert verdict["ok"] is False
    assert "MODEL_DESERIALIZE_FAILED" in verdict["errors"][0]


def test_implicit_batch_network_is_refused(gen, tmp_path):
    verdict, _log = parse(gen, tmp_path, _nms_model(), "8.5.2.2", explicit=False)
    assert verdict["ok"] is False
    assert "explicit batch dimension" in verdict["errors"][0]


def test_models_here_are_valid_onnx():
    # The cases above are real ONNX (the checker accepts the standard part).
    onnx.checker.check_model(_mod_model())
