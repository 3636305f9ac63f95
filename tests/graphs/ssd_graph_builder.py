"""Build a small frozen SSD graph with the node naming of TF Object Detection API exports.

Real TensorFlow ops (tf.compat.v1, graph mode, v1 control flow so that the map_fn loops
look like TF 1.x exports). Spatial sizes are real (19x19 ... 1x1 for 300x300); channel
counts are tiny so that a graph is a few hundred KB. Every weight is a Const (frozen).

Only test code: the product never imports this module.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

DEFAULT_ASPECT_RATIOS = (1.0, 2.0, 0.5, 3.0, 0.3333)
FEATURE_CHANNELS = 8  # tiny on purpose: files stay small and generation fast


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
    # Creation order of the Postprocessor: "decode_first" (box decoding before score
    # conversion, NMS inputs loc, prior, conf) or "scores_first" (conf, loc, prior: the
    # order of the 2018_03_29 ssd_mobilenet_v2_coco export).
    postprocessor_order: str = "decode_first"
    # "MultipleGridAnchorGenerator/Concatenate" (older exports) or "Concatenate" (newer).
    anchor_concat_scope: str = "MultipleGridAnchorGenerator/Concatenate"
    # True: the anchor generator reads the image size (strided_slice_6/_7 inputs);
    # False: everything is constant (the GridAnchor node gets no input after surgery).
    dynamic_anchor_inputs: bool = True
    tf115: bool = False  # Cast instead of ToFloat, AddV2, FusedBatchNormV3
    pipeline_config: bool = False  # write pipeline.config next to the graph
    seed: int = 0
    extra: dict = field(default_factory=dict)

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


class _Builder:
    """Adds layers to the default graph with deterministic weights."""

    def __init__(self, tf1, variant):
        self.tf1 = tf1
        self.variant = variant
        self.rng = np.random.RandomState(variant.seed)

    def weights(self, shape, name):
        values = self.rng.uniform(-0.1, 0.1, size=shape).astype(np.float32)
        return self.tf1.constant(values, name=name)

    def batch_norm(self, x, scope):
        tf1 = self.tf1
        channels = int(x.shape[-1])
        with tf1.name_scope(scope):
            gamma = self.weights([channels], "gamma") + 1.0
            beta = self.weights([channels], "beta")
            mean = self.weights([channels], "moving_mean")
            var = tf1.constant(np.ones([channels], np.float32), name="moving_variance")
        op = tf1.raw_ops.FusedBatchNormV3 if self.variant.tf115 else tf1.raw_ops.FusedBatchNorm
        return op(x=x, scale=gamma, offset=beta, mean=mean, variance=var, epsilon=0.001,
                  is_training=False, name=scope + "/FusedBatchNorm")[0]

    def conv(self, x, scope, channels, kernel=3, stride=1, *, depthwise=False, relu=True):
        """Conv2D (or depthwise) + BatchNorm + Relu6 under ``scope``."""
        tf1 = self.tf1
        in_ch = int(x.shape[-1])
        if depthwise:
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
        x = b.conv(x, f"FeatureExtractor/{net}/{net}/Conv2d_1a_7x7", c, 7, 2)
        x = b.tf1.nn.max_pool(x, [1, 3, 3, 1], [1, 2, 2, 1], "SAME",
                              name=f"FeatureExtractor/{net}/{net}/MaxPool_2a_3x3/MaxPool")
        x = b.conv(x, f"FeatureExtractor/{net}/{net}/Conv2d_2c_3x3", c, 3, 1)
        x = b.tf1.nn.max_pool(x, [1, 3, 3, 1], [1, 2, 2, 1], "SAME",
                              name=f"FeatureExtractor/{net}/{net}/MaxPool_3a_3x3/MaxPool")
        x = _inception_block(b, x, f"FeatureExtractor/{net}/{net}/Mixed_3b", 1)
        return _inception_block(b, x, f"FeatureExtractor/{net}/{net}/Mixed_4a", 2)
    prefix = f"FeatureExtractor/{net}/{net}" if net == "MobilenetV1" else f"FeatureExtractor/{net}"
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

def _preprocessor(b, image, variant):
    """Preprocessor/map/while/ResizeImage + mul/sub, like the exporter's map_fn."""
    tf1 = b.tf1
    size = variant.input_size

    def resize(img):
        with tf1.name_scope("ResizeImage"):
            resized = tf1.image.resize_bilinear(tf1.expand_dims(img, 0), [size, size])[0]
        return resized, tf1.shape(resized)

    with tf1.name_scope("Preprocessor"):
        resized, true_shapes = tf1.map_fn(resize, image, dtype=(tf1.float32, tf1.int32),
                                          back_prop=False)
        scaled = tf1.multiply(resized, 2.0 / 255.0, name="mul")
        normalized = tf1.subtract(scaled, 1.0, name="sub")
    return normalized, true_shapes


def _min_image_dim_check(b, images, net):
    """FeatureExtractor/<net>/Assert + Identity (shape_utils.check_min_image_dim)."""
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
    """BoxPredictor_i: box (N, anchors, 1, 4) and class (N, anchors, classes) reshapes."""
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
        shape = tf1.shape(feature, name="Shape")
        batch = tf1.strided_slice(shape, [0], [1], [1], shrink_axis_mask=1, name="strided_slice")
        box = tf1.reshape(box, tf1.stack([batch, -1, 1, 4], name="Reshape/shape"), name="Reshape")
        shape_1 = tf1.shape(feature, name="Shape_1")
        batch_1 = tf1.strided_slice(shape_1, [0], [1], [1], shrink_axis_mask=1,
                                    name="strided_slice_1")
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
    """MultipleGridAnchorGenerator/... and the anchor concat (N_anchors, 4)."""
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
            smallest = tf1.minimum(height, width, name="Minimum")
            scale_h = tf1.truediv(smallest, height, name="truediv")
            scale_w = tf1.truediv(smallest, width, name="truediv_1")
        else:
            scale_h = tf1.constant(1.0, name="scale_height")
            scale_w = tf1.constant(1.0, name="scale_width")
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
    scope = variant.anchor_concat_scope
    return tf1.concat(per_layer, 0, name=scope + "/concat")


def _postprocessor(b, variant, box_encodings, class_logits, *, anchors, true_shapes):
    """Postprocessor/...: decode, score conversion, BatchMultiClassNonMaxSuppression."""
    tf1 = b.tf1
    max_detections = 100
    with tf1.name_scope("Postprocessor"):

        def scores():
            scaled = tf1.truediv(class_logits, 1.0, name="scale_logits")
            converted = tf1.sigmoid(scaled, name="convert_scores")
            return tf1.slice(converted, [0, 0, 1], [-1, -1, -1], name="Slice")

        def decode():
            shape = tf1.shape(box_encodings, name="Shape")
            batch = tf1.strided_slice(shape, [0], [1], [1], shrink_axis_mask=1,
                                      name="strided_slice")
            tiled = tf1.tile(tf1.expand_dims(anchors, 0, name="ExpandDims"),
                             tf1.stack([batch, 1, 1]), name="Tile")
            check = tf1.Assert(tf1.equal(tf1.shape(box_encodings)[1], tf1.shape(anchors)[0]),
                               ["anchors and box encodings disagree"], name="Assert")
            with tf1.control_dependencies([check]):
                encodings = tf1.identity(box_encodings, name="Identity")
            with tf1.name_scope("Decode"):
                ya, xa = (tiled[..., 0] + tiled[..., 2]) / 2, (tiled[..., 1] + tiled[..., 3]) / 2
                ha, wa = tiled[..., 2] - tiled[..., 0], tiled[..., 3] - tiled[..., 1]
                ty, tx = encodings[..., 0] / 10.0, encodings[..., 1] / 10.0
                th, tw = encodings[..., 2] / 5.0, encodings[..., 3] / 5.0
                h, w = tf1.exp(th) * ha, tf1.exp(tw) * wa
                yc, xc = ty * ha + ya, tx * wa + xa
                boxes = tf1.stack([yc - h / 2, xc - w / 2, yc + h / 2, xc + w / 2], axis=2)
            window = tf1.cast(true_shapes[:, :2], tf1.float32, name="ToFloat")
            boxes = tf1.clip_by_value(boxes, 0.0, 1.0) * (window[0, 0] / window[0, 0])
            return boxes

        if variant.postprocessor_order == "scores_first":
            class_scores = scores()
            boxes = decode()
        else:
            boxes = decode()
            class_scores = scores()

        def nms(args):
            image_boxes, image_scores = args
            best = tf1.reduce_max(image_scores, axis=1)
            label = tf1.argmax(image_scores, axis=1, output_type=tf1.int32)
            keep = tf1.image.non_max_suppression(image_boxes, best, max_detections, 0.6)
            count = tf1.shape(keep)[0]
            pad = max_detections - count
            kept_boxes = tf1.pad(tf1.gather(image_boxes, keep), [[0, pad], [0, 0]])
            kept_scores = tf1.pad(tf1.gather(best, keep), [[0, pad]])
            kept_labels = tf1.pad(tf1.gather(label, keep), [[0, pad]])
            kept_boxes.set_shape([max_detections, 4])
            kept_scores.set_shape([max_detections])
            kept_labels.set_shape([max_detections])
            return kept_boxes, kept_scores, tf1.cast(kept_labels, tf1.float32), tf1.cast(
                count, tf1.float32)

        with tf1.name_scope("BatchMultiClassNonMaxSuppression"):
            results = tf1.map_fn(nms, (boxes, class_scores),
                                 dtype=(tf1.float32, tf1.float32, tf1.float32, tf1.float32),
                                 back_prop=False)
    det_boxes, det_scores, det_classes, num = results
    tf1.identity(det_boxes, name="detection_boxes")
    tf1.identity(det_scores, name="detection_scores")
    tf1.identity(tf1.add(det_classes, 1.0, name="add"), name="detection_classes")
    tf1.identity(num, name="num_detections")


def build_graph_def(tf1, variant):
    """The frozen GraphDef of ``variant`` (a tf.compat.v1 GraphDef)."""
    graph = tf1.Graph()
    with graph.as_default():
        b = _Builder(tf1, variant)
        image = tf1.placeholder(tf1.uint8, [None, None, None, 3], name="image_tensor")
        as_float = tf1.cast(image, tf1.float32, name="Cast" if variant.tf115 else "ToFloat")
        preprocessed, true_shapes = _preprocessor(b, as_float, variant)
        net = "MobilenetV2" if variant.backbone == "ssdlite" else variant.backbone
        checked = _min_image_dim_check(b, preprocessed, net)
        maps = _feature_maps(b, checked, variant)
        boxes, classes = [], []
        for index, (feature, anchors) in enumerate(zip(maps, variant.anchors_per_location)):
            box, cls = _box_predictor(b, index, feature, anchors, variant.num_classes,
                                      ssdlite=variant.backbone == "ssdlite")
            boxes.append(box)
            classes.append(cls)
        box_concat = tf1.concat(boxes, 1, name="concat")
        class_concat = tf1.concat(classes, 1, name="concat_1")
        box_encodings = tf1.squeeze(box_concat, [2], name="Squeeze")
        anchors = _anchors(b, variant, preprocessed)
        _postprocessor(b, variant, box_encodings, class_concat, anchors=anchors,
                       true_shapes=true_shapes)
    graph_def = graph.as_graph_def()
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
             "concat", "concat_1", "MultipleGridAnchorGenerator/Reshape_0"]
    with tf1.Session(graph=graph) as session:
        values = session.run([name + ":0" for name in names],
                             {"image_tensor:0": image.astype(np.uint8)})
    return dict(zip(names, values))
