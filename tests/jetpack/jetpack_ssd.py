"""A miniature SSD frozen graph with Object Detection API naming, the reference recipe's
graphsurgeon steps, and UFF conversion; run inside a generation's subprocess (needs TF).

Two feature maps (19x19 with 3 anchors, 10x10 with 6), `classes` classes incl. background.
"""

import numpy as np
import tensorflow as tf

tf1 = tf.compat.v1


def mini_ssd(classes=3, cast=False):
    graph = tf1.Graph()
    rng = np.random.RandomState(0)
    with graph.as_default():
        image = tf1.placeholder(tf.float32, [1, 300, 300, 3], name="image_tensor")
        with tf1.name_scope("Preprocessor"):
            pre = tf.subtract(image * 0.0078, 1.0, name="sub")
        feature = pre
        if cast:
            feature = tf.cast(tf.cast(pre, tf.float16), tf.float32, name="FeatureExtractor/cast")

        def conv(x, cin, cout, stride, name):
            kernel = tf.constant(rng.rand(3, 3, cin, cout).astype(np.float32), name=name + "/w")
            y = tf.nn.conv2d(x, kernel, [1, stride, stride, 1], "SAME", name=name + "/Conv2D")
            return tf.nn.bias_add(y, tf.constant(np.zeros(cout, np.float32)), name=name + "/b")

        maps = [tf.nn.relu6(conv(feature, 3, 8, 16, "FeatureExtractor/c0"))]
        maps.append(tf.nn.relu6(conv(maps[0], 8, 8, 2, "FeatureExtractor/c1")))
        locs, confs = [], []
        for index, (fmap, size, anchors) in enumerate(zip(maps, (19, 10), (3, 6))):
            scope = "BoxPredictor_{}".format(index)
            box = conv(fmap, 8, anchors * 4, 1, scope + "/BoxEncodingPredictor")
            cls = conv(fmap, 8, anchors * classes, 1, scope + "/ClassPredictor")
            # Like Object Detection API exports: the batch size comes from the feature map's
            # shape at run time (Shape -> StridedSlice -> Pack), so the UFF parser must fold it.
            batch = tf.raw_ops.Shape(input=fmap, name=scope + "/Shape")[0]
            locs.append(tf.reshape(box, tf.stack([batch, size * size * anchors, 1, 4]),
                                   name=scope + "/Reshape"))
            confs.append(tf.reshape(cls, tf.stack([batch, -1, classes]),
                                    name=scope + "/Reshape_1"))
        loc = tf.concat(locs, 1, name="concat")
        conf = tf.concat(confs, 1, name="concat_1")
        squeezed = tf.squeeze(loc, [2], name="Squeeze")
        anchors = tf.constant(np.zeros((1683, 4), np.float32),
                              name="MultipleGridAnchorGenerator/anchors")
        prior = tf.identity(anchors, name="Concatenate/concat")
        with tf1.name_scope("Postprocessor"):
            boxes = tf.identity(squeezed, name="boxes")
            decoded = tf.add(boxes, tf.reduce_sum(prior), name="decoded")
            scores = tf.sigmoid(conf, name="scores")
            size = tf.identity(tf.reduce_mean(pre), name="ToFloat")
            out = tf.identity(decoded * tf.reduce_sum(size), name="out")
        tf.identity(out, name="detection_boxes")
        tf.reduce_max(scores, name="detection_scores")
    return graph.as_graph_def()


def reference_recipe(graphdef, classes=3, input_order=(0, 2, 1), suffixed=True):
    """The old build_engine.py surgery, with JetPack's graphsurgeon API. suffixed=False
    makes the plugin nodes with create_node (plain field names, types left to uff)."""
    import graphsurgeon as gs  # noqa: PLC0415  (needs the generation tree on sys.path)

    plugin = gs.create_plugin_node if suffixed else gs.create_node
    dynamic = gs.DynamicGraph(graphdef)
    Input = gs.create_plugin_node(name="Input", op="Placeholder", shape=[1, 3, 300, 300])
    prior = plugin(name="GridAnchor", op="GridAnchor_TRT", minSize=0.2,
                   maxSize=0.95, aspectRatios=[1.0, 2.0, 0.5, 3.0, 0.33],
                   variance=[0.1, 0.1, 0.2, 0.2], featureMapShapes=[19, 10], numLayers=2)
    nms = plugin(name="NMS", op="NMS_TRT", shareLocation=1, varianceEncodedInTarget=0,
                 backgroundLabelId=0, confidenceThreshold=1e-8, nmsThreshold=0.6, topK=100,
                 keepTopK=10, numClasses=classes, inputOrder=list(input_order), confSigmoid=1,
                 isNormalized=1)
    concat_priorbox = gs.create_node("concat_priorbox", op="ConcatV2", dtype=tf.float32, axis=2)
    concat_box_loc = gs.create_plugin_node("concat_box_loc", op="FlattenConcat_TRT")
    concat_box_conf = gs.create_plugin_node("concat_box_conf", op="FlattenConcat_TRT")
    dynamic.collapse_namespaces({
        "MultipleGridAnchorGenerator": prior, "Postprocessor": nms, "Preprocessor": Input,
        "image_tensor": Input, "Concatenate": concat_priorbox, "concat": concat_box_loc,
        "concat_1": concat_box_conf})
    dynamic.remove(dynamic.graph_outputs, remove_exclusive_dependencies=False)
    dynamic.find_nodes_by_op("NMS_TRT")[0].input.remove("Input")
    return dynamic.as_graph_def()


def to_uff(graphdef, path):
    import uff  # noqa: PLC0415  (needs the generation tree on sys.path)

    return uff.from_tensorflow(graphdef, output_nodes=["NMS"], output_filename=str(path),
                               text=True)
