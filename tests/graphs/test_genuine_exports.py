"""Genuine TF1 Object Detection API exports (tests/graphs/genuine): built, loadable, as configured.

The exports are built once per machine (minutes, the first time, in a TensorFlow 1.15 venv
of pyenv's Python 3.7 or 3.6). A machine without that Python fails here, saying what to
install: these tests are never skipped.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent / "genuine"))
from genuine import (  # noqa: E402
    CATALOG_FILE,
    FACTS_FILE,
    GRAPH_FILE,
    PIPELINE_FILE,
    exports_dir,
    variants,
)
from graph_checks import (  # noqa: E402
    CONVERT_SCORES,
    INPUT_NODE,
    OUTPUT_NODES,
    RAW_BOX_LOCATIONS,
    RAW_BOX_SCORES,
    count_ops,
    training_mode_batch_norms,
)

from builder.spec.catalog import load_catalog  # noqa: E402
from builder.spec.pipeline_config import read_anchor_settings  # noqa: E402

# Known from the configs (configs/VARIANT.config), independently of what the exports say.
REQUIRED = {
    "ssd_mobilenet_v1_coco", "ssd_mobilenet_v2_coco", "ssdlite_mobilenet_v2_coco",
    "ssd_inception_v2_coco", "ssd_mobilenet_v1_256_5class", "ssd_mobilenet_v1_fpn_640",
    "ssd_mobilenet_v1_keep_aspect", "ssd_mobilenet_v1_softmax", "ssd_mobilenet_v1_quantized",
    "ssd_mobilenet_v1_box_kernel3",
}
QUANTIZED = {"ssd_mobilenet_v1_quantized", "ssd_mobilenet_v2_quantized"}
WEIGHT_SHARED_PREDICTOR = {"ssd_mobilenet_v1_fpn_640", "ssd_resnet50_v1_fpn_640"}
SOFTMAX = {"ssd_mobilenet_v1_softmax"}
# SSD anchors of the COCO layout at 300x300: 19x19x3 + (10x10 + 5x5 + 3x3 + 2x2 + 1x1) x 6.
COCO_300_ANCHORS = 1917
# How far TensorFlow 2 may score apart from TF 1.15: float rounding, or for quantized
# models a value that lands on the other side of a FakeQuant step (0.0071 seen).
SCORE_TOLERANCE = 1e-3
QUANTIZED_SCORE_TOLERANCE = 0.02


@pytest.fixture(scope="module")
def exports() -> Path:
    return exports_dir()


@pytest.fixture(scope="module")
def facts(exports) -> dict:
    return yaml.safe_load((exports / FACTS_FILE).read_text())


def test_every_variant_is_exported_and_catalogued(exports):
    assert set(variants()) >= REQUIRED
    catalog = load_catalog(str(exports / CATALOG_FILE))  # the files and their sha256 pins
    assert list(catalog.models) == variants()


def _run(graph_def, image) -> dict:
    """The export's outputs for one image, under this venv's TensorFlow 2.x."""
    with tf.Graph().as_default() as graph:
        tf.compat.v1.import_graph_def(graph_def, name="")
        fetches = {name: graph.get_tensor_by_name(name + ":0")
                   for name in (*OUTPUT_NODES, RAW_BOX_LOCATIONS, RAW_BOX_SCORES)}
        with tf.compat.v1.Session(graph=graph) as session:
            return session.run(fetches, {INPUT_NODE + ":0": image[np.newaxis]})


@pytest.mark.parametrize("variant", variants())
def test_export_is_an_inference_graph_as_configured(exports, facts, variant):
    graph_def = tf.compat.v1.GraphDef.FromString((exports / variant / GRAPH_FILE).read_bytes())
    nodes = {node.name: node for node in graph_def.node}
    assert nodes[INPUT_NODE].op == "Placeholder"
    assert nodes[INPUT_NODE].attr["dtype"].type == tf.uint8.as_datatype_enum
    assert set(OUTPUT_NODES) <= set(nodes)
    assert training_mode_batch_norms(graph_def) == []
    # The quantization rewrite folds the batch norms into the convolutions.
    assert (count_ops(graph_def, "FusedBatchNorm") == 0) == (variant in QUANTIZED)
    assert (count_ops(graph_def, "FakeQuant") > 0) == (variant in QUANTIZED)
    assert any("WeightSharedConvolutionalBoxPredictor" in name for name in nodes) == (
        variant in WEIGHT_SHARED_PREDICTOR)
    assert nodes[CONVERT_SCORES].op == ("Softmax" if variant in SOFTMAX else "Sigmoid")
    assert nodes[RAW_BOX_SCORES].op == "Identity"

    # TensorFlow 2 reproduces the detections TF 1.15 saw on the same image when exporting.
    exported = facts[variant]["detection"]
    image = np.random.RandomState(facts[variant]["seed"]).randint(
        0, 256, exported["image_shape"]).astype(np.uint8)
    result = _run(graph_def, image)
    assert result[RAW_BOX_LOCATIONS].shape[1] == exported["num_anchors"]
    assert int(result["num_detections"][0]) == exported["num_detections"] > 0
    tolerance = QUANTIZED_SCORE_TOLERANCE if variant in QUANTIZED else SCORE_TOLERANCE
    assert result["detection_scores"].max() == pytest.approx(exported["max_score"], abs=tolerance)


def test_coco_layout_has_the_known_anchor_count(facts):
    for variant in ("ssd_mobilenet_v1_coco", "ssd_mobilenet_v2_coco", "ssd_inception_v2_coco"):
        assert facts[variant]["detection"]["num_anchors"] == COCO_300_ANCHORS


@pytest.mark.parametrize("variant", variants())
def test_catalog_agrees_with_the_exported_pipeline_config(exports, facts, variant):
    entry = yaml.safe_load((exports / CATALOG_FILE).read_text())["models"][variant]
    config = facts[variant]["config"]
    assert entry["num_classes"] == config["num_classes"] + 1
    anchors = config["anchor_generator"]
    if anchors["kind"] != "ssd_anchor_generator":
        return  # multiscale (FPN): nothing for read_anchor_settings to read
    settings = read_anchor_settings(str(exports / variant / PIPELINE_FILE))
    assert (settings.min_scale, settings.max_scale) == pytest.approx(
        (entry["min_size"], entry["max_size"]))
    assert settings.aspect_ratios == pytest.approx(anchors["aspect_ratios"])
    assert settings.num_classes == entry["num_classes"]
