"""Structural facts of an SSD frozen graph (TF Object Detection API export), for tests.

``structural_facts(graph_def)`` reads, the same way from any graph (generated or
genuine), what the tools depend on:

- ``cut_points``: op, inputs and consumers of Preprocessor/sub, concat, Squeeze, concat_1;
- ``preprocessing``: the arithmetic and resize ops from image_tensor to Preprocessor/sub,
  in order;
- ``score_path``: concat_1 -> scale_logits -> convert_scores -> raw_box_scores -> Slice;
- ``postprocessor_nodes``: op, inputs and consumers of the Postprocessor nodes around
  the box decoding, the score conversion and the clip window (Postprocessor/stack_1);
- ``identities``: the Identity nodes the exporter names (raw_* and the outputs);
- ``anchor_concat``: the anchor concat's node, op and inputs;
- ``nms``: how the Postprocessor suppresses (per class or not, how many NMS ops, their
  thresholds, FilterGreaterThan / ClipToWindow / SortByField scopes, where it clips).

``anchor_values(graph_def)`` evaluates the anchor concat with TensorFlow.

Ops that only TensorFlow versions spell differently are compared by one name (AddV2 ->
Add, FusedBatchNormV3 -> FusedBatchNorm): the generator writes either on request. Node
names are compared except inside FeatureExtractor/, whose layer names depend on the
backbone's implementation details the generator does not reproduce (op types are
compared there). Test code only.
"""

from __future__ import annotations

import re

import numpy as np

CUT_POINTS = ("Preprocessor/sub", "concat", "Squeeze", "concat_1")
ANCHOR_CONCATS = ("Concatenate/concat", "MultipleGridAnchorGenerator/Concatenate/concat")
SCORE_START = "concat_1"
IDENTITIES = ("Postprocessor/raw_box_encodings", "Postprocessor/raw_box_locations",
              "Postprocessor/raw_box_scores", "raw_detection_boxes", "raw_detection_scores",
              "detection_boxes", "detection_scores", "detection_classes", "num_detections")
POSTPROCESSOR_NODES = (
    "Postprocessor/raw_box_encodings", "Postprocessor/raw_box_locations",
    "Postprocessor/ExpandDims_1", "Postprocessor/scale_logits", "Postprocessor/convert_scores",
    "Postprocessor/raw_box_scores", "Postprocessor/Slice",
    "Postprocessor/ToFloat",  # the true image shapes (from the Preprocessor's map)
    "Postprocessor/stack_1",  # the clip window
    "Postprocessor/ToFloat_3",  # num_detections
)
OP_SPELLINGS = {"AddV2": "Add", "FusedBatchNormV3": "FusedBatchNorm"}
PREPROCESSING_OPS = ("Cast", "ResizeBilinear", "ResizeNearestNeighbor", "ResizeBicubic",
                     "ResizeArea", "Mul", "Sub", "Add", "RealDiv")
NMS_OP = re.compile(r"^NonMaxSuppression(V\d)?$")
SMALL_CONST = 4  # constants up to this many values are described by their values


def _name(input_name):
    return input_name.lstrip("^").split(":")[0]


def _op(node):
    return OP_SPELLINGS.get(node.op, node.op)


class _Graph:
    def __init__(self, graph_def):
        self.nodes = {node.name: node for node in graph_def.node}
        self.consumers = {name: [] for name in self.nodes}
        for node in graph_def.node:
            for input_name in node.input:
                if not input_name.startswith("^") and _name(input_name) in self.consumers:
                    self.consumers[_name(input_name)].append(node.name)

    def const_value(self, name):
        node = self.nodes.get(name)
        while node is not None and node.op == "Identity" and node.input:
            node = self.nodes.get(_name(node.input[0]))
        if node is None or node.op != "Const":
            return None
        from tensorflow.python.framework import tensor_util  # noqa: PLC0415

        return tensor_util.MakeNdarray(node.attr["value"].tensor)

    def describe(self, name):
        """{"op": ..., "name": ... (not in FeatureExtractor/), "value": ... (small Const)}."""
        node = self.nodes[_name(name)]
        found = {"op": _op(node)}
        if not node.name.startswith("FeatureExtractor/"):
            found["name"] = node.name
        if node.op == "Const":
            value = self.const_value(node.name)
            if value is not None and value.size <= SMALL_CONST:
                found["value"] = _plain(value)
        return found

    def data_inputs(self, name):
        return [_name(i) for i in self.nodes[name].input if not i.startswith("^")]

    def neighbourhood(self, name):
        if name not in self.nodes:
            return None
        node = self.nodes[name]
        found = {"op": _op(node),
                 "inputs": [self.describe(i) for i in self.data_inputs(name)],
                 "consumers": sorted((self.describe(c) for c in self.consumers[name]),
                                     key=lambda d: (d["op"], d.get("name", "")))}
        if node.op == "Squeeze":
            found["squeeze_dims"] = list(node.attr["squeeze_dims"].list.i)
        return found

    def _reach(self, start, neighbours, skip_ops):
        """The nodes reached from ``start`` through ``neighbours(name)``, not going past
        nodes whose op is in ``skip_ops``."""
        seen, pending = set(), [start]
        while pending:
            name = pending.pop()
            if name in seen or name not in self.nodes:
                continue
            seen.add(name)
            if self.nodes[name].op not in skip_ops:
                pending.extend(neighbours(name))
        return seen

    def ancestors(self, start, skip_ops=()):
        return self._reach(start, self.data_inputs, skip_ops)

    def descendants(self, start, skip_ops=()):
        return self._reach(start, lambda name: self.consumers[name], skip_ops)


def _plain(value):
    value = np.asarray(value)
    if value.dtype.kind == "f":
        return [round(float(v), 7) for v in value.reshape(-1)]
    if value.dtype.kind in "iu":
        return [int(v) for v in value.reshape(-1)]
    return [v.decode() if isinstance(v, bytes) else str(v) for v in value.reshape(-1)]


def _preprocessing(graph):
    """The float ops of PREPROCESSING_OPS between image_tensor and Preprocessor/sub, in
    data-flow order (through the map_fn loop: an op comes after those it depends on)."""
    if "image_tensor" not in graph.nodes or "Preprocessor/sub" not in graph.nodes:
        return None
    between = graph.descendants("image_tensor") & graph.ancestors("Preprocessor/sub")

    def is_float_step(name):
        node = graph.nodes[name]
        dtype = node.attr["DstT"].type if node.op == "Cast" else node.attr["T"].type
        return _op(node) in PREPROCESSING_OPS and dtype == 1  # DT_FLOAT (not loop counters)

    steps = [name for name in between if is_float_step(name)]
    before = {name: len(graph.ancestors(name) & set(steps)) for name in steps}
    return [_op(graph.nodes[name]) for name in sorted(steps, key=lambda n: (before[n], n))]


def _chain(graph, start, stop_ops=("Shape",)):
    """From ``start``, the Postprocessor nodes that follow one another (each the only
    Postprocessor consumer of the previous one, outside the NMS), with their small
    constant inputs."""
    chain = []
    current = start
    while True:
        nexts = [c for c in graph.consumers[current]
                 if c.startswith("Postprocessor/") and graph.nodes[c].op not in stop_ops
                 and "/BatchMultiClassNonMaxSuppression/" not in c]
        if len(nexts) != 1:
            break
        current = nexts[0]
        node = graph.nodes[current]
        constants = [graph.describe(i).get("value") for i in graph.data_inputs(current)
                     if graph.nodes[i].op == "Const"]
        chain.append({"name": current, "op": _op(node), "constants": constants})
        if len(chain) > 40:
            break
    return chain


def _scope_count(names, scope):
    """How many distinct scopes named ``scope`` or ``scope_<n>`` hold nodes."""
    pattern = re.compile(r"^(.*?/)?{}(_\d+)?/".format(re.escape(scope)))
    prefixes = set()
    for name in names:
        match = pattern.match(name)
        if match:
            prefixes.add(match.group(0))
    return len(prefixes)


def _nms(graph):
    post = [name for name in graph.nodes if name.startswith("Postprocessor/")]
    nms_ops = [name for name in post if NMS_OP.match(graph.nodes[name].op)]
    clips = [name for name in post if re.search(r"/ClipToWindow(_\d+)?/", name)]

    def thresholds(position):
        values = set()
        for name in nms_ops:
            inputs = graph.data_inputs(name)
            if len(inputs) > position:
                value = graph.const_value(inputs[position])
                # float32 thresholds, written with 6 significant digits (0.6, 1e-08, -inf)
                values.add(None if value is None else float("{:.6g}".format(float(value))))
        return sorted(values, key=lambda v: (v is None, v))

    clip = None
    if nms_ops and clips:
        feeding = graph.ancestors(graph.data_inputs(nms_ops[0])[0],
                                  skip_ops=("NextIteration",))
        following = set()
        for name in nms_ops:
            following |= graph.descendants(name, skip_ops=("NextIteration",))
        if any(name in feeding for name in clips):
            clip = "before_nms"
        elif any(name in following for name in clips):
            clip = "after_nms"
        else:
            clip = "unrelated"
    return {
        "per_class_scope": any("/MultiClassNonMaxSuppression/" in name for name in post),
        "nms_ops": len(nms_ops),
        "nms_op_types": sorted(set(graph.nodes[name].op for name in nms_ops)),
        "iou_thresholds": thresholds(3),
        "score_thresholds": thresholds(4),
        "argmax_ops": sum(1 for name in post if graph.nodes[name].op == "ArgMax"),
        "filter_greater_than_scopes": _scope_count(post, "FilterGreaterThan"),
        "clip_to_window_scopes": _scope_count(post, "ClipToWindow"),
        "sort_by_field_scopes": _scope_count(post, "SortByField"),
        "clip": clip,
    }


def num_classes(graph_def):
    """Classes (background included) from BoxPredictor_0/Reshape_1's shape."""
    graph = _Graph(graph_def)
    reshape = graph.nodes.get("BoxPredictor_0/Reshape_1")
    if reshape is None or len(reshape.input) < 2:
        return None
    shape = graph.nodes[_name(reshape.input[1])]
    last = shape.input[-1] if shape.op == "Pack" else shape.name
    value = graph.const_value(_name(last))
    return None if value is None else int(np.asarray(value).reshape(-1)[-1])


def structural_facts(graph_def):
    """The facts listed in the module docstring, as plain data (dicts, lists, numbers)."""
    graph = _Graph(graph_def)
    anchor = next((name for name in ANCHOR_CONCATS if name in graph.nodes), None)
    return {
        "cut_points": {name: graph.neighbourhood(name) for name in CUT_POINTS},
        "preprocessing": _preprocessing(graph),
        "score_path": _chain(graph, SCORE_START) if SCORE_START in graph.nodes else None,
        "postprocessor_nodes": {name: graph.neighbourhood(name) for name in POSTPROCESSOR_NODES},
        "identities": {name: {"op": _op(graph.nodes[name]),
                              "input": graph.describe(graph.data_inputs(name)[0])}
                       if name in graph.nodes else None for name in IDENTITIES},
        "anchor_concat": None if anchor is None else {
            "name": anchor, **graph.neighbourhood(anchor)},
        "nms": _nms(graph),
    }


def anchor_values(graph_def, input_size):
    """The anchor concat's value [N, 4] (TensorFlow evaluates its sub-graph; an image of
    ``input_size`` is fed where the anchors depend on the image shape)."""
    import tensorflow as tf  # noqa: PLC0415

    tf1 = tf.compat.v1
    names = {node.name for node in graph_def.node}
    anchor = next(name for name in ANCHOR_CONCATS if name in names)
    sub_graph = tf1.graph_util.extract_sub_graph(graph_def, [anchor])
    graph = tf1.Graph()
    with graph.as_default():
        tf1.import_graph_def(sub_graph, name="")
    feed = {}
    if any(node.name == "image_tensor" for node in sub_graph.node):
        feed["image_tensor:0"] = np.zeros((1, input_size, input_size, 3), np.uint8)
    with tf1.Session(graph=graph) as session:
        return session.run(anchor + ":0", feed)
