"""Check an exported ONNX model against the TensorFlow graph it came from, for real.

Three comparisons on one test image (controller only: TensorFlow, onnxruntime, numpy):

1. ``cut``: onnxruntime runs the ONNX graph WITHOUT its EfficientNMS_TRT node; its box
   encodings and class logits must equal TensorFlow's ``Squeeze`` / ``concat_1`` on the same
   preprocessed input (max abs error <= CUT_TOLERANCE), and its scores TensorFlow's score
   converter output;
2. ``nms``: the NMS step, which onnxruntime cannot run, is computed by the numpy model of
   EfficientNMS_TRT (``nms_reference``) on onnxruntime's tensors and on the anchors stored
   in the ONNX file;
3. ``detections``: those detections must match TensorFlow's own Postprocessor output
   (detection_boxes / _scores / _classes / num_detections): same classes, box IoU >=
   MIN_IOU, scores within SCORE_TOLERANCE, for every detection above score_threshold.
   EfficientNMS does not clip its boxes; the TF Postprocessor clips them to the image
   window [0, 1], so the comparison clips the plugin's boxes the same way (so should
   every consumer of the engine's boxes).
"""

import numpy as np

from ..graph import ssd as ssd_graph
from ..graph.tfcompat import tf_v1
from ..onnx import export as onnx_export
from ..onnx import nms_reference

CUT_TOLERANCE = 1e-4
MIN_IOU = 0.99
SCORE_TOLERANCE = 1e-3
IMAGE_SEED = 20261201
TF_DETECTIONS = ("detection_boxes", "detection_scores", "detection_classes", "num_detections")


def test_image(height, width, seed=IMAGE_SEED):
    """A deterministic uint8 image [1, H, W, 3] of uniform noise (no flat regions, so few
    boxes share a score)."""
    rng = np.random.RandomState(seed)
    return rng.randint(0, 256, size=(1, height, width, 3)).astype(np.uint8)


def test_images(input_dims, seed=IMAGE_SEED):
    """[(what, image)]: one of the graph's input size, and one of another size and aspect
    (what a user feeds the exporter's resize, which runs before the engine's input)."""
    _channels, height, width = input_dims
    return [("the graph's input size", test_image(height, width, seed)),
            ("another size", test_image(height * 3 // 2 + 1, width * 3 // 4 + 1, seed + 1))]


def run_tensorflow(facts, image):
    """TensorFlow on the whole frozen graph: the cut tensors and the final detections."""
    graph_def = facts.graph_def
    tf = tf_v1()
    graph = tf.Graph()
    with graph.as_default():
        tf.import_graph_def(graph_def, name="")
    names = {"preprocessed": ssd_graph.PREPROCESSED, "boxes": facts.box_encodings,
             "logits": ssd_graph.CLASS_PREDICTIONS, "scores": ssd_graph.SCORE_CONVERTER_NODE}
    names.update((name, name) for name in TF_DETECTIONS)
    with tf.Session(graph=graph) as session:
        values = session.run({key: name + ":0" for key, name in names.items()},
                             {"image_tensor:0": image})
    return values


class NmsSplit(object):
    """An exported model cut at its EfficientNMS_TRT node, for the parts onnxruntime runs.

    ``before``: the model up to the NMS, whose outputs are the cut tensors, the converted
    scores and the NMS inputs; ``after``: the nodes behind the NMS (the exports that clip
    after their NMS), with the NMS outputs as inputs, or None when the NMS outputs are the
    model's. ``nms_inputs``: the NMS node's input names; ``anchors``: its anchors or None.
    """

    def __init__(self, model):
        _tf2onnx, onnx, gs = onnx_export.import_exporters()
        graph = gs.import_onnx(model)
        nms_node = [node for node in graph.nodes if node.op == onnx_export.NMS_OP][0]
        self.attributes = dict(nms_node.attrs)
        self.anchors = nms_node.inputs[2].values if len(nms_node.inputs) > 2 else None
        self.nms_inputs = [tensor.name for tensor in nms_node.inputs[:2]]
        self.nms_outputs = [tensor.name for tensor in nms_node.outputs]
        self.after = self._after(gs, onnx, model, nms_node)
        graph.nodes.remove(nms_node)
        tensors = graph.tensors()
        outputs = [tensors[name] for name in (onnx_export.RAW_BOXES, onnx_export.RAW_SCORES,
                                               onnx_export.SCORES_INPUT)]
        outputs += [tensors[name] for name in self.nms_inputs if name not in
                    (onnx_export.SCORES_INPUT,)]
        for tensor in outputs:
            tensor.dtype = np.float32
        graph.outputs = outputs
        graph.cleanup()
        self.before = gs.export_onnx(graph)
        onnx.checker.check_model(self.before)

    def _after(self, gs, onnx, model, nms_node):
        if [tensor.name for tensor in nms_node.outputs] == list(onnx_export.OUTPUT_NAMES):
            return None
        graph = gs.import_onnx(model)
        node = [node for node in graph.nodes if node.op == onnx_export.NMS_OP][0]
        graph.inputs = list(node.outputs)
        for tensor in graph.inputs:
            tensor.inputs.clear()
        graph.cleanup()
        after = gs.export_onnx(graph)
        onnx.checker.check_model(after)
        return after


def run_onnxruntime(model, feed):
    """The outputs of ``model`` (a dict by name) on ``feed`` (a dict by input name)."""
    import onnxruntime  # noqa: PLC0415  (controller only)

    session = onnxruntime.InferenceSession(model.SerializeToString(),
                                           providers=["CPUExecutionProvider"])
    names = [output.name for output in session.get_outputs()]
    return dict(zip(names, session.run(names, feed)))


def nchw_feed(preprocessed_nhwc):
    """The ``Input`` feed of an exported model from TensorFlow's preprocessed NHWC image."""
    return {onnx_export.INPUT_NAME: np.ascontiguousarray(
        np.transpose(preprocessed_nhwc, (0, 3, 1, 2)), dtype=np.float32)}


def run_detections(split, preprocessed_nhwc, order_scores=None):
    """(outputs before the NMS, the model's four detection outputs): onnxruntime for the
    ONNX nodes, the numpy model of EfficientNMS_TRT for the plugin, its candidates ranked
    by ``order_scores`` when given (see nms_reference.efficient_nms)."""
    before = run_onnxruntime(split.before, nchw_feed(preprocessed_nhwc))
    selected = nms_reference.efficient_nms(before[split.nms_inputs[0]],
                                           before[split.nms_inputs[1]], split.anchors,
                                           split.attributes, order_scores=order_scores)
    if split.after is None:
        return before, selected
    feed = {name: selected[output] for name, output in
            zip(split.nms_outputs, onnx_export.OUTPUT_NAMES)}
    return before, run_onnxruntime(split.after, feed)


def _max_error(first, second):
    first, second = np.asarray(first, np.float64), np.asarray(second, np.float64)
    if first.shape != second.shape:
        return None
    return float(np.max(np.abs(first - second))) if first.size else 0.0


def tf_detections(tf_values):
    """TensorFlow's detections as (count, boxes, scores, classes) of one image; its classes
    are label ids (the index of the class column, background 0), as the plugin's are."""
    count = int(tf_values["num_detections"][0])
    classes = np.round(tf_values["detection_classes"][0]).astype(np.int64)
    return (count, tf_values["detection_boxes"][0], tf_values["detection_scores"][0], classes)


def plugin_detections(nms):
    """The four EfficientNMS_TRT outputs as (count, boxes, scores, classes) of one image."""
    return (int(nms["num_detections"][0, 0]), nms["detection_boxes"][0],
            nms["detection_scores"][0], nms["detection_classes"][0].astype(np.int64))


def _tied_tail(count, scores, capacity):
    """How many of a full list's last detections share its last score (0 if not full)."""
    if not count or count < capacity:
        return 0
    return int(np.count_nonzero(scores[:count] == scores[count - 1]))


def match_detections(reference, found, threshold, min_iou=MIN_IOU,
                     score_tolerance=SCORE_TOLERANCE):
    """Match ``found`` (boxes clipped to [0, 1]) against ``reference``, above threshold: every
    reference detection needs one of ``found`` of its class with IoU >= min_iou and a score
    within score_tolerance. Both are (count, boxes, scores, classes)."""
    ref_count, ref_boxes, ref_scores, ref_classes = reference
    count, boxes, scores, classes = found
    ref_scores, scores = ref_scores[:ref_count], scores[:count]
    # When a list is full, its last score may be shared by more boxes than fit (an exact
    # tie; fp16 scores have many): which of those make it is arbitrary. So the places of
    # the longer such tied tail (of either list) are left out: that many of the reference's
    # last are not asked for, and that many of ``found`` may be others (the boxes that won
    # those places). Every other detection must pair up.
    tail = max(_tied_tail(ref_count, ref_scores, len(ref_boxes)),
               _tied_tail(count, scores, len(boxes)))
    keep_ref = np.nonzero(ref_scores > threshold)[0][:max(ref_count - tail, 0)]
    keep = np.nonzero(scores > threshold)[0]
    boxes = np.clip(boxes[:count], 0.0, 1.0)
    used = np.zeros(count, bool)
    worst_iou, worst_score, unmatched = 1.0, 0.0, []
    for index in keep_ref:
        candidates = [j for j in keep if not used[j] and classes[j] == ref_classes[index]]
        if not candidates:
            unmatched.append(int(index))
            continue
        overlaps = nms_reference.iou(ref_boxes[index], boxes[candidates])
        best = int(np.argmax(overlaps))
        j = candidates[best]
        score_error = abs(float(scores[j]) - float(ref_scores[index]))
        if overlaps[best] < min_iou or score_error > score_tolerance:
            unmatched.append(int(index))
            continue
        used[j] = True
        worst_iou = min(worst_iou, float(overlaps[best]))
        worst_score = max(worst_score, score_error)
    matched = len(keep_ref) - len(unmatched)
    unpaired = max(len(keep) - matched - tail, 0)  # found beyond the reference's tied places
    return {
        "tensorflow": int(len(keep_ref)),
        "onnx": int(matched + unpaired),
        "matched": int(matched),
        "unmatched_tensorflow_indices": unmatched[:10],
        "min_iou": round(worst_iou, 6),
        "max_score_error": float(worst_score),
        "score_threshold": float(threshold),
        "tied_tail_left_out": tail,
        "boxes_clipped_to": [0.0, 1.0],
    }


def check_image(export, split, image):
    """The figures of one test image: cut errors, detections matched, problems."""
    tf_values = run_tensorflow(export.facts, image)
    # TensorFlow's scores rank the NMS candidates: where two scores are within float error
    # of each other, the reference keeps the one TensorFlow kept (random weights give many
    # such near-ties); every score compared is still onnxruntime's.
    ort, nms = run_detections(split, tf_values["preprocessed"], order_scores=tf_values["scores"])
    errors = {
        "boxes": _max_error(ort[onnx_export.RAW_BOXES], tf_values["boxes"]),
        "logits": _max_error(ort[onnx_export.RAW_SCORES], tf_values["logits"]),
        "scores": _max_error(ort[onnx_export.SCORES_INPUT], tf_values["scores"]),
    }
    matched = match_detections(tf_detections(tf_values), plugin_detections(nms),
                               split.attributes["score_threshold"])
    problems = []
    for name, error in sorted(errors.items()):
        if error is None:
            problems.append("{}: onnxruntime and TensorFlow disagree on the shape".format(name))
        elif error > CUT_TOLERANCE:
            problems.append("{}: max abs error {:.3g} above {}".format(name, error,
                                                                       CUT_TOLERANCE))
    if matched["matched"] != matched["tensorflow"] or matched["onnx"] != matched["tensorflow"]:
        problems.append("detections: {} of TensorFlow's {} above {} matched (EfficientNMS "
                        "reference gave {})".format(matched["matched"], matched["tensorflow"],
                                                    matched["score_threshold"],
                                                    matched["onnx"]))
    return {"shape": list(image.shape), "cut_max_abs_error": errors,
            "nms_detections": int(nms["num_detections"][0, 0]), "detections": matched,
            "problems": problems}


def _worst_cut(figures):
    worst = {}
    for name in ("boxes", "logits", "scores"):
        values = [one["cut_max_abs_error"][name] for one in figures]
        worst[name] = None if None in values else max(values)
    return worst


def _all_detections(figures):
    found = [one["detections"] for one in figures]
    total = {key: sum(one[key] for one in found) for key in ("tensorflow", "onnx", "matched")}
    total.update(min_iou=min(one["min_iou"] for one in found),
                 max_score_error=max(one["max_score_error"] for one in found),
                 score_threshold=found[0]["score_threshold"],
                 boxes_clipped_to=found[0]["boxes_clipped_to"])
    return total


def crosscheck(export, seed=IMAGE_SEED):
    """The verification figures of ``export`` (an onnx.export.Export), with ``ok``: the
    worst of its test images, and each image's own figures under ``images``."""
    split = NmsSplit(export.model)
    figures = []
    for what, image in test_images(export.facts.layout.input_dims, seed):
        figures.append(dict(check_image(export, split, image), image=what))
    problems = ["{} ({}): {}".format(one["image"], "x".join(str(d) for d in one["shape"][1:3]),
                                     problem)
                for one in figures for problem in one["problems"]]
    return {
        "ok": not problems,
        "problems": problems,
        "image": {"kind": "uniform noise", "seed": seed,
                  "shapes": [one["shape"] for one in figures]},
        "images": figures,
        "cut": {"max_abs_error": _worst_cut(figures), "tolerance": CUT_TOLERANCE,
                "runtime": "onnxruntime {} (CPU), graph without {}".format(
                    ort_version(), onnx_export.NMS_OP),
                "reference": "TensorFlow {} on the frozen graph".format(_tf_version())},
        "nms": {"reference": "numpy model of EfficientNMS_TRT (builder/onnx/nms_reference.py), "
                             "candidates ranked by TensorFlow's scores",
                "detections": sum(one["nms_detections"] for one in figures),
                "box_decoder": export.box_decoder,
                "clip": export.facts.clip,
                "inputs": split.nms_inputs + (
                    [onnx_export.ANCHORS_INPUT] if split.anchors is not None else []),
                "after_nms": "onnxruntime" if split.after is not None else None},
        "detections": dict(_all_detections(figures), min_iou_required=MIN_IOU,
                           score_tolerance=SCORE_TOLERANCE,
                           reference="TensorFlow Postprocessor ({})".format(
                               ", ".join(TF_DETECTIONS))),
    }


def ort_version():
    import onnxruntime  # noqa: PLC0415

    return onnxruntime.__version__


def _tf_version():
    import tensorflow  # noqa: PLC0415

    return tensorflow.__version__
