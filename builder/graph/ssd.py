"""What an SSD frozen graph (TF Object Detection API export) says about itself.

Everything here is read from the graph's structure, never from the model's name:
anchors per location and class count from the box predictors' convolution filters,
feature map sizes by following convolution strides from the input, the input size
from the image placeholder or the preprocessor's resize.
"""

import collections
import re

from ..errors import UserError
from ..graph import edit as graph_edit
from ..graph.tfcompat import const_value

# Top-level namespaces that the surgery collapses into the "Input" placeholder.
INPUT_NAMESPACES = ("image_tensor", "ToFloat", "Cast", "Preprocessor")
# The anchor generators of SSD exports: ssd_anchor_generator (the grid GridAnchor_TRT
# reproduces) and multiscale_anchor_generator (FPN models).
ANCHOR_NAMESPACE = "MultipleGridAnchorGenerator"
MULTISCALE_ANCHOR_NAMESPACE = "MultiscaleGridAnchorGenerator"
ANCHOR_NAMESPACES = (ANCHOR_NAMESPACE, MULTISCALE_ANCHOR_NAMESPACE)
PREDICTOR = re.compile(r"^BoxPredictor_(\d+)/")
# The box predictors of SSD exports, each (scope pattern, box conv scope, class conv scope):
# convolutional_box_predictor writes BoxPredictor_<i>/{BoxEncodingPredictor,ClassPredictor};
# weight_shared_convolutional_box_predictor (FPN models) one scope per feature map,
# WeightSharedConvolutionalBoxPredictor[_<i>]/{BoxPredictor,ClassPredictor}, whose
# convolutions all read the weights of the first.
PREDICTOR_STYLES = collections.OrderedDict([
    ("convolutional", (PREDICTOR, "BoxEncodingPredictor", "ClassPredictor")),
    ("weight_shared", (re.compile(r"^WeightSharedConvolutionalBoxPredictor(?:_(\d+))?/"),
                       "BoxPredictor", "ClassPredictor")),
])
RESIZE_OPS = ("ResizeBilinear", "ResizeNearestNeighbor", "ResizeBicubic", "ResizeArea")
PASS_THROUGH_OPS = ("Identity", "Snapshot")
# The ops of the OD API's quantization rewrite (graph_rewriter { quantization }).
FAKE_QUANT_OPS = ("FakeQuantWithMinMaxVars", "FakeQuantWithMinMaxArgs",
                  "FakeQuantWithMinMaxVarsPerChannel")

SsdLayout = collections.namedtuple(
    "SsdLayout",
    "num_classes anchors_per_location feature_map_shapes input_dims num_layers anchors sources",
)


class _Graph(object):
    def __init__(self, graph_def, path):
        self.nodes = graph_edit.nodes_by_name(graph_def)
        self.path = path

    def fail(self, message, fix):
        raise UserError("graph {}: {}. {}".format(self.path, message, fix))

    def source(self, input_name):
        """The node behind an input string, looking through Identity nodes."""
        node = self.nodes.get(graph_edit.node_name(input_name))
        while node is not None and node.op in PASS_THROUGH_OPS and node.input:
            node = self.nodes.get(graph_edit.node_name(node.input[0]))
        return node

    def const(self, input_name):
        node = self.source(input_name)
        return None if node is None else const_value(node)

    def const_shape(self, input_name):
        node = self.source(input_name)
        if node is None or node.op != "Const":
            return None
        return [int(dim.size) for dim in node.attr["value"].tensor.tensor_shape.dim]


def _top_namespace(name):
    return name.split("/")[0]


def check_is_ssd_export(graph_def, path):
    """UserError naming the missing node when the graph is not an OD API SSD export."""
    names = [node.name for node in graph_def.node]
    present = set(names)
    tops = set(_top_namespace(name) for name in names)

    def need(condition, what, fix):
        if not condition:
            raise UserError("graph {}: not an SSD export of the TensorFlow Object Detection "
                            "API: {}. {}".format(path, what, fix))

    export_fix = ("Export the model with object_detection/export_inference_graph.py "
                  "(input_type image_tensor) and point the catalog's 'graph' key at its "
                  "frozen_inference_graph.pb")
    need("image_tensor" in present or "Preprocessor" in tops,
         "no 'image_tensor' placeholder and no 'Preprocessor/...' nodes", export_fix)
    need("Postprocessor" in tops, "no 'Postprocessor/...' nodes (the part replaced by the "
         "NMS plugin)", export_fix)
    need("concat" in present, "no 'concat' node (the box-location concat)", export_fix)
    need("concat_1" in present, "no 'concat_1' node (the class-score concat)", export_fix)
    need(any(style[0].match(name) for name in names for style in PREDICTOR_STYLES.values()),
         "no 'BoxPredictor_0/...' nor 'WeightSharedConvolutionalBoxPredictor/...' nodes",
         export_fix)
    need(any(namespace in tops for namespace in ANCHOR_NAMESPACES),
         "no '{}/...' nodes (the anchor generator; some published exports have it folded "
         "into constants)".format("/...' nor '".join(ANCHOR_NAMESPACES)),
         "Re-export the checkpoint with export_inference_graph.py")


def predictor_style(graph_def):
    """(name of the box predictor style (a key of PREDICTOR_STYLES), its scopes): the scopes
    are [(scope, box conv kind, class conv kind)] in feature-map order (the order of the
    concat the Postprocessor reads); (None, []) when the graph has no box predictor."""
    for style, (pattern, box_kind, class_kind) in PREDICTOR_STYLES.items():
        found = {}
        for node in graph_def.node:
            match = pattern.match(node.name)
            if match:
                found[int(match.group(1) or 0)] = node.name.split("/")[0]
        if found:
            return style, [(found[index], box_kind, class_kind) for index in sorted(found)]
    return None, []


def _predictor_convs(graph, scope, kinds):
    """(box conv, class conv) NodeDefs of one box predictor scope."""
    found = {}
    for kind in kinds:
        prefix = "{}/{}/".format(scope, kind)
        convs = [node for name, node in graph.nodes.items()
                 if name.startswith(prefix) and node.op == "Conv2D"]
        if len(convs) != 1:
            graph.fail("expected one Conv2D under {} but found {}".format(prefix, len(convs)),
                       "Only the convolutional box predictor of SSD exports is supported")
        found[kind] = convs[0]
    return found[kinds[0]], found[kinds[1]]


def _out_channels(graph, conv):
    shape = graph.const_shape(conv.input[1])
    if shape is None or len(shape) != 4:
        graph.fail("the filter of {} is not a constant 4-D tensor".format(conv.name),
                   "Use a frozen graph (all variables converted to constants)")
    return shape[3]


def _reshape_classes(graph, scope):
    """The class count written in <scope>/Reshape_1's shape, or None."""
    reshape = graph.nodes.get(scope + "/Reshape_1")
    if reshape is None or len(reshape.input) < 2:
        return None
    shape_node = graph.source(reshape.input[1])
    if shape_node is None:
        return None
    if shape_node.op == "Pack" and shape_node.input:
        value = graph.const(shape_node.input[-1])
    else:
        value = const_value(shape_node)
        value = None if value is None else value.reshape(-1)[-1]
    return None if value is None else int(value)


def _input_size(graph):
    """((height, width), source text)."""
    image = graph.nodes.get("image_tensor")
    if image is not None and "shape" in image.attr:
        dims = [int(dim.size) for dim in image.attr["shape"].shape.dim]
        if len(dims) == 4 and dims[1] > 0 and dims[2] > 0:
            return (dims[1], dims[2]), "graph: image_tensor shape"
    resizes = [(name, node) for name, node in graph.nodes.items()
               if _top_namespace(name) == "Preprocessor" and node.op in RESIZE_OPS]
    for name, node in resizes:
        size = graph.const(node.input[1])
        if size is not None and size.size == 2:
            return (int(size[0]), int(size[1])), "graph: {} size".format(name)
    fix = ("A TensorRT engine takes one input size: re-export the checkpoint with "
           "image_resizer { fixed_shape_resizer { height: H width: W } } in its "
           "pipeline.config (H and W: the size it was trained at)")
    if resizes:
        graph.fail("the Preprocessor resizes each image to a size computed from that image "
                   "({} has no constant size: a keep_aspect_ratio_resizer)".format(resizes[0][0]),
                   fix)
    graph.fail("cannot tell the input size: 'image_tensor' has no fixed height/width and no "
               "Preprocessor/.../Resize* node", fix)


def _conv_output(size, kernel, stride, padding, dilation):
    if padding == "SAME":
        return (size + stride - 1) // stride
    effective = (kernel - 1) * dilation + 1
    return (size - effective + stride) // stride


def _window(node, attr, fallback):
    values = list(node.attr[attr].list.i) if attr in node.attr else []
    return (values[1], values[2]) if len(values) == 4 else fallback


def _spatial_step(graph, node, size):
    """The (height, width) after ``node`` given its data input's ``size``."""
    if node.op in ("Conv2D", "DepthwiseConv2dNative", "MaxPool", "AvgPool"):
        if node.attr["data_format"].s not in (b"", b"NHWC"):
            graph.fail("{} uses data_format {}".format(node.name, node.attr["data_format"].s),
                       "Only NHWC exports are supported")
        if node.op in ("MaxPool", "AvgPool"):
            kernel = _window(node, "ksize", (1, 1))
        else:
            kernel = tuple(graph.const_shape(node.input[1])[:2])
        stride = _window(node, "strides", (1, 1))
        dilation = _window(node, "dilations", (1, 1))
        padding = node.attr["padding"].s.decode()
        return tuple(_conv_output(size[axis], kernel[axis], stride[axis], padding,
                                  dilation[axis]) for axis in (0, 1))
    if node.op in ("Pad", "PadV2", "MirrorPad"):
        pads = graph.const(node.input[1])
        return (size[0] + int(pads[1].sum()), size[1] + int(pads[2].sum()))
    if node.op in RESIZE_OPS:
        new_size = graph.const(node.input[1])
        return (int(new_size[0]), int(new_size[1]))
    if node.op == "Reshape":
        # A reshape to a known NHWC shape sets the size (FPN's nearest-neighbour upsampling
        # is a reshape with the doubled size written in its shape).
        dims = _shape_dims(graph, node.input[1])
        if dims is not None and len(dims) == 4 and dims[1] > 0 and dims[2] > 0:
            return (dims[1], dims[2])
    return size


def _shape_dims(graph, input_name):
    """The dimensions of a shape input: a constant, or a Pack of scalars (None where not
    constant); None when neither."""
    node = graph.source(input_name)
    if node is None:
        return None
    if node.op == "Pack":
        values = [graph.const(name) for name in node.input if not graph_edit.is_control(name)]
        return [None if value is None or value.size != 1 else int(value.reshape(-1)[0])
                for value in values]
    value = const_value(node)
    return None if value is None else [int(v) for v in value.reshape(-1)]


def _data_input(graph, node):
    """The first input of ``node`` that is not a constant (the feature-map path)."""
    for input_name in node.input:
        if graph_edit.is_control(input_name):
            continue
        source = graph.source(input_name)
        if source is not None and source.op != "Const":
            return graph.nodes[graph_edit.node_name(input_name)]
    return None


def _feature_map_size(graph, conv, input_size):
    """Spatial size of a predictor's input, following strides back to the input image."""
    path = []
    node = graph.nodes[graph_edit.node_name(conv.input[0])]
    while _top_namespace(node.name) not in INPUT_NAMESPACES:
        path.append(node)
        node = _data_input(graph, node)
        if node is None:
            graph.fail("cannot follow {} back to the input image".format(conv.name),
                       "Is this a frozen SSD export with a single image input?")
    size = input_size
    for step in reversed(path):
        size = _spatial_step(graph, step, size)
    return size


def check_not_quantized(graph, path):
    """UserError when the graph holds the quantization rewrite's fake quantization: TensorRT
    would run those layers in INT8 with its own rounding (explicit quantization, an INT8
    build), not what TensorFlow computes, and no path here builds INT8 engines."""
    fake = [node.name for node in graph.nodes.values() if node.op in FAKE_QUANT_OPS]
    if fake:
        graph.fail(
            "the graph is quantization-rewritten: {} fake-quantization nodes ({}, ...), "
            "written by graph_rewriter {{ quantization }} in its pipeline.config".format(
                len(fake), fake[0]),
            "The engines are fp16 or fp32: export the float graph of the same checkpoint "
            "(remove the graph_rewriter block from pipeline.config, then run "
            "object_detection/export_inference_graph.py again) and point the catalog at it")


def analyze(graph_def, path):
    """SsdLayout of an SSD export; UserError when the graph is not one."""
    check_is_ssd_export(graph_def, path)
    graph = _Graph(graph_def, path)
    check_not_quantized(graph, path)
    _style, scopes = predictor_style(graph_def)
    (height, width), input_source = _input_size(graph)
    anchors_per_location, class_counts, shapes = [], [], []
    for scope, box_kind, class_kind in scopes:
        box_conv, class_conv = _predictor_convs(graph, scope, (box_kind, class_kind))
        box_channels = _out_channels(graph, box_conv)
        if box_channels % 4:
            graph.fail("{} has {} output channels, not a multiple of 4 (box coordinates)"
                       .format(box_conv.name, box_channels), "Is this an SSD box predictor?")
        anchors = box_channels // 4
        class_channels = _out_channels(graph, class_conv)
        if class_channels % anchors:
            graph.fail("{} has {} channels for {} anchors per location".format(
                class_conv.name, class_channels, anchors), "Is this an SSD box predictor?")
        classes = class_channels // anchors
        written = _reshape_classes(graph, scope)
        if written is not None and written != classes:
            graph.fail("{}/Reshape_1 reshapes to {} classes but its class "
                       "predictor has {} ({} channels / {} anchors)".format(
                           scope, written, classes, class_channels, anchors),
                       "The graph is inconsistent; re-export it")
        fm_height, fm_width = _feature_map_size(graph, class_conv, (height, width))
        if fm_height != fm_width:
            graph.fail("feature map {} is {}x{}, not square".format(scope, fm_height, fm_width),
                       "GridAnchor_TRT supports square feature maps only: use a square input")
        anchors_per_location.append(anchors)
        class_counts.append(classes)
        shapes.append(fm_height)
    if len(set(class_counts)) != 1:
        graph.fail("the box predictors disagree on the class count: {}".format(class_counts),
                   "The graph is inconsistent; re-export it")
    sources = {
        "num_classes": "graph: BoxPredictor_*/ClassPredictor channels / anchors per location",
        "anchors_per_location": "graph: BoxPredictor_*/BoxEncodingPredictor channels / 4",
        "feature_map_shapes": "graph: strides from the input to each BoxPredictor",
        "num_layers": "graph: number of box predictors ({})".format(scopes[0][0]),
        "anchors": "graph: sum of feature map cells x anchors per location",
        "input_dims": input_source,
    }
    return SsdLayout(
        num_classes=class_counts[0],
        anchors_per_location=anchors_per_location,
        feature_map_shapes=shapes,
        input_dims=[3, height, width],
        num_layers=len(scopes),
        anchors=sum(size * size * count for size, count in zip(shapes, anchors_per_location)),
        sources=sources,
    )


# Names the Object Detection API exporter gives the score conversion in the Postprocessor
# (post_processing_builder: scale_logits, then the score converter, then the slice that
# drops the background column when the model adds one).
SCORE_SCALE_NODE = "Postprocessor/scale_logits"
SCORE_CONVERTER_NODE = "Postprocessor/convert_scores"
SCORE_CONVERTERS = {"Sigmoid": "sigmoid", "Softmax": "softmax", "Identity": "identity"}
# The anchor concat, under its older and newer scope (the UFF surgery collapses both).
ANCHOR_CONCATS = ("MultipleGridAnchorGenerator/Concatenate/concat", "Concatenate/concat")
# The tensors the UFF recipe feeds NMS_TRT: box encodings (after the Squeeze), class logits.
BOX_ENCODINGS = "Squeeze"
CLASS_PREDICTIONS = "concat_1"
# The Postprocessor's copy of the box encodings (exports since 2018): its input is the
# encodings tensor, the Squeeze of the convolutional predictors or the concat of the
# weight-shared ones (which reshape to [batch, anchors, 4] themselves).
RAW_BOX_ENCODINGS = "Postprocessor/raw_box_encodings"
PREPROCESSED = "Preprocessor/sub"

ScoreConversion = collections.namedtuple(
    "ScoreConversion", "converter logit_scale background_class sources")


def score_conversion(graph_def, path):
    """How the export turns class logits into scores: ScoreConversion.

    ``converter``: 'sigmoid' | 'softmax' | 'identity'; ``logit_scale``: the divisor
    before it; ``background_class``: 0 when the Postprocessor slices column 0 off the
    scores (add_background_class), else -1.
    """
    graph = _Graph(graph_def, path)
    fix = ("Export the model with object_detection/export_inference_graph.py; the ONNX path "
           "reads the score converter from the Postprocessor")
    converter = graph.nodes.get(SCORE_CONVERTER_NODE)
    if converter is None or converter.op not in SCORE_CONVERTERS:
        graph.fail("no {} node with one of the ops {}".format(
            SCORE_CONVERTER_NODE, ", ".join(sorted(SCORE_CONVERTERS))), fix)
    scale = 1.0
    scale_node = graph.nodes.get(SCORE_SCALE_NODE)
    if scale_node is not None:
        value = graph.const(scale_node.input[1]) if len(scale_node.input) > 1 else None
        if value is None or value.size != 1:
            graph.fail("{} does not divide by a constant".format(SCORE_SCALE_NODE), fix)
        scale = float(value.reshape(-1)[0])
    background = -1
    for node in graph.nodes.values():
        # Exports from 2019 on put an Identity (raw_box_scores) between the two.
        source = graph.source(node.input[0]) if node.op == "Slice" and node.input else None
        if source is not None and source.name == SCORE_CONVERTER_NODE:
            begin = graph.const(node.input[1])
            if begin is not None and int(begin.reshape(-1)[-1]) == 1:
                background = 0
    sources = {
        "score_converter": "graph: {} op {}".format(SCORE_CONVERTER_NODE, converter.op),
        "logit_scale": "graph: {}".format(SCORE_SCALE_NODE) if scale_node is not None
        else "default (no {} node)".format(SCORE_SCALE_NODE),
        "background_class": "graph: Slice of {} from class 1".format(SCORE_CONVERTER_NODE)
        if background == 0 else "graph: no Slice drops a background column",
    }
    return ScoreConversion(SCORE_CONVERTERS[converter.op], scale, background, sources)


def anchor_concat_name(graph_def, path):
    """The node concatenating the anchor generator's boxes (N, 4), corner coded."""
    names = set(node.name for node in graph_def.node)
    for name in ANCHOR_CONCATS:
        if name in names:
            return name
    raise UserError("graph {}: none of the anchor concat nodes {} exists. Re-export the "
                    "checkpoint with export_inference_graph.py".format(
                        path, ", ".join(ANCHOR_CONCATS)))


def nms_is_class_agnostic(graph_def, path):
    """True when the export's NMS runs once over every box's best class (an ArgMax over the
    classes feeds it), False for the per-class MultiClassNonMaxSuppression."""
    names = [node.name for node in graph_def.node
             if _top_namespace(node.name) == "Postprocessor"]
    ops = set(node.op for node in graph_def.node if _top_namespace(node.name) == "Postprocessor")
    if any("/MultiClassNonMaxSuppression/" in name for name in names):
        return False
    if "ArgMax" in ops:
        return True
    raise UserError("graph {}: the Postprocessor has neither MultiClassNonMaxSuppression nor an "
                    "ArgMax over the classes; cannot tell how its NMS treats classes. Export the "
                    "model with object_detection/export_inference_graph.py".format(path))


# Where the Postprocessor clips the decoded boxes to the image window. Exports up to 2018
# clip each class's boxes (and drop those left with no area) before its NMS; from 2019 on,
# multiclass_non_max_suppression clips the selected boxes after the NMS, then drops the
# ones left with no area and fills the list from the boxes behind them.
CLIP_BEFORE_NMS = "before_nms"
CLIP_AFTER_NMS = "after_nms"
CLIP_SCOPE = "ClipToWindow"


def _ancestors_within(graph, start, namespace):
    """Names of the nodes ``start`` depends on (data inputs), within ``namespace``."""
    seen, pending = set(), [start]
    while pending:
        node = graph.nodes.get(graph_edit.node_name(pending.pop()))
        if node is None or node.name in seen or _top_namespace(node.name) != namespace:
            continue
        seen.add(node.name)
        pending.extend(name for name in node.input if not graph_edit.is_control(name))
    return seen


def clip_order(graph_def, path):
    """(CLIP_BEFORE_NMS or CLIP_AFTER_NMS, source text): when the Postprocessor clips."""
    graph = _Graph(graph_def, path)
    nms_ops = [node for name, node in graph.nodes.items()
               if _top_namespace(name) == "Postprocessor" and
               node.op.startswith("NonMaxSuppression")]
    clips = [name for name in graph.nodes
             if _top_namespace(name) == "Postprocessor" and CLIP_SCOPE in name.split("/")]
    if not nms_ops or not clips:
        graph.fail("the Postprocessor has {} NonMaxSuppression op(s) and {} {} node(s); "
                   "cannot tell where it clips the boxes".format(len(nms_ops), len(clips),
                                                                 CLIP_SCOPE),
                   "Export the model with object_detection/export_inference_graph.py")
    feeding = _ancestors_within(graph, nms_ops[0].input[0], "Postprocessor")
    if any(CLIP_SCOPE in name.split("/") for name in feeding):
        return CLIP_BEFORE_NMS, "graph: {} feeds {}'s boxes".format(CLIP_SCOPE,
                                                                    nms_ops[0].name)
    return CLIP_AFTER_NMS, "graph: {} follows {}".format(CLIP_SCOPE, nms_ops[0].name)


def box_encodings_name(graph_def, path):
    """The node whose output is the box encodings [batch, anchors, 4] the Postprocessor
    decodes."""
    graph = _Graph(graph_def, path)
    raw = graph.nodes.get(RAW_BOX_ENCODINGS)
    if raw is not None and raw.input:
        return graph.source(raw.input[0]).name
    if BOX_ENCODINGS in graph.nodes:
        return BOX_ENCODINGS
    graph.fail("neither {} nor a '{}' node: cannot tell which tensor holds the box "
               "encodings".format(RAW_BOX_ENCODINGS, BOX_ENCODINGS),
               "Export the model with object_detection/export_inference_graph.py")
