"""graphsurgeon edits and the uff converter's outputs (real TensorFlow protos)."""

from jetpack_harness import last_json

SURGERY = r"""
import json, os
import tensorflow as tf
import graphsurgeon as gs
import uff
tf1 = tf.compat.v1
g = tf1.Graph()
with g.as_default():
    x = tf1.placeholder(tf.float32, [1, 4], name="x")
    a = tf.identity(x, name="a")
    b = tf.nn.relu(a, name="b")
    side = tf.identity(tf.constant(1.0, name="k"), name="side")
    tf.add(b, side, name="out")
dyn = gs.DynamicGraph(g.as_graph_def())
out = {"outputs": [n.name for n in dyn.graph_outputs],
       "inputs": [n.name for n in dyn.graph_inputs]}
dyn.forward_inputs(dyn.find_nodes_by_name("a"))
out["b_inputs"] = list(dyn.find_nodes_by_name("b")[0].input)
dyn.remove("side", remove_exclusive_dependencies=True)
out["left"] = sorted(n.name for n in dyn.as_graph_def().node)
node = gs.create_plugin_node("P", op="Foo_TRT", numClasses=3, ratios=[1.0, 0.5], flag=True,
                             label="cat", dtype=tf.float32)
out["attrs"] = {k: node.attr[k].WhichOneof("value") for k in node.attr}
plain = gs.create_node("Q", numClasses=3, ratios=[1, 2])
out["plain"] = {"op": plain.op, "attrs": {k: plain.attr[k].WhichOneof("value") for k in plain.attr}}
placeholder = gs.create_plugin_node("Input", op="Placeholder", shape=(1, 3, 8, 8), inputs=["x"])
out["shape"] = [d.size for d in placeholder.attr["shape"].shape.dim]
out["placeholder_inputs"] = list(placeholder.input)
try:
    gs.create_plugin_node("R", op="Foo_TRT", inputOrder=(0, 2, 1))
except TypeError as exc:
    out["tuple"] = str(exc)
data = uff.from_tensorflow(dyn.as_graph_def(), output_nodes=["b"], output_filename="m.uff",
                           text=True, quiet=True)
out["uff_head"] = data.split(b"\n", 1)[0].decode()
out["pbtxt"] = open("m.pbtxt").read().splitlines()[0]
try:
    uff.from_tensorflow(dyn.as_graph_def(), output_nodes=["nope"], quiet=True)
except uff.UffException as exc:
    out["missing"] = str(exc)
out["uff_version"] = uff.__version__
print(json.dumps(out))
"""


def test_graphsurgeon_and_uff(gen):
    out = last_json(gen.run(SURGERY, "7.1.3"))
    assert out["outputs"] == ["out"] and out["inputs"] == ["x"]
    assert out["b_inputs"] == ["x"]  # forward_inputs spliced a's input into b
    assert out["left"] == ["b", "out", "x"]  # side and its exclusive const k removed
    # graphsurgeon's plugin suffixes; a bool is an int to it; dtype keeps its name
    assert out["attrs"] == {"dtype": "type", "numClasses_u_int": "i", "ratios_u_flist": "list",
                            "flag_u_int": "i", "label_u_str": "s"}
    assert out["plain"] == {"op": "Q", "attrs": {"numClasses": "i", "ratios": "list"}}
    assert out["shape"] == [1, 3, 8, 8] and out["placeholder_inputs"] == ["x"]
    assert out["tuple"] == "Type: <class 'tuple'> unrecognized."
    assert "SIMULATED" in out["uff_head"] and "SIMULATED" in out["pbtxt"]
    assert out["missing"].startswith("nope was not found in the graph")
    assert out["uff_version"] == "0.6.9"
