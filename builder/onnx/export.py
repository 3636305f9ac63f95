"""Frozen SSD graph -> ONNX with an EfficientNMS_TRT node (the TensorRT >= 8.4 path).

Runs on the controller (Python 3.11 with TensorFlow, tf2onnx, onnx, onnx-graphsurgeon),
never on a device: every heavy import is inside the functions. The recipe:

1. the graph is cut after the Preprocessor (``Preprocessor/sub`` becomes the float input
   ``Input``, NCHW [1, 3, H, W], so the engine takes what the UFF engine takes) and before
   the Postprocessor: the box encodings (``Squeeze``) and the class logits (``concat_1``),
   the tensors the UFF recipe feeds NMS_TRT;
2. tf2onnx converts that part (tf.compat.v1 GraphDef, shapes folded for the fixed input);
3. onnx-graphsurgeon appends what the Postprocessor did before its NMS: the box coder's
   scaling (encodings x ``variance``, the inverse of the TF1 box coder scales 10, 10, 5, 5),
   the logit scale and the score converter of the export (sigmoid / softmax), then one
   ``EfficientNMS_TRT`` node (fused box decoder, BoxCenterSize coding) with the anchors as a
   constant, evaluated by TensorFlow from the graph's own anchor generator.

Every number comes from one place: num_classes, the anchor count and the input size from
``graph.ssd.analyze`` (the facts the UFF surgery uses), the thresholds and the variance
from the catalog, the score converter and the background class from the export.
"""

import contextlib
import hashlib
import os
import traceback

import numpy as np

from .. import atomic
from ..errors import UserError
from ..graph import ssd as ssd_graph
from ..graph.tfcompat import read_graph_def, tf_v1
from ..manifest import require_free_space
from ..onnx import nms_reference
from ..uff.convert import check_graph

INPUT_NAME = "Input"
OPSET = 13
NMS_OP = "EfficientNMS_TRT"
NMS_PLUGIN_VERSION = "1"
NMS_NODE = "nms"
BOXES_INPUT = "nms_box_deltas"
SCORES_INPUT = "nms_scores"
ANCHORS_INPUT = "nms_anchors"
OUTPUT_NAMES = ("num_detections", "detection_boxes", "detection_scores", "detection_classes")
# The ONNX names of the two cut tensors (the TF tensors they come from differ by export).
RAW_BOXES = "box_encodings"
RAW_SCORES = "class_logits"
SPACE_FACTOR = 3  # the .onnx holds the weights once; keep room for the staging copy


def import_exporters():
    """(tf2onnx, onnx, onnx_graphsurgeon) or a UserError naming the requirement."""
    try:
        import onnx  # noqa: PLC0415  (controller only)
        import onnx_graphsurgeon  # noqa: PLC0415
        import tf2onnx  # noqa: PLC0415
    except ImportError as error:
        raise UserError(
            "cannot import {} ({}): 'builder onnx' runs on the controller and needs tf2onnx, "
            "onnx and onnx-graphsurgeon. Install them with: pip install -r "
            "requirements/dev.txt -c requirements/constraints.txt".format(
                getattr(error, "name", None) or "the ONNX tools", error)) from error
    return tf2onnx, onnx, onnx_graphsurgeon


# The packages whose own failures on a graph are the graph's (a feature they cannot
# convert or run), not the builder's: raised inside them, they become user errors.
ONNX_TOOLS = ("tf2onnx", "onnx", "onnx_graphsurgeon", "onnxruntime", "tensorflow")


def _raised_in(error):
    """The top-level package whose code raised ``error`` (its innermost frame)."""
    frames = traceback.extract_tb(error.__traceback__)
    if not frames:
        return None
    parts = os.path.normpath(frames[-1].filename).split(os.sep)
    for index, part in enumerate(parts[:-2]):
        if part in ("site-packages", "dist-packages") and parts[index + 1] in ONNX_TOOLS:
            return parts[index + 1]
    return None


@contextlib.contextmanager
def tool_step(spec, step):
    """Turn a failure raised inside tf2onnx, onnx, onnxruntime or TensorFlow during ``step``
    into a UserError that names the model, the step, the tool and its words; a failure
    raised in the builder's own code stays a builder bug."""
    try:
        yield
    except UserError:
        raise
    except Exception as error:
        package = _raised_in(error)
        if package is None:
            raise
        words = " ".join(str(error).split())[:600]
        raise UserError(
            "model '{}': {} failed in {} ({}: {}). The graph {} has a part the ONNX path "
            "cannot take as exported. The supported form is an SSD export of "
            "object_detection/export_inference_graph.py (input_type image_tensor) with a "
            "fixed_shape_resizer; 'builder inspect {}' writes the graph as text to compare "
            "with it".format(spec.name, step, package, type(error).__name__, words,
                             spec.graph, spec.name)) from error


def output_paths(spec, out_dir):
    """(onnx path, report path) of a model in ``out_dir``."""
    base = os.path.join(out_dir, spec.name + ".onnx")
    return base, base + ".json"


def check_catalog_against_graph(spec, layout):
    """UserError when the catalog's num_classes / input_dims disagree with the graph."""
    problems = []
    if spec.num_classes not in ("auto", layout.num_classes):
        problems.append("model '{}': num_classes is {} in the catalog but {} in the graph ({}). "
                        "Change it in the catalog to {} (or write 'auto')".format(
                            spec.name, spec.num_classes, layout.num_classes,
                            layout.sources["num_classes"], layout.num_classes))
    if spec.input_dims != "auto" and list(spec.input_dims) != list(layout.input_dims):
        problems.append("model '{}': input_dims is {} in the catalog but {} in the graph ({}). "
                        "Change it in the catalog to {} (or write 'auto')".format(
                            spec.name, list(spec.input_dims), layout.input_dims,
                            layout.sources["input_dims"], layout.input_dims))
    if problems:
        raise UserError("\n".join(problems))


class GraphFacts(object):
    """What the export derives from one frozen graph (before any ONNX work)."""

    def __init__(self, spec, graph_def):
        self.graph_def = graph_def
        self.layout = ssd_graph.analyze(graph_def, spec.graph)
        check_catalog_against_graph(spec, self.layout)
        self.scores = ssd_graph.score_conversion(graph_def, spec.graph)
        self.class_agnostic = ssd_graph.nms_is_class_agnostic(graph_def, spec.graph)
        self.anchor_node = ssd_graph.anchor_concat_name(graph_def, spec.graph)
        self.box_encodings = ssd_graph.box_encodings_name(graph_def, spec.graph)
        self.box_predictor = ssd_graph.predictor_style(graph_def)[0]
        self.clip, self.clip_source = ssd_graph.clip_order(graph_def, spec.graph)
        channels, height, width = self.layout.input_dims
        self.nhwc_shape = [1, height, width, channels]

    def nms_output_boxes(self, spec):
        """How many boxes the NMS node returns: keep_top_k, or twice that where the export
        clips after its NMS (the boxes the clip leaves with no area are dropped there and
        the ones behind them move up)."""
        keep = int(spec.keep_top_k)
        if self.clip == ssd_graph.CLIP_AFTER_NMS:
            return min(keep * 2, nms_reference.MAX_CANDIDATES)
        return keep

    def nms_attributes(self, spec, box_decoder):
        return {
            "plugin_version": NMS_PLUGIN_VERSION,
            "score_threshold": float(spec.confidence_threshold),
            "iou_threshold": float(spec.nms_threshold),
            "max_output_boxes": self.nms_output_boxes(spec),
            "background_class": int(self.scores.background_class),
            "score_activation": 0,  # the converter is a node of the graph (sigmoid or softmax)
            "class_agnostic": 1 if self.class_agnostic else 0,
            "box_coding": nms_reference.BOX_CENTER_SIZE if box_decoder == "plugin"
            else nms_reference.BOX_CORNER,
        }


def cut_graph(facts):
    """(tf.Graph with the ``Input`` placeholder in place of Preprocessor/sub, placeholder)."""
    tf = tf_v1()
    graph = tf.Graph()
    with graph.as_default():
        placeholder = tf.placeholder(tf.float32, facts.nhwc_shape, name=INPUT_NAME)
        tf.import_graph_def(facts.graph_def, input_map={ssd_graph.PREPROCESSED + ":0": placeholder},
                            name="")
    return graph, placeholder


def evaluate_anchors(spec, facts):
    """The anchors [N, 4] (ymin, xmin, ymax, xmax) from the graph's own anchor generator."""
    tf = tf_v1()
    graph, placeholder = cut_graph(facts)
    with tf.Session(graph=graph) as session:
        anchors = session.run(facts.anchor_node + ":0",
                              {placeholder: np.zeros(facts.nhwc_shape, np.float32)})
    if anchors.ndim != 2 or anchors.shape[1] != 4 or anchors.shape[0] != facts.layout.anchors:
        raise UserError(
            "graph {}: the anchor generator ({}) makes {} anchors but the box predictors "
            "expect {} ({}). The graph is inconsistent; re-export it".format(
                spec.graph, facts.anchor_node, list(anchors.shape), facts.layout.anchors,
                facts.layout.sources["anchors"]))
    return anchors.astype(np.float32)


def _tf_subgraph(facts):
    tf = tf_v1()
    graph, _placeholder = cut_graph(facts)
    cut = tf.graph_util.extract_sub_graph(
        graph.as_graph_def(), [facts.box_encodings, ssd_graph.CLASS_PREDICTIONS])
    return cut


def convert_cut(facts):
    """tf2onnx on the cut graph: an onnx ModelProto with input Input (NCHW), two outputs."""
    tf2onnx, _onnx, _gs = import_exporters()
    model, _storage = tf2onnx.convert.from_graph_def(
        _tf_subgraph(facts), input_names=[INPUT_NAME + ":0"],
        output_names=[facts.box_encodings + ":0", ssd_graph.CLASS_PREDICTIONS + ":0"],
        opset=OPSET, inputs_as_nchw=[INPUT_NAME + ":0"])
    return model


def _score_nodes(gs, graph, raw_scores, facts):
    """Logit scale + score converter as ONNX nodes; returns the scores tensor for NMS."""
    shape = [1, facts.layout.anchors, facts.layout.num_classes]
    current = raw_scores
    if facts.scores.logit_scale != 1.0:
        scaled = gs.Variable("scaled_logits", dtype=np.float32, shape=shape)
        divisor = gs.Constant("logit_scale", np.array(facts.scores.logit_scale, np.float32))
        graph.nodes.append(gs.Node("Div", inputs=[current, divisor], outputs=[scaled]))
        current = scaled
    converter = facts.scores.converter
    scores = gs.Variable(SCORES_INPUT, dtype=np.float32, shape=shape)
    if converter == "identity":
        graph.nodes.append(gs.Node("Identity", inputs=[current], outputs=[scores]))
    elif converter == "sigmoid":
        graph.nodes.append(gs.Node("Sigmoid", inputs=[current], outputs=[scores]))
    else:
        graph.nodes.append(gs.Node("Softmax", attrs={"axis": -1}, inputs=[current],
                                   outputs=[scores]))
    return scores


BOX_DECODERS = ("graph", "plugin")
DECODED_BOXES = "nms_boxes"
AREA_SCORES = "nms_scores_of_boxes_with_area"
# onnx.TensorProto.FLOAT and INT32 (onnx is imported lazily)
TENSOR_FLOAT = 1
TENSOR_INT32 = 6


def _decode_in_graph(gs, graph, deltas, anchor_values, clip):
    """Box decoding as ONNX nodes (FasterRcnnBoxCoder.decode): corner boxes [1, N, 4],
    clipped to [0, 1] when the export clips before its NMS, so the NMS sees the boxes TF's
    NMS sees."""
    count = anchor_values.shape[0]
    half = [1, count, 2]
    anchor_yx = gs.Constant("anchor_yx", anchor_values[None, :, :2].copy())
    anchor_hw = gs.Constant("anchor_hw", anchor_values[None, :, 2:].copy())
    names = ("delta_yx", "delta_hw", "center_yx", "size_hw", "half_hw", "corner_min",
             "corner_max", "unclipped_boxes")
    t = {name: gs.Variable(name, dtype=np.float32, shape=half) for name in names}
    t["unclipped_boxes"].shape = [1, count, 4]
    if clip != ssd_graph.CLIP_BEFORE_NMS:
        t["unclipped_boxes"].name = DECODED_BOXES
    boxes = gs.Variable(DECODED_BOXES, dtype=np.float32, shape=[1, count, 4])
    split = gs.Constant("split_2_2", np.array([2, 2], np.int64))
    zero = gs.Constant("clip_min", np.array(0.0, np.float32))
    one = gs.Constant("clip_max", np.array(1.0, np.float32))
    two = gs.Constant("two", np.array(2.0, np.float32))
    scaled_yx = gs.Variable("scaled_yx", dtype=np.float32, shape=half)
    exp_hw = gs.Variable("exp_hw", dtype=np.float32, shape=half)
    graph.nodes.extend([
        gs.Node("Split", attrs={"axis": 2}, inputs=[deltas, split],
                outputs=[t["delta_yx"], t["delta_hw"]]),
        gs.Node("Mul", inputs=[t["delta_yx"], anchor_hw], outputs=[scaled_yx]),
        gs.Node("Add", inputs=[scaled_yx, anchor_yx], outputs=[t["center_yx"]]),
        gs.Node("Exp", inputs=[t["delta_hw"]], outputs=[exp_hw]),
        gs.Node("Mul", inputs=[exp_hw, anchor_hw], outputs=[t["size_hw"]]),
        gs.Node("Div", inputs=[t["size_hw"], two], outputs=[t["half_hw"]]),
        gs.Node("Sub", inputs=[t["center_yx"], t["half_hw"]], outputs=[t["corner_min"]]),
        gs.Node("Add", inputs=[t["center_yx"], t["half_hw"]], outputs=[t["corner_max"]]),
        gs.Node("Concat", attrs={"axis": 2}, inputs=[t["corner_min"], t["corner_max"]],
                outputs=[t["unclipped_boxes"]]),
    ])
    if clip != ssd_graph.CLIP_BEFORE_NMS:
        return t["unclipped_boxes"]
    graph.nodes.append(gs.Node("Clip", inputs=[t["unclipped_boxes"], zero, one],
                               outputs=[boxes]))
    return boxes


def _box_areas(gs, graph, boxes, prefix, shape):
    """Areas of corner boxes [1, N, 4] as ONNX nodes: a [1, N] tensor."""
    parts = [gs.Variable("{}_{}".format(prefix, name), dtype=np.float32, shape=shape + [1])
             for name in ("ymin", "xmin", "ymax", "xmax", "height", "width", "area")]
    ymin, xmin, ymax, xmax, height, width, area = parts
    flat = gs.Variable(prefix + "_areas", dtype=np.float32, shape=shape)
    graph.nodes.extend([
        gs.Node("Split", attrs={"axis": 2}, inputs=[boxes], outputs=[ymin, xmin, ymax, xmax]),
        gs.Node("Sub", inputs=[ymax, ymin], outputs=[height]),
        gs.Node("Sub", inputs=[xmax, xmin], outputs=[width]),
        gs.Node("Mul", inputs=[height, width], outputs=[area]),
        gs.Node("Squeeze", inputs=[area, gs.Constant(prefix + "_area_axis",
                                                      np.array([2], np.int64))],
                outputs=[flat]),
    ])
    return flat


def _drop_boxes_without_area(gs, graph, boxes, scores, facts):
    """Scores of the boxes the clip left with no area set to 0, under any score threshold:
    the TF exports that clip before their NMS drop those boxes there."""
    shape = [1, facts.layout.anchors]
    areas = _box_areas(gs, graph, boxes, "clipped", shape)
    has_area = gs.Variable("clipped_has_area", dtype=np.bool_, shape=shape)
    weight = gs.Variable("clipped_weight", dtype=np.float32, shape=shape + [1])
    kept = gs.Variable(AREA_SCORES, dtype=np.float32,
                       shape=shape + [facts.layout.num_classes])
    graph.nodes.extend([
        gs.Node("Greater", inputs=[areas, gs.Constant("zero_area", np.array(0.0, np.float32))],
                outputs=[has_area]),
        gs.Node("Cast", attrs={"to": TENSOR_FLOAT}, inputs=[has_area],
                outputs=[gs.Variable("clipped_weight_flat", dtype=np.float32, shape=shape)]),
    ])
    graph.nodes.append(gs.Node("Unsqueeze", inputs=[graph.nodes[-1].outputs[0],
                                                    gs.Constant("weight_axis",
                                                                np.array([2], np.int64))],
                               outputs=[weight]))
    graph.nodes.append(gs.Node("Mul", inputs=[scores, weight], outputs=[kept]))
    return kept


def add_nms(model, spec, facts, anchors, box_decoder="graph"):
    """The ONNX model with the box scaling, score converter and EfficientNMS_TRT appended.

    ``box_decoder``: "graph" decodes and clips the boxes with ONNX nodes and gives
    EfficientNMS_TRT corner boxes (box_coding 0, two inputs): the detections TensorFlow's
    Postprocessor gives, border boxes included. "plugin" uses the plugin's fused decoder
    (box_coding 1, the anchors as its third input): fewer nodes, but the plugin does not
    clip, so boxes crossing the image border are suppressed differently than in TF.
    """
    if box_decoder not in BOX_DECODERS:
        raise UserError("--box-decoder {!r}: choose one of {}".format(
            box_decoder, ", ".join(BOX_DECODERS)))
    _tf2onnx, _onnx, gs = import_exporters()
    graph = gs.import_onnx(model)
    graph.inputs[0].name = INPUT_NAME
    by_name = {tensor.name: tensor for tensor in graph.outputs}
    # tf2onnx names the outputs after the TF tensors (with their output index).
    raw_boxes = by_name[facts.box_encodings + ":0"]
    raw_scores = by_name[ssd_graph.CLASS_PREDICTIONS + ":0"]
    raw_boxes.name, raw_scores.name = RAW_BOXES, RAW_SCORES
    count = facts.layout.anchors
    deltas = gs.Variable(BOXES_INPUT, dtype=np.float32, shape=[1, count, 4])
    variance = gs.Constant("box_coder_variance",
                           np.array(spec.variance, np.float32).reshape(1, 1, 4))
    graph.nodes.append(gs.Node("Mul", inputs=[raw_boxes, variance], outputs=[deltas]))
    scores = _score_nodes(gs, graph, raw_scores, facts)
    anchor_values = nms_reference.center_size_from_corners(anchors).astype(np.float32)
    if box_decoder == "plugin":
        nms_inputs = [deltas, scores, gs.Constant(ANCHORS_INPUT,
                                                  anchor_values.reshape(1, count, 4))]
    else:
        boxes = _decode_in_graph(gs, graph, deltas, anchor_values, facts.clip)
        if facts.clip == ssd_graph.CLIP_BEFORE_NMS:
            scores = _drop_boxes_without_area(gs, graph, boxes, scores, facts)
        nms_inputs = [boxes, scores]
    clip_after = facts.clip == ssd_graph.CLIP_AFTER_NMS
    outputs = _detection_tensors(gs, "nms_" if clip_after else "",
                                 facts.nms_output_boxes(spec))
    graph.nodes.append(gs.Node(NMS_OP, name=NMS_NODE,
                               attrs=facts.nms_attributes(spec, box_decoder),
                               inputs=nms_inputs, outputs=outputs))
    if clip_after:
        outputs = _clip_after_nms(gs, graph, outputs, int(spec.keep_top_k))
    graph.outputs = outputs
    graph.cleanup().toposort()
    exported = gs.export_onnx(graph)
    exported.producer_name = "trt-builder onnx"
    # onnx.checker knows no EfficientNMS_TRT (TensorRT resolves it from its plugin
    # registry): the verification checks the model without that node.
    return exported


def _detection_tensors(gs, prefix, keep):
    """The four detection tensors (num, boxes, scores, classes) for ``keep`` boxes."""
    return [
        gs.Variable(prefix + OUTPUT_NAMES[0], dtype=np.int32, shape=[1, 1]),
        gs.Variable(prefix + OUTPUT_NAMES[1], dtype=np.float32, shape=[1, keep, 4]),
        gs.Variable(prefix + OUTPUT_NAMES[2], dtype=np.float32, shape=[1, keep]),
        gs.Variable(prefix + OUTPUT_NAMES[3], dtype=np.int32, shape=[1, keep]),
    ]


def _clip_after_nms(gs, graph, selected, keep):
    """What the 2019 exports do after their NMS, as ONNX nodes: clip the selected boxes to
    [0, 1], drop those left with no area, keep the best ``keep`` of the rest (in score
    order) and zero the slots past their count, as EfficientNMS_TRT pads."""
    count, boxes, scores, classes = selected
    width = boxes.shape[1]
    outputs = _detection_tensors(gs, "", keep)

    def tensor(name, dtype, shape):
        return gs.Variable("after_nms_" + name, dtype=dtype, shape=shape)

    def const(name, value):
        return gs.Constant("after_nms_" + name, np.array(value))

    row = [1, width]
    clipped = tensor("clipped", np.float32, [1, width, 4])
    graph.nodes.append(gs.Node("Clip", inputs=[boxes, const("zero", np.float32(0.0)),
                                               const("one", np.float32(1.0))],
                               outputs=[clipped]))
    areas = _box_areas(gs, graph, clipped, "after_nms", row)
    slots = const("slots", np.arange(width, dtype=np.int32).reshape(1, width))
    names = ("selected", "has_area", "valid", "valid_int", "valid_count", "masked",
             "top_scores", "top_index", "index", "kept", "kept_float", "kept_boxes",
             "kept_classes")
    dtypes = {"selected": np.bool_, "has_area": np.bool_, "valid": np.bool_,
              "valid_int": np.int32, "valid_count": np.int32, "top_index": np.int64,
              "index": np.int64, "kept": np.bool_, "kept_classes": np.int32}
    t = {name: tensor(name, dtypes.get(name, np.float32), row) for name in names}
    t["valid_count"].shape = [1, 1]
    for name in ("top_scores", "top_index", "kept", "kept_float", "kept_classes"):
        t[name].shape = [1, keep]
    t["index"].shape = [keep]
    t["kept_boxes"].shape = [1, keep, 4]
    keep_slots = const("keep_slots", np.arange(keep, dtype=np.int32).reshape(1, keep))
    graph.nodes.extend([
        gs.Node("Less", inputs=[slots, count], outputs=[t["selected"]]),
        gs.Node("Greater", inputs=[areas, const("no_area", np.float32(0.0))],
                outputs=[t["has_area"]]),
        gs.Node("And", inputs=[t["selected"], t["has_area"]], outputs=[t["valid"]]),
        gs.Node("Cast", attrs={"to": TENSOR_INT32}, inputs=[t["valid"]],
                outputs=[t["valid_int"]]),
        gs.Node("ReduceSum", attrs={"keepdims": 1},
                inputs=[t["valid_int"], const("count_axis", np.array([1], np.int64))],
                outputs=[t["valid_count"]]),
        gs.Node("Min", inputs=[t["valid_count"], const("keep", np.array([[keep]], np.int32))],
                outputs=[outputs[0]]),
        gs.Node("Where", inputs=[t["valid"], scores, const("dropped", np.float32(-1.0))],
                outputs=[t["masked"]]),
        gs.Node("TopK", attrs={"axis": 1, "largest": 1, "sorted": 1},
                inputs=[t["masked"], const("k", np.array([keep], np.int64))],
                outputs=[t["top_scores"], t["top_index"]]),
        gs.Node("Squeeze", inputs=[t["top_index"], const("batch", np.array([0], np.int64))],
                outputs=[t["index"]]),
        gs.Node("Less", inputs=[keep_slots, outputs[0]], outputs=[t["kept"]]),
        gs.Node("Cast", attrs={"to": TENSOR_FLOAT}, inputs=[t["kept"]],
                outputs=[t["kept_float"]]),
        gs.Node("Mul", inputs=[t["top_scores"], t["kept_float"]], outputs=[outputs[2]]),
        gs.Node("Gather", attrs={"axis": 1}, inputs=[clipped, t["index"]],
                outputs=[t["kept_boxes"]]),
        gs.Node("Unsqueeze", inputs=[t["kept_float"], const("box_axis", np.array([2], np.int64))],
                outputs=[tensor("kept_box_weight", np.float32, [1, keep, 1])]),
    ])
    graph.nodes.append(gs.Node("Mul", inputs=[t["kept_boxes"], graph.nodes[-1].outputs[0]],
                               outputs=[outputs[1]]))
    graph.nodes.extend([
        gs.Node("Gather", attrs={"axis": 1}, inputs=[classes, t["index"]],
                outputs=[t["kept_classes"]]),
        gs.Node("Cast", attrs={"to": TENSOR_INT32}, inputs=[t["kept"]],
                outputs=[tensor("kept_int", np.int32, [1, keep])]),
    ])
    graph.nodes.append(gs.Node("Mul", inputs=[t["kept_classes"], graph.nodes[-1].outputs[0]],
                               outputs=[outputs[3]]))
    return outputs


class Export(object):
    """An exported model: the ONNX proto, its pieces and what they came from."""

    def __init__(self, spec, graph_sha256, facts, anchors, *, cut, model, box_decoder):
        self.box_decoder = box_decoder
        self.cut = cut  # tf2onnx's model of the cut graph, before add_nms
        self.spec = spec
        self.graph_sha256 = graph_sha256
        self.facts = facts
        self.anchors = anchors
        self.model = model

    def nms_attributes(self):
        return self.facts.nms_attributes(self.spec, self.box_decoder)

    def report(self):
        layout = self.facts.layout
        return {
            "model": self.spec.name,
            "graph": self.spec.graph,
            "graph_sha256": self.graph_sha256,
            "input": {"name": INPUT_NAME, "shape": [1] + list(layout.input_dims),
                      "layout": "NCHW", "cut_at": ssd_graph.PREPROCESSED + ":0"},
            "cut_tensors": {"boxes": self.facts.box_encodings + ":0",
                            "scores": ssd_graph.CLASS_PREDICTIONS + ":0",
                            "anchors": self.facts.anchor_node + ":0"},
            "num_classes": layout.num_classes,
            "box_predictor": self.facts.box_predictor,
            "clip": self.facts.clip,
            "anchors": int(self.anchors.shape[0]),
            "score_converter": self.facts.scores.converter,
            "logit_scale": self.facts.scores.logit_scale,
            "box_coder_variance": [float(v) for v in self.spec.variance],
            "box_decoder": self.box_decoder,
            "nms": {"op": NMS_OP, "plugin_version": NMS_PLUGIN_VERSION,
                    "attributes": self.nms_attributes(),
                    "inputs": [BOXES_INPUT, SCORES_INPUT, ANCHORS_INPUT]
                    if self.box_decoder == "plugin" else [DECODED_BOXES, SCORES_INPUT]},
            "outputs": output_bindings(self.spec),
            "sources": dict(layout.sources, clip=self.facts.clip_source,
                            **self.facts.scores.sources),
            "opset": OPSET,
        }


def output_bindings(spec):
    """The engine outputs an EfficientNMS_TRT graph has (name, shape, dtype)."""
    keep = int(spec.keep_top_k)
    return [
        {"name": OUTPUT_NAMES[0], "shape": [1, 1], "dtype": "INT32"},
        {"name": OUTPUT_NAMES[1], "shape": [1, keep, 4], "dtype": "FLOAT"},
        {"name": OUTPUT_NAMES[2], "shape": [1, keep], "dtype": "FLOAT"},
        {"name": OUTPUT_NAMES[3], "shape": [1, keep], "dtype": "INT32"},
    ]


def export_model(spec, progress, box_decoder="graph"):
    """Export ``spec``'s graph to an ONNX proto (not written yet): an Export."""
    import_exporters()
    graph_sha256 = check_graph(spec)
    progress("graph {} sha256 {}".format(spec.graph, graph_sha256))
    facts = GraphFacts(spec, read_graph_def(spec.graph))
    with tool_step(spec, "evaluating the anchors with TensorFlow"):
        anchors = evaluate_anchors(spec, facts)
    progress("{}: {} classes, {} anchors, scores by {}, cut at {}, {} and {}".format(
        spec.name, facts.layout.num_classes, anchors.shape[0], facts.scores.converter,
        ssd_graph.PREPROCESSED, RAW_BOXES, RAW_SCORES))
    with tool_step(spec, "the conversion by tf2onnx"):
        cut = convert_cut(facts)
    with tool_step(spec, "appending the NMS with onnx-graphsurgeon"):
        model = add_nms(cut, spec, facts, anchors, box_decoder)
    return Export(spec, graph_sha256, facts, anchors, cut=cut, model=model,
                  box_decoder=box_decoder)


def with_nms(export, cut):
    """``export``'s model made anew from another ``cut`` model (e.g. an fp16 copy)."""
    with tool_step(export.spec, "appending the NMS with onnx-graphsurgeon"):
        return add_nms(cut, export.spec, export.facts, export.anchors, export.box_decoder)


def model_sha256(model):
    """The sha256 of a ModelProto as ``write_model`` writes it."""
    return hashlib.sha256(model.SerializeToString()).hexdigest()


def write_model(export, out_dir):
    """Write ``<model>.onnx`` atomically; returns its path."""
    data = export.model.SerializeToString()
    require_free_space(out_dir, len(data) * SPACE_FACTOR, "the ONNX file of {}".format(
        export.spec.name))
    onnx_path, _report = output_paths(export.spec, out_dir)
    atomic.write_bytes(onnx_path, data)
    return onnx_path
