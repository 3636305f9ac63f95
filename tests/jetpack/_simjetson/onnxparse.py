"""What the SIMULATED OnnxParser does with a real ONNX file (read with the `onnx` package).

Rules (docs/reference/onnx-tensorrt-operators.md has the sources):
- the model must deserialize (``onnx.load_from_string``) and its opset must be one this
  TensorRT reads (8.4-8.6: up to 13; 10.x: 9 to 24);
- every node's op has an importer in this TensorRT's onnx-tensorrt table, or is found as a
  plugin creator of that name and ``plugin_version`` (default "1") in the plugin registry;
  otherwise the node fails with the fallback-plugin importer's error, naming the node and
  its op, the way onnx-tensorrt does;
- EfficientNMS_TRT's attributes and shapes are checked as the plugin does when the
  layer is added (inputs boxes [B, N, 4], scores [B, N, C], optional anchors [1|B, N, 4],
  float inputs, N equal everywhere, box_coding 0 or 1, four outputs);
- shapes come from onnx.shape_inference (the real one) with the graph's declared shapes;
  a tensor whose shape cannot be known is a parse error naming it.
"""

from . import plugins
from .network import LayerInfo, TensorInfo

# Ops the onnx-tensorrt tables mark "N" (no importer). 8.4 table: onnx-tensorrt
# docs/operators.md @009d6541b4ee1fa3f3150cd7cbabe7e56aa54840; 10.x: the same file for
# TensorRT 10.15 (the 10.3 table is not in our sources; see the reference file).
NOT_IMPORTED_8_4 = frozenset((
    "BitShift", "Compress", "ConcatFromSequence", "ConvInteger", "Det",
    "DynamicQuantizeLinear", "Hardmax", "IsInf", "MatMulInteger", "MaxRoiPool", "MaxUnpool",
    "MeanVarianceNormalization", "Mod", "Multinomial", "NegativeLogLikelihoodLoss", "NonZero",
    "OneHot", "QLinearConv", "QLinearMatMul", "RandomNormal", "RandomNormalLike",
    "Reciprocal", "RoiAlign", "SequenceAt", "SequenceConstruct", "SequenceEmpty",
    "SequenceErase", "SequenceInsert", "SequenceLength", "Shrink",
    "SoftmaxCrossEntropyLoss", "SplitToSequence", "StringNormalizer", "TfIdfVectorizer",
    "Unique",
))
NOT_IMPORTED_10 = frozenset((
    "AffineGrid", "Bernoulli", "BitShift", "BitwiseAnd", "BitwiseNot", "BitwiseOr",
    "BitwiseXor", "Col2Im", "CenterCropPad", "Compress", "ConcatFromSequence", "ConvInteger",
    "DFT", "Det", "DynamicQuantizeLinear", "ImageDecoder", "MatMulInteger", "MaxRoiPool",
    "MaxUnpool", "MelWeightMatrix", "Multinomial", "NegativeLogLikelihoodLoss", "Optional",
    "OptionalGetElement", "OptionalHasElement", "QLinearConv", "QLinearMatMul",
    "RegexFullMatch", "SequenceAt", "SequenceConstruct", "SequenceEmpty", "SequenceErase",
    "SequenceInsert", "SequenceLength", "SequenceMap", "SoftmaxCrossEntropyLoss",
))
OPSET_RANGE = {8: (1, 13), 10: (9, 24)}
PLUGIN_NOT_FOUND = ('Assertion failed: creator && "Plugin not found, are the plugin name, '
                    'version, and namespace correct?"')
EFFICIENT_NMS = "EfficientNMS_TRT"
EFFICIENT_NMS_FIELDS = {
    "score_threshold": "f", "iou_threshold": "f", "max_output_boxes": "i",
    "background_class": "i", "score_activation": "i", "class_agnostic": "i", "box_coding": "i",
}
FLOAT_TYPES = ("float32", "float16")


class OnnxParseError(Exception):
    """One parser error: code (ErrorCode name), text, node index (-1: not a node)."""

    def __init__(self, code, text, node=-1, node_line=None):
        Exception.__init__(self, text)
        self.code = code
        self.text = text
        self.node = node
        self.node_line = node_line


def _onnx():
    import onnx  # noqa: PLC0415  (the double reads ONNX files with the real package)

    return onnx


def _not_imported(version):
    return NOT_IMPORTED_10 if version[0] >= 10 else NOT_IMPORTED_8_4


def _dtype(elem_type):
    mapping = _onnx().helper.tensor_dtype_to_np_dtype(elem_type)
    return str(mapping)


def _shape(value_info):
    dims = value_info.type.tensor_type.shape.dim
    if not value_info.type.tensor_type.HasField("shape"):
        return None
    shape = []
    for dim in dims:
        if not dim.HasField("dim_value"):
            return None
        shape.append(int(dim.dim_value))
    return tuple(shape)


def _node_line(index, node):
    return 'While parsing node number {} [{} -> "{}"]:'.format(
        index, node.op_type, node.output[0] if node.output else "")


def _node_error(version, index, node, reason):
    """The IParserError text of a failed node, per onnx-tensorrt generation (modelled)."""
    if version[0] >= 10:
        text = "In node {} with name: {} and operator: {} (importFallbackPluginImporter): " \
               "UNSUPPORTED_NODE: {}".format(index, node.name, node.op_type, reason)
    else:
        text = "In node {} (importFallbackPluginImporter): UNSUPPORTED_NODE: {}".format(
            index, reason)
    return OnnxParseError("UNSUPPORTED_NODE", text, index, _node_line(index, node))


def _attribute(onnx, node, name, default=None):
    for attribute in node.attribute:
        if attribute.name == name:
            return onnx.helper.get_attribute_value(attribute)
    return default


def _plugin_found(onnx, node):
    version = _attribute(onnx, node, "plugin_version", b"1")
    version = version.decode() if isinstance(version, bytes) else str(version)
    return node.op_type in plugins.creator_names() and version == "1"


def _nms_assert(version, index, node, condition):
    reason = "Assertion failed: {} (efficientNMSPlugin.cpp)".format(condition)
    return _node_error(version, index, node, reason)


def check_efficient_nms(version, index, node, tensors, onnx):
    """None, or the OnnxParseError the plugin's checks give for this node."""
    for condition in _nms_problems(node, tensors, onnx):
        return _nms_assert(version, index, node, condition)
    return None


def _attribute_problems(node, onnx):
    for field, kind in EFFICIENT_NMS_FIELDS.items():
        value = _attribute(onnx, node, field)
        if value is not None and (kind == "f") != isinstance(value, float):
            yield "field {} has type {}".format(field, "float" if kind == "f" else "int")


def _anchor_problems(anchors, boxes):
    if len(anchors.shape) != 3 or anchors.shape[2] != 4 or \
            anchors.shape[0] not in (1, boxes.shape[0]):
        yield "anchors dims [1 or B, N, 4] (got {})".format(list(anchors.shape))
    elif anchors.shape[1] != boxes.shape[1]:
        yield "anchors N ({}) == boxes N ({})".format(anchors.shape[1], boxes.shape[1])


def _nms_problems(node, tensors, onnx):
    """The failed conditions of EfficientNMS_TRT's checks, first one first."""
    yield from _attribute_problems(node, onnx)
    if _attribute(onnx, node, "box_coding", 0) not in (0, 1):
        yield "mParam.boxCoding == 0 || mParam.boxCoding == 1"
    inputs = [tensors[name] for name in node.input if name]
    if len(inputs) not in (2, 3):
        yield "nbInputs == 2 || nbInputs == 3"
    if len(node.output) != 4:
        yield "nbOutputs == 4"
    boxes, scores = inputs[0], inputs[1]
    if len(boxes.shape) not in (3, 4) or boxes.shape[-1] != 4:
        yield "boxes dims [B, N, 4] or [B, N, C, 4] (got {})".format(list(boxes.shape))
    if len(scores.shape) != 3:
        yield "scores dims [B, N, C] (got {})".format(list(scores.shape))
    if boxes.shape[1] != scores.shape[1]:
        yield "boxes N ({}) == scores N ({})".format(boxes.shape[1], scores.shape[1])
    if len(boxes.shape) == 4 and boxes.shape[2] not in (1, scores.shape[2]):
        yield "boxes class dimension ({}) is 1 or the scores' class count ({})".format(
            boxes.shape[2], scores.shape[2])
    if len(inputs) == 3:
        yield from _anchor_problems(inputs[2], boxes)
    for tensor in inputs:
        if tensor.dtype not in FLOAT_TYPES:
            yield "input {} is float32 or float16 (got {})".format(tensor.name, tensor.dtype)


def efficient_nms_outputs(onnx, node, tensors):
    boxes, scores = tensors[node.input[0]], tensors[node.input[1]]
    batch = boxes.shape[0]
    keep = int(_attribute(onnx, node, "max_output_boxes", 100))
    del scores  # the outputs do not depend on the class count
    shapes = ((batch, 1), (batch, keep, 4), (batch, keep), (batch, keep))
    dtypes = ("int32", "float32", "float32", "int32")
    return [TensorInfo(name, shape, dtype) for name, shape, dtype in
            zip(node.output, shapes, dtypes)]


def _known_tensors(onnx, model):
    """name -> TensorInfo for every tensor whose shape the model states or implies."""
    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except onnx.shape_inference.InferenceError:
        inferred = model
    graph = inferred.graph
    tensors = {}
    for info in list(graph.input) + list(graph.value_info) + list(graph.output):
        shape = _shape(info)
        if shape is not None:
            tensors[info.name] = TensorInfo(info.name, shape, _dtype(
                info.type.tensor_type.elem_type))
    for initializer in graph.initializer:
        tensors[initializer.name] = TensorInfo(initializer.name, tuple(initializer.dims),
                                               _dtype(initializer.data_type))
    return tensors


def _weights(tensors, node, initializers):
    total = 0
    for name in node.input:
        if name in initializers:
            total += tensors[name].volume() * 4
    return total


def parse_model(data, version):
    """(inputs, outputs, layers) of the network, or raises OnnxParseError."""
    onnx = _onnx()
    from google.protobuf.message import DecodeError  # noqa: PLC0415  (comes with onnx)

    try:
        model = onnx.load_from_string(bytes(data))
    except DecodeError as error:
        raise OnnxParseError("MODEL_DESERIALIZE_FAILED",
                             "Failed to parse ONNX model: {}".format(error)) from error
    if not model.graph.node:
        raise OnnxParseError("MODEL_DESERIALIZE_FAILED",
                             "Failed to parse ONNX model (no graph nodes)")
    low, high = OPSET_RANGE[10 if version[0] >= 10 else 8]
    opset = max([entry.version for entry in model.opset_import
                 if entry.domain in ("", "ai.onnx")] or [0])
    if not low <= opset <= high:
        raise OnnxParseError("UNSUPPORTED_GRAPH",
                             "Unsupported ONNX opset {}: this TensorRT reads opsets {} to "
                             "{}".format(opset, low, high))
    tensors = _known_tensors(onnx, model)
    initializers = set(initializer.name for initializer in model.graph.initializer)
    not_imported = _not_imported(version)
    layers = []
    for index, node in enumerate(model.graph.node):
        plugin = node.op_type in not_imported or node.domain not in ("", "ai.onnx") or \
            not onnx.defs.has(node.op_type)
        if plugin and not _plugin_found(onnx, node):
            raise _node_error(version, index, node, PLUGIN_NOT_FOUND)
        missing = [name for name in node.input if name and name not in tensors]
        if missing:
            raise OnnxParseError("INVALID_GRAPH", "{}: the shape of {} is unknown (declare it "
                                 "in the graph's value_info)".format(
                                     node.name or node.op_type, ", ".join(missing)), index,
                                 _node_line(index, node))
        if node.op_type == EFFICIENT_NMS:
            failure = check_efficient_nms(version, index, node, tensors, onnx)
            if failure:
                raise failure
            for tensor in efficient_nms_outputs(onnx, node, tensors):
                tensors[tensor.name] = tensor
        unknown = [name for name in node.output if name and name not in tensors]
        if unknown:
            raise OnnxParseError("INVALID_GRAPH", "{}: cannot infer the shape of {}".format(
                node.name or node.op_type, ", ".join(unknown)), index, _node_line(index, node))
        attrs = {attribute.name: _plain(onnx.helper.get_attribute_value(attribute))
                 for attribute in node.attribute} if plugin else {}
        layers.append(LayerInfo(node.name or "{}_{}".format(node.op_type, index), node.op_type,
                                [tensors[name] for name in node.input if name],
                                [tensors[name] for name in node.output if name],
                                attrs=attrs, weights_nbytes=_weights(tensors, node,
                                                                     initializers),
                                plugin=plugin))
    inputs = [tensors[info.name] for info in model.graph.input if info.name not in initializers]
    outputs = [tensors[info.name] for info in model.graph.output]
    return inputs, outputs, layers


def _plain(value):
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value
