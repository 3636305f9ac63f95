#!/usr/bin/env python3
"""Export SSD models with the real TF1 Object Detection API exporter (random weights).

Runs inside the TensorFlow 1.15 venv that tests/graphs/genuine/genuine.py makes:

    python make_genuine_exports.py --configs DIR --out DIR VARIANT [VARIANT ...]

For each VARIANT (DIR/VARIANT.config, a pipeline config written for these tests) it
builds the model with object_detection's model_builder, gives it seeded random weights,
saves a checkpoint and calls object_detection.exporter.export_inference_graph, as a user
does with a trained checkpoint. OUT/VARIANT/ receives frozen_inference_graph.pb, the
pipeline.config the exporter wrote and facts.json: what the export contains and how long
each step took. Every export is checked here (batch norms in inference mode, a detection
run on a test image) and the script fails loudly when a check fails. Checkpoints and the
SavedModel the exporter also writes are not kept. Exports are reproducible to the byte:
seeded weights, and the frozen graph re-serialized in a fixed order (canonical_graph_def).

One process exports the variants one after the other, each in its own tf.Graph, so the
TensorFlow import (seconds) is paid once. Several processes may share a list and an OUT:
a variant goes to the first one that creates OUT/VARIANT. Python 3.6 compatible (the
venv's interpreter is pyenv's 3.7, or 3.6).
"""

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
import zlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

# The slim backbones (`nets`, from the object-detection-neko sdist) import `tf_slim`.
# TF 1.15's own copy must serve them: the separate tf-slim package has its own arg scopes,
# so the OD API's `is_training=False` would not reach the backbone's batch norms.
sys.modules["tf_slim"] = tf.contrib.slim

from google.protobuf import text_format  # noqa: E402
from graph_checks import (  # noqa: E402  (beside this script)
    CONVERT_SCORES,
    INPUT_NODE,
    OUTPUT_NODES,
    RAW_BOX_LOCATIONS,
    RAW_BOX_SCORES,
    count_ops,
    neighbours,
    training_mode_batch_norms,
)
from object_detection import exporter  # noqa: E402
from object_detection.builders import graph_rewriter_builder, model_builder  # noqa: E402
from object_detection.protos import pipeline_pb2  # noqa: E402

GRAPH_FILE = "frozen_inference_graph.pb"
PIPELINE_FILE = "pipeline.config"
FACTS_FILE = "facts.json"

# The predictors are scaled so that, on the test image, class logits and box encodings
# spread by this (random weights give anything from 0.1, every score alike, to 10, every
# score 0 or 1, depending on the backbone) ...
PREDICTION_STD = 1.0
# ... and class logits are centred here (sigmoid 0.05): the best of the thousands of
# anchor-class pairs then score on both sides of the usual 0.5 display threshold.
CLASS_LOGIT_BIAS = -3.0
# The scale of a residual branch's last batch norm against its random draw (0.8-1.2).
RESIDUAL_BRANCH_SCALE = 0.2
# The test image for the detection run: fixed-shape resizers resize any image; the
# keep_aspect_ratio resizer keeps its aspect ratio, so a non-square one shows it.
TEST_IMAGE_SHAPE = (360, 480, 3)


def read_pipeline_config(path):
    config = pipeline_pb2.TrainEvalPipelineConfig()
    with open(path) as handle:
        text_format.Merge(handle.read(), config)
    return config


def variant_seed(variant):
    """A seed per variant name: each export is the same whatever else is built with it."""
    return zlib.crc32(variant.encode("utf-8")) & 0x7FFFFFFF


def _session():
    return tf.Session(config=tf.ConfigProto(intra_op_parallelism_threads=2,
                                            inter_op_parallelism_threads=1))


# ---------------------------------------------------------------- random weights

def _kernel_fan_in(leaf, shape):
    # Depthwise kernels [h, w, in, multiplier] mix no channels: fan-in is h * w.
    if leaf == "depthwise_weights":
        return shape[0] * shape[1]
    return int(np.prod(shape[:-1]))


def _random_value(name, shape, rng):
    """A random value for the variable ``name``, or None to keep its initializer's value.

    The configs' initializers (truncated normal, stddev 0.03) shrink the activations
    layer after layer until every anchor gets the same score. Trained weights do not:
    kernels here keep the activation scale (He), and batch norms get random statistics
    so that folding them into the convolutions is not an identity.
    """
    leaf = name.rsplit("/", 1)[-1]
    is_predictor = "BoxEncodingPredictor" in name or "ClassPredictor" in name
    if leaf in ("weights", "depthwise_weights"):
        gain = 1.0 if is_predictor else 2.0  # predictors have no ReLU after them
        return rng.normal(0.0, np.sqrt(gain / _kernel_fan_in(leaf, shape)), shape)
    if leaf == "biases":
        if "ClassPredictor" in name:
            return np.zeros(shape)  # set by normalize_predictions
        return rng.normal(0.0, 0.05, shape)
    statistics = {
        "gamma": lambda: rng.uniform(0.8, 1.2, shape),
        "beta": lambda: rng.normal(0.0, 0.1, shape),
        "moving_mean": lambda: rng.normal(0.0, 0.1, shape),
        "moving_variance": lambda: rng.uniform(0.5, 1.5, shape),
    }
    if leaf in statistics:
        return statistics[leaf]()
    return None  # global_step, quantization ranges (calibrated afterwards)


def load_values(session, values):
    """Variable.load for many variables in a single run.

    Every run with a new set of fetches and feeds prunes the whole graph again: loading
    hundreds of variables one by one took a minute.
    """
    session.run([variable.initializer for variable in values],
                {variable.initializer.inputs[1]:
                 np.asarray(value, variable.dtype.base_dtype.as_numpy_dtype)
                 for variable, value in values.items()})


def randomize_weights(session, rng):
    values = {}
    for variable in sorted(tf.global_variables(), key=lambda v: v.op.name):
        value = _random_value(variable.op.name, variable.shape.as_list(), rng)
        if value is not None:
            values[variable] = value
    load_values(session, values)


def _variables_named(suffix):
    return [variable for variable in tf.global_variables()
            if variable.op.name.endswith(suffix)]


def normalize_predictions(session, placeholder, image, rng):
    """Scale the predictor kernels to PREDICTION_STD on ``image``; centre the class logits.

    The class predictor's biases are still 0 here, so the logits measured are the
    kernels' part only.
    """
    graph = tf.get_default_graph()
    outputs = {
        # The class logits enter the score conversion through scale_logits.
        "ClassPredictor": graph.get_operation_by_name("Postprocessor/scale_logits").inputs[0],
        "BoxEncodingPredictor": graph.get_tensor_by_name("Postprocessor/raw_box_encodings:0"),
    }
    measured = session.run(outputs, {placeholder: image})
    values = {}
    for predictor, output in measured.items():
        factor = PREDICTION_STD / float(output.std())
        for kernel in _variables_named(predictor + "/weights"):
            values[kernel] = session.run(kernel) * factor
    for bias in sorted(_variables_named("ClassPredictor/biases"), key=lambda v: v.op.name):
        values[bias] = rng.normal(CLASS_LOGIT_BIAS, 0.5, bias.shape.as_list())
    load_values(session, values)


def damp_residual_branches(session):
    """Scale down the last batch norm of each residual branch (MobileNetV2, ResNet).

    Trained residual networks keep a block's branch small against the path it is added to
    (its last batch norm scale starts at or near zero in the usual recipes). Random scales
    near 1 make the features grow with every block instead, to magnitudes no trained
    network has, and the float32 rounding of any two runtimes with them.
    """
    graph = tf.get_default_graph()
    variables = {variable.op.name: variable for variable in tf.global_variables()}
    values = {}
    for add in graph.get_operations():
        if add.type not in ("Add", "AddV2") or not add.name.startswith("FeatureExtractor/"):
            continue
        block = add.name.rsplit("/", 1)[0] + "/"
        for tensor in add.inputs:
            norm = tensor.op
            while norm.type == "Identity":  # MobileNetV2 names the branch's output
                norm = norm.inputs[0].op
            if norm.type in ("FusedBatchNorm", "FusedBatchNormV3") and \
                    norm.name.startswith(block) and "/shortcut/" not in norm.name:
                gamma = variables[norm.inputs[1].op.name.rsplit("/read", 1)[0]]
                values[gamma] = session.run(gamma) * RESIDUAL_BRANCH_SCALE
    if values:
        load_values(session, values)


def calibrate_fake_quant_ranges(session, placeholder, image):
    """Set every FakeQuant's min/max variables to the range its input takes on ``image``.

    Quantization-aware training tracks these ranges; left at their initial [-6, 6] they
    would quantize the (small) weights to a handful of levels.
    """
    graph = tf.get_default_graph()
    variables = {variable.op.name: variable for variable in tf.global_variables()}
    fake_quants = [op for op in graph.get_operations()
                   if op.type == "FakeQuantWithMinMaxVars"]
    if not fake_quants:
        return
    inputs = session.run([op.inputs[0] for op in fake_quants], {placeholder: image})
    ranges = {}
    for op, value in zip(fake_quants, inputs):
        for bound_input, bound in ((op.inputs[1], min(float(value.min()), 0.0)),
                                   (op.inputs[2], max(float(value.max()), 1e-3))):
            ranges[variables[bound_input.op.name.rsplit("/read", 1)[0]]] = bound
    load_values(session, ranges)


def write_checkpoint(config, checkpoint_prefix, seed, image):
    """The checkpoint a training run would leave, with seeded random weights.

    The graph is built exactly as the exporter builds it (same model, same input, same
    graph rewriter), so every variable the exporter restores is in the checkpoint.
    """
    with tf.Graph().as_default():
        tf.set_random_seed(seed)
        model = model_builder.build(config.model, is_training=False)
        rewriter = None
        if config.HasField("graph_rewriter"):
            rewriter = graph_rewriter_builder.build(config.graph_rewriter, is_training=False)
        _, placeholder = exporter.build_detection_graph(
            input_type=INPUT_NODE, detection_model=model, input_shape=None,
            output_collection_name="inference_op", graph_hook_fn=rewriter)
        with _session() as session:
            session.run(tf.global_variables_initializer())
            rng = np.random.RandomState(seed)
            batch = image[np.newaxis]
            randomize_weights(session, rng)
            damp_residual_branches(session)
            # Quantized models: their outputs mean something only once the FakeQuant
            # ranges fit the weights, and fit them again after the predictors are scaled.
            calibrate_fake_quant_ranges(session, placeholder, batch)
            normalize_predictions(session, placeholder, batch, rng)
            calibrate_fake_quant_ranges(session, placeholder, batch)
            tf.train.Saver().save(session, checkpoint_prefix)


# ---------------------------------------------------------------- checks and facts

class ExportCheckFailed(Exception):
    """The export is not what the tests need: the message says what."""


def canonical_graph_def(path):
    """Read the frozen graph and write it back with its bytes in a fixed order.

    The exporter's bytes differ from run to run in the order of each node's attributes
    (a protobuf map), never in content: serialized deterministically, the same GraphDef
    gets the same sha256 on every build and machine.
    """
    graph_def = tf.GraphDef()
    with open(path, "rb") as handle:
        graph_def.ParseFromString(handle.read())
    with open(path, "wb") as handle:
        handle.write(graph_def.SerializeToString(deterministic=True))
    return graph_def


def check_graph(graph_def):
    """Structural facts of the frozen graph; ExportCheckFailed when one is wrong."""
    names = {node.name for node in graph_def.node}
    missing = [name for name in (INPUT_NODE,) + OUTPUT_NODES if name not in names]
    if missing:
        raise ExportCheckFailed("the frozen graph lacks {}".format(", ".join(missing)))
    training = training_mode_batch_norms(graph_def)
    if training:
        raise ExportCheckFailed("{} batch-norm nodes are in training mode, e.g. {}".format(
            len(training), training[:3]))
    placeholders = [node.name for node in graph_def.node if node.op == "Placeholder"]
    if placeholders != [INPUT_NODE]:
        raise ExportCheckFailed("expected the single input {}, found placeholders {}".format(
            INPUT_NODE, placeholders))
    return {
        "nodes": len(graph_def.node),
        "fused_batch_norms": count_ops(graph_def, "FusedBatchNorm"),
        "fake_quant_nodes": count_ops(graph_def, "FakeQuant"),
        "weight_shared_predictor_nodes": sum(
            1 for node in graph_def.node if "WeightSharedConvolutionalBoxPredictor" in node.name),
        "convert_scores": neighbours(graph_def, CONVERT_SCORES),
        "raw_box_scores": neighbours(graph_def, RAW_BOX_SCORES),
    }


def run_detection(graph_def, image):
    """Run the frozen graph on ``image``: anchor count and detection statistics."""
    with tf.Graph().as_default() as graph:
        tf.import_graph_def(graph_def, name="")
        fetches = {name: graph.get_tensor_by_name(name + ":0")
                   for name in OUTPUT_NODES + (RAW_BOX_LOCATIONS, RAW_BOX_SCORES)}
        with _session() as session:
            result = session.run(fetches, {INPUT_NODE + ":0": image[np.newaxis]})
    count = int(result["num_detections"][0])
    scores = result["detection_scores"][0][:count]
    if count == 0:
        raise ExportCheckFailed("no detection on the test image")
    return {
        "image_shape": list(image.shape),
        "num_anchors": int(result[RAW_BOX_LOCATIONS].shape[1]),
        "raw_score_columns": int(result[RAW_BOX_SCORES].shape[2]),
        "num_detections": count,
        "max_score": round(float(scores.max()), 6),
        "min_score": round(float(scores.min()), 6),
        "distinct_scores": int(len(np.unique(scores))),
        "detections_above_0.5": int((scores > 0.5).sum()),
    }


# ---------------------------------------------------------------- config facts

def _decimal(value):
    """A float32 proto field as the config wrote it: 0.3333, not 0.33329999446868896."""
    return float("{:.7g}".format(value))


def config_facts(config):
    """What the pipeline config says, for the catalog and the tests."""
    ssd = config.model.ssd
    anchor_kind = ssd.anchor_generator.WhichOneof("anchor_generator_oneof")
    anchor = getattr(ssd.anchor_generator, anchor_kind)
    anchors = {"kind": anchor_kind, "aspect_ratios": [_decimal(r) for r in anchor.aspect_ratios]}
    if anchor_kind == "ssd_anchor_generator":
        anchors.update(num_layers=anchor.num_layers, min_scale=_decimal(anchor.min_scale),
                       max_scale=_decimal(anchor.max_scale),
                       reduce_boxes_in_lowest_layer=anchor.reduce_boxes_in_lowest_layer)
    else:
        anchors.update(min_level=anchor.min_level, max_level=anchor.max_level,
                       anchor_scale=_decimal(anchor.anchor_scale),
                       scales_per_octave=anchor.scales_per_octave)
    resizer_kind = ssd.image_resizer.WhichOneof("image_resizer_oneof")
    resizer = getattr(ssd.image_resizer, resizer_kind)
    if resizer_kind == "fixed_shape_resizer":
        resizer_facts = {"kind": resizer_kind, "height": resizer.height, "width": resizer.width}
    else:
        resizer_facts = {"kind": resizer_kind, "min_dimension": resizer.min_dimension,
                         "max_dimension": resizer.max_dimension,
                         "pad_to_max_dimension": resizer.pad_to_max_dimension}
    predictor_kind = ssd.box_predictor.WhichOneof("box_predictor_oneof")
    predictor = getattr(ssd.box_predictor, predictor_kind)
    post = ssd.post_processing
    nms = post.batch_non_max_suppression
    return {
        "feature_extractor": ssd.feature_extractor.type,
        "depth_multiplier": _decimal(ssd.feature_extractor.depth_multiplier),
        "num_classes": ssd.num_classes,
        "image_resizer": resizer_facts,
        "anchor_generator": anchors,
        "box_predictor": {"kind": predictor_kind, "kernel_size": predictor.kernel_size,
                          "use_depthwise": predictor.use_depthwise},
        "score_converter": post.ScoreConverter.Name(post.score_converter),
        "nms": {"score_threshold": _decimal(nms.score_threshold),
                "iou_threshold": _decimal(nms.iou_threshold),
                "max_total_detections": nms.max_total_detections},
        "encode_background_as_zeros": ssd.encode_background_as_zeros,
        "quantized": config.HasField("graph_rewriter"),
    }


# ---------------------------------------------------------------- one export

def claim(out_dir, variant):
    """Create OUT/VARIANT; False when another process has already taken the variant."""
    try:
        os.mkdir(os.path.join(out_dir, variant))
    except FileExistsError:
        return False
    return True


def export_variant(variant, configs_dir, out_dir):
    """Export into OUT/VARIANT (already created by claim); its facts."""
    started = time.time()
    config = read_pipeline_config(os.path.join(configs_dir, variant + ".config"))
    seed = variant_seed(variant)
    image = np.random.RandomState(seed).randint(0, 256, TEST_IMAGE_SHAPE).astype(np.uint8)
    target = os.path.join(out_dir, variant)
    work = tempfile.mkdtemp(prefix=".work-", dir=out_dir)
    try:
        checkpoint_prefix = os.path.join(work, "checkpoint", "model.ckpt")
        write_checkpoint(config, checkpoint_prefix, seed, image)
        checkpoint_done = time.time()
        exported = os.path.join(work, "exported")
        with tf.Graph().as_default():
            exporter.export_inference_graph(
                input_type=INPUT_NODE, pipeline_config=config,
                trained_checkpoint_prefix=checkpoint_prefix, output_directory=exported)
        export_done = time.time()
        for name in (GRAPH_FILE, PIPELINE_FILE):
            shutil.move(os.path.join(exported, name), os.path.join(target, name))
    finally:
        shutil.rmtree(work)
    graph_def = canonical_graph_def(os.path.join(target, GRAPH_FILE))
    try:
        facts = {"variant": variant, "seed": seed, "config": config_facts(config),
                 "graph": check_graph(graph_def), "detection": run_detection(graph_def, image)}
    except ExportCheckFailed as failure:
        raise ExportCheckFailed("{}: {}".format(variant, failure)) from None
    finished = time.time()
    facts["seconds"] = {"checkpoint": round(checkpoint_done - started, 1),
                        "export": round(export_done - checkpoint_done, 1),
                        "checks": round(finished - export_done, 1),
                        "total": round(finished - started, 1)}
    with open(os.path.join(target, FACTS_FILE), "w") as handle:
        json.dump(facts, handle, indent=1, sort_keys=True)
    return facts


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", required=True, help="directory of VARIANT.config files")
    parser.add_argument("--out", required=True, help="directory to write VARIANT/ into")
    parser.add_argument("variants", nargs="+")
    args = parser.parse_args(argv)
    tf.logging.set_verbosity(tf.logging.ERROR)
    # The exporter prints a profile report of thousands of lines on stdout (some from C++):
    # send everything to stderr and keep stdout for one progress line per variant.
    progress = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    for variant in args.variants:
        if not claim(args.out, variant):
            continue
        facts = export_variant(variant, args.configs, args.out)
        print("exported {} in {} s".format(variant, facts["seconds"]["total"]),
              file=progress, flush=True)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except ExportCheckFailed as failure:
        sys.exit("make_genuine_exports: {}".format(failure))
