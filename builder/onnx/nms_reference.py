"""EfficientNMS_TRT in numpy: what the plugin computes, to check an ONNX graph without TensorRT.

The semantics follow the plugin's README and kernels (NVIDIA/TensorRT
plugin/efficientNMSPlugin: README.md, efficientNMSInference.cuh, efficientNMSInference.cu):

- fused box decoder (three inputs), box_coding 1 (BoxCenterSize, ``[y, x, h, w]``):
  ``y = dy * anchor_h + anchor_y``, ``x = dx * anchor_w + anchor_x``,
  ``h = anchor_h * exp(dh)``, ``w = anchor_w * exp(dw)``; box_coding 0 (BoxCorner) adds the
  deltas to the anchor corners;
- every (box, class) score above ``score_threshold`` is a candidate, the background
  class excluded; candidates are sorted by score (highest first) and at most the top
  4096 are kept;
- greedy NMS: a candidate is dropped when its IoU with an already selected box of the same
  class (of any class with ``class_agnostic``) is above ``iou_threshold``;
- ``score_activation`` applies the sigmoid to the scores (the plugin does it on the kept
  ones only: the order and the selection are the same);
- outputs: num_detections [B, 1] int32, detection_boxes [B, K, 4] corner coded (as the
  input's axis order), detection_scores [B, K], detection_classes [B, K] int32; entries
  past num_detections are zero.

numpy only; runs on the controller (``builder onnx``) and in tests.
"""

import numpy as np

# The plugin sorts the filtered scores and runs NMS on the highest 4096 (README, Algorithm).
MAX_CANDIDATES = 4096
BOX_CORNER = 0
BOX_CENTER_SIZE = 1


def sigmoid(values):
    return 1.0 / (1.0 + np.exp(-values))


def decode(deltas, anchors, box_coding):
    """Boxes in corner coding [..., 4] from raw deltas and anchors of the same coding."""
    deltas = np.asarray(deltas, dtype=np.float64)
    anchors = np.asarray(anchors, dtype=np.float64)
    if box_coding == BOX_CORNER:
        return deltas + anchors
    y = deltas[..., 0] * anchors[..., 2] + anchors[..., 0]
    x = deltas[..., 1] * anchors[..., 3] + anchors[..., 1]
    h = anchors[..., 2] * np.exp(deltas[..., 2])
    w = anchors[..., 3] * np.exp(deltas[..., 3])
    return np.stack([y - h / 2, x - w / 2, y + h / 2, x + w / 2], axis=-1)


def corners_from_center_size(boxes):
    boxes = np.asarray(boxes, dtype=np.float64)
    half_h, half_w = boxes[..., 2] / 2, boxes[..., 3] / 2
    return np.stack([boxes[..., 0] - half_h, boxes[..., 1] - half_w,
                     boxes[..., 0] + half_h, boxes[..., 1] + half_w], axis=-1)


def center_size_from_corners(boxes):
    """[ymin, xmin, ymax, xmax] -> [y, x, h, w] (the anchors of TF exports are corners)."""
    boxes = np.asarray(boxes, dtype=np.float64)
    h = boxes[..., 2] - boxes[..., 0]
    w = boxes[..., 3] - boxes[..., 1]
    return np.stack([boxes[..., 0] + h / 2, boxes[..., 1] + w / 2, h, w], axis=-1)


def iou(box, others):
    """IoU of one corner-coded box with each of ``others`` (reordered so min <= max)."""
    box = _ordered(box)
    others = _ordered(others)
    top = np.maximum(box[0], others[:, 0])
    left = np.maximum(box[1], others[:, 1])
    bottom = np.minimum(box[2], others[:, 2])
    right = np.minimum(box[3], others[:, 3])
    inter = np.clip(bottom - top, 0, None) * np.clip(right - left, 0, None)
    area = _area(box[None, :])[0]
    union = area + _area(others) - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, inter / union, 0.0)


def _ordered(boxes):
    boxes = np.asarray(boxes, dtype=np.float64)
    low_y = np.minimum(boxes[..., 0], boxes[..., 2])
    high_y = np.maximum(boxes[..., 0], boxes[..., 2])
    low_x = np.minimum(boxes[..., 1], boxes[..., 3])
    high_x = np.maximum(boxes[..., 1], boxes[..., 3])
    return np.stack([low_y, low_x, high_y, high_x], axis=-1)


def _area(boxes):
    return np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0,
                                                                 None)


def efficient_nms(boxes, scores, anchors, attrs, order_scores=None):
    """The four EfficientNMS_TRT outputs (a dict of arrays) for batched inputs.

    ``boxes`` [B, N, 4], ``scores`` [B, N, C], ``anchors`` [1 or B, N, 4] or None;
    ``attrs``: the plugin attributes (score_threshold, iou_threshold, max_output_boxes,
    background_class, score_activation, class_agnostic, box_coding). ``order_scores``
    (like ``scores``): when given, the candidates are ranked by these instead (another
    computation of the same scores, whose order of near-ties is the one to reproduce).
    """
    boxes = np.asarray(boxes, dtype=np.float64)
    scores = np.asarray(scores, dtype=np.float64)
    batch = boxes.shape[0]
    keep = int(attrs["max_output_boxes"])
    out = {
        "num_detections": np.zeros((batch, 1), np.int32),
        "detection_boxes": np.zeros((batch, keep, 4), np.float32),
        "detection_scores": np.zeros((batch, keep), np.float32),
        "detection_classes": np.zeros((batch, keep), np.int32),
    }
    coding = int(attrs["box_coding"])
    for image in range(batch):
        if anchors is not None:
            image_anchors = anchors[0 if anchors.shape[0] == 1 else image]
            corners = decode(boxes[image], image_anchors, coding)
        elif coding == BOX_CENTER_SIZE:
            corners = corners_from_center_size(boxes[image])
        else:
            corners = boxes[image]
        ranking = None if order_scores is None else np.asarray(order_scores,
                                                                np.float64)[image]
        selected = _select(corners, scores[image], attrs, keep, ranking)
        count = len(selected)
        out["num_detections"][image, 0] = count
        for slot, (box_index, class_index, score) in enumerate(selected):
            out["detection_boxes"][image, slot] = corners[box_index]
            out["detection_scores"][image, slot] = score
            out["detection_classes"][image, slot] = class_index
    return out


def _select(corners, scores, attrs, keep, ranking=None):
    """[(box index, class, score)] selected for one image, best first (ranked by
    ``ranking`` when given, by the scores themselves otherwise)."""
    if int(attrs["score_activation"]):
        scores = sigmoid(scores)
        ranking = None if ranking is None else sigmoid(ranking)
    scores = scores.copy()
    background = int(attrs["background_class"])
    if 0 <= background < scores.shape[1]:
        scores[:, background] = -np.inf
    box_index, class_index = np.nonzero(scores > float(attrs["score_threshold"]))
    candidate_scores = scores[box_index, class_index]
    keys = candidate_scores if ranking is None else ranking[box_index, class_index]
    order = np.argsort(-keys, kind="stable")[:MAX_CANDIDATES]
    agnostic = bool(int(attrs["class_agnostic"]))
    threshold = float(attrs["iou_threshold"])
    chosen = []
    chosen_boxes = np.zeros((0, 4))
    chosen_classes = np.zeros((0,), np.int64)
    for position in order:
        if len(chosen) == keep:
            break
        b, c = int(box_index[position]), int(class_index[position])
        if chosen:
            overlaps = iou(corners[b], chosen_boxes)
            same = np.ones(len(chosen), bool) if agnostic else chosen_classes == c
            if np.any((overlaps > threshold) & same):
                continue
        chosen.append((b, c, float(candidate_scores[position])))
        chosen_boxes = np.vstack([chosen_boxes, corners[b][None, :]])
        chosen_classes = np.append(chosen_classes, c)
    return chosen
