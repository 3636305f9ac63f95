"""Build a small frozen SSD graph with the structure of TF Object Detection API exports.

Real TensorFlow ops (tf.compat.v1, graph mode, v1 control flow so that the map_fn loops
look like TF 1.x exports). Spatial sizes are real (19x19 ... 1x1 for 300x300); channel
counts are tiny (the backbone's layers are simplified: what matters are its strides), so
that a graph is a few hundred KB (1.7 MB with 90 classes: the per-class NMS loop). Every
weight is a Const read through an Identity (``<name>/read``), as freezing leaves it.

Around the cut points the tools read (``Preprocessor/sub``, ``concat``, ``concat_1``,
``Squeeze``, the anchor concat) and in the Postprocessor, the graph is built op for op
the way the OD API builds it (meta_architectures/ssd_meta_arch.py postprocess,
core/post_processing.py, core/box_list_ops.py, anchor_generators/, exporter.py), so
that it holds what a real export of the same configuration holds:

- ``postprocessor_era="2019"`` (OD API 0.1.1 / 2019 master, TF 1.15): per class, one
  ``non_max_suppression`` with the score threshold; the classes' results concatenated
  and sorted by score; then ``ClipToWindow`` (clip, drop boxes left without area),
  scores of zero-area boxes set to -1, sorted again, cut to max_total_size;
  ``raw_detection_boxes`` / ``raw_detection_scores`` outputs.
- ``postprocessor_era="2018"`` (the OD API of 2017/2018, as in the late-2018 export
  vk_pikachu of the shared real graphs): per class ``FilterGreaterThan`` (score
  threshold), ``ClipToWindow`` and only then ``non_max_suppression`` (no score
  threshold); sorted, cut to max_total_size.

Both eras have the ``raw_box_encodings`` / ``raw_box_locations`` / ``raw_box_scores``
Identity nodes (vk_pikachu has them too).

tests/graphs/test_generator_vs_genuine.py holds the generated graphs against genuine
exports of the same configuration. Only test code: the product never imports this.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np

DEFAULT_ASPECT_RATIOS = (1.0, 2.0, 0.5, 3.0, 0.3333)
FEATURE_CHANNELS = 8  # tiny on purpose: files stay small and generation fast
ERAS = ("2019", "2018")
SCORE_CONVERTERS = ("sigmoid", "softmax")
# post_processing { batch_non_max_suppression { ... } } of the zoo's SSD configs.
SCORE_THRESHOLD = 1e-8
IOU_THRESHOLD = 0.6
MAX_DETECTIONS_PER_CLASS = 100
MAX_TOTAL_DETECTIONS = 100
# FasterRcnnBoxCoder scales (y, x, height, width).
BOX_CODER_SCALES = (10.0, 10.0, 5.0, 5.0)
OUTPUT_NODES = ("detection_boxes", "detection_scores", "detection_classes", "num_detections")
RAW_OUTPUT_NODES = ("raw_detection_boxes", "raw_detection_scores")  # 2019 exporter


@dataclass
class Variant:
    """What distinguishes one generated export from another."""

    name: str
    backbone: str  # "MobilenetV1", "MobilenetV2", "InceptionV2", "ssdlite"
    num_classes: int  # including background
    input_size: int = 300
    num_layers: int = 6
    aspect_ratios: tuple = DEFAULT_ASPECT_RATIOS
    min_scale: float = 0.2
    max_scale: float = 0.95
    # How multiclass_non_max_suppression treats the boxes: "2019" (NMS with a score
    # threshold per class, ClipToWindow after the NMS) or "2018" (FilterGreaterThan and
    # ClipToWindow per class before the NMS). See the module docstring.
    postprocessor_era: str = "2019"
    score_converter: str = "sigmoid"  # post_processing.score_converter: SIGMOID / SOFTMAX
    # Creation order of the Postprocessor: "decode_first" (box decoding before score
    # conversion, NMS inputs loc, prior, conf) or "scores_first" (conf, loc, prior: the
    # order of the 2018_03_29 ssd_mobilenet_v2_coco export).
    postprocessor_order: str = "decode_first"
    # "MultipleGridAnchorGenerator/Concatenate" (older exports) or "Concatenate" (newer).
    anchor_concat_scope: str = "MultipleGridAnchorGenerator/Concatenate"
    # True: the export read the preprocessed image's shape at run time (exports of
    # 2017 / early 2018): the anchor generator takes the image size from it
    # (strided_slice_6/_7 inputs) and the feature extractor asserts the minimum image
    # size on it. False: both are static, as in every export with a fixed_shape_resizer
    # from 2018 on (the GridAnchor node gets no input after surgery).
    dynamic_anchor_inputs: bool = True
    tf115: bool = False  # Cast instead of ToFloat, AddV2, FusedBatchNormV3
    pipeline_config: bool = False  # write pipeline.config next to the graph
    seed: int = 0
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.postprocessor_era not in ERAS:
            raise ValueError(f"{self.name}: postprocessor_era {self.postprocessor_era!r} "
                             f"is not one of {ERAS}")
        if self.score_converter not in SCORE_CONVERTERS:
            raise ValueError(f"{self.name}: score_converter {self.score_converter!r} is not "
                             f"one of {SCORE_CONVERTERS}")

    @property
    def anchors_per_location(self):
        return [3] + [len(self.aspect_ratios) + 1] * (self.num_layers - 1)

    @property
    def feature_map_sizes(self):
        sizes = []
        size = self.input_size
        for _ in range(4):  # the stem halves the input four times (300 -> 19)
            size = math.ceil(size / 2)
        sizes.append(size)
        for _ in range(self.num_layers - 1):
            size = math.ceil(size / 2)
            sizes.append(size)
        return sizes

    @property
    def num_anchors(self):
        return sum(size * size * count
                   for size, count in zip(self.feature_map_sizes, self.anchors_per_location))

    @property
    def output_nodes(self):
        """The nodes the exporter freezes the graph for (what it keeps)."""
        if self.postprocessor_era == "2019":
            return OUTPUT_NODES + RAW_OUTPUT_NODES
        return OUTPUT_NODES


class _Builder:
    """Adds layers to the default graph with deterministic weights."""

    def __init__(self, tf1, variant, fast=True):
        self.tf1 = tf1
        self.variant = variant
        self.rng = np.random.RandomState(variant.seed)
        self.fast = fast
        self.class_loops = []

    def weights(self, shape, name, offset=0.0, values=None):
        """A frozen variable: the Const ``name`` and its ``name/read`` Identity (what
        freezing leaves of a variable's read)."""
        if values is None:
            values = self.rng.uniform(-0.1, 0.1, size=shape).astype(np.float32) + offset
        const = self.tf1.constant(np.asarray(values, np.float32), name=name)
        return self.tf1.identity(const, name=name + "/read")

    def batch_norm(self, x, scope):
        tf1 = self.tf1
        channels = int(x.shape[-1])
        with tf1.name_scope(scope):
            gamma = self.weights([channels], "gamma", offset=1.0)
            beta = self.weights([channels], "beta")
            mean = self.weights([channels], "moving_mean")
            var = self.weights([channels], "moving_variance", values=np.ones([channels]))
        if self.variant.tf115:
            op, name = tf1.raw_ops.FusedBatchNormV3, "FusedBatchNormV3"
        else:
            op, name = tf1.raw_ops.FusedBatchNorm, "FusedBatchNorm"
        return op(x=x, scale=gamma, offset=beta, mean=mean, variance=var, epsilon=0.001,
                  is_training=False, name=f"{scope}/{name}")[0]

    def conv(self, x, scope, channels, kernel=3, stride=1, *, depthwise=False, relu=True,
             separable=0):
        """Conv2D (or depthwise) + BatchNorm + Relu6 under ``scope``.

        ``separable``: a depthwise conv with that channel multiplier, then a 1x1 Conv2D
        (slim.separable_conv2d: ``separable_conv2d/depthwise``, ``separable_conv2d``).
        """
        tf1 = self.tf1
        in_ch = int(x.shape[-1])
        if separable:
            w = self.weights([kernel, kernel, in_ch, separable], scope + "/depthwise_weights")
            y = tf1.nn.depthwise_conv2d_native(x, w, [1, stride, stride, 1], "SAME",
                                               name=scope + "/separable_conv2d/depthwise")
            w = self.weights([1, 1, in_ch * separable, channels], scope + "/pointwise_weights")
            y = tf1.nn.conv2d(y, w, [1, 1, 1, 1], "VALID", name=scope + "/separable_conv2d")
        elif depthwise:
            w = self.weights([kernel, kernel, in_ch, 1], scope + "/depthwise_weights")
            y = tf1.nn.depthwise_conv2d_native(x, w, [1, stride, stride, 1], "SAME",
                                               name=scope + "/depthwise")
        else:
            w = self.weights([kernel, kernel, in_ch, channels], scope + "/weights")
            y = tf1.nn.conv2d(x, w, [1, stride, stride, 1], "SAME", name=scope + "/Conv2D")
        y = self.batch_norm(y, scope + "/BatchNorm")
        if relu:
            y = tf1.nn.relu6(y, name=scope + "/Relu6")
        return y

    def add(self, a, b, name):
        if self.variant.tf115:
            return self.tf1.raw_ops.AddV2(x=a, y=b, name=name)
        return self.tf1.raw_ops.Add(x=a, y=b, name=name)


# ---------------------------------------------------------------- feature extractors

def _stem(b, x, net):
    """Four stride-2 stages: 300 -> 150 -> 75 -> 38 -> 19 (returns the 4th)."""
    c = FEATURE_CHANNELS
    if net == "InceptionV2":
        # inception_v2 (use_separable_conv): the first layer is a separable convolution.
        x = b.conv(x, f"FeatureExtractor/{net}/{net}/Conv2d_1a_7x7", c, 7, 2, separable=8)
        x = b.tf1.nn.max_pool(x, [1, 3, 3, 1], [1, 2, 2, 1], "SAME",
                              name=f"FeatureExtractor/{net}/{net}/MaxPool_2a_3x3/MaxPool")
        x = b.conv(x, f"FeatureExtractor/{net}/{net}/Conv2d_2c_3x3", c, 3, 1)
        x = b.tf1.nn.max_pool(x, [1, 3, 3, 1], [1, 2, 2, 1], "SAME",
                              name=f"FeatureExtractor/{net}/{net}/MaxPool_3a_3x3/MaxPool")
        x = _inception_block(b, x, f"FeatureExtractor/{net}/{net}/Mixed_3b", 1)
        return _inception_block(b, x, f"FeatureExtractor/{net}/{net}/Mixed_4a", 2)
    prefix = f"FeatureExtractor/{net}/{net}" if net == "MobilenetV1" else f"FeatureExtractor/{net}"
    if net == "MobilenetV2":
        # mobilenet's base network names its input (tf.identity(inputs, 'input')).
        x = b.tf1.identity(x, name=f"FeatureExtractor/{net}/{net}/input")
    x = b.conv(x, f"{prefix}/Conv2d_0" if net == "MobilenetV1" else f"{prefix}/Conv", c, 3, 2)
    for index in range(1, 4):
        name = (f"{prefix}/Conv2d_{index}" if net == "MobilenetV1"
                else f"{prefix}/expanded_conv_{index}")
        x = b.conv(x, name + "_depthwise", c, 3, 2, depthwise=True)
        x = b.conv(x, name + "_pointwise", c, 1, 1)
        if net != "MobilenetV1" and index == 3:
            # A MobileNetV2 inverted residual: the Add/AddV2 the TF 1.15 fix-up renames.
            y = b.conv(x, f"{prefix}/expanded_conv_4/project", c, 1, 1, relu=False)
            x = b.add(x, y, f"{prefix}/expanded_conv_4/add")
    return x


def _inception_block(b, x, scope, stride):
    c = FEATURE_CHANNELS
    left = b.conv(x, scope + "/Branch_0/Conv2d_0a_1x1", c // 2, 1, stride)
    right = b.conv(x, scope + "/Branch_1/Conv2d_0a_3x3", c // 2, 3, stride)
    return b.tf1.concat([left, right], 3, name=scope + "/concat")


def _feature_maps(b, x, variant):
    net = "MobilenetV2" if variant.backbone == "ssdlite" else variant.backbone
    c = FEATURE_CHANNELS
    first = _stem(b, x, net)
    if net == "InceptionV2":
        first = _inception_block(b, first, f"FeatureExtractor/{net}/{net}/Mixed_4c", 1)
        base = f"FeatureExtractor/{net}/Mixed_5c"
    elif net == "MobilenetV1":
        first = b.conv(first, f"FeatureExtractor/{net}/{net}/Conv2d_11_pointwise", c, 1, 1)
        base = f"FeatureExtractor/{net}/Conv2d_13_pointwise"
    else:
        first = b.conv(first, f"FeatureExtractor/{net}/layer_15/expansion_output", c, 1, 1)
        base = f"FeatureExtractor/{net}/layer_19"
    maps = [first]
    current = first
    for index in range(1, variant.num_layers):
        scope = base if index == 1 else f"{base}_2_Conv2d_{index}_3x3_s2_{c}"
        depthwise = variant.backbone == "ssdlite" and index > 1
        if depthwise:
            current = b.conv(current, scope + "_depthwise", c, 3, 2, depthwise=True)
            current = b.conv(current, scope, c, 1, 1)
        else:
            current = b.conv(current, scope, c, 3, 2)
        maps.append(current)
    return maps


# ---------------------------------------------------------------- graph parts

def _plain(tf1, fn):
    """``fn`` for map_fn as plain Python: TF 2's map_fn would run it through autograph,
    which only slows the graph construction down (the loops here are Python loops)."""
    return tf1.autograph.experimental.do_not_convert(fn)


def _preprocessor(b, image, variant):
    """Preprocessor/map (resize_image per image, its true shape) then mul/sub.

    ``preprocessor.resize_image`` under map_fn: tf.image.resize_images to a constant
    size (scope ``resize`` from TF 1.14 on, ``resize_images`` before), the true shape a
    constant [size, size, 3]; then the feature extractor's (2 / 255) * x - 1.
    """
    tf1 = b.tf1
    size = variant.input_size
    resize_scope = "resize" if variant.postprocessor_era == "2019" else "resize_images"

    def resize(img):
        with tf1.name_scope("ResizeImage"):
            new_size = tf1.stack([size, size])
            with tf1.name_scope(resize_scope):
                batched = tf1.expand_dims(img, 0)
                resized = tf1.raw_ops.ResizeBilinear(images=batched, size=new_size,
                                                     align_corners=False, name="ResizeBilinear")
                resized = tf1.squeeze(resized, [0])
            true_shape = tf1.stack([size, size, 3])
        return resized, true_shape

    with tf1.name_scope("Preprocessor"):
        resized, true_shapes = tf1.map_fn(_plain(tf1, resize), image,
                                          dtype=(tf1.float32, tf1.int32))
        scaled = tf1.multiply(2.0 / 255.0, resized, name="mul")
        normalized = tf1.subtract(scaled, 1.0, name="sub")
    return normalized, true_shapes


def _min_image_dim_check(b, images, net):
    """FeatureExtractor/<net>/Assert + Identity (shape_utils.check_min_image_dim on a
    preprocessed image whose size is only known at run time: exports of 2017)."""
    tf1 = b.tf1
    with tf1.name_scope(f"FeatureExtractor/{net}"):
        shape = tf1.shape(images)
        height = tf1.strided_slice(shape, [1], [2], [1], shrink_axis_mask=1, name="strided_slice")
        width = tf1.strided_slice(shape, [2], [3], [1], shrink_axis_mask=1,
                                  name="strided_slice_1")
        ok = tf1.logical_and(tf1.greater_equal(height, 33), tf1.greater_equal(width, 33))
        check = tf1.Assert(ok, ["image size must be >= 33 in both height and width."])
        with tf1.control_dependencies([check]):
            return tf1.identity(images, name="Identity")


def _box_predictor(b, index, feature, anchors, num_classes, *, ssdlite):
    """BoxPredictor_i: box (N, anchors, 1, 4) and class (N, anchors, classes) reshapes.

    The convolutional box predictor of 2019 reshapes to [batch, -1, ...] (the batch read
    twice); the one of 2018 to [batch, H * W * anchors, ...] with one shape read.
    """
    tf1 = b.tf1
    scope = f"BoxPredictor_{index}"
    in_ch = int(feature.shape[-1])
    outputs = []
    for kind, channels in (("BoxEncodingPredictor", anchors * 4),
                           ("ClassPredictor", anchors * num_classes)):
        x = feature
        if ssdlite:
            x = b.conv(x, f"{scope}/{kind}_depthwise", in_ch, 3, 1, depthwise=True)
        w = b.weights([1, 1, in_ch, channels], f"{scope}/{kind}/weights")
        bias = b.weights([channels], f"{scope}/{kind}/biases")
        x = tf1.nn.conv2d(x, w, [1, 1, 1, 1], "SAME", name=f"{scope}/{kind}/Conv2D")
        outputs.append(tf1.nn.bias_add(x, bias, name=f"{scope}/{kind}/BiasAdd"))
    box, cls = outputs
    with tf1.name_scope(scope):
        if b.variant.postprocessor_era == "2018":
            batch = tf1.shape(feature, name="Shape")[0]
            count = int(feature.shape[1]) * int(feature.shape[2]) * anchors
            box = tf1.reshape(box, tf1.stack([batch, count, 1, 4]), name="Reshape")
            cls = tf1.reshape(cls, tf1.stack([batch, count, num_classes]), name="Reshape_1")
            return box, cls
        batch = tf1.shape(feature, name="Shape")[0]
        box = tf1.reshape(box, tf1.stack([batch, -1, 1, 4], name="Reshape/shape"), name="Reshape")
        batch_1 = tf1.shape(feature, name="Shape_1")[0]
        cls = tf1.reshape(cls, tf1.stack([batch_1, -1, num_classes], name="Reshape_1/shape"),
                          name="Reshape_1")
    return box, cls


def _anchor_grid(variant):
    """Scales and aspect ratios per layer (ssd_anchor_generator.create_ssd_anchors)."""
    n = variant.num_layers
    scales = [variant.min_scale + (variant.max_scale - variant.min_scale) * i / (n - 1)
              for i in range(n)] + [1.0]
    layers = []
    for i in range(n):
        if i == 0:
            pairs = [(0.1, 1.0), (scales[0], 2.0), (scales[0], 0.5)]
        else:
            pairs = [(scales[i], ratio) for ratio in variant.aspect_ratios]
            pairs.append((math.sqrt(scales[i] * scales[i + 1]), 1.0))
        heights = [scale / math.sqrt(ratio) for scale, ratio in pairs]
        widths = [scale * math.sqrt(ratio) for scale, ratio in pairs]
        layers.append((np.array(heights, np.float32), np.array(widths, np.float32)))
    return layers


def _anchors(b, variant, preprocessed):
    """MultipleGridAnchorGenerator/... and the anchor concat (N_anchors, 4), corner coded.

    As AnchorGenerator.generate: the layers' boxes pass an Identity each that waits for
    the check of the anchor count (assert_equal), then box_list_ops.concatenate joins them
    (``Concatenate/concat``, or inside the generator's scope in older exports).
    """
    tf1 = b.tf1
    if variant.dynamic_anchor_inputs:
        shape = tf1.shape(preprocessed, name="Shape_6")
        im_height = tf1.strided_slice(shape, [1], [2], [1], shrink_axis_mask=1,
                                      name="strided_slice_6")
        im_width = tf1.strided_slice(shape, [2], [3], [1], shrink_axis_mask=1,
                                     name="strided_slice_7")
    per_layer = []
    with tf1.name_scope("MultipleGridAnchorGenerator"):
        if variant.dynamic_anchor_inputs:
            height = tf1.cast(im_height, tf1.float32, name="ToFloat")
            width = tf1.cast(im_width, tf1.float32, name="ToFloat_1")
        else:
            height = tf1.cast(tf1.constant(variant.input_size), tf1.float32, name="ToFloat")
            width = tf1.cast(tf1.constant(variant.input_size), tf1.float32, name="ToFloat_1")
        smallest = tf1.minimum(height, width, name="Minimum")
        scale_h = tf1.truediv(smallest, height, name="truediv")
        scale_w = tf1.truediv(smallest, width, name="truediv_1")
        for index, ((heights, widths), size) in enumerate(
                zip(_anchor_grid(variant), variant.feature_map_sizes)):
            with tf1.name_scope(f"GridAnchorGenerator_{index}" if index else "GridAnchorGenerator"):
                centers = (np.arange(size, dtype=np.float32) + 0.5) / size
                cy, cx = np.meshgrid(centers, centers, indexing="ij")
                count = len(heights)
                cy = np.repeat(cy.reshape(-1, 1), count, axis=1).reshape(-1)
                cx = np.repeat(cx.reshape(-1, 1), count, axis=1).reshape(-1)
                h = tf1.tile(tf1.constant(heights, name="heights") * scale_h, [size * size])
                w = tf1.tile(tf1.constant(widths, name="widths") * scale_w, [size * size])
                cy_t = tf1.constant(cy, name="y_centers")
                cx_t = tf1.constant(cx, name="x_centers")
                boxes = tf1.stack([cy_t - 0.5 * h, cx_t - 0.5 * w, cy_t + 0.5 * h,
                                   cx_t + 0.5 * w], axis=1, name="boxes")
            per_layer.append(tf1.reshape(boxes, [-1, 4], name=f"Reshape_{index}"))
        actual = 0
        for boxes in per_layer:
            actual += tf1.shape(boxes)[0]
        check = tf1.assert_equal(variant.num_anchors, actual)
        with tf1.control_dependencies([check]):
            per_layer = [tf1.identity(boxes) for boxes in per_layer]
    scope = variant.anchor_concat_scope
    return tf1.concat(per_layer, 0, name=scope + "/concat")


# ---------------------------------------------------------------- the per-class loop

_INDEXED = re.compile(r"^(.*)_(\d+)$")
# Ops per class: ~40 (2019) / ~60 (2018). TensorFlow needs ~0.3 ms to create one, so
# 90 classes would take seconds; the loop is built for two classes with TensorFlow and
# the other classes are copies of the second one's NodeDefs, named as TensorFlow names
# them (build_graph_def(fast=False) builds every class with TensorFlow: the same bytes,
# checked by make_ssd_graphs.py --check-fast).
TF_BUILT_CLASSES = 2


def _split_index(component):
    """'Shape_3' -> ('Shape', 3); 'Shape' -> ('Shape', 0) (TensorFlow's unique names)."""
    match = _INDEXED.match(component)
    return (match.group(1), int(match.group(2))) if match else (component, 0)


def _node_name(input_name):
    return input_name.lstrip("^").split(":")[0]


class _ClassLoop:
    """The Python loop over the classes in multiclass_non_max_suppression.

    Iterating yields the class indices to build with TensorFlow (all, or the first two
    with ``fast``) and records the ops each class made and the ops made after the loop in
    the same name scope; ``expand`` then writes the remaining classes into the GraphDef.
    """

    def __init__(self, tf1, num_classes, fast):
        self.tf1 = tf1
        self.num_classes = num_classes
        self.built = min(num_classes, TF_BUILT_CLASSES) if fast else num_classes
        self.scope = None
        self.class_ops = []
        self.after = []
        self._start = None

    def _count(self):
        return len(self.tf1.get_default_graph().get_operations())

    def _ops_since(self, start):
        return [op.name for op in self.tf1.get_default_graph().get_operations()[start:]]

    def enter(self):
        self.scope = self.tf1.get_default_graph().get_name_scope()

    def __iter__(self):
        for class_index in range(self.built):
            start = self._count()
            yield class_index
            self.class_ops.append(self._ops_since(start))

    def after_loop(self):
        self._start = self._count()

    def leave(self):
        self.after = self._ops_since(self._start)

    def expand(self, graph_def):
        """``graph_def`` with the classes past the built ones added (in place)."""
        if self.built == self.num_classes:
            return graph_def
        prefix = self.scope + "/"
        first, second = self.class_ops
        step = {}
        for name_a, name_b in zip(first, second):
            base_a, index_a = _split_index(name_a[len(prefix):].split("/")[0])
            base_b, index_b = _split_index(name_b[len(prefix):].split("/")[0])
            if base_a != base_b or step.setdefault(base_a, index_b - index_a) != \
                    index_b - index_a or len(first) != len(second):
                raise RuntimeError(f"classes 0 and 1 differ: {name_a} / {name_b}")

        def advanced(name, steps):
            head, slash, rest = name[len(prefix):].partition("/")
            base, index = _split_index(head)
            index += steps * step.get(base, 0)
            return prefix + (f"{base}_{index}" if index else base) + slash + rest

        def renamed(input_name, mapping):
            name = _node_name(input_name)
            if name not in mapping:
                return input_name
            return input_name.replace(name, mapping[name], 1)

        nodes = {node.name: node for node in graph_def.node}
        copies = []
        for class_index in range(self.built, self.num_classes):
            mapping = {name: advanced(name, class_index - 1) for name in second}
            made = {}
            for name in second:
                node = type(nodes[name])()
                node.CopyFrom(nodes[name])
                node.name = mapping[name]
                inputs = [renamed(input_name, mapping) for input_name in node.input]
                del node.input[:]
                node.input.extend(inputs)
                _rename_colocation(node, mapping)
                made[node.name] = node
                copies.append(node)
            self._set_class_constants(made, class_index)
        # The ops after the loop: numbered past every class; the concatenations take
        # every class's tensor.
        after = {name: advanced(name, self.num_classes - self.built) for name in self.after}
        later = {class_index: {name: advanced(name, class_index - 1) for name in second}
                 for class_index in range(self.built, self.num_classes)}
        # (The copies' names may be old names of these ops: rename the built nodes only.)
        for node in graph_def.node:
            inputs = [renamed(input_name, after) for input_name in node.input]
            if node.name in after and node.op == "ConcatV2":
                *values, axis = inputs
                last = [value for value in values if _node_name(value) in later[self.built]]
                if last:
                    values += [renamed(last[0], later[k]) for k in sorted(later)]
                    inputs = values + [axis]
                    node.attr["N"].i = len(values)
            if node.name in after:
                node.name = after[node.name]
            del node.input[:]
            node.input.extend(inputs)
            _rename_colocation(node, after)
        last_built = max(index for index, node in enumerate(graph_def.node)
                         if node.name in set(second))
        ordered = list(graph_def.node)
        ordered[last_built + 1:last_built + 1] = copies
        del graph_def.node[:]
        graph_def.node.extend(ordered)
        return graph_def

    def _set_class_constants(self, made, class_index):
        """The two constants that name the class: the score column the class's Slice
        starts at ([0, class]) and the class id added to zeros_like(scores)."""
        def const(name):
            return made.get(_node_name(name))

        for node in made.values():
            if node.op == "Slice" and node.name[len(self.scope) + 1:].startswith("Slice"):
                _set_value(self.tf1, const(node.input[1]), [0, class_index])
            if node.op in ("Add", "AddV2"):
                sources = [const(name) for name in node.input]
                if any(source is not None and source.op == "ZerosLike" for source in sources):
                    for source in sources:
                        if source is not None and source.op == "Const":
                            _set_value(self.tf1, source, class_index)


def _rename_colocation(node, mapping):
    """The ``_class`` attribute (loc:@<node>) names nodes too."""
    if "_class" in node.attr:
        values = node.attr["_class"].list.s
        for index, value in enumerate(values):
            name = value.decode()[len("loc:@"):]
            if name in mapping:
                values[index] = ("loc:@" + mapping[name]).encode()


def _set_value(tf1, node, value):
    """Give the Const ``node`` a new value, stored the way its old one was."""
    tensor = node.attr["value"].tensor
    dtype = tf1.as_dtype(tensor.dtype).as_numpy_dtype
    shape = [dim.size for dim in tensor.tensor_shape.dim]
    array = np.array(value, dtype=dtype).reshape(shape)
    if tensor.tensor_content:
        tensor.tensor_content = array.tobytes()
    elif tensor.float_val:
        tensor.float_val[:] = array.reshape(-1).tolist()
    elif tensor.int_val:
        tensor.int_val[:] = array.reshape(-1).tolist()
    else:
        raise RuntimeError(f"cannot set the value of {node.name}")


# ---------------------------------------------------------------- Postprocessor

def _shape_dims(tf1, tensor, name="Shape"):
    """shape_utils.combined_static_and_dynamic_shape: static dims, else tf.shape()[i]."""
    dynamic = None
    dims = []
    for index, dim in enumerate(tensor.shape.as_list()):
        if dim is not None:
            dims.append(dim)
            continue
        if dynamic is None:
            dynamic = tf1.shape(tensor, name=name)
        dims.append(dynamic[index])
    return dims


def _num_boxes(tf1, boxlist):
    """BoxList.num_boxes(): tf.shape(boxes)[0]."""
    return tf1.shape(boxlist["boxes"])[0]


def _gather(tf1, boxlist, indices, era):
    """box_list_ops.gather: every field gathered (2019: 'boxes' once more at the end)."""
    with tf1.name_scope("Gather"):
        result = {"boxes": tf1.gather(boxlist["boxes"], indices)}
        fields = [key for key in boxlist if key != "boxes"]
        if era == "2019":
            fields.append("boxes")
        for key in fields:
            result[key] = tf1.gather(boxlist[key], indices)
    return result


def _area(tf1, boxes):
    """box_list_ops.area: (ymax - ymin) * (xmax - xmin), scope Area."""
    with tf1.name_scope("Area"):
        y_min, x_min, y_max, x_max = tf1.split(boxes, 4, axis=1)
        return tf1.squeeze((y_max - y_min) * (x_max - x_min), [1])


def _clip_to_window(tf1, boxlist, window, era):
    """box_list_ops.clip_to_window with filter_nonoverlapping: clip each coordinate to the
    window, then keep only the boxes left with an area."""
    with tf1.name_scope("ClipToWindow"):
        y_min, x_min, y_max, x_max = tf1.split(boxlist["boxes"], 4, axis=1)
        win_y_min, win_x_min, win_y_max, win_x_max = tf1.unstack(window)
        y_min = tf1.maximum(tf1.minimum(y_min, win_y_max), win_y_min)
        y_max = tf1.maximum(tf1.minimum(y_max, win_y_max), win_y_min)
        x_min = tf1.maximum(tf1.minimum(x_min, win_x_max), win_x_min)
        x_max = tf1.maximum(tf1.minimum(x_max, win_x_max), win_x_min)
        clipped = dict(boxlist)
        clipped["boxes"] = tf1.concat([y_min, x_min, y_max, x_max], 1)
        areas = _area(tf1, clipped["boxes"])
        kept = tf1.cast(tf1.reshape(tf1.where(tf1.greater(areas, 0.0)), [-1]), tf1.int32)
        return _gather(tf1, clipped, kept, era)


def _sort_by_scores(tf1, boxlist, era):
    """box_list_ops.sort_by_field(boxlist, 'scores'), descending."""
    with tf1.name_scope("SortByField"):
        scores = boxlist["scores"]
        num_boxes = _num_boxes(tf1, boxlist)
        num_entries = tf1.size(scores)
        check = tf1.Assert(tf1.equal(num_boxes, num_entries),
                           ["Incorrect field size: actual vs expected.", num_entries,
                            num_boxes])
        with tf1.control_dependencies([check]):
            _, order = tf1.nn.top_k(scores, num_boxes, sorted=True)
        return _gather(tf1, boxlist, order, era)


def _concatenate(tf1, boxlists, era):
    """box_list_ops.concatenate: boxes, then every field, joined along axis 0."""
    with tf1.name_scope("Concatenate"):
        if len(boxlists) == 1 and era == "2018":
            # tf.concat of one tensor: an Identity, named as the concat (TF <= 1.13).
            return {key: tf1.identity(value, name="concat")
                    for key, value in boxlists[0].items()}
        return {key: tf1.concat([boxlist[key] for boxlist in boxlists], 0)
                for key in boxlists[0]}


def _multiclass_nms_2019(tf1, boxes, scores, *, masks, clip_window, classes):
    """post_processing.multiclass_non_max_suppression of 2019 (no padding): per class a
    non_max_suppression with the score threshold; then clip after the NMS.
    ``classes``: the _ClassLoop that builds the per-class part."""
    with tf1.name_scope("MultiClassNonMaxSuppression"):
        classes.enter()
        num_scores = tf1.shape(scores)[0]
        valid_total = tf1.constant(0)
        per_class_boxes = tf1.unstack(boxes, axis=1)[0]  # q == 1: one box for every class
        per_class_masks = tf1.unstack(masks, axis=1)[0]
        selected = []
        for class_index in classes:
            class_scores = tf1.reshape(
                tf1.slice(scores, [0, class_index], tf1.stack([num_scores, 1])), [-1])
            boxlist = {"boxes": per_class_boxes, "scores": class_scores,
                       "masks": per_class_masks}
            max_selection = tf1.minimum(MAX_DETECTIONS_PER_CLASS, _num_boxes(tf1, boxlist))
            indices = tf1.image.non_max_suppression(
                boxlist["boxes"], boxlist["scores"], max_selection,
                iou_threshold=IOU_THRESHOLD, score_threshold=SCORE_THRESHOLD)
            num_valid = tf1.shape(indices)[0]
            indices = tf1.concat([indices, tf1.zeros(max_selection - num_valid, tf1.int32)], 0)
            result = _gather(tf1, boxlist, indices, "2019")
            valid = tf1.less(tf1.range(max_selection), num_valid)
            result["scores"] = tf1.where(valid, result["scores"],
                                         -1 * tf1.ones(max_selection))
            valid_total += num_valid
            result["classes"] = tf1.zeros_like(result["scores"]) + class_index
            selected.append(result)
        classes.after_loop()
        boxlist = _sort_by_scores(tf1, _concatenate(tf1, selected, "2019"), "2019")
        boxlist = _clip_to_window(tf1, boxlist, clip_window, "2019")
        size = tf1.shape(boxlist["boxes"])[0]
        has_area = tf1.cast(_area(tf1, boxlist["boxes"]), tf1.bool)
        boxlist["scores"] = tf1.where(has_area, boxlist["scores"], -1 * tf1.ones(size))
        valid_total = tf1.reduce_sum(tf1.cast(tf1.greater_equal(boxlist["scores"], 0),
                                              tf1.int32))
        boxlist = _sort_by_scores(tf1, boxlist, "2019")
        max_total = tf1.minimum(MAX_TOTAL_DETECTIONS, _num_boxes(tf1, boxlist))
        boxlist = _gather(tf1, boxlist, tf1.range(max_total), "2019")
        valid_total = tf1.where(max_total > valid_total, valid_total, max_total)
        boxlist = _gather(tf1, boxlist, tf1.range(valid_total), "2019")
        classes.leave()
        return boxlist, valid_total


def _multiclass_nms_2018(tf1, boxes, scores, *, masks, clip_window, classes):
    """post_processing.multiclass_non_max_suppression of 2017/2018: per class the score
    filter and the clip to the window, then non_max_suppression (no score threshold)."""
    with tf1.name_scope("MultiClassNonMaxSuppression"):
        classes.enter()
        num_boxes = tf1.shape(boxes)[0]
        num_scores = tf1.shape(scores)[0]
        length_check = tf1.Assert(
            tf1.equal(num_boxes, num_scores),
            ["Incorrect scores field length: actual vs expected.", num_scores, num_boxes])
        per_class_boxes = tf1.unstack(boxes, axis=1)[0]
        per_class_masks = tf1.unstack(masks, axis=1)[0]
        selected = []
        for class_index in classes:
            with tf1.control_dependencies([length_check]):
                class_scores = tf1.reshape(
                    tf1.slice(scores, [0, class_index], tf1.stack([num_scores, 1])), [-1])
            # (the fields in the order the 2018 exports hold them: masks, scores)
            boxlist = {"boxes": per_class_boxes, "masks": per_class_masks,
                       "scores": class_scores}
            with tf1.name_scope("FilterGreaterThan"):
                high = tf1.cast(tf1.reshape(
                    tf1.where(tf1.greater(boxlist["scores"], SCORE_THRESHOLD)), [-1]),
                    tf1.int32)
                boxlist = _gather(tf1, boxlist, high, "2018")
            boxlist = _clip_to_window(tf1, boxlist, clip_window, "2018")
            max_selection = tf1.minimum(MAX_DETECTIONS_PER_CLASS, _num_boxes(tf1, boxlist))
            indices = tf1.image.non_max_suppression(
                boxlist["boxes"], boxlist["scores"], max_selection,
                iou_threshold=IOU_THRESHOLD)
            result = _gather(tf1, boxlist, indices, "2018")
            result["classes"] = tf1.zeros_like(result["scores"]) + class_index
            selected.append(result)
        classes.after_loop()
        boxlist = _sort_by_scores(tf1, _concatenate(tf1, selected, "2018"), "2018")
        max_total = tf1.minimum(MAX_TOTAL_DETECTIONS, _num_boxes(tf1, boxlist))
        boxlist = _gather(tf1, boxlist, tf1.range(max_total), "2018")
        classes.leave()
        return boxlist


def _pad_or_clip_nd(tf1, tensor, length):
    """shape_utils.pad_or_clip_tensor of 2019: slice to ``length`` rows, pad with zeros."""
    output_shape = [length] + tensor.shape.as_list()[1:]
    shape = tf1.shape(tensor)
    clip_size = [tf1.where(shape[i] - dim > 0, dim, -1) if dim is not None else -1
                 for i, dim in enumerate(output_shape)]
    clipped = tf1.slice(tensor, begin=tf1.zeros(len(clip_size), dtype=tf1.int32),
                        size=clip_size)
    clipped_shape = tf1.shape(clipped)
    trailing = [dim - clipped_shape[i] if dim is not None else 0
                for i, dim in enumerate(output_shape)]
    paddings = tf1.stack([tf1.zeros(len(trailing), dtype=tf1.int32), trailing], axis=1)
    padded = tf1.pad(clipped, paddings=paddings)
    padded.set_shape(output_shape)
    return padded


def _pad_or_clip_cond(tf1, tensor, length):
    """shape_utils.pad_or_clip_tensor of 2018: tf.cond between a gather and a zero pad."""

    def clip():
        return tf1.gather(tensor, tf1.range(length))

    def pad():
        rank = tf1.rank(tensor)
        shape = tf1.shape(tensor)
        rows = shape[0]
        pad_rows = tf1.expand_dims(length - rows, 0)
        pad_shape = tf1.cond(tf1.greater(rank, 1),
                             lambda: tf1.concat([pad_rows, shape[1:]], 0),
                             lambda: tf1.expand_dims(length - rows, 0))
        return tf1.concat([tensor, tf1.zeros(pad_shape, dtype=tensor.dtype)], 0)

    result = tf1.cond(tf1.greater(tf1.shape(tensor)[0], length), clip, pad)
    result.set_shape([length] + tensor.shape.as_list()[1:])
    return result


def _batch_nms(b, variant, boxes, scores, clip_window):
    """post_processing.batch_multiclass_non_max_suppression: map_fn over the images."""
    tf1 = b.tf1
    era = variant.postprocessor_era
    num_classes = variant.num_classes - 1
    class_loop = _ClassLoop(tf1, num_classes, b.fast)
    b.class_loops.append(class_loop)
    with tf1.name_scope("BatchMultiClassNonMaxSuppression"):
        batch_size, num_anchors = boxes.shape.as_list()[:2]
        if batch_size is None:
            batch_size = tf1.shape(boxes)[0]
        if num_anchors is None:
            num_anchors = tf1.shape(boxes)[1]
        num_valid_boxes = tf1.ones([batch_size], dtype=tf1.int32) * num_anchors
        masks = tf1.zeros(tf1.stack([batch_size, num_anchors, 1, 1, 1]))

        def single_image_nms(args):
            image_boxes, image_scores, image_masks, image_window, image_valid = args
            image_boxes = tf1.reshape(
                tf1.slice(image_boxes, 3 * [0], tf1.stack([image_valid, -1, -1])), [-1, 1, 4])
            image_scores = tf1.reshape(
                tf1.slice(image_scores, [0, 0], tf1.stack([image_valid, -1])),
                [-1, num_classes])
            image_masks = tf1.reshape(
                tf1.slice(image_masks, 4 * [0], tf1.stack([image_valid, -1, -1, -1])),
                [-1, 1, 1, 1])
            if era == "2019":
                boxlist, count = _multiclass_nms_2019(tf1, image_boxes, image_scores,
                                                      masks=image_masks,
                                                      clip_window=image_window,
                                                      classes=class_loop)
                pad = _pad_or_clip_nd
            else:
                boxlist = _multiclass_nms_2018(tf1, image_boxes, image_scores,
                                               masks=image_masks, clip_window=image_window,
                                               classes=class_loop)
                pad = _pad_or_clip_cond
            with tf1.name_scope("PadOrClipBoxList"):  # the boxes, then every field
                padded = {key: pad(tf1, value, MAX_TOTAL_DETECTIONS)
                          for key, value in boxlist.items()}
            if era == "2018":
                count = tf1.shape(boxlist["boxes"])[0]
            return [padded["boxes"], padded["scores"], padded["classes"], padded["masks"],
                    count]

        outputs = tf1.map_fn(_plain(tf1, single_image_nms),
                             elems=[boxes, scores, masks, clip_window, num_valid_boxes],
                             dtype=[tf1.float32] * 4 + [tf1.int32])
    return outputs[0], outputs[1], outputs[2], outputs[4]


def _batch_decode(tf1, box_encodings, anchors):
    """SSDMetaArch._batch_decode: FasterRcnnBoxCoder.decode of every image's encodings."""
    shape = _shape_dims(tf1, box_encodings)
    tiled = tf1.tile(tf1.expand_dims(anchors, 0), [shape[0], 1, 1])
    anchor_boxes = tf1.reshape(tiled, [-1, 4])
    codes = tf1.reshape(box_encodings, [-1, 4])
    with tf1.name_scope("Decode"):
        with tf1.name_scope("get_center_coordinates_and_sizes"):
            ymin, xmin, ymax, xmax = tf1.unstack(tf1.transpose(anchor_boxes))
            width = xmax - xmin
            height = ymax - ymin
            ycenter_a = ymin + height / 2.0
            xcenter_a = xmin + width / 2.0
        ty, tx, th, tw = tf1.unstack(tf1.transpose(codes))
        ty /= BOX_CODER_SCALES[0]
        tx /= BOX_CODER_SCALES[1]
        th /= BOX_CODER_SCALES[2]
        tw /= BOX_CODER_SCALES[3]
        w = tf1.exp(tw) * width
        h = tf1.exp(th) * height
        ycenter = ty * height + ycenter_a
        xcenter = tx * width + xcenter_a
        decoded = tf1.transpose(tf1.stack([ycenter - h / 2.0, xcenter - w / 2.0,
                                           ycenter + h / 2.0, xcenter + w / 2.0]))
    return tf1.reshape(decoded, tf1.stack([shape[0], shape[1], 4]))


def _convert_scores(tf1, variant, class_predictions):
    """post_processing_builder's score converter: scale_logits, convert_scores, then
    raw_box_scores and the Slice that drops the background column."""
    scaled = tf1.divide(class_predictions, 1.0, name="scale_logits")
    if variant.score_converter == "softmax":
        converted = tf1.nn.softmax(scaled, name="convert_scores")
    else:
        converted = tf1.sigmoid(scaled, name="convert_scores")
    converted = tf1.identity(converted, name="raw_box_scores")
    return tf1.slice(converted, [0, 0, 1], [-1, -1, -1])


def _clip_window(tf1, variant, true_shapes):
    """SSDMetaArch._compute_clip_window: [0, 0, true h / resized h, true w / resized w]."""
    true_heights, true_widths, _ = tf1.unstack(tf1.to_float(true_shapes), axis=1)
    padded_height = tf1.to_float(variant.input_size)
    padded_width = tf1.to_float(variant.input_size)
    return tf1.stack([tf1.zeros_like(true_heights), tf1.zeros_like(true_widths),
                      true_heights / padded_height, true_widths / padded_width], axis=1)


def _postprocessor(b, variant, box_encodings, class_predictions, *, anchors, true_shapes):
    """SSDMetaArch.postprocess under Postprocessor/, then the exporter's output nodes."""
    tf1 = b.tf1
    with tf1.name_scope("Postprocessor"):
        if variant.postprocessor_order == "scores_first":
            scores = _convert_scores(tf1, variant, class_predictions)
        encodings = tf1.identity(box_encodings, name="raw_box_encodings")
        boxes = tf1.identity(_batch_decode(tf1, encodings, anchors), name="raw_box_locations")
        boxes = tf1.expand_dims(boxes, axis=2)
        if variant.postprocessor_order != "scores_first":
            scores = _convert_scores(tf1, variant, class_predictions)
        window = _clip_window(tf1, variant, true_shapes)
        det_boxes, det_scores, det_classes, num = _batch_nms(b, variant, boxes, scores, window)
        num = tf1.to_float(num)
        if variant.postprocessor_era == "2019":
            raw_boxes = tf1.squeeze(boxes, axis=2)
    # exporter.add_output_tensor_nodes (label_id_offset 1)
    classes = tf1.add(det_classes, 1.0, name="add")
    tf1.identity(det_boxes, name="detection_boxes")
    tf1.identity(det_scores, name="detection_scores")
    tf1.identity(classes, name="detection_classes")
    tf1.identity(num, name="num_detections")
    if variant.postprocessor_era == "2019":
        tf1.identity(raw_boxes, name="raw_detection_boxes")
        tf1.identity(class_predictions, name="raw_detection_scores")


def build_graph_def(tf1, variant, fast=True):
    """The frozen GraphDef of ``variant`` (a tf.compat.v1 GraphDef).

    Like the exporter's freezing, only what the output nodes need is kept. ``fast``:
    build two classes of the per-class NMS loop with TensorFlow and copy the others
    (same result, see _ClassLoop); False: every class with TensorFlow.
    """
    graph = tf1.Graph()
    with graph.as_default():
        b = _Builder(tf1, variant, fast)
        image = tf1.placeholder(tf1.uint8, [None, None, None, 3], name="image_tensor")
        as_float = tf1.cast(image, tf1.float32, name="Cast" if variant.tf115 else "ToFloat")
        preprocessed, true_shapes = _preprocessor(b, as_float, variant)
        net = "MobilenetV2" if variant.backbone == "ssdlite" else variant.backbone
        features_input = preprocessed
        if variant.dynamic_anchor_inputs:
            features_input = _min_image_dim_check(b, preprocessed, net)
        maps = _feature_maps(b, features_input, variant)
        # SSDMetaArch.predict: the anchors, then the box predictors, then the concats.
        anchors = _anchors(b, variant, preprocessed)
        boxes, classes = [], []
        for index, (feature, count) in enumerate(zip(maps, variant.anchors_per_location)):
            box, cls = _box_predictor(b, index, feature, count, variant.num_classes,
                                      ssdlite=variant.backbone == "ssdlite")
            boxes.append(box)
            classes.append(cls)
        box_encodings = tf1.squeeze(tf1.concat(boxes, 1, name="concat"), [2], name="Squeeze")
        class_predictions = tf1.concat(classes, 1, name="concat_1")
        _postprocessor(b, variant, box_encodings, class_predictions, anchors=anchors,
                       true_shapes=true_shapes)
    graph_def = graph.as_graph_def()
    for class_loop in b.class_loops:
        class_loop.expand(graph_def)
    graph_def = tf1.graph_util.extract_sub_graph(graph_def, list(variant.output_nodes))
    if not variant.tf115:
        # TF 2 writes AddV2 for every "+"; exports before TF 1.15 only knew Add (same
        # inputs and attributes), so write what such an export holds.
        for node in graph_def.node:
            if node.op == "AddV2":
                node.op = "Add"
    return graph_def


def run_once(tf1, graph_def, input_size):
    """Run the frozen graph on a fixed image; returns {output name: ndarray}."""
    graph = tf1.Graph()
    with graph.as_default():
        tf1.import_graph_def(graph_def, name="")
    image = np.random.RandomState(1).randint(0, 255, (1, input_size + 20, input_size, 3))
    names = ["detection_boxes", "detection_scores", "detection_classes", "num_detections",
             "concat", "concat_1"]
    config = tf1.ConfigProto()
    # Grappler's rewrites of the NMS loops cost more than the one run they would speed up.
    config.graph_options.rewrite_options.disable_meta_optimizer = True
    with tf1.Session(graph=graph, config=config) as session:
        values = session.run([name + ":0" for name in names],
                             {"image_tensor:0": image.astype(np.uint8)})
    return dict(zip(names, values))
