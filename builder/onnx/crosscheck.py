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
TIE_TOLERANCE = 1e-6  # float32 rounding between TensorFlow and onnxruntime
TF_DETECTIONS = ("detection_boxes", "detection_scores", "detection_classes", "num_detections")


def test_image(input_dims, seed=IMAGE_SEED):
    """A deterministic uint8 image [1, H, W, 3] of uniform noise (no flat regions, so few
    boxes share a score)."""
    _channels, height, width = input_dims
    rng = np.random.RandomState(seed)
    return rng.randint(0, 256, size=(1, height, width, 3)).astype(np.uint8)


def run_tensorflow(graph_def, image):
    """TensorFlow on the whole frozen graph: the cut tensors and the final detections."""
    tf = tf_v1()
    graph = tf.Graph()
    with graph.as_default():
        tf.import_graph_def(graph_def, name="")
    names = {"preprocessed": ssd_graph.PREPROCESSED, "boxes": ssd_graph.BOX_ENCODINGS,
             "logits": ssd_graph.CLASS_PREDICTIONS, "scores": ssd_graph.SCORE_CONVERTER_NODE}
    names.update((name, name) for name in TF_DETECTIONS)
    with tf.Session(graph=graph) as session:
        values = session.run({key: name + ":0" for key, name in names.items()},
                             {"image_tensor:0": image})
    return values


def without_nms(model):
    """A copy of ``model`` whose outputs are the cut tensors and the NMS inputs."""
    _tf2onnx, onnx, gs = onnx_export.import_exporters()
    graph = gs.import_onnx(model)
    tensors = graph.tensors()
    nms_node = [node for node in graph.nodes if node.op == onnx_export.NMS_OP][0]
    anchors = nms_node.inputs[2].values if len(nms_node.inputs) > 2 else None
    nms_boxes = nms_node.inputs[0].name
    graph.nodes.remove(nms_node)
    outputs = [tensors[onnx_export.RAW_BOXES], tensors[onnx_export.RAW_SCORES],
               tensors[nms_boxes], tensors[onnx_export.SCORES_INPUT]]
    for tensor in outputs:
        tensor.dtype = np.float32
    graph.outputs = outputs
    graph.cleanup()
    stripped = gs.export_onnx(graph)
    onnx.checker.check_model(stripped)
    return stripped, anchors, nms_boxes


def run_onnxruntime(model, preprocessed_nhwc):
    import onnxruntime  # noqa: PLC0415  (controller only)

    session = onnxruntime.InferenceSession(model.SerializeToString(),
                                           providers=["CPUExecutionProvider"])
    feed = {onnx_export.INPUT_NAME: np.ascontiguousarray(
        np.transpose(preprocessed_nhwc, (0, 3, 1, 2)), dtype=np.float32)}
    names = [output.name for output in session.get_outputs()]
    return dict(zip(names, session.run(names, feed)))


def _max_error(first, second):
    first, second = np.asarray(first, np.float64), np.asarray(second, np.float64)
    if first.shape != second.shape:
        return None
    return float(np.max(np.abs(first - second))) if first.size else 0.0


def match_detections(tf_values, nms, threshold):
    """Compare the plugin's detections (clipped to [0, 1]) with TensorFlow's, above threshold."""
    tf_count = int(tf_values["num_detections"][0])
    tf_scores = tf_values["detection_scores"][0][:tf_count]
    # When TF's list is full, its last score may be shared by more boxes than fit (exact
    # ties): which of those make it is arbitrary in both NMS implementations, so the
    # comparison stops above that tied tail.
    floor = float(threshold)
    if tf_count == len(tf_values["detection_scores"][0]) and tf_count:
        floor = max(floor, float(tf_scores[-1]) + TIE_TOLERANCE)
    keep_tf = np.nonzero(tf_scores > floor)[0]
    count = int(nms["num_detections"][0, 0])
    scores = nms["detection_scores"][0][:count]
    keep = np.nonzero(scores > floor)[0]
    boxes = np.clip(nms["detection_boxes"][0][:count], 0.0, 1.0)
    classes = nms["detection_classes"][0][:count]
    used = np.zeros(count, bool)
    worst_iou, worst_score, unmatched = 1.0, 0.0, []
    for index in keep_tf:
        tf_box = tf_values["detection_boxes"][0][index]
        tf_class = int(round(float(tf_values["detection_classes"][0][index])))
        candidates = [j for j in keep if not used[j] and int(classes[j]) == tf_class]
        if not candidates:
            unmatched.append(int(index))
            continue
        overlaps = nms_reference.iou(tf_box, boxes[candidates])
        best = int(np.argmax(overlaps))
        j = candidates[best]
        score_error = abs(float(scores[j]) - float(tf_scores[index]))
        if overlaps[best] < MIN_IOU or score_error > SCORE_TOLERANCE:
            unmatched.append(int(index))
            continue
        used[j] = True
        worst_iou = min(worst_iou, float(overlaps[best]))
        worst_score = max(worst_score, score_error)
    return {
        "tensorflow": int(len(keep_tf)),
        "onnx": int(len(keep)),
        "matched": int(len(keep_tf) - len(unmatched)),
        "unmatched_tensorflow_indices": unmatched[:10],
        "min_iou": round(worst_iou, 6),
        "max_score_error": float(worst_score),
        "score_threshold": float(threshold),
        "compared_above": floor,
        "boxes_clipped_to": [0.0, 1.0],
    }


def crosscheck(export, seed=IMAGE_SEED):
    """The verification figures of ``export`` (an onnx.export.Export), with ``ok``."""
    layout = export.facts.layout
    image = test_image(layout.input_dims, seed)
    tf_values = run_tensorflow(export.facts.graph_def, image)
    stripped, anchors, nms_boxes = without_nms(export.model)
    ort = run_onnxruntime(stripped, tf_values["preprocessed"])
    errors = {
        "boxes": _max_error(ort[onnx_export.RAW_BOXES], tf_values["boxes"]),
        "logits": _max_error(ort[onnx_export.RAW_SCORES], tf_values["logits"]),
        "scores": _max_error(ort[onnx_export.SCORES_INPUT], tf_values["scores"]),
    }
    attrs = export.nms_attributes()
    nms = nms_reference.efficient_nms(ort[nms_boxes],
                                      ort[onnx_export.SCORES_INPUT], anchors, attrs)
    matched = match_detections(tf_values, nms, attrs["score_threshold"])
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
    return {
        "ok": not problems,
        "problems": problems,
        "image": {"kind": "uniform noise", "seed": seed,
                  "shape": list(image.shape)},
        "cut": {"max_abs_error": errors, "tolerance": CUT_TOLERANCE,
                "runtime": "onnxruntime {} (CPU), graph without {}".format(
                    _ort_version(), onnx_export.NMS_OP),
                "reference": "TensorFlow {} on the frozen graph".format(_tf_version())},
        "nms": {"reference": "numpy model of EfficientNMS_TRT (builder/onnx/nms_reference.py)",
                "detections": int(nms["num_detections"][0, 0]),
                "box_decoder": export.box_decoder,
                "inputs": [nms_boxes, onnx_export.SCORES_INPUT] + (
                    [onnx_export.ANCHORS_INPUT] if anchors is not None else [])},
        "detections": dict(matched, min_iou_required=MIN_IOU,
                           score_tolerance=SCORE_TOLERANCE,
                           reference="TensorFlow Postprocessor ({})".format(
                               ", ".join(TF_DETECTIONS))),
    }


def _ort_version():
    import onnxruntime  # noqa: PLC0415

    return onnxruntime.__version__


def _tf_version():
    import tensorflow  # noqa: PLC0415

    return tensorflow.__version__
