"""Graph surgery on generated SSD exports: plugin nodes asserted node by node."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
from google.protobuf import text_format

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "graphs"))
from generated import graphs_dir  # noqa: E402
from make_ssd_graphs import VARIANTS  # noqa: E402

from builder.errors import UserError  # noqa: E402
from builder.graph import surgery  # noqa: E402
from builder.graph.tfcompat import const_value, new_graph_def, read_graph_def  # noqa: E402
from builder.spec.catalog import load_catalog  # noqa: E402
from tests.unit.catalog_files import write_catalog  # noqa: E402

# What each generated export must give (independently known from the generator's
# settings, not from the surgery code).
EXPECTED = {
    "ssd_mobilenet_v1_coco": dict(num_classes=91, input_order=[0, 2, 1], size=300,
                                  maps=[19, 10, 5, 3, 2, 1], anchors=1917,
                                  grid_inputs=["AnchorInput"]),
    "ssd_mobilenet_v2_coco": dict(num_classes=91, input_order=[1, 0, 2], size=300,
                                  maps=[19, 10, 5, 3, 2, 1], anchors=1917,
                                  grid_inputs=["AnchorInput"]),
    "ssd_inception_v2_coco": dict(num_classes=91, input_order=[0, 2, 1], size=300,
                                  maps=[19, 10, 5, 3, 2, 1], anchors=1917,
                                  grid_inputs=["AnchorInput"]),
    "ssdlite_mobilenet_v2_coco": dict(num_classes=91, input_order=[0, 2, 1], size=300,
                                      maps=[19, 10, 5, 3, 2, 1], anchors=1917,
                                      grid_inputs=["AnchorInput"]),
    "ssd_mobilenet_v1_egohands": dict(num_classes=3, input_order=[0, 2, 1], size=300,
                                      maps=[19, 10, 5, 3, 2, 1], anchors=1917,
                                      grid_inputs=["strided_slice_6", "strided_slice_7"]),
    "ssd_mobilenet_v2_tf115": dict(num_classes=91, input_order=[0, 2, 1], size=300,
                                   maps=[19, 10, 5, 3, 2, 1], anchors=1917,
                                   grid_inputs=["AnchorInput"]),
    "ssd_mobilenet_v2_256": dict(num_classes=11, input_order=[0, 2, 1], size=256,
                                 maps=[16, 8, 4, 2, 1], anchors=3 * 256 + 6 * (64 + 16 + 4 + 1),
                                 grid_inputs=["strided_slice_6", "strided_slice_7"]),
    "ssd_mobilenet_v1_pipeline": dict(num_classes=6, input_order=[0, 2, 1], size=300,
                                      maps=[19, 10, 5, 3, 2, 1],
                                      anchors=3 * 361 + 4 * (100 + 25 + 9 + 4 + 1),
                                      grid_inputs=["strided_slice_6", "strided_slice_7"]),
    "ssd_mobilenet_v1_256_5class": dict(num_classes=6, input_order=[0, 2, 1], size=256,
                                        maps=[16, 8, 4, 2, 1, 1],
                                        anchors=3 * 256 + 4 * (64 + 16 + 4 + 1 + 1),
                                        grid_inputs=["AnchorInput"]),
    "ssd_mobilenet_v1_256_2018": dict(num_classes=2, input_order=[0, 2, 1], size=256,
                                      maps=[16, 8, 4, 2, 1],
                                      anchors=3 * 256 + 6 * (64 + 16 + 4 + 1),
                                      grid_inputs=["AnchorInput"]),
}


@pytest.fixture(scope="module")
def catalog():
    return load_catalog(str(graphs_dir() / "models.yml"))


# Generated variants the UFF path refuses (tested on their own below).
UFF_REFUSED = ("ssd_mobilenet_v1_softmax",)


@pytest.fixture(scope="module")
def results(catalog):
    """The UFF surgery of every generated variant the UFF path takes."""
    return {name: surgery.transform_model(spec, trt_version="8.2.1.8")
            for name, spec in catalog.models.items() if name not in UFF_REFUSED}


def nodes(result):
    return {node.name: node for node in result.graph_def.node}


def catalog_entry(name, **overrides):
    base = graphs_dir()
    entry = {"graph": str(base / name / "frozen_inference_graph.pb"),
             "min_size": 0.2, "max_size": 0.95,
             "aspect_ratios": "[1.0, 2.0, 0.5, 3.0, 0.3333]"}
    entry.update(overrides)
    return {key: value for key, value in entry.items() if value is not None}


def test_every_variant_is_covered(catalog):
    assert set(catalog.models) == set(EXPECTED) | set(UFF_REFUSED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_derived_values(results, name):
    derived, expected = results[name].derived, EXPECTED[name]
    assert derived["num_classes"] == expected["num_classes"]
    assert derived["input_order"] == expected["input_order"]
    assert derived["input_dims"] == [3, expected["size"], expected["size"]]
    assert derived["feature_map_shapes"] == expected["maps"]
    assert derived["num_layers"] == len(expected["maps"])
    assert derived["anchors"] == expected["anchors"]
    assert results[name].output_nodes == ["NMS"]
    for key in ("num_classes", "input_order", "feature_map_shapes", "input_dims", "anchors"):
        assert derived["sources"][key].startswith("graph:"), key


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_plugin_nodes(results, catalog, name):
    result, expected, spec = results[name], EXPECTED[name], catalog.models[name]
    by_name = nodes(result)
    size, maps = expected["size"], expected["maps"]

    entry = by_name["Input"]
    assert entry.op == "Placeholder" and list(entry.input) == []
    assert [d.size for d in entry.attr["shape"].shape.dim] == [1, 3, size, size]
    assert entry.attr["dtype"].type == 1  # DT_FLOAT

    grid = by_name["MultipleGridAnchorGenerator"]
    assert grid.op == "GridAnchor_TRT"
    assert sorted(grid.attr) == ["aspectRatios_u_flist", "featureMapShapes_u_ilist",
                                 "maxSize_u_float", "minSize_u_float", "numLayers_u_int",
                                 "variance_u_flist"]
    assert list(grid.attr["featureMapShapes_u_ilist"].list.i) == maps
    assert grid.attr["numLayers_u_int"].i == len(maps)
    assert grid.attr["minSize_u_float"].f == pytest.approx(result.derived["min_size"])
    assert grid.attr["maxSize_u_float"].f == pytest.approx(result.derived["max_size"])
    assert list(grid.attr["aspectRatios_u_flist"].list.f) == pytest.approx(
        result.derived["aspect_ratios"])
    assert list(grid.attr["variance_u_flist"].list.f) == pytest.approx([0.1, 0.1, 0.2, 0.2])
    assert list(grid.input) == expected["grid_inputs"]

    nms = by_name["NMS"]
    assert nms.op == "NMS_TRT"
    fields = {key: nms.attr[key] for key in nms.attr}
    ints = {k: v.i for k, v in fields.items() if k.endswith("_u_int")}
    if VARIANTS[name].score_converter == "softmax":
        ints.pop("confSigmoid_u_int")  # see test_softmax_export_gets_no_sigmoid_nms
    else:
        assert ints.pop("confSigmoid_u_int") == 1
    assert ints == {
        "shareLocation_u_int": 1, "varianceEncodedInTarget_u_int": 0,
        "backgroundLabelId_u_int": 0, "topK_u_int": spec.top_k,
        "keepTopK_u_int": spec.keep_top_k, "numClasses_u_int": expected["num_classes"],
        "isNormalized_u_int": 1}
    assert fields["confidenceThreshold_u_float"].f == pytest.approx(spec.confidence_threshold)
    assert fields["nmsThreshold_u_float"].f == pytest.approx(spec.nms_threshold)
    assert list(fields["inputOrder_u_ilist"].list.i) == expected["input_order"]
    assert len(fields) == 11
    # NMS reads the three concats directly (Squeeze forwarded), in the derived order.
    roles = {"concat_box_loc": 0, "concat_box_conf": 1, "concat_priorbox": 2}
    order = expected["input_order"]
    assert [list(nms.input).index(n) for n in roles] == order

    for concat, source in (("concat_box_loc", "Reshape"), ("concat_box_conf", "Reshape_1")):
        node = by_name[concat]
        assert node.op == "FlattenConcat_TRT"
        assert list(node.input) == [f"BoxPredictor_{i}/{source}" for i in range(len(maps))]
        assert {k: v.i for k, v in node.attr.items()} == {"axis_u_int": 1, "ignoreBatch_u_int": 0}

    prior = by_name["concat_priorbox"]
    assert prior.op == "ConcatV2" and prior.attr["axis"].i == 2
    assert list(prior.input) == ["MultipleGridAnchorGenerator"]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_graph_is_clean_and_valid(results, name):
    result = results[name]
    names = {node.name for node in result.graph_def.node}
    for node in result.graph_def.node:
        for reference in node.input:
            assert reference.lstrip("^").split(":")[0] in names, (node.name, reference)
    ops = {node.op for node in result.graph_def.node}
    assert not ops & {"Assert", "Identity", "AddV2", "FusedBatchNormV3", "Squeeze"}
    gone = ("Postprocessor/", "Preprocessor/", "MultipleGridAnchorGenerator/", "Concatenate/",
            "image_tensor", "ToFloat", "detection_")
    assert not [n for n in names if n.startswith(gone)]
    assert "FusedBatchNorm" in ops
    if VARIANTS[name].backbone in ("MobilenetV2", "ssdlite"):
        assert "Add" in ops  # the inverted residual's add (AddV2 renamed in TF 1.15 exports)


def test_softmax_export_is_refused_by_the_uff_path_and_routed_to_onnx(catalog):
    # NMS_TRT can only apply a sigmoid (or nothing) to the logits: a SOFTMAX export
    # (post_processing score_converter) would get wrong scores, so UFF refuses it.
    spec = catalog.models["ssd_mobilenet_v1_softmax"]
    with pytest.raises(UserError, match="softmax") as refused:
        surgery.transform_model(spec, trt_version="8.2.1.8")
    assert "ONNX" in str(refused.value)
    result = surgery.transform_model(spec, trt_version="8.2.1.8", strict=False)
    assert "softmax" in result.uff_refusal and result.graph_def is None


def test_anchor_input_const(results):
    node = nodes(results["ssd_mobilenet_v2_coco"])["AnchorInput"]
    assert node.op == "Const"
    assert const_value(node).tolist() == [1.0, 1.0]
    assert str(const_value(node).dtype) == "float32"


def test_tf115_ops_renamed(results):
    assert any("FusedBatchNormV3" in w for w in results["ssd_mobilenet_v2_tf115"].warnings)
    assert not any("FusedBatchNormV3" in w for w in results["ssd_mobilenet_v1_coco"].warnings)


def test_old_tensorrt_gets_plain_flatten_concat(catalog):
    result = surgery.transform_model(catalog.models["ssd_mobilenet_v1_coco"], trt_version="6.0.1")
    assert dict(nodes(result)["concat_box_loc"].attr) == {}
    assert result.derived["flatten_concat_axis_fields"] is False


def test_unknown_tensorrt_version_is_said(catalog):
    result = surgery.transform_model(catalog.models["ssd_mobilenet_v1_coco"])
    assert any("TensorRT version unknown" in w for w in result.warnings)
    with pytest.raises(UserError, match="not a version number"):
        surgery.transform_model(catalog.models["ssd_mobilenet_v1_coco"], trt_version="eight")


def test_pipeline_config_supplies_anchor_settings(results):
    derived = results["ssd_mobilenet_v1_pipeline"].derived
    assert derived["min_size"] == pytest.approx(0.3)
    assert derived["max_size"] == pytest.approx(0.9)
    assert derived["aspect_ratios"] == pytest.approx([1.0, 2.0, 0.5])
    assert "pipeline.config" in derived["sources"]["aspect_ratios"]


def test_nothing_depends_on_the_model_name(tmp_path):
    """The v2 graph under the v1 name (and another file name) derives the v2 values."""
    copied = tmp_path / "model.pb"
    shutil.copyfile(graphs_dir() / "ssd_mobilenet_v2_coco" / "frozen_inference_graph.pb", copied)
    path = write_catalog(tmp_path / "models.yml", {
        "ssd_mobilenet_v1_coco": catalog_entry("ssd_mobilenet_v2_coco", graph=str(copied))})
    spec = load_catalog(str(path)).models["ssd_mobilenet_v1_coco"]
    derived = surgery.transform_model(spec).derived
    assert derived["input_order"] == [1, 0, 2]
    assert derived["num_classes"] == 91


@pytest.mark.parametrize("override, expected", [
    ({"num_classes": 90}, "num_classes is 90 in the catalog but 91 in the graph"),
    ({"input_order": "[0, 2, 1]"},
     "input_order is [0, 2, 1] in the catalog but [1, 0, 2] in the graph"),
    ({"input_dims": "[3, 256, 256]"},
     "input_dims is [3, 256, 256] in the catalog but [3, 300, 300]"),
    ({"feature_map_shapes": "[10, 5, 3, 2, 1, 1]"}, "feature_map_shapes is [10, 5, 3, 2, 1, 1]"),
    ({"aspect_ratios": "[1.0, 2.0, 0.5]"},
     "aspect_ratios is [1.0, 2.0, 0.5] in the catalog but [1.0, 2.0, 0.5, 3.0, 0.3333] in the "
     "graph (anchors of Concatenate/concat). Change it in the catalog to [1.0, 2.0, 0.5, 3.0, "
     "0.3333] (or write 'auto')"),
    ({"min_size": 0.3, "max_size": 0.9},
     "min_size is 0.3 in the catalog but 0.2 in the graph (anchors of Concatenate/concat)"),
])
def test_catalog_disagreement_stops_with_both_values(tmp_path, override, expected):
    path = write_catalog(tmp_path / "models.yml",
                         {"m": catalog_entry("ssd_mobilenet_v2_coco", **override)})
    spec = load_catalog(str(path)).models["m"]
    with pytest.raises(UserError) as error:
        surgery.transform_model(spec)
    assert expected in str(error.value)
    assert "model 'm'" in str(error.value)
    # Non-strict (inspect) keeps the graph's values and lists the problem(s).
    result = surgery.transform_model(spec, strict=False)
    assert result.derived["num_classes"] == 91
    assert len(result.problems) == len(override)  # one per key written


def test_input_dims_auto_by_default_reads_a_256_export(tmp_path):
    path = write_catalog(tmp_path / "models.yml", {"m": catalog_entry("ssd_mobilenet_v2_256")})
    spec = load_catalog(str(path)).models["m"]
    assert spec.input_dims == "auto"
    assert surgery.transform_model(spec).derived["input_dims"] == [3, 256, 256]


def test_explicit_input_dims_mismatch_names_the_fix(tmp_path):
    path = write_catalog(tmp_path / "models.yml", {"m": catalog_entry(
        "ssd_mobilenet_v2_256", input_dims=[3, 300, 300])})
    with pytest.raises(UserError, match=r"Change it in the catalog to \[3, 256, 256\]"):
        surgery.transform_model(load_catalog(str(path)).models["m"])


def test_catalog_disagreeing_with_graph_and_its_pipeline_config(tmp_path):
    base = graphs_dir() / "ssd_mobilenet_v1_pipeline"
    path = write_catalog(tmp_path / "models.yml", {"m": catalog_entry(
        "ssd_mobilenet_v1_pipeline", aspect_ratios=None, min_size=0.2, max_size=0.9,
        pipeline_config=str(base / "pipeline.config"))})
    with pytest.raises(UserError) as error:
        surgery.transform_model(load_catalog(str(path)).models["m"])
    assert "min_size is 0.2 in the catalog but 0.3 in the graph" in str(error.value)


def test_pipeline_config_of_another_model_is_refused(tmp_path):
    """The graph's anchors say 0.3/0.9; a pipeline.config saying 0.2/0.95 belongs elsewhere."""
    base = graphs_dir() / "ssd_mobilenet_v1_pipeline"
    other = tmp_path / "pipeline.config"
    other.write_text((base / "pipeline.config").read_text()
                     .replace("min_scale: 0.3", "min_scale: 0.2")
                     .replace("max_scale: 0.9", "max_scale: 0.95"))
    path = write_catalog(tmp_path / "models.yml", {"m": catalog_entry(
        "ssd_mobilenet_v1_pipeline", aspect_ratios=None, min_size=None, max_size=None,
        pipeline_config=str(other))})
    with pytest.raises(UserError) as error:
        surgery.transform_model(load_catalog(str(path)).models["m"])
    text = str(error.value)
    assert "pipeline.config ({}) says min_scale 0.2 but the graph has 0.3".format(other) in text
    assert "says max_scale 0.95 but the graph has 0.9" in text
    assert "Check that pipeline_config belongs to this graph" in text


def test_not_an_ssd_graph_names_the_missing_node(catalog):
    spec = catalog.models["ssd_mobilenet_v1_coco"]
    graph_def = read_graph_def(spec.graph)
    kept = [node for node in graph_def.node if node.name != "concat_1"]
    del graph_def.node[:]
    graph_def.node.extend(kept)
    with pytest.raises(UserError, match="no 'concat_1' node"):
        surgery.transform_graph_def(graph_def, spec)


def test_not_a_graph_file(tmp_path, catalog):
    bogus = tmp_path / "bogus.pb"
    bogus.write_bytes(b"\xff\xfe not a protobuf")
    with pytest.raises(UserError, match="not a TensorFlow frozen graph"):
        read_graph_def(str(bogus))


def test_write_pbtxt_round_trips(results, tmp_path):
    result = results["ssd_mobilenet_v2_coco"]
    target = tmp_path / "out.pbtxt"
    surgery.write_pbtxt(result, str(target))
    parsed = text_format.Parse(target.read_text(), new_graph_def())
    assert parsed == result.graph_def
