"""The anchors of an SSD export, read from the graph itself, and the boxes GridAnchor_TRT makes.

An Object Detection API export computes its anchors in the graph (the anchor concat,
``Concatenate/concat`` or ``MultipleGridAnchorGenerator/Concatenate/concat``: [anchors, 4],
corners ymin, xmin, ymax, xmax, normalised to the image). TensorFlow evaluates it here, and
the anchor generator's settings are read back from the boxes:

- ``create_ssd_anchors`` (tensorflow/models research/object_detection/anchor_generators/
  multiple_grid_anchor_generator.py) gives layer i the scale
  ``s_i = min_scale + (max_scale - min_scale) * i / (num_layers - 1)``, one box per aspect
  ratio at s_i, then an "interpolated" box of scale ``sqrt(s_i * s_i+1)`` (s_n = 1.0) and
  aspect ratio ``interpolated_scale_aspect_ratio`` (1.0); with
  ``reduce_boxes_in_lowest_layer`` layer 0 has (0.1, 1.0), (s_0, 2.0), (s_0, 0.5) instead.
- ``tile_anchors`` (grid_anchor_generator.py): height = scale / sqrt(ratio), width =
  scale * sqrt(ratio), each times the base anchor size scaled by min(H, W) / H (heights) and
  min(H, W) / W (widths); centres at (cell + 0.5) / feature map size; boxes ordered by cell
  (row, column), the box specs of a cell varying fastest.

So a box gives back its (scale, ratio) as (sqrt(h * w), w / h) once that normalisation is
undone. ``derive`` reads every layer that way and says whether the GridAnchor_TRT plugin of
the UFF path can reproduce the anchors; ``grid_anchor_boxes`` is that plugin's formula in
numpy, so that the surgery can compare its boxes with the graph's before writing its node.
"""

import collections
import math

import numpy as np

from ..errors import UserError
from ..graph import ssd as ssd_graph
from ..graph.tfcompat import tf_v1

# Two values read from the float32 anchors (scales, ratios), or a catalog value and the
# graph's, are the same when they differ by at most this.
SAME_VALUE = 1e-4
# The largest difference (normalised coordinates) between GridAnchor_TRT's boxes and the
# graph's that still counts as "the same anchors" (float32 arithmetic on both sides).
GRID_ANCHOR_TOLERANCE = 1e-5
# Derived values are rounded to this many decimals (float32 noise off: 0.2, not 0.20000002).
DECIMALS = 6
# create_ssd_anchors' layer 0 with reduce_boxes_in_lowest_layer: (0.1, 1.0), (s0, 2.0),
# (s0, 0.5). GridAnchor_TRT always makes these 3 boxes on its first layer.
LOWEST_LAYER_SCALE = 0.1
LOWEST_LAYER_RATIOS = (1.0, 2.0, 0.5)
INTERPOLATED_RATIO = 1.0  # GridAnchor_TRT's interpolated box; create_ssd_anchors' default


class AnchorDerivation(collections.namedtuple("AnchorDerivation", (
        "min_scale max_scale aspect_ratios reduce_boxes_in_lowest_layer interpolated_scale "
        "layer_scales layer_boxes problems node"))):
    """What the graph's anchors say.

    ``min_scale``, ``max_scale``: the scales of the first and last layer (with multiscale
    anchors: the smallest box of each); ``aspect_ratios``: the ratios of a full layer, in the
    graph's order (with multiscale anchors: each once); ``reduce_boxes_in_lowest_layer``: layer 0
    has create_ssd_anchors' 3 reduced boxes; ``interpolated_scale``: the layers end with the
    interpolated box; ``layer_scales``: s_i per layer; ``layer_boxes``: [(scale, ratio)] per
    layer; ``problems``: why GridAnchor_TRT cannot reproduce these anchors (empty: it can, as
    far as their structure goes); ``node``: the graph's anchor concat, where they were read.
    """

    @property
    def source(self):
        return "graph: anchors of {}".format(self.node)

    @property
    def grid_anchor_parameters(self):
        """(minSize, maxSize, aspectRatios) of the GridAnchor_TRT node that would remake them."""
        return self.min_scale, self.max_scale, list(self.aspect_ratios)


class GridAnchorCheck(collections.namedtuple("GridAnchorCheck",
                                             "derivation max_error refusal")):
    """``derivation``: AnchorDerivation; ``max_error``: largest |GridAnchor_TRT box - graph box|
    (None when the plugin cannot even be given the parameters); ``refusal``: why the UFF path
    cannot reproduce the anchors (None: it can)."""


_LayerBoxes = collections.namedtuple("_LayerBoxes", "pairs size_spread centre_error")


def _tidy(value):
    return round(float(value), DECIMALS)


def _same(first, second):
    return abs(first - second) <= SAME_VALUE


def _listed(values):
    return "[{}]".format(", ".join("{:g}".format(value) for value in values))


def _pairs_text(pairs):
    return ", ".join("({:g}, {:g})".format(scale, ratio) for scale, ratio in pairs)


# ---------------------------------------------------------------- the graph's anchors

def evaluate(graph_def, path, layout):
    """The graph's anchors, [N, 4] float32 (ymin, xmin, ymax, xmax), and the node they came from.

    Only the anchor concat's sub-graph runs, fed a zero image of the model's input size at
    Preprocessor/sub (the anchor generator reads the image size there), as builder/onnx does
    for its anchor constant.
    """
    tf = tf_v1()
    node = ssd_graph.anchor_concat_name(graph_def, path)
    needed = tf.graph_util.extract_sub_graph(graph_def, [node])
    channels, height, width = layout.input_dims
    graph = tf.Graph()
    feed = {}
    with graph.as_default():
        if any(item.name == ssd_graph.PREPROCESSED for item in needed.node):
            image = tf.placeholder(tf.float32, [1, height, width, channels])
            tf.import_graph_def(needed, input_map={ssd_graph.PREPROCESSED + ":0": image},
                                name="")
            feed = {image: np.zeros([1, height, width, channels], np.float32)}
        else:
            tf.import_graph_def(needed, name="")
    try:
        with tf.Session(graph=graph) as session:
            anchors = session.run(node + ":0", feed)
    except tf.errors.OpError as error:
        raise UserError("graph {}: cannot evaluate the anchors ({}) with TensorFlow: {}. "
                        "Re-export the checkpoint with export_inference_graph.py".format(
                            path, node, error.message)) from None
    if anchors.ndim != 2 or anchors.shape[1] != 4 or anchors.shape[0] != layout.anchors:
        raise UserError(
            "graph {}: the anchor generator ({}) makes {} anchors but the box predictors "
            "expect {} ({}). The graph is inconsistent; re-export it".format(
                path, node, list(anchors.shape), layout.anchors, layout.sources["anchors"]))
    return anchors.astype(np.float32), node


def _split_layers(anchors, layout):
    """The anchors of each layer, [size, size, boxes per cell, 4]."""
    layers, start = [], 0
    for size, count in zip(layout.feature_map_shapes, layout.anchors_per_location):
        end = start + size * size * count
        layers.append(anchors[start:end].reshape(size, size, count, 4).astype(np.float64))
        start = end
    return layers


def _layer_boxes(boxes, input_hw):
    """(scale, ratio) of each box of a cell, and how far the layer is from a regular grid."""
    size = boxes.shape[0]
    smallest = float(min(input_hw))
    # Undo MultipleGridAnchorGenerator's normalisation: the base anchor's height is scaled by
    # min(H, W) / H and its width by min(H, W) / W, so that square specs stay square in pixels.
    heights = (boxes[..., 2] - boxes[..., 0]) * input_hw[0] / smallest
    widths = (boxes[..., 3] - boxes[..., 1]) * input_hw[1] / smallest
    typical_heights = np.median(heights.reshape(-1, boxes.shape[2]), axis=0)
    typical_widths = np.median(widths.reshape(-1, boxes.shape[2]), axis=0)
    size_spread = max(float(np.abs(heights - typical_heights).max()),
                      float(np.abs(widths - typical_widths).max()))
    centres = (np.arange(size) + 0.5) / size
    centre_y = (boxes[..., 0] + boxes[..., 2]) / 2
    centre_x = (boxes[..., 1] + boxes[..., 3]) / 2
    centre_error = max(float(np.abs(centre_y - centres[:, None, None]).max()),
                       float(np.abs(centre_x - centres[None, :, None]).max()))
    pairs = [(math.sqrt(h * w), w / h) if h > 0 and w > 0 else (0.0, 0.0)
             for h, w in zip(typical_heights, typical_widths)]
    return _LayerBoxes(pairs, size_spread, centre_error)


def _is_reduced_lowest_layer(pairs):
    return (len(pairs) == len(LOWEST_LAYER_RATIOS)
            and _same(pairs[0][0], LOWEST_LAYER_SCALE)
            and _same(pairs[1][0], pairs[2][0])
            and all(_same(ratio, wanted)
                    for (_, ratio), wanted in zip(pairs, LOWEST_LAYER_RATIOS)))


def _leading_same_scale(pairs):
    """How many boxes at the start of a cell share the first box's scale."""
    count = 0
    while count < len(pairs) and _same(pairs[count][0], pairs[0][0]):
        count += 1
    return count


def _layers_text(indices):
    """'layer 2', 'layers 1-5' or 'layers 0, 3'."""
    indices = list(indices)
    if len(indices) == 1:
        return "layer {}".format(indices[0])
    if indices == list(range(indices[0], indices[-1] + 1)):
        return "layers {}-{}".format(indices[0], indices[-1])
    return "layers {}".format(", ".join(str(index) for index in indices))


def _grid_problems(layers, layout):
    """Where the anchors are not one regular grid per layer, as GridAnchor_TRT lays them."""
    problems = []
    height, width = layout.input_dims[1:]
    if height != width:
        problems.append("the input is {}x{}, not square: the anchor generator scales box "
                        "heights by min(H, W) / H and widths by min(H, W) / W, GridAnchor_TRT "
                        "assumes a square input".format(height, width))
    uneven = [index for index, layer in enumerate(layers)
              if layer.size_spread > GRID_ANCHOR_TOLERANCE]
    if uneven:
        problems.append("the boxes of {} differ in size from cell to cell (by up to {:.2g}: "
                        "anchors clipped to the image, or not a grid)".format(
                            _layers_text(uneven), max(layers[i].size_spread for i in uneven)))
    off = [index for index, layer in enumerate(layers)
           if layer.centre_error > GRID_ANCHOR_TOLERANCE]
    if off:
        problems.append("the box centres of {} are not at (cell + 0.5) / feature map size, "
                        "where GridAnchor_TRT puts them (off by up to {:.2g}: anchor strides or "
                        "offsets set in the pipeline.config?)".format(
                            _layers_text(off), max(layers[i].centre_error for i in off)))
    return problems


# The layers read as create_ssd_anchors lays them out: ``scales`` s_i per layer,
# ``ratio_lists`` the ratios of the boxes at s_i per full layer, ``extras`` the box after
# them (the interpolated one) or None, per full layer; ``multiscale``: some layer has boxes
# of several scales besides the interpolated one (then the rest of this reading means little).
_SsdLayers = collections.namedtuple("_SsdLayers",
                                    "reduced scales ratio_lists extras multiscale")


def _read_ssd_layers(layers, problems):
    first = layers[0].pairs
    reduced = _is_reduced_lowest_layer(first)
    scales = [first[1][0]] if reduced else []
    ratio_lists, extras, mixed = [], [], []
    for index, layer in enumerate(layers[1:] if reduced else layers, 1 if reduced else 0):
        leading = _leading_same_scale(layer.pairs)
        rest = layer.pairs[leading:]
        if len(rest) > 1:
            mixed.append(index)
        scales.append(sum(scale for scale, _ in layer.pairs[:leading]) / leading)
        ratio_lists.append([ratio for _, ratio in layer.pairs[:leading]])
        extras.append(rest[0] if rest else None)
    if mixed:  # the main reason: what else differs from the SSD layout follows from it
        problems.append("{} place boxes of several scales at each location (layer {}: {}): "
                        "multiscale anchors (multiscale_anchor_generator, FPN) or custom box "
                        "specs".format(_layers_text(mixed), mixed[0],
                                       _pairs_text(layers[mixed[0]].pairs)))
    elif not reduced:
        problems.append("layer 0 has {} boxes per location ({}), not the reduced (0.1, 1), "
                        "(s0, 2), (s0, 0.5) that GridAnchor_TRT always makes there "
                        "(reduce_boxes_in_lowest_layer: false?)".format(
                            len(first), _pairs_text(first)))
    return _SsdLayers(reduced, scales, ratio_lists, extras, bool(mixed))


def _scale_problems(scales):
    count = len(scales)
    if count < 2:
        return ["a single feature map: GridAnchor_TRT interpolates scales over numLayers - 1 "
                "steps and needs 2 layers at least"]
    evenly = [scales[0] + (scales[-1] - scales[0]) * i / (count - 1) for i in range(count)]
    if all(map(_same, scales, evenly)):
        return []
    return ["the layer scales {} are not evenly spaced from {:g} to {:g} (explicit "
            "ssd_anchor_generator.scales?); GridAnchor_TRT spaces them evenly".format(
                _listed(_tidy(s) for s in scales), _tidy(scales[0]), _tidy(scales[-1]))]


def _interpolated_problems(ssd):
    """GridAnchor_TRT ends every layer but the first with (sqrt(s_i * s_i+1), 1.0)."""
    if not all(extra is not None for extra in ssd.extras):
        return ["no interpolated box on some layers (interpolated_scale_aspect_ratio: 0?); "
                "GridAnchor_TRT adds one on every layer but the first"]
    next_scales = ssd.scales[1:] + [1.0]
    wrong_scale, wrong_ratio = [], []
    for index, extra in enumerate(ssd.extras, 1 if ssd.reduced else 0):
        wanted = math.sqrt(ssd.scales[index] * next_scales[index])
        if not _same(extra[0], wanted):
            wrong_scale.append((index, extra[0], wanted))
        if not _same(extra[1], INTERPOLATED_RATIO):
            wrong_ratio.append((index, extra[1]))
    problems = []
    if wrong_scale:
        index, scale, wanted = wrong_scale[0]
        problems.append("{}: the interpolated box's scale is not sqrt(s_i * s_i+1) as "
                        "GridAnchor_TRT makes it (layer {}: {:g}, not {:g})".format(
                            _layers_text(item[0] for item in wrong_scale), index, _tidy(scale),
                            _tidy(wanted)))
    if wrong_ratio:
        problems.append("{}: the interpolated box has aspect ratio {:g} "
                        "(interpolated_scale_aspect_ratio); GridAnchor_TRT's has 1.0".format(
                            _layers_text(item[0] for item in wrong_ratio),
                            _tidy(wrong_ratio[0][1])))
    return problems


def _ratio_problems(ssd, ratios):
    problems = []
    if any(len(other) != len(ratios) or not all(map(_same, other, ratios))
           for other in ssd.ratio_lists):
        problems.append("the layers do not share one list of aspect ratios ({})".format(
            "; ".join(_listed(_tidy(r) for r in other) for other in ssd.ratio_lists)))
    first_three = len(LOWEST_LAYER_RATIOS)
    if ssd.reduced and (len(ratios) < first_three or not all(
            map(_same, ratios[:first_three], LOWEST_LAYER_RATIOS))):
        problems.append("the aspect ratios {} do not start with 1, 2, 0.5: GridAnchor_TRT gives "
                        "the 3 boxes of its first layer the first three ratios, and this "
                        "model's layer 0 has (0.1, 1), (s0, 2), (s0, 0.5)".format(
                            _listed(_tidy(r) for r in ratios)))
    return problems


def derive(anchors, layout, node):
    """AnchorDerivation of the graph's ``anchors`` (``evaluate``: the values of ``node``) for
    ``layout`` (ssd.analyze)."""
    input_hw = tuple(layout.input_dims[1:])
    layers = [_layer_boxes(boxes, input_hw) for boxes in _split_layers(anchors, layout)]
    problems = _grid_problems(layers, layout)
    ssd = _read_ssd_layers(layers, problems)
    # The last layer's boxes are the largest: their ratios carry the least float32 noise.
    ratios = ssd.ratio_lists[-1] if ssd.ratio_lists else list(LOWEST_LAYER_RATIOS)
    if ssd.multiscale:  # every scale of a location has each ratio: list each once
        ratios = _unique_values(ratio for _, ratio in layers[-1].pairs)
    else:
        problems += _ratio_problems(ssd, ratios)
        problems += _scale_problems(ssd.scales)
        problems += _interpolated_problems(ssd)
    return AnchorDerivation(
        min_scale=_tidy(ssd.scales[0]), max_scale=_tidy(ssd.scales[-1]),
        aspect_ratios=[_tidy(ratio) for ratio in ratios],
        reduce_boxes_in_lowest_layer=ssd.reduced,
        interpolated_scale=bool(ssd.extras) and None not in ssd.extras,
        layer_scales=[_tidy(scale) for scale in ssd.scales],
        layer_boxes=[[(_tidy(s), _tidy(r)) for s, r in layer.pairs] for layer in layers],
        problems=_unique(problems), node=node)


def _unique(texts):
    seen = []
    for text in texts:
        if text not in seen:
            seen.append(text)
    return seen


def _unique_values(values):
    """``values`` in their order, each once (equal within SAME_VALUE)."""
    kept = []
    for value in values:
        if not any(_same(value, other) for other in kept):
            kept.append(value)
    return kept


# ---------------------------------------------------------------- GridAnchor_TRT

def grid_anchor_boxes(min_size, max_size, aspect_ratios, feature_map_shapes):
    """The boxes GridAnchor_TRT makes, every layer concatenated: [N, 4] in the graph's order
    (ymin, xmin, ymax, xmax), float32.

    The plugin's formula (NVIDIA/TensorRT plugin/gridAnchorPlugin/gridAnchorPlugin.cpp,
    GridAnchorGenerator constructor and GridAnchorBasePluginCreator::createPlugin; kernel
    plugin/common/kernels/gridAnchorLayer.cu gridAnchorKernel), with its quirks:

    - layer scales min + (max - min) * id / (numLayers - 1), all in float32;
    - the first layer has 3 boxes: scales 0.1, s0, s0 with the first three aspect ratios
      (whatever they are) and no interpolated box; the other layers have one box per ratio at
      s_i, then a box of ratio 1.0 and scale sqrt(s_i * s_i+1), s_n = 1.0;
    - width = scale * sqrt(ratio), height = scale / sqrt(ratio);
    - centres (cell + 0.5) / H on both axes (anchorStride = 1 / H: square maps assumed);
      cells in row-major order, the boxes of a cell varying fastest;
    - each output is [2, H * W * boxes * 4, 1]: channel 0 the corners x_min, y_min, x_max,
      y_max (the plugin's README), channel 1 the variances repeated. NMS_TRT's TF_CENTER
      decoding (plugin/common/kernels/decodeBBoxes.cu) reads those priors x first and the box
      predictor's encodings y first, so channel 0 read y first is what must equal the graph's
      anchors. Channel 1 carries only the catalog's variance, nothing to compare.
    """
    f32 = np.float32
    ratios = [f32(ratio) for ratio in aspect_ratios]
    if len(ratios) < len(LOWEST_LAYER_RATIOS):
        raise ValueError("GridAnchor_TRT reads 3 aspect ratios for its first layer")
    count = len(feature_map_shapes)
    low, high = f32(min_size), f32(max_size)

    def layer_scale(index):
        return f32(low + (high - low) * f32(index) / f32(count - 1))

    boxes = []
    for index, size in enumerate(feature_map_shapes):
        scale = layer_scale(index)
        if index == 0:
            pairs = list(zip([f32(LOWEST_LAYER_SCALE), scale, scale], ratios[:3]))
        else:
            following = 1.0 if index == count - 1 else layer_scale(index + 1)
            pairs = [(scale, ratio) for ratio in ratios]
            pairs.append((f32(math.sqrt(float(scale) * float(following))), f32(1.0)))
        widths = np.array([s * np.sqrt(r) for s, r in pairs], np.float32)
        heights = np.array([s / np.sqrt(r) for s, r in pairs], np.float32)
        stride = f32(1.0 / size)
        centres = np.arange(size, dtype=np.float32) * stride + f32(0.5 * stride)
        centre_y, centre_x = np.meshgrid(centres, centres, indexing="ij")
        centre_y, centre_x = centre_y[..., None], centre_x[..., None]
        corners = np.stack([centre_y - 0.5 * heights, centre_x - 0.5 * widths,
                            centre_y + 0.5 * heights, centre_x + 0.5 * widths], axis=-1)
        boxes.append(corners.reshape(-1, 4))
    return np.concatenate(boxes).astype(np.float32)


def check_grid_anchor(anchors, layout, node):
    """GridAnchorCheck: can the GridAnchor_TRT node written with the derived parameters
    reproduce the graph's ``anchors``? Within GRID_ANCHOR_TOLERANCE, or refused with why."""
    derivation = derive(anchors, layout, node)
    reasons = list(derivation.problems)
    max_error = None
    if len(derivation.aspect_ratios) >= len(LOWEST_LAYER_RATIOS) and layout.num_layers > 1:
        made = grid_anchor_boxes(derivation.min_scale, derivation.max_scale,
                                 derivation.aspect_ratios, layout.feature_map_shapes)
        if made.shape == anchors.shape:
            max_error = float(np.abs(made.astype(np.float64) - anchors).max())
        elif not reasons:
            reasons.append("GridAnchor_TRT makes {} anchors, the graph has {}".format(
                made.shape[0], anchors.shape[0]))
    if not reasons and max_error is None:  # never seen: the structure checks come first
        reasons.append("GridAnchor_TRT's boxes could not be compared with the graph's")
    if max_error is not None and max_error > GRID_ANCHOR_TOLERANCE:
        reasons.append("GridAnchor_TRT's boxes (minSize {:g}, maxSize {:g}, aspectRatios {}) "
                       "differ from the graph's by up to {:.3g}, more than {:g}".format(
                           derivation.min_scale, derivation.max_scale,
                           _listed(derivation.aspect_ratios), max_error,
                           GRID_ANCHOR_TOLERANCE))
    refusal = "; ".join(reasons) if reasons else None
    return GridAnchorCheck(derivation, max_error, refusal)


def read_grid_anchor_check(graph_def, path, layout):
    """``check_grid_anchor`` of the anchors the graph at ``path`` computes."""
    anchors, node = evaluate(graph_def, path, layout)
    return check_grid_anchor(anchors, layout, node)
