"""Unit tests of the surgery's parts: GraphDef edits and the pipeline.config reader."""

from __future__ import annotations

import pytest

from builder.errors import UserError
from builder.graph import edit as graph_edit
from builder.graph.tfcompat import new_graph_def, new_node
from builder.spec.pipeline_config import read_anchor_settings


def make_graph(spec):
    """[(name, op, [inputs])] -> GraphDef."""
    graph_def = new_graph_def()
    for name, op, inputs in spec:
        node = new_node(name, op)
        node.input.extend(inputs)
        graph_def.node.extend([node])
    return graph_def


def inputs_of(graph_def):
    return {node.name: list(node.input) for node in graph_def.node}


def test_collapse_keeps_external_inputs_in_graph_order():
    graph_def = make_graph([
        ("a", "Const", []), ("b", "Const", []), ("c", "Const", []),
        ("P/x", "Mul", ["b", "a:0"]), ("P/y", "Add", ["P/x", "c", "b"]),
        ("user", "Relu", ["P/y:1", "P/x"]),
    ])
    plugin = new_node("Plug", "Plugin_TRT")
    graph_edit.collapse_namespaces(graph_def, {"P": plugin})
    assert inputs_of(graph_def) == {"a": [], "b": [], "c": [], "user": ["Plug"],
                                    "Plug": ["b", "a:0", "c"]}
    assert [n.name for n in graph_def.node][-1] == "Plug"


def test_collapse_prefers_the_longest_namespace_and_matches_whole_components():
    graph_def = make_graph([("A/B/x", "Const", []), ("A/y", "Neg", ["A/B/x"]),
                            ("AB", "Neg", ["A/y"])])
    outer, inner = new_node("Outer", "X"), new_node("Inner", "Y")
    graph_edit.collapse_namespaces(graph_def, {"A": outer, "A/B": inner})
    assert inputs_of(graph_def) == {"AB": ["Outer"], "Outer": ["Inner"], "Inner": []}


def test_remove_with_exclusive_inputs_keeps_shared_ones():
    graph_def = make_graph([
        ("shared", "Const", []), ("only", "Const", []),
        ("check", "Assert", ["only", "shared"]), ("id", "Identity", ["shared", "^check"]),
    ])
    removed = graph_edit.remove_with_exclusive_inputs(graph_def, ["check"])
    assert removed == {"check", "only"}
    assert inputs_of(graph_def) == {"shared": [], "id": ["shared"]}


def test_forward_inputs_skips_nodes_with_control_inputs():
    graph_def = make_graph([
        ("x", "Const", []), ("gate", "NoOp", []),
        ("i1", "Identity", ["x:1"]), ("i2", "Identity", ["i1"]),
        ("held", "Identity", ["x", "^gate"]), ("use", "Add", ["i2", "held", "^i1"]),
    ])
    assert graph_edit.forward_inputs(graph_def, ["i1", "i2", "held"]) == {"i1", "i2"}
    assert inputs_of(graph_def)["use"] == ["x:1", "held", "^x"]


def test_keep_reachable_and_dangling_inputs():
    graph_def = make_graph([("a", "Const", []), ("b", "Neg", ["a"]), ("dead", "Neg", ["a"]),
                            ("out", "Neg", ["b", "ghost"])])
    graph_edit.keep_reachable(graph_def, ["out"])
    assert [n.name for n in graph_def.node] == ["a", "b", "out"]
    assert graph_edit.dangling_inputs(graph_def) == [("out", "ghost")]


PIPELINE = """
model {
  ssd {
    num_classes: 2  # hands + something
    image_resizer { fixed_shape_resizer { height: 300 width: 300 } }
    anchor_generator {
      ssd_anchor_generator {
        num_layers: 6
        min_scale: 0.05
        max_scale: 0.95
        aspect_ratios: 1.0
        aspect_ratios: 2.0
        aspect_ratios: 0.5
      }
    }
    feature_extractor { type: "ssd_mobilenet_v1" }
  }
}
train_config: { batch_size: 24 }
"""


def test_pipeline_config_anchor_settings(tmp_path):
    path = tmp_path / "pipeline.config"
    path.write_text(PIPELINE)
    settings = read_anchor_settings(str(path))
    assert settings.min_scale == 0.05 and settings.max_scale == 0.95
    assert settings.aspect_ratios == [1.0, 2.0, 0.5]
    assert settings.num_layers == 6 and settings.reduce_boxes_in_lowest_layer is True
    assert settings.num_classes == 3  # background added
    assert settings.image_size == (300, 300)


@pytest.mark.parametrize("text, message", [
    ("model { ssd { num_classes: 3 } }", "no ssd_anchor_generator block"),
    ("model { ssd { anchor_generator { ssd_anchor_generator { min_scale: 0.2 } } } }",
     "has no aspect_ratios"),
    ("model { ssd { ", "never closed"),
    ("model { ssd { anchor_generator { ssd_anchor_generator { aspect_ratios: 1.0 "
     "min_scale: big } } } }", "min_scale is 'big', not a number"),
])
def test_pipeline_config_errors_name_the_file(tmp_path, text, message):
    path = tmp_path / "pipeline.config"
    path.write_text(text)
    with pytest.raises(UserError) as error:
        read_anchor_settings(str(path))
    assert message in str(error.value) and str(path) in str(error.value)
