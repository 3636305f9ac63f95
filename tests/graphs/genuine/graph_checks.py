"""What a frozen SSD export must look like: checks shared by the exporter script and tests.

make_genuine_exports.py runs them under TensorFlow 1.15 (Python 3.6+), the tests under
TensorFlow 2.15. They only read GraphDef fields, so this module imports no TensorFlow.
"""

INPUT_NODE = "image_tensor"
OUTPUT_NODES = ("detection_boxes", "detection_scores", "detection_classes", "num_detections")
CONVERT_SCORES = "Postprocessor/convert_scores"
RAW_BOX_SCORES = "Postprocessor/raw_box_scores"
RAW_BOX_LOCATIONS = "Postprocessor/raw_box_locations"


def training_mode_batch_norms(graph_def):
    """Names of nodes that compute batch statistics or update moving averages.

    An inference export reads the frozen moving mean/variance: FusedBatchNorm with
    is_training false, or (after the quantization rewrite) folded multiplications.
    """
    return [node.name for node in graph_def.node
            if (node.op.startswith("FusedBatchNorm") and node.attr["is_training"].b)
            or "/moments/" in node.name or "AssignMovingAvg" in node.name]


def op_counts(graph_def):
    counts = {}
    for node in graph_def.node:
        counts[node.op] = counts.get(node.op, 0) + 1
    return counts


def count_ops(graph_def, prefix):
    """Nodes whose op type starts with ``prefix`` (FakeQuant, FusedBatchNorm, ...)."""
    return sum(count for op, count in op_counts(graph_def).items() if op.startswith(prefix))


def _node_name(tensor_name):
    """'^a/b' or 'a/b:1' -> 'a/b'."""
    return tensor_name.lstrip("^").split(":")[0]


def neighbours(graph_def, name):
    """Op of node ``name`` and the names and ops of its inputs and consumers (None if absent)."""
    nodes = {node.name: node for node in graph_def.node}
    if name not in nodes:
        return None

    def describe(node_name):
        return {"name": node_name, "op": nodes[node_name].op}

    consumers = [node.name for node in graph_def.node
                 if any(_node_name(tensor) == name for tensor in node.input)]
    return {"op": nodes[name].op,
            "inputs": [describe(_node_name(tensor)) for tensor in nodes[name].input],
            "consumers": [describe(consumer) for consumer in consumers]}
