"""Anchors from the graph, on genuine exports of the TF1 Object Detection API.

Each export's pipeline config says what its anchor generator was given; the derivation must
read the same values back from the graph's anchors alone, and GridAnchor_TRT (the UFF path)
must reproduce them within 1e-5, or be refused with the reason where it cannot (FPN's
multiscale anchors).
"""

import sys
from pathlib import Path

import pytest
import yaml

from builder.errors import UserError
from builder.graph import anchors
from builder.graph import ssd as ssd_graph
from builder.graph.tfcompat import read_graph_def

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "graphs" / "genuine"))
from genuine import exports_dir, variants  # noqa: E402

SAME = 1e-4  # float32 scales against the config's decimals


@pytest.fixture(scope="module")
def genuine():
    root = exports_dir()
    return root, yaml.safe_load((root / "facts.yml").read_text())


@pytest.mark.parametrize("name", variants())
def test_anchor_settings_are_read_back_from_a_genuine_export(genuine, name):
    root, facts = genuine
    config = facts[name]["config"]
    path = str(root / name / "frozen_inference_graph.pb")
    graph_def = read_graph_def(path)
    if config["quantized"] or config["image_resizer"]["kind"] != "fixed_shape_resizer":
        with pytest.raises(UserError):  # refused before any anchor is read (ONNX tests)
            ssd_graph.analyze(graph_def, path)
        return
    layout = ssd_graph.analyze(graph_def, path)
    check = anchors.read_grid_anchor_check(graph_def, path, layout)
    generator = config["anchor_generator"]
    if generator["kind"] != "ssd_anchor_generator":
        assert check.refusal and "multiscale" in check.refusal, check
        return
    derived = check.derivation
    assert check.refusal is None, check.refusal
    assert check.max_error <= anchors.GRID_ANCHOR_TOLERANCE
    assert abs(derived.min_scale - generator["min_scale"]) <= SAME
    assert abs(derived.max_scale - generator["max_scale"]) <= SAME
    assert len(derived.aspect_ratios) == len(generator["aspect_ratios"])
    for read, written in zip(derived.aspect_ratios, generator["aspect_ratios"]):
        assert abs(read - written) <= SAME
    assert derived.reduce_boxes_in_lowest_layer == generator["reduce_boxes_in_lowest_layer"]
