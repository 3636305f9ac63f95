"""Plugin fields (graphsurgeon `_u_<type>` suffixes -> typed UFF fields) and parse-time
folding of the Shape -> StridedSlice -> Pack shapes Object Detection API exports have."""

import json
from pathlib import Path

import layout
import pytest
from jetpack_harness import last_json
from test_jetpack_pipeline import build

NMS_INPUT_ORDER = ("Assertion `numPriors * numLocClasses * 4 == "
                   "inputDims[param.inputOrder[0]].d[0]' failed.")
NMS_NUM_CLASSES = ("Assertion `numPriors * param.numClasses == "
                   "inputDims[param.inputOrder[1]].d[0]' failed.")


def uff_graph(path):
    head, _, body = path.read_text().partition("\n")
    assert head.startswith("SIMULATED UFF graph")
    return json.loads(body)


def uff_nodes(path):
    return {node["name"]: node for node in uff_graph(path)["nodes"]}


def test_suffixes_become_typed_fields(uff_files):
    nodes = uff_nodes(uff_files["good"])
    nms, anchors = nodes["NMS"], nodes["GridAnchor"]
    assert nms["op"] == "_NMS_TRT"
    assert nms["attrs"]["numClasses"] == 3 and nms["attrs"]["inputOrder"] == [0, 2, 1]
    assert nms["attrs"]["confidenceThreshold"] == pytest.approx(1e-8)
    assert nms["field_types"]["numClasses"] == "int"
    assert nms["field_types"]["inputOrder"] == "ilist"
    assert nms["field_types"]["nmsThreshold"] == "float"
    assert anchors["field_types"]["aspectRatios"] == "flist"
    assert anchors["field_types"]["featureMapShapes"] == "ilist"
    assert anchors["attrs"]["featureMapShapes"] == [19, 10]
    for node in (nms, anchors):
        assert not [key for key in node["attrs"] if "_u_" in key]
    text = uff_files["good"].with_suffix(".pbtxt").read_text()
    assert 'fields { key: "numClasses" value: { i: 3 } }' in text
    assert 'fields { key: "inputOrder" value: { i_list: [0, 2, 1] } }' in text


def test_unsuffixed_fields_get_the_same_types(uff_files):
    suffixed, plain = uff_nodes(uff_files["good"]), uff_nodes(uff_files["good_plain"])
    for name in ("NMS", "GridAnchor"):
        assert plain[name]["attrs"] == suffixed[name]["attrs"]
        assert plain[name]["field_types"] == suffixed[name]["field_types"]


def test_plain_plugin_fields_build(gen, uff_files):
    verdict, _ = build(gen, uff_files["good_plain"], "8.2.1.8")
    assert verdict["built"] is True


@pytest.mark.parametrize("variant", ["order_bad", "order_bad_plain"])
def test_nms_input_order_from_fields(gen, uff_files, variant):
    verdict, log = build(gen, uff_files[variant], "8.2.1.8", check_built=False)
    assert verdict["parsed"] is True and verdict["built"] is False
    assert NMS_INPUT_ORDER in log


@pytest.mark.parametrize("variant", ["classes_bad", "classes_bad_plain"])
def test_nms_num_classes_from_fields(gen, uff_files, variant):
    verdict, log = build(gen, uff_files[variant], "7.1.3", check_built=False)
    assert verdict["parsed"] is True and verdict["built"] is False
    assert NMS_NUM_CLASSES in log


RECIPE_ATTRS = r"""
import json
import graphsurgeon as gs
import jetpack_ssd as f
nodes = {n.name: n for n in f.reference_recipe(f.mini_ssd()).node}
plain = {n.name: n for n in f.reference_recipe(f.mini_ssd(), suffixed=False).node}
print(json.dumps({"suffixed": sorted(nodes["NMS"].attr), "plain": sorted(plain["NMS"].attr),
                  "ops": sorted({n.op for n in nodes.values()})}))
"""


def test_recipe_graph_carries_suffixed_names(gen):
    """The NMS fields really reach uff with graphsurgeon's suffixes (and without them)."""
    site = layout.site_packages_dir("trt8_0")
    out = last_json(gen.run(RECIPE_ATTRS, "8.2.1.8", extra_env={"PYTHONPATH": "{}:{}".format(
        site, Path(__file__).resolve().parent)}))
    assert "inputOrder_u_ilist" in out["suffixed"] and "numClasses_u_int" in out["suffixed"]
    assert "confidenceThreshold_u_float" in out["suffixed"]
    assert "inputOrder" in out["plain"] and "numClasses" in out["plain"]
    assert {"Shape", "StridedSlice", "Pack"} <= set(out["ops"])


def test_box_predictor_shapes_are_folded(uff_files):
    nodes = uff_nodes(uff_files["good"])
    shape_input = nodes["BoxPredictor_0/Reshape"]["inputs"][1]
    assert nodes[shape_input]["op"] == "Pack"
    assert {nodes[ref]["op"] for ref in nodes[shape_input]["inputs"]} == {"StridedSlice", "Const"}


FOLDING = r"""
import json
import numpy as np
import tensorflow as tf
import tensorrt as trt
import uff
tf1 = tf.compat.v1

def parse(make_shape):
    graph = tf1.Graph()
    with graph.as_default():
        x = tf1.placeholder(tf.float32, [1, 4, 4, 2], name="Input")
        y = tf.nn.relu(x, name="y")
        batch = tf.raw_ops.Shape(input=y, name="shape")[0]
        tf.reshape(y, make_shape(y, batch), name="out")
    data = uff.from_tensorflow(graph.as_graph_def(), output_nodes=["out"], quiet=True)
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.UffParser()
    parser.register_input("Input", (4, 4, 2), trt.UffInputOrder.NHWC)
    parser.register_output("MarkOutput_0")
    ok = parser.parse_buffer(data, network)
    result = {"parsed": ok}
    if ok:
        result["shape"] = list(network.get_output(0).shape)
        result["layers"] = [network.get_layer(i).name for i in range(network.num_layers)]
    return result

out = {
    "batch_first": parse(lambda y, n: tf.stack([n, -1, 4])),
    "hw_from_shape": parse(lambda y, n: tf.stack(
        [n, tf.raw_ops.Shape(input=y)[1] * 1, -1])),
    "batch_moved": parse(lambda y, n: tf.stack([-1, n])),
    "sliced_dims": parse(lambda y, n: tf.raw_ops.Shape(input=y)),
}
print(json.dumps(out))
"""


def test_shape_computations_fold_into_reshape(gen):
    result = gen.run(FOLDING, "8.2.1.8")
    out, log = last_json(result), result.stdout + result.stderr
    assert out["batch_first"] == {"parsed": True, "shape": [8, 4], "layers": ["y", "out"]}
    assert out["sliced_dims"]["shape"] == [4, 4, 2]  # TF order of the NHWC input, batch dropped
    assert out["batch_moved"] == {"parsed": False}
    assert "out: Reshape moves the batch dimension ([-1, N])" in log
    assert out["hw_from_shape"] == {"parsed": False}  # Mul is a layer, not a foldable shape
    assert "Mul output is not a constant" in log


STRIDED_SLICE_MASK = r"""
import json
import tensorflow as tf
import uff
tf1 = tf.compat.v1
graph = tf1.Graph()
with graph.as_default():
    x = tf1.placeholder(tf.float32, [1, 4, 4, 2], name="Input")
    tf.identity(x[..., 0], name="out")
try:
    uff.from_tensorflow(graph.as_graph_def(), output_nodes=["out"], quiet=True)
    print(json.dumps("converted"))
except ValueError as exc:
    print(json.dumps(str(exc)))
"""


def test_converter_refuses_ellipsis_slices(gen):
    assert last_json(gen.run(STRIDED_SLICE_MASK, "8.2.1.8")) == "ellipsis_mask not supported"

