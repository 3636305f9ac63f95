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
node = gs.create_plugin_node("P", op="Foo_TRT", numClasses=3, ratios=[1.0, 0.5], flag=True)
out["attrs"] = {k: node.attr[k].WhichOneof("value") for k in node.attr}
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
    assert out["attrs"] == {"dtype": "type", "numClasses": "i", "ratios": "list", "flag": "b"}
    assert "SIMULATED" in out["uff_head"] and "SIMULATED" in out["pbtxt"]
    assert out["missing"].startswith("nope was not found in the graph")
    assert out["uff_version"] == "0.6.9"
