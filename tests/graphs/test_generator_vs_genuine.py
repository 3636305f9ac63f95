"""The generator held to the real exporter (issue 25 item 5).

Each generated variant that has a twin among the genuine exports (the same pipeline
config exported by the real TF1 Object Detection API exporter, tests/graphs/genuine;
make_ssd_graphs.GENUINE_TWINS) must hold the same structural facts, read from both graphs
by one extractor (graph_facts.structural_facts): the nodes around the cut points
(Preprocessor/sub, concat, Squeeze, concat_1), the preprocessing order, the score path
(scale_logits, convert_scores, raw_box_scores, the Slice dropping the background), the
Postprocessor nodes around the decoding and the clip window, the named Identity nodes,
the anchor concat, and the NMS (per class, one NonMaxSuppression per class, thresholds,
where it clips). The anchors must have the same values (max abs difference 1e-5).

Without the genuine exports these tests FAIL, saying why: they are built once per machine
by tests/graphs/genuine/genuine.py (exports_dir(); minutes, in a TensorFlow 1.15 venv).
The 2018-era variants are held against a real 2018 export of the catalog named by
ENGINE_REAL_TF1_CATALOG when it has one of the same configuration (skipped otherwise).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from generated import graphs_dir  # noqa: E402
from graph_facts import anchor_values, num_classes, structural_facts  # noqa: E402
from make_ssd_graphs import GENUINE_TWINS, GRAPH_FILE, VARIANTS  # noqa: E402

GENUINE_DIR = HERE / "genuine"
CONFIGS_DIR = GENUINE_DIR / "configs"
ANCHOR_TOLERANCE = 1e-5
BACKBONES = {"ssd_mobilenet_v1": "MobilenetV1", "ssd_mobilenet_v2": "MobilenetV2",
             "ssd_inception_v2": "InceptionV2"}
_GENUINE = {}


def genuine_exports() -> Path:
    """The genuine exports' directory (tests/graphs/genuine/genuine.py exports_dir(),
    imported here so that nothing else needs it); the test FAILS when there is none."""
    if "dir" not in _GENUINE:
        try:
            if str(GENUINE_DIR) not in sys.path:
                sys.path.insert(0, str(GENUINE_DIR))
            from genuine import exports_dir  # noqa: PLC0415  (the driver, loaded lazily)

            _GENUINE["dir"] = exports_dir(sorted(GENUINE_TWINS))
        except Exception as error:  # noqa: BLE001  (whatever stops the driver is the message)
            _GENUINE["dir"] = None
            _GENUINE["error"] = f"{type(error).__name__}: {error}"
    if _GENUINE["dir"] is None:
        pytest.fail("the genuine exports the generator is held to are not available: "
                    f"{_GENUINE['error']}. Build them with `python "
                    "tests/graphs/genuine/genuine.py` (a TensorFlow 1.15 venv of pyenv's "
                    "Python 3.7 or 3.6, minutes the first time); the generated graphs are "
                    "only trusted when they hold what those exports hold", pytrace=False)
    return _GENUINE["dir"]


def read_graph(path: Path):
    graph_def = tf.compat.v1.GraphDef()
    graph_def.ParseFromString(path.read_bytes())
    return graph_def


_FACTS = {}


def facts_of(path: Path):
    if path not in _FACTS:
        graph_def = read_graph(path)
        _FACTS[path] = (graph_def, structural_facts(graph_def))
    return _FACTS[path]


def generated_graph(variant: str) -> Path:
    return graphs_dir() / variant / GRAPH_FILE


def differences(genuine, generated, path=""):
    """Where two fact trees differ, as 'path: genuine ... / generated ...' lines."""
    if isinstance(genuine, dict) and isinstance(generated, dict):
        return [line for key in sorted(set(genuine) | set(generated), key=str)
                for line in differences(genuine.get(key, "<absent>"),
                                        generated.get(key, "<absent>"), f"{path}/{key}")]
    if isinstance(genuine, list) and isinstance(generated, list) and \
            len(genuine) == len(generated):
        return [line for index, (a, b) in enumerate(zip(genuine, generated))
                for line in differences(a, b, f"{path}[{index}]")]
    if genuine != generated:
        return [f"{path}: genuine {genuine!r} / generated {generated!r}"]
    return []


# -- the twins are exports of the same configuration ------------------------------------

def read_config(name: str) -> dict:
    """What the genuine config says, for the settings the generator models."""
    text = (CONFIGS_DIR / f"{name}.config").read_text()
    lines = [line.split("#")[0] for line in text.splitlines()]
    text = "\n".join(lines)

    def one(pattern, cast=str):
        match = re.search(pattern, text)
        return None if match is None else cast(match.group(1))

    anchor = text[text.index("ssd_anchor_generator"):] if "ssd_anchor_generator" in text else ""
    predictor = text[text.index("box_predictor"):]
    return {
        "feature_extractor": one(r'type:\s*"(\w+)"'),
        "num_classes": one(r"num_classes:\s*(\d+)", int),
        "height": one(r"fixed_shape_resizer\s*{\s*height:\s*(\d+)", int),
        "width": one(r"fixed_shape_resizer\s*{[^}]*width:\s*(\d+)", int),
        "num_layers": int(re.search(r"num_layers:\s*(\d+)", anchor).group(1)) if anchor else None,
        "min_scale": float(re.search(r"min_scale:\s*([\d.]+)", anchor).group(1))
        if anchor else None,
        "max_scale": float(re.search(r"max_scale:\s*([\d.]+)", anchor).group(1))
        if anchor else None,
        "aspect_ratios": [float(v) for v in re.findall(r"aspect_ratios:\s*([\d.]+)", anchor)],
        "reduce_boxes_in_lowest_layer": "reduce_boxes_in_lowest_layer: false" not in anchor,
        "predictor_depthwise": bool(re.search(r"use_depthwise:\s*true", predictor)),
        "score_converter": one(r"score_converter:\s*(\w+)"),
        "quantized": "graph_rewriter" in text,
    }


@pytest.mark.parametrize("genuine", sorted(GENUINE_TWINS))
def test_twin_has_the_genuine_configuration(genuine):
    config, variant = read_config(genuine), VARIANTS[GENUINE_TWINS[genuine]]
    backbone = BACKBONES[config["feature_extractor"]]
    if backbone == "MobilenetV2" and config["predictor_depthwise"]:
        backbone = "ssdlite"
    assert (backbone, config["num_classes"] + 1, config["height"], config["width"]) == \
        (variant.backbone, variant.num_classes, variant.input_size, variant.input_size)
    assert (config["num_layers"], config["min_scale"], config["max_scale"]) == \
        (variant.num_layers, variant.min_scale, variant.max_scale)
    assert config["aspect_ratios"] == list(variant.aspect_ratios)
    assert config["reduce_boxes_in_lowest_layer"] and not config["quantized"]
    assert config["score_converter"].lower() == variant.score_converter
    assert variant.postprocessor_era == "2019"  # what the genuine exporter (2019) writes


# -- the structural facts -----------------------------------------------------------------

@pytest.mark.parametrize("genuine", sorted(GENUINE_TWINS))
def test_generated_graph_holds_the_genuine_structure(genuine):
    exports = genuine_exports()
    twin = GENUINE_TWINS[genuine]
    genuine_def, expected = facts_of(exports / genuine / GRAPH_FILE)
    _generated_def, found = facts_of(generated_graph(twin))
    # The facts are there to compare (not None on both sides) ...
    classes = num_classes(genuine_def)
    assert classes == VARIANTS[twin].num_classes
    assert expected["preprocessing"] == ["Cast", "ResizeBilinear", "Mul", "Sub"]
    assert [step["op"] for step in expected["score_path"]] == [
        "RealDiv", "Softmax" if VARIANTS[twin].score_converter == "softmax" else "Sigmoid",
        "Identity", "Slice"]
    assert expected["nms"]["per_class_scope"] and expected["nms"]["clip"] == "after_nms"
    assert expected["nms"]["nms_ops"] == classes - 1
    assert all(expected["cut_points"].values()) and expected["anchor_concat"]
    # ... and the generated graph holds the same, fact by fact.
    problems = differences(expected, found)
    assert not problems, "{} vs generated {}:\n  {}".format(genuine, twin, "\n  ".join(problems))


@pytest.mark.parametrize("genuine", sorted(GENUINE_TWINS))
def test_generated_anchors_are_the_genuine_ones(genuine):
    exports = genuine_exports()
    twin = GENUINE_TWINS[genuine]
    size = VARIANTS[twin].input_size
    expected = anchor_values(read_graph(exports / genuine / GRAPH_FILE), size)
    found = anchor_values(read_graph(generated_graph(twin)), size)
    assert found.shape == expected.shape == (VARIANTS[twin].num_anchors, 4)
    assert float(np.abs(found - expected).max()) <= ANCHOR_TOLERANCE


# -- every generated graph is what its variant says ----------------------------------------

@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_generated_facts_follow_the_variant(name):
    variant = VARIANTS[name]
    graph_def, facts = facts_of(generated_graph(name))
    assert num_classes(graph_def) == variant.num_classes
    nms = facts["nms"]
    assert nms["per_class_scope"] and nms["argmax_ops"] == 0
    assert nms["nms_ops"] == variant.num_classes - 1
    assert nms["iou_thresholds"] == [0.6]
    if variant.postprocessor_era == "2019":
        assert nms["clip"] == "after_nms" and nms["score_thresholds"] == [1e-8]
        assert nms["clip_to_window_scopes"] == 1 and nms["filter_greater_than_scopes"] == 0
        assert nms["sort_by_field_scopes"] == 2  # sorted again after the zero-area drop
        assert facts["identities"]["raw_detection_scores"] is not None
    else:
        assert nms["clip"] == "before_nms" and nms["score_thresholds"] == [-np.inf]
        assert nms["clip_to_window_scopes"] == nms["filter_greater_than_scopes"] == \
            variant.num_classes - 1
        assert facts["identities"]["raw_detection_scores"] is None
    assert facts["preprocessing"] == ["Cast", "ResizeBilinear", "Mul", "Sub"]
    assert facts["identities"]["Postprocessor/raw_box_scores"]["input"]["name"] == \
        "Postprocessor/convert_scores"
    assert facts["anchor_concat"]["name"] == variant.anchor_concat_scope + "/concat"


def test_copied_classes_are_the_ones_tensorflow_builds(tmp_path):
    """The NMS loop's classes past the second are NodeDef copies (_ClassLoop): the graph
    must be byte for byte the one TensorFlow builds class by class, in both eras."""
    command = [sys.executable, str(HERE / "make_ssd_graphs.py"), str(tmp_path), "--no-run",
               "--check-fast", "--variant", "ssd_mobilenet_v1_pipeline",
               "--variant", "ssd_mobilenet_v2_coco"]
    result = subprocess.run(command, check=False, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert VARIANTS["ssd_mobilenet_v2_coco"].postprocessor_era == "2018"


# -- the 2018 era, against a real 2018 export where there is one ----------------------------

def _real_2018_pairs():
    """[(model, graph path, variant)]: models of $ENGINE_REAL_TF1_CATALOG that clip before
    their NMS, with the 2018 variant of the same layout (classes, input size, anchors)."""
    named = os.environ.get("ENGINE_REAL_TF1_CATALOG")
    if not named or not Path(named).is_file():
        return []
    catalog = Path(named)
    models = (yaml.safe_load(catalog.read_text()) or {}).get("models") or {}
    pairs = []
    for model, entry in sorted(models.items()):
        path = catalog.parent / entry["graph"]
        if not path.is_file():
            continue
        graph_def, facts = facts_of(path)
        if facts["nms"]["clip"] != "before_nms" or facts["anchor_concat"] is None:
            continue
        classes, anchors = num_classes(graph_def), None
        for name, variant in sorted(VARIANTS.items()):
            if variant.postprocessor_era != "2018" or variant.num_classes != classes:
                continue
            anchors = anchors if anchors is not None else anchor_values(
                graph_def, variant.input_size)
            if anchors.shape[0] == variant.num_anchors:
                pairs.append((model, path, name))
    return pairs


REAL_2018 = _real_2018_pairs()


@pytest.mark.skipif(not REAL_2018, reason="no real 2018 export of a 2018 variant's layout in "
                                          "$ENGINE_REAL_TF1_CATALOG")
@pytest.mark.parametrize("model,path,variant", REAL_2018, ids=[p[0] for p in REAL_2018])
def test_2018_variant_holds_the_real_2018_structure(model, path, variant):
    _real_def, expected = facts_of(path)
    _generated_def, found = facts_of(generated_graph(variant))
    problems = differences(expected, found)
    assert not problems, "{} vs generated {}:\n  {}".format(model, variant, "\n  ".join(problems))
    size = VARIANTS[variant].input_size
    assert float(np.abs(anchor_values(read_graph(path), size) -
                        anchor_values(read_graph(generated_graph(variant)), size)).max()) \
        <= ANCHOR_TOLERANCE
