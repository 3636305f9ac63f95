"""The nodes the reference recipe put into the graph, encoded the way graphsurgeon does.

graphsurgeon.create_plugin_node stores each field as an attribute named
``<field>_u_<kind>`` (int, float, ilist, flist, str); the uff converter turns those into
the TensorRT plugin fields. Names (Input, NMS, concat_box_loc, ...) are those of the
recipe, which existing consumers and the UffParser registration expect.
"""

import numpy

from ..graph.tfcompat import float_dtype_enum, new_node, set_const_value

INPUT = "Input"
NMS = "NMS"
GRID_ANCHOR = "MultipleGridAnchorGenerator"
CONCAT_PRIORBOX = "concat_priorbox"
CONCAT_BOX_LOC = "concat_box_loc"
CONCAT_BOX_CONF = "concat_box_conf"
ANCHOR_INPUT = "AnchorInput"


def _set_plugin_field(node, key, value):
    attr = node.attr
    if isinstance(value, (bool, int)):
        attr[key + "_u_int"].i = int(value)
    elif isinstance(value, float):
        attr[key + "_u_float"].f = value
    elif isinstance(value, (list, tuple)):
        if any(isinstance(item, float) for item in value):
            attr[key + "_u_flist"].list.f.extend(float(item) for item in value)
        else:
            attr[key + "_u_ilist"].list.i.extend(int(item) for item in value)
    elif isinstance(value, str):
        attr[key + "_u_str"].s = value.encode("utf-8")
    else:
        raise TypeError("plugin field {}: unsupported value {!r}".format(key, value))


def plugin_node(name, op, fields):
    """A plugin NodeDef; ``fields`` is a list of (field name, value)."""
    node = new_node(name, op)
    for key, value in fields:
        _set_plugin_field(node, key, value)
    return node


def input_placeholder(input_dims):
    """``Input``: float placeholder [1, C, H, W] (the UffParser registers it as CHW)."""
    node = new_node(INPUT, "Placeholder")
    node.attr["dtype"].type = float_dtype_enum()
    for size in [1] + list(input_dims):
        node.attr["shape"].shape.dim.add(size=int(size))
    return node


def grid_anchor(min_size, max_size, aspect_ratios, variance, feature_map_shapes):
    """GridAnchor_TRT. The surgery passes the graph's own anchor settings, once
    builder/graph/anchors.py has checked that the plugin's boxes reproduce the graph's."""
    return plugin_node(GRID_ANCHOR, "GridAnchor_TRT", [
        ("minSize", float(min_size)),
        ("maxSize", float(max_size)),
        ("aspectRatios", [float(r) for r in aspect_ratios]),
        ("variance", [float(v) for v in variance]),
        ("featureMapShapes", [int(s) for s in feature_map_shapes]),
        ("numLayers", len(feature_map_shapes)),
    ])


def nms(num_classes, input_order, *, confidence_threshold, nms_threshold, top_k, keep_top_k):
    return plugin_node(NMS, "NMS_TRT", [
        ("shareLocation", 1),
        ("varianceEncodedInTarget", 0),
        ("backgroundLabelId", 0),
        ("confidenceThreshold", float(confidence_threshold)),
        ("nmsThreshold", float(nms_threshold)),
        ("topK", int(top_k)),
        ("keepTopK", int(keep_top_k)),
        ("numClasses", int(num_classes)),
        ("inputOrder", [int(i) for i in input_order]),
        ("confSigmoid", 1),
        ("isNormalized", 1),
    ])


def set_input_order(node, input_order):
    """Fill NMS inputOrder once the NMS node's inputs are known."""
    values = node.attr["inputOrder_u_ilist"].list.i
    del values[:]
    values.extend(int(i) for i in input_order)


def flatten_concat(name, with_axis_fields):
    """FlattenConcat_TRT; TensorRT >= 7's built-in plugin wants axis=1, ignoreBatch=0."""
    fields = [("axis", 1), ("ignoreBatch", 0)] if with_axis_fields else []
    return plugin_node(name, "FlattenConcat_TRT", fields)


def priorbox_concat():
    """A plain ConcatV2 on axis 2 (graphsurgeon.create_node: no field suffix)."""
    node = new_node(CONCAT_PRIORBOX, "ConcatV2")
    node.attr["axis"].i = 2
    return node


def anchor_input():
    """Const input for a GridAnchor node that got none (all-constant anchor generators)."""
    node = new_node(ANCHOR_INPUT, "Const")
    set_const_value(node, numpy.array([1.0, 1.0], dtype=numpy.float32))
    return node
