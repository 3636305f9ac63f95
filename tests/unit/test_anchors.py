"""Anchors from the graph (builder/graph/anchors.py): the settings read back from the anchor
tensor, GridAnchor_TRT's formula against the graph's boxes, and what refuses a catalog or the
UFF path when they do not match (builder check, the controller preflight, the plan)."""

from __future__ import annotations

import hashlib
import json
import math
import os
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "graphs"))
from generated import graphs_dir  # noqa: E402
from make_ssd_graphs import VARIANTS  # noqa: E402

from builder import cli  # noqa: E402
from builder.commands.check import catalog_report  # noqa: E402
from builder.errors import UserError  # noqa: E402
from builder.graph import anchors, ssd, surgery  # noqa: E402
from builder.graph.tfcompat import const_value, read_graph_def, set_const_value  # noqa: E402
from builder.spec.catalog import load_catalog  # noqa: E402
from builder.trt.enginepath import choose_engine_path  # noqa: E402
from controller import device_work, onnx_exports, preflight  # noqa: E402
from tests.unit.catalog_files import write_catalog  # noqa: E402

GRAPH = "frozen_inference_graph.pb"
# Real exports whose anchors are known independently (shared/realgraphs/README.md), by the
# graph's sha256: (min_size, max_size, aspect_ratios).
KNOWN_REAL = {
    "ded54624bf3edd275ba9c82e001250890821a5945e265a768bda26df3b712f57":  # vk_pikachu
        (0.2, 0.95, [1.0, 2.0, 0.5, 3.0, 0.3333]),
}


@pytest.fixture(autouse=True)
def only_check_subcommand(monkeypatch):
    """Only the subcommands under test: a sibling subcommand being written elsewhere must
    not fail these tests."""
    monkeypatch.setattr(cli, "SUBCOMMANDS", (("check", "commands.check"),
                                             ("inspect", "commands.inspect")))


@pytest.fixture(scope="module")
def generated():
    """{variant name: (ModelSpec, GraphDef, SsdLayout)} of the generated test graphs."""
    catalog = load_catalog(str(graphs_dir() / "models.yml"))
    found = {}
    for name, spec in catalog.models.items():
        graph_def = read_graph_def(spec.graph)
        found[name] = (spec, graph_def, ssd.analyze(graph_def, spec.graph))
    return found


def generated_graph(name):
    return str(graphs_dir() / name / GRAPH)


# ---------------------------------------------------------------- the generated graphs

def test_every_variant_is_covered(generated):
    assert set(generated) == set(VARIANTS)


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_derivation_equals_the_generator_settings(generated, name):
    spec, graph_def, layout = generated[name]
    variant = VARIANTS[name]
    check = anchors.read_grid_anchor_check(graph_def, spec.graph, layout)
    derived = check.derivation
    assert derived.min_scale == pytest.approx(variant.min_scale, abs=1e-6)
    assert derived.max_scale == pytest.approx(variant.max_scale, abs=1e-6)
    assert derived.aspect_ratios == pytest.approx(list(variant.aspect_ratios), abs=1e-6)
    assert derived.reduce_boxes_in_lowest_layer and derived.interpolated_scale
    count = variant.num_layers
    assert derived.layer_scales == pytest.approx(
        [variant.min_scale + (variant.max_scale - variant.min_scale) * i / (count - 1)
         for i in range(count)], abs=1e-6)
    assert derived.problems == [] and check.refusal is None
    assert check.max_error <= anchors.GRID_ANCHOR_TOLERANCE
    print("{}: min {} max {} ratios {} GridAnchor max abs error {:.3g}".format(
        name, derived.min_scale, derived.max_scale, derived.aspect_ratios, check.max_error))


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_grid_anchor_formula_matches_the_graph_anchors(generated, name):
    """The generator's own settings, through the plugin's formula, give the graph's boxes."""
    spec, graph_def, layout = generated[name]
    variant = VARIANTS[name]
    graph_anchors, _node = anchors.evaluate(graph_def, spec.graph, layout)
    made = anchors.grid_anchor_boxes(variant.min_scale, variant.max_scale,
                                     variant.aspect_ratios, layout.feature_map_shapes)
    assert made.shape == graph_anchors.shape
    assert np.abs(made - graph_anchors).max() <= 1e-5


# NMS_TRT applies a sigmoid: the UFF path refuses the softmax variants (test_surgery.py).
@pytest.mark.parametrize("name", sorted(name for name, variant in VARIANTS.items()
                                        if variant.score_converter == "sigmoid"))
def test_surgery_writes_the_checked_parameters(generated, name):
    spec, graph_def, layout = generated[name]
    result = surgery.transform_graph_def(graph_def, spec, trt_version="8.2.1")
    node = next(n for n in result.graph_def.node if n.op == "GridAnchor_TRT")
    written = (node.attr["minSize_u_float"].f, node.attr["maxSize_u_float"].f,
               list(node.attr["aspectRatios_u_flist"].list.f))
    made = anchors.grid_anchor_boxes(*written, layout.feature_map_shapes)
    graph_anchors, _node = anchors.evaluate(graph_def, spec.graph, layout)
    assert np.abs(made - graph_anchors).max() <= 1e-5
    assert result.derived["grid_anchor_max_error"] <= 1e-5
    assert result.derived["sources"]["min_size"].startswith("graph: anchors of ")
    assert result.uff_refusal is None


def test_plugin_quirk_first_layer_takes_the_first_three_ratios():
    """Ratios in the OD API's default order (1, 2, 3, 1/2, 1/3) make GridAnchor_TRT's first
    layer (0.1, 1), (s0, 2), (s0, 3): not the model's (s0, 0.5)."""
    made = anchors.grid_anchor_boxes(0.2, 0.95, [1.0, 2.0, 3.0, 0.5, 0.3333], [1, 1])
    heights = made[:3, 2] - made[:3, 0]
    widths = made[:3, 3] - made[:3, 1]
    assert widths / heights == pytest.approx([1.0, 2.0, 3.0], rel=1e-5)
    assert np.sqrt(widths * heights) == pytest.approx([0.1, 0.2, 0.2], rel=1e-5)
    # The other layers: one box per ratio, then (sqrt(s_i * s_i+1), 1.0) with s_n = 1.0.
    assert len(made) == 3 + 6
    last = made[-1]
    assert (last[2] - last[0]) == pytest.approx(math.sqrt(0.95), rel=1e-5)


# ---------------------------------------------------------------- what cannot be reproduced

def od_api_anchors(sizes, box_specs, *, offset=0.5, image=(300, 300)):
    """MultipleGridAnchorGenerator._generate + tile_anchors (tensorflow/models research/
    object_detection/anchor_generators) in numpy: [N, 4] ymin, xmin, ymax, xmax, and the
    SsdLayout the box predictors of such a model would have."""
    smallest = min(image)
    boxes = []
    for size, layer in zip(sizes, box_specs):
        heights = np.array([s / math.sqrt(r) * smallest / image[0] for s, r in layer])
        widths = np.array([s * math.sqrt(r) * smallest / image[1] for s, r in layer])
        centres = (np.arange(size) + offset) / size
        y, x = np.meshgrid(centres, centres, indexing="ij")
        y, x = y[..., None], x[..., None]
        boxes.append(np.stack([y - heights / 2, x - widths / 2, y + heights / 2,
                               x + widths / 2], -1).reshape(-1, 4))
    values = np.concatenate(boxes).astype(np.float32)
    layout = ssd.SsdLayout(num_classes=2, anchors_per_location=[len(s) for s in box_specs],
                           feature_map_shapes=list(sizes), input_dims=[3, image[0], image[1]],
                           num_layers=len(sizes), anchors=len(values),
                           sources={"anchors": "test"})
    return values, layout


def ssd_box_specs(count, *, min_scale=0.2, max_scale=0.95, ratios=(1.0, 2.0, 0.5, 3.0, 0.3333),
                  scales=None, interpolated_ratio=1.0, reduce_lowest=True):
    """create_ssd_anchors' box specs (multiple_grid_anchor_generator.py)."""
    scales = list(scales) if scales else [
        min_scale + (max_scale - min_scale) * i / (count - 1) for i in range(count)]
    scales.append(1.0)
    specs = []
    for layer in range(count):
        if layer == 0 and reduce_lowest:
            specs.append([(0.1, 1.0), (scales[0], 2.0), (scales[0], 0.5)])
            continue
        pairs = [(scales[layer], ratio) for ratio in ratios]
        if interpolated_ratio > 0:
            pairs.append((math.sqrt(scales[layer] * scales[layer + 1]), interpolated_ratio))
        specs.append(pairs)
    return specs


SIZES = [19, 10, 5, 3, 2, 1]


def test_a_standard_ssd_layout_is_reproduced():
    values, layout = od_api_anchors(SIZES, ssd_box_specs(6))
    check = anchors.check_grid_anchor(values, layout, "Concatenate/concat")
    assert check.refusal is None and check.max_error <= 1e-5
    assert (check.derivation.min_scale, check.derivation.max_scale) == (0.2, 0.95)


@pytest.mark.parametrize("box_specs, options, says", [
    (ssd_box_specs(6, ratios=(1.0, 2.0, 3.0, 0.5, 0.3333)), {},
     "do not start with 1, 2, 0.5"),
    (ssd_box_specs(6, reduce_lowest=False), {},
     "layer 0 has 6 boxes per location"),
    (ssd_box_specs(6, scales=[0.1, 0.3, 0.45, 0.6, 0.8, 0.95]), {}, "not evenly spaced"),
    (ssd_box_specs(6, interpolated_ratio=2.0), {},
     "layers 1-5: the interpolated box has aspect ratio 2"),
    (ssd_box_specs(6, interpolated_ratio=0.0), {}, "no interpolated box"),
    (ssd_box_specs(6), {"offset": 0.0}, "box centres of layers 0-5 are not at (cell + 0.5)"),
    (ssd_box_specs(6), {"image": (300, 400)}, "not square"),
    # multiscale_anchor_generator (FPN): 2 scales per octave x 3 ratios, every layer.
    ([[(0.04 * 2 ** level * 2 ** (octave / 2), ratio) for octave in range(2)
       for ratio in (1.0, 2.0, 0.5)] for level in range(6)], {},
     "layers 0-5 place boxes of several scales at each location"),
])
def test_anchors_gridanchor_cannot_make_are_refused_with_the_reason(box_specs, options, says):
    values, layout = od_api_anchors(SIZES, box_specs, **options)
    check = anchors.check_grid_anchor(values, layout, "Concatenate/concat")
    assert check.refusal is not None and says in check.refusal, check.refusal


def test_the_recipe_ratio_033_is_not_the_models_03333():
    """The reference recipe's 0.33 for a model trained with 0.3333: boxes off by 4e-3."""
    values, layout = od_api_anchors(SIZES, ssd_box_specs(6))
    made = anchors.grid_anchor_boxes(0.2, 0.95, [1.0, 2.0, 0.5, 3.0, 0.33], SIZES)
    assert np.abs(made - values).max() > 1e-3


def test_surgery_refuses_uff_for_anchors_it_cannot_reproduce(generated, tmp_path, capsys):
    """Layer 2's boxes made larger than the evenly spaced scales say: UFF refused, check and
    inspect say why and name the ONNX path; engine_path uff makes it a catalog problem."""
    spec, graph_def, layout = generated["ssd_mobilenet_v2_coco"]
    edited = type(graph_def)()
    edited.CopyFrom(graph_def)
    for node in edited.node:
        if node.name.endswith("GridAnchorGenerator_2/heights") or \
                node.name.endswith("GridAnchorGenerator_2/widths"):
            set_const_value(node, const_value(node) * 1.2)
    path = tmp_path / GRAPH
    path.write_bytes(edited.SerializeToString())
    for engine_path in ("auto", "uff"):
        catalog = write_catalog(tmp_path / "models.yml",
                                {"m": {"graph": str(path), "engine_path": engine_path}})
        spec = load_catalog(str(catalog)).models["m"]
        with pytest.raises(UserError) as caught:
            surgery.transform_model(spec)
        text = str(caught.value)
        assert "model 'm': the UFF path cannot build it: GridAnchor_TRT cannot reproduce" in text
        assert "Build it through ONNX: catalog key engine_path auto (or onnx)" in text
        result = surgery.transform_model(spec, strict=False)
        assert result.graph_def is None and "not evenly spaced" in result.uff_refusal
        assert bool(result.problems) == (engine_path == "uff")
    capsys.readouterr()
    assert cli.main(["check", "--catalog", str(catalog)]) == 2  # engine_path: uff
    assert "model 'm': the UFF path cannot build it" in capsys.readouterr().err
    write_catalog(tmp_path / "models.yml", {"m": {"graph": str(path)}})
    assert cli.main(["check", "--catalog", str(catalog)]) == 0  # auto: ONNX where possible
    assert "UFF path refused, builds through ONNX only (TensorRT >= 8.4): GridAnchor_TRT " \
           "cannot reproduce" in capsys.readouterr().out


# ---------------------------------------------------------------- builder check

def test_check_refuses_catalog_scales_that_disagree_with_the_graph(tmp_path, capsys):
    """The issue's case: 0.3 / 0.9 written for a graph whose anchors run from 0.2 to 0.95."""
    catalog = write_catalog(tmp_path / "models.yml", {"mine": {
        "graph": generated_graph("ssd_mobilenet_v2_coco"), "min_size": 0.3, "max_size": 0.9}})
    assert cli.main(["check", "--catalog", str(catalog)]) == 2
    err = capsys.readouterr().err
    assert "model 'mine': min_size is 0.3 in the catalog but 0.2 in the graph (anchors of " \
           "Concatenate/concat). Change it in the catalog to 0.2 (or write 'auto')" in err
    assert "model 'mine': max_size is 0.9 in the catalog but 0.95 in the graph" in err
    assert str(catalog) in err


def test_check_accepts_auto_and_agreeing_values_and_shows_the_anchor_error(tmp_path, capsys):
    catalog = write_catalog(tmp_path / "models.yml", {
        "auto": {"graph": generated_graph("ssd_mobilenet_v1_egohands")},
        "written": {"graph": generated_graph("ssd_mobilenet_v1_egohands"), "min_size": 0.05,
                    "max_size": 0.95, "aspect_ratios": "[1.0, 2.0, 0.5, 3.0, 0.333333]"}})
    assert cli.main(["check", "--catalog", str(catalog)]) == 0
    out = capsys.readouterr().out
    assert out.count("GridAnchor_TRT reproduces the graph's anchors (max abs error") == 2
    assert cli.main(["check", "--catalog", str(catalog), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)["result"]
    for name in ("auto", "written"):
        assert result["anchors"][name]["grid_anchor_max_error"] <= 1e-5
        assert result["anchors"][name]["uff_refusal"] is None


def test_inspect_shows_the_derived_anchor_settings(tmp_path, capsys):
    catalog = write_catalog(tmp_path / "models.yml", {
        "m": {"graph": generated_graph("ssd_mobilenet_v1_pipeline")}})
    assert cli.main(["inspect", "m", "--catalog", str(catalog), "--out", str(tmp_path),
                     "--json"]) == 0
    report = json.loads(capsys.readouterr().out)["result"]
    assert (report["min_size"], report["max_size"]) == (0.3, 0.9)
    assert report["aspect_ratios"] == [1.0, 2.0, 0.5]
    assert report["grid_anchor_max_error"] <= 1e-5 and report["uff_refusal"] is None


# ---------------------------------------------------------------- the controller

def test_preflight_refuses_the_disagreeing_catalog_with_its_line(tmp_path):
    catalog = write_catalog(tmp_path / "models.yml", {"mine": {
        "graph": generated_graph("ssd_mobilenet_v2_coco"), "min_size": 0.3, "max_size": 0.9}})
    specs = catalog_report(str(catalog))["models"]
    problems, _notes, refusals = preflight.graph_problems(specs, str(catalog),
                                                          cache_dir=tmp_path / "cache")
    assert problems[0].startswith("{}:5: model 'mine': min_size is 0.3 in the catalog but "
                                  "0.2 in the graph".format(catalog))
    assert problems[1].startswith("{}:6: model 'mine': max_size is 0.9".format(catalog))
    assert refusals == {} and not (tmp_path / "cache").exists()


def test_preflight_remembers_a_passed_check_and_its_verdict(tmp_path, monkeypatch):
    catalog = write_catalog(tmp_path / "models.yml", {
        "m": {"graph": generated_graph("ssd_mobilenet_v2_256")}})
    specs = catalog_report(str(catalog))["models"]
    cache = tmp_path / "cache"
    assert preflight.graph_problems(specs, str(catalog), cache_dir=cache) == ([], [], {})
    (marker,) = cache.iterdir()
    assert json.loads(marker.read_text()) == {"model": "m", "uff_refusal": None}
    monkeypatch.setattr("builder.graph.check.check_graph", None)  # not called again
    assert preflight.graph_problems(specs, str(catalog), cache_dir=cache) == ([], [], {})
    marker.write_text(json.dumps({"model": "m", "uff_refusal": "why"}))
    assert preflight.graph_problems(specs, str(catalog), cache_dir=cache)[2] == {"m": "why"}


def test_check_mode_checks_the_graph_and_records_nothing(tmp_path):
    catalog = write_catalog(tmp_path / "models.yml", {
        "m": {"graph": generated_graph("ssd_mobilenet_v2_256")}})
    specs = catalog_report(str(catalog))["models"]
    cache = tmp_path / "cache"
    assert preflight.graph_problems(specs, str(catalog), cache, False) == ([], [], {})
    assert not cache.exists()  # --check writes nothing; the next real run checks again


@pytest.mark.parametrize("tensorrt, requested, outcome", [
    ("8.2.1.8", "auto", "TensorRT 8.2.1.8 builds from UFF only"),
    ("7.1.3", "uff", "the UFF path cannot build this model: why. Write engine_path: auto"),
    ("8.5.2.2", "auto", "onnx"),
    ("10.3.0", "auto", "onnx"),
])
def test_plan_routes_a_model_uff_cannot_build(tensorrt, requested, outcome):
    spec = {"name": "m", "engine_path": requested, "uff_refusal": "why"}
    path, refused = onnx_exports.engine_path_of(spec, tensorrt, "models.yml")
    if outcome == "onnx":
        assert (path, refused) == ("onnx", None)
    else:
        assert path is None and outcome in refused and refused.startswith("models.yml: ")
    # Without the controller's verdict (on a device), auto keeps its per-version choice.
    version = tuple(int(part) for part in tensorrt.split("."))
    plain = types.SimpleNamespace(name="m", engine_path=requested)
    expected = "onnx" if version[:2] >= (8, 4) else "uff"
    assert choose_engine_path(plain, version, tensorrt, "models.yml") == (
        requested if requested != "auto" else expected)


def test_the_plan_refuses_the_uff_only_host_and_builds_onnx_elsewhere(tmp_path):
    from controller import plan as planning  # noqa: PLC0415
    from controller.device import device_platform  # noqa: PLC0415
    from controller.selection import EngineOptions, HostSelection  # noqa: PLC0415
    from controller.store import EngineStore  # noqa: PLC0415

    catalog = write_catalog(tmp_path / "models.yml", {"m": {"graph": "m.pb"}})
    (tmp_path / "m.pb").write_bytes(b"graph")
    spec = dict(catalog_report(str(catalog), check_graphs=False)["models"]["m"],
                sha256="a" * 64, uff_refusal="GridAnchor_TRT cannot reproduce the anchors")
    platforms = {"nano": "jetson-nano_l4t32.7.1_trt8.2.1",
                 "orin": "jetson-agx-orin_l4t35.4.1_trt8.5.2"}
    devices = {host: device_platform(host, {
        "jetson": {"platform_id": platform, "module": "jetson-x",
                   "tensorrt": platform.rpartition("_trt")[2], "dla_cores": 0,
                   "l4t": platform.partition("_l4t")[2].partition("_")[0],
                   "memory_mib": 8000},
        "jetson_state": {"models": {}, "free_mib": None, "root_dir": "/opt/trt-builder"}},
        {"m": "TRT_m.bin"}) for host, platform in platforms.items()}
    chosen = {host: HostSelection(host, ("m",), EngineOptions("fp16", 512, 1, None), "device")
              for host in platforms}
    made = planning.make_plan(chosen, devices, {"m": spec}, EngineStore(tmp_path / "store"),
                              check_mode=True, catalog_path=str(catalog))
    nano, orin = (made["hosts"][host]["models"]["m"] for host in ("nano", "orin"))
    assert "TensorRT 8.2.1 builds from UFF only" in nano["refused"]
    assert "GridAnchor_TRT cannot reproduce the anchors" in nano["refused"]
    assert orin["refused"] is None and orin["engine_path"] == "onnx"


def test_the_verdict_is_not_sent_to_a_device():
    text = device_work.device_catalog_text({"name": "m", "graph": "/x/m.pb", "min_size": "auto",
                                            "uff_refusal": "why"})
    assert "uff_refusal" not in text and "min_size: auto" in text


# ---------------------------------------------------------------- a real export

def real_models():
    """[(catalog, name)] of ENGINE_REAL_TF1_CATALOG (CI sets it), whose graph exists."""
    named = os.environ.get("ENGINE_REAL_TF1_CATALOG")
    if not named or not Path(named).is_file():
        return []
    models = (yaml.safe_load(Path(named).read_text()) or {}).get("models") or {}
    return [(named, name) for name, entry in sorted(models.items())
            if (Path(named).parent / entry["graph"]).is_file()]


REAL = real_models()


@pytest.mark.skipif(not REAL, reason="ENGINE_REAL_TF1_CATALOG names no catalog of real TF1 "
                                     "exports here (CI sets it)")
@pytest.mark.parametrize("catalog,name", REAL, ids=[name for _, name in REAL])
def test_a_real_export(catalog, name):
    """The catalog's values agree with the graph's anchors; GridAnchor_TRT reproduces them
    within 1e-5, or the UFF path is refused with the reason and the ONNX route."""
    spec = load_catalog(catalog, models=[name]).models[name]
    result = surgery.transform_model(spec, strict=False)
    assert result.problems == []
    derived = result.derived
    print("{}: min {} max {} ratios {} layer scales {} GridAnchor max abs error {} refusal {}"
          .format(name, derived["min_size"], derived["max_size"], derived["aspect_ratios"],
                  derived["anchor_layer_scales"], derived["grid_anchor_max_error"],
                  result.uff_refusal))
    known = KNOWN_REAL.get(hashlib.sha256(Path(spec.graph).read_bytes()).hexdigest())
    if known is not None:
        assert (derived["min_size"], derived["max_size"]) == known[:2]
        assert derived["aspect_ratios"] == pytest.approx(known[2], abs=1e-6)
    if result.uff_refusal is None:
        assert derived["grid_anchor_max_error"] <= 1e-5
    else:
        with pytest.raises(UserError, match="Build it through ONNX"):
            surgery.transform_model(spec)


def test_a_multiscale_pipeline_config_is_read_not_refused(tmp_path):
    """An FPN model's pipeline.config (multiscale_anchor_generator) still gives the layer
    count, classes and input size to check the graph against."""
    from builder.spec import pipeline_config  # noqa: PLC0415

    path = tmp_path / "pipeline.config"
    path.write_text("model { ssd { num_classes: 90 image_resizer { fixed_shape_resizer { "
                    "height: 640 width: 640 } } anchor_generator { multiscale_anchor_generator "
                    "{ min_level: 3 max_level: 7 anchor_scale: 4.0 aspect_ratios: 1.0 "
                    "aspect_ratios: 2.0 aspect_ratios: 0.5 scales_per_octave: 2 } } } }\n")
    settings = pipeline_config.read_anchor_settings(str(path))
    assert settings.generator == pipeline_config.MULTISCALE_GENERATOR
    assert (settings.num_layers, settings.num_classes, settings.image_size) == (5, 91, (640, 640))
    assert settings.aspect_ratios == [1.0, 2.0, 0.5] and settings.min_scale is None
