"""Shape inference over a SIMULATED UFF graph, the way the UFF parser sees it.

Implicit batch: shapes carry no batch dimension; image tensors are CHW (TF's NHWC axes are
remapped), everything else keeps TF's order minus the batch axis. Inference is lazy from
the marked outputs. Shape-computing branches (Shape -> StridedSlice -> Pack feeding a
Reshape, as Object Detection API box predictors have) are folded into constants, as the
real parser does: Shape gives the TF-order dims with a symbolic batch first, and a Reshape
drops its first shape element (the batch). They add no layers.
"""

import math

from .network import LayerInfo, TensorInfo
from .uffformat import node_tensor_name

ELEMENTWISE_UNARY = frozenset([
    "Identity", "Relu", "Relu6", "Sigmoid", "Tanh", "Elu", "Selu", "Softplus", "Softsign",
    "Exp", "Log", "Sqrt", "Rsqrt", "Square", "Neg", "Abs", "Softmax", "LeakyRelu",
    "BiasAdd", "FusedBatchNorm"
])
ELEMENTWISE_BINARY = frozenset(["Add", "Sub", "Mul", "Div", "RealDiv", "Maximum", "Minimum", "Pow"])
# Ops evaluated at parse time into constants (no layer in the network).
FOLDED = frozenset(["Const", "Shape", "StridedSlice", "Pack"])


class _Batch:
    """The implicit batch size: unknown at parse time, so it may only be carried along."""

    def __repr__(self):
        return "N"


BATCH = _Batch()


class ShapeError(Exception):
    def __init__(self, node, message):
        Exception.__init__(self, "{}: {}".format(node, message))
        self.node = node


class ShapeInference:
    def __init__(self, graph, registered_inputs):
        self.nodes = {node["name"]: node for node in graph["nodes"]}
        self.registered_inputs = registered_inputs  # name -> (shape CHW, order name)
        self.outputs_of = {}  # node name -> [TensorInfo]
        self.layers = []
        self.visiting = set()

    # -- entry points ----------------------------------------------------------------
    def tensors(self, reference, expand_all=False):
        """TensorInfos a reference denotes; 'node' on a multi-output node means all outputs
        when expand_all (concat-like consumers), else output 0."""
        name, port = node_tensor_name(reference)
        if name not in self.nodes:
            raise ShapeError(name, "input {} not found in the graph".format(reference))
        outputs = self.infer(name)
        if expand_all and ":" not in reference:
            return outputs
        if port >= len(outputs):
            raise ShapeError(name, "has no output {}".format(port))
        return [outputs[port]]

    def infer(self, name):
        if name in self.outputs_of:
            return self.outputs_of[name]
        if name in self.visiting:
            raise ShapeError(name, "graph has a cycle")
        self.visiting.add(name)
        node = self.nodes[name]
        handler = self._handler(node["op"])
        if handler is None:
            raise ShapeError(name, "SIMULATED parser has no shape rule for operation {}".format(
                node["op"]))
        outputs, inputs, weights = handler(node)
        self.visiting.discard(name)
        self.outputs_of[name] = outputs
        if node["op"] not in FOLDED:
            self.layers.append(LayerInfo(name, node["op"], inputs, outputs,
                                         attrs=node.get("attrs"), weights_nbytes=weights,
                                         plugin=node["op"].startswith("_")))
        return outputs

    def _handler(self, op):
        if op in ELEMENTWISE_UNARY:
            return self._unary
        if op in ELEMENTWISE_BINARY:
            return self._binary
        return {"Input": self._input, "Const": self._const, "Conv2D": self._conv,
                "DepthwiseConv2dNative": self._conv, "MaxPool": self._pool,
                "AvgPool": self._pool, "Pad": self._pad, "Reshape": self._reshape,
                "Squeeze": self._squeeze, "ConcatV2": self._concat, "_ConcatV2": self._concat,
                "Transpose": self._transpose, "_GridAnchor_TRT": self._grid_anchor,
                "Shape": self._folded, "StridedSlice": self._folded, "Pack": self._folded,
                "_FlattenConcat_TRT": self._flatten_concat, "_NMS_TRT": self._nms}.get(op)

    # -- helpers -------------------------------------------------------------------------
    def _data_inputs(self, node):
        return list(node["inputs"])

    def _first(self, node):
        refs = self._data_inputs(node)
        if not refs:
            raise ShapeError(node["name"], "{} needs an input".format(node["op"]))
        return self.tensors(refs[0])[0]

    def _const_values(self, node, reference):
        name, _ = node_tensor_name(reference)
        source = self.nodes.get(name)
        if source is None or source["op"] != "Const" or "values" not in source["const"]:
            return None
        return source["const"]["values"]

    def _const_weights(self, node):
        total = 0
        for reference in self._data_inputs(node):
            name, _ = node_tensor_name(reference)
            source = self.nodes.get(name)
            if source is not None and source["op"] == "Const":
                total += source["const"]["nbytes"]
        return total

    def _out(self, node, shape, layout="plain", dtype="float32", index=0):
        name = node["name"] if index == 0 else "{}_{}".format(node["name"], index)
        return TensorInfo(name, shape, dtype, layout)

    # -- parse-time folding of shape computations ----------------------------------------
    def folded(self, reference):
        """The value of a constant or shape-computing tensor: a list (1-D) or a scalar,
        whose items are ints or BATCH. ShapeError when it cannot be known at parse time."""
        name, _ = node_tensor_name(reference)
        node = self.nodes.get(name)
        if node is None:
            raise ShapeError(name, "input {} not found in the graph".format(reference))
        fold = {"Const": self._fold_const, "Identity": self._fold_identity,
                "Shape": self._fold_shape, "StridedSlice": self._fold_strided_slice,
                "Pack": self._fold_pack}.get(node["op"])
        if fold is None:
            raise ShapeError(name, "{} output is not a constant; a shape must be computed "
                             "from constants and Shape/StridedSlice/Pack".format(node["op"]))
        return fold(node)

    def _fold_const(self, node):
        const = node["const"]
        if "values" not in const or len(const["shape"]) > 1:
            raise ShapeError(node["name"], "constant {} {} cannot be used as a shape".format(
                const["dtype"], const["shape"]))
        return list(const["values"]) if const["shape"] else const["values"][0]

    def _fold_identity(self, node):
        return self.folded(self._data_inputs(node)[0])

    def _fold_shape(self, node):
        reference = self._data_inputs(node)[0]
        tensor = self.tensors(reference)[0]
        dims = list(tensor.shape)
        if tensor.layout == "chw" and self._tf_order(reference) == "NHWC":
            dims = dims[1:] + dims[:1]
        return [BATCH] + dims

    def _tf_order(self, reference):
        """The axis order TensorFlow sees an image tensor in: the registered order for
        inputs, NHWC for everything computed (the SSD graphs' convolutions are NHWC)."""
        name, _ = node_tensor_name(reference)
        if self.nodes[name]["op"] == "Input":
            return self.registered_inputs[name][1]
        return "NHWC"

    def _fold_strided_slice(self, node):
        refs = self._data_inputs(node)
        if len(refs) != 4:
            raise ShapeError(node["name"], "StridedSlice needs input, begin, end, strides")
        values = self.folded(refs[0])
        begin, end, strides = (self.folded(ref) for ref in refs[1:])
        if not isinstance(values, list) or not all(
                isinstance(v, list) and len(v) == 1 for v in (begin, end, strides)):
            raise ShapeError(node["name"], "only 1-D StridedSlice can be folded")
        attrs = node["attrs"]
        start = None if attrs.get("begin_mask", 0) & 1 else begin[0]
        stop = None if attrs.get("end_mask", 0) & 1 else end[0]
        if attrs.get("shrink_axis_mask", 0) & 1:
            if not -len(values) <= begin[0] < len(values):
                raise ShapeError(node["name"], "index {} out of range for {}".format(
                    begin[0], values))
            return values[begin[0]]
        return values[start:stop:strides[0]]

    def _fold_pack(self, node):
        items = [self.folded(ref) for ref in self._data_inputs(node)]
        if node["attrs"].get("axis", 0) != 0 or any(isinstance(i, list) for i in items):
            raise ShapeError(node["name"], "only Pack of scalars on axis 0 can be folded")
        return items

    def _folded(self, node):
        """A folded tensor used as data: a constant of its value's size."""
        value = self.folded(node["name"])
        shape = (len(value),) if isinstance(value, list) else ()
        return [self._out(node, shape, dtype="int32")], [], 0

    # -- op rules ------------------------------------------------------------------------
    def _input(self, node):
        name = node["name"]
        if name not in self.registered_inputs:
            raise ShapeError(name, "input is not registered (UffParser.register_input)")
        shape, order = self.registered_inputs[name]
        if order == "NHWC" and len(shape) == 3:
            shape = (shape[2], shape[0], shape[1])
        layout = "chw" if len(shape) == 3 else "plain"
        return [self._out(node, shape, layout)], [], 0

    def _const(self, node):
        return [self._out(node, node["const"]["shape"])], [], 0

    def _unary(self, node):
        source = self._first(node)
        return [self._out(node, source.shape, source.layout)], [source], self._const_weights(node)

    def _binary(self, node):
        candidates = []
        for reference in self._data_inputs(node):
            name, _ = node_tensor_name(reference)
            if self.nodes.get(name, {}).get("op") != "Const":
                candidates.append(self.tensors(reference)[0])
        if not candidates:
            raise ShapeError(node["name"], "{} of constants only".format(node["op"]))
        widest = max(candidates, key=lambda t: len(t.shape))
        return [self._out(node, widest.shape, widest.layout)], candidates, self._const_weights(node)

    def _spatial(self, node, size, kernel, stride):
        padding = node["attrs"].get("padding", "SAME")
        if padding == "SAME":
            return int(math.ceil(size / float(stride)))
        if padding == "VALID":
            return int(math.ceil((size - kernel + 1) / float(stride)))
        raise ShapeError(node["name"], "unsupported padding {!r}".format(padding))

    def _hw_params(self, node, key):
        values = node["attrs"].get(key) or [1, 1, 1, 1]
        if node["attrs"].get("data_format", "NHWC") == "NCHW":
            return values[2], values[3]
        return values[1], values[2]

    def _chw(self, node, tensor):
        if len(tensor.shape) != 3:
            raise ShapeError(node["name"], "{} needs a 3-D CHW input, got {}".format(
                node["op"], list(tensor.shape)))
        return tensor.shape

    def _conv(self, node):
        refs = self._data_inputs(node)
        if len(refs) != 2:
            raise ShapeError(node["name"], "{} needs input and filter".format(node["op"]))
        source = self.tensors(refs[0])[0]
        channels, height, width = self._chw(node, source)
        filter_node = self.nodes.get(node_tensor_name(refs[1])[0], {})
        if filter_node.get("op") != "Const":
            raise ShapeError(node["name"], "filter must be a constant")
        kh, kw, in_channels, out = filter_node["const"]["shape"]
        if in_channels != channels:
            raise ShapeError(node["name"], "input has {} channels, filter expects {}".format(
                channels, in_channels))
        if node["op"] == "DepthwiseConv2dNative":
            out = in_channels * out
        sh, sw = self._hw_params(node, "strides")
        shape = (out, self._spatial(node, height, kh, sh), self._spatial(node, width, kw, sw))
        return [self._out(node, shape, "chw")], [source], filter_node["const"]["nbytes"]

    def _pool(self, node):
        source = self._first(node)
        channels, height, width = self._chw(node, source)
        kh, kw = self._hw_params(node, "ksize")
        sh, sw = self._hw_params(node, "strides")
        shape = (channels, self._spatial(node, height, kh, sh), self._spatial(node, width, kw, sw))
        return [self._out(node, shape, "chw")], [source], 0

    def _pad(self, node):
        refs = self._data_inputs(node)
        source = self.tensors(refs[0])[0]
        channels, height, width = self._chw(node, source)
        values = self._const_values(node, refs[1]) if len(refs) > 1 else None
        if values is None or len(values) != 8:
            raise ShapeError(node["name"], "Pad needs constant NHWC paddings")
        shape = (channels + values[6] + values[7], height + values[2] + values[3],
                 width + values[4] + values[5])
        return [self._out(node, shape, "chw")], [source], 0

    def _reshape(self, node):
        refs = self._data_inputs(node)
        source = self.tensors(refs[0])[0]
        volume = source.volume()
        if len(refs) != 2:
            raise ShapeError(node["name"], "Reshape needs input and shape")
        values = self.folded(refs[1])
        if not isinstance(values, list) or not values:
            raise ShapeError(node["name"], "Reshape shape {} is not a list of dims".format(
                values))
        dims = list(values[1:])  # drop the batch dimension
        if BATCH in dims:
            raise ShapeError(node["name"], "Reshape moves the batch dimension ({}); implicit "
                             "batch networks keep it first".format(values))
        if dims.count(-1) > 1:
            raise ShapeError(node["name"], "Reshape with more than one -1")
        known = 1
        for size in dims:
            if size != -1:
                known *= size
        if -1 in dims:
            if known == 0 or volume % known:
                raise ShapeError(node["name"], "cannot reshape {} elements to {}".format(
                    volume, values))
            dims[dims.index(-1)] = volume // known
        elif known != volume:
            raise ShapeError(node["name"], "cannot reshape {} elements to {}".format(
                volume, values))
        return [self._out(node, dims)], [source], 0

    def _squeeze(self, node):
        source = self._first(node)
        axes = node["attrs"].get("squeeze_dims") or node["attrs"].get("axis") or []
        dims = list(source.shape)
        drop = {a - 1 if a > 0 else len(dims) + a for a in axes} if axes else \
            {i for i, size in enumerate(dims) if size == 1}
        for index in drop:
            if not 0 <= index < len(dims) or dims[index] != 1:
                raise ShapeError(node["name"], "cannot squeeze axis {} of {}".format(
                    index + 1, [1] + dims))
        shape = [size for i, size in enumerate(dims) if i not in drop]
        return [self._out(node, shape)], [source], 0

    def _concat_axis(self, node, refs):
        if "axis" in node["attrs"]:
            return node["attrs"]["axis"], refs
        values = self._const_values(node, refs[-1]) if refs else None
        if not values:
            raise ShapeError(node["name"], "ConcatV2 needs a constant axis")
        return values[0], refs[:-1]

    def _concat(self, node):
        axis, refs = self._concat_axis(node, self._data_inputs(node))
        sources = [t for ref in refs for t in self.tensors(ref, expand_all=True)]
        if not sources:
            raise ShapeError(node["name"], "concatenation of nothing")
        first = sources[0]
        rank = len(first.shape)
        if first.layout == "chw":
            index = {1: 1, 2: 2, 3: 0, -1: 0, -3: 1, -2: 2}.get(axis)
        else:
            index = axis - 1 if axis > 0 else rank + axis
        if index is None or not 0 <= index < rank:
            raise ShapeError(node["name"], "axis {} out of range for {}".format(axis, first.shape))
        for other in sources[1:]:
            same = len(other.shape) == rank and all(
                a == b for i, (a, b) in enumerate(zip(first.shape, other.shape)) if i != index)
            if not same:
                raise ShapeError(node["name"], "Concatenate: dimensions of {} {} and {} {} "
                                 "differ outside axis {}".format(first.name, list(first.shape),
                                                                 other.name, list(other.shape),
                                                                 axis))
        shape = list(first.shape)
        shape[index] = sum(t.shape[index] for t in sources)
        return [self._out(node, shape, first.layout)], sources, 0

    def _transpose(self, node):
        refs = self._data_inputs(node)
        source = self.tensors(refs[0])[0]
        perm = self._const_values(node, refs[1]) if len(refs) > 1 else None
        if perm is None or len(perm) != len(source.shape) + 1 or perm[0] != 0:
            raise ShapeError(node["name"], "Transpose needs a constant permutation keeping batch")
        shape = [source.shape[p - 1] for p in perm[1:]]
        return [self._out(node, shape)], [source], 0

    def _grid_anchor(self, node):
        attrs = node["attrs"]
        shapes = attrs.get("featureMapShapes") or []
        layers = attrs.get("numLayers", len(shapes))
        ratios = attrs.get("aspectRatios") or [1.0]
        if len(shapes) != layers:
            raise ShapeError(node["name"], "GridAnchor_TRT: featureMapShapes has {} entries, "
                             "numLayers is {}".format(len(shapes), layers))
        outputs = []
        for index, size in enumerate(shapes):
            # The plugin reduces the lowest layer to 3 boxes (ratios 1, 2, 0.5), like the
            # Object Detection API's reduce_boxes_in_lowest_layer; others get ratios + 1.
            per_location = 3 if index == 0 else len(ratios) + 1
            outputs.append(self._out(node, (2, size * size * per_location * 4, 1), index=index))
        return outputs, [], 0

    def _flatten_concat(self, node):
        sources = [t for ref in self._data_inputs(node) for t in self.tensors(ref, True)]
        total = sum(t.volume() for t in sources)
        return [self._out(node, (total, 1, 1))], sources, 0

    def _nms(self, node):
        sources = [t for ref in self._data_inputs(node) for t in self.tensors(ref)]
        if len(sources) != 3:
            raise ShapeError(node["name"], "NMS_TRT expects 3 inputs (loc, conf, prior), got "
                             "{}: {}".format(len(sources), [t.name for t in sources]))
        keep = int(node["attrs"].get("keepTopK", 100))
        detections = self._out(node, (1, keep, 7))
        count = self._out(node, (1, 1, 1), dtype="int32", index=1)
        return [detections, count], sources, 0
