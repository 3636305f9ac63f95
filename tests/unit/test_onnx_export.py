"""builder onnx: the conversion and its verification on the generated SSD graphs.

Real TensorFlow, tf2onnx, onnx-graphsurgeon and onnxruntime; one conversion per graph
(module-scoped). The expected values come from the generator's Variant (what the graph
was built with), never from the conversion itself.
"""

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

from builder import cli
from builder.errors import UserError
from builder.onnx import crosscheck, export, nms_reference
from builder.spec.catalog import load_catalog

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "graphs"))
from generated import graphs_dir  # noqa: E402
from make_ssd_graphs import VARIANTS  # noqa: E402

# mobilenet v1 / v2 styles, a 3-class and an 11-class model (5 layers, 256x256), ssdlite.
CONVERTED = ("ssd_mobilenet_v1_coco", "ssd_mobilenet_v2_coco", "ssd_mobilenet_v1_egohands",
             "ssd_mobilenet_v2_256", "ssdlite_mobilenet_v2_coco")


def expected_anchors(variant):
    return sum(size * size * count for size, count in
               zip(variant.feature_map_sizes, variant.anchors_per_location))


@pytest.fixture(scope="module")
def catalog():
    return load_catalog(str(graphs_dir() / "models.yml"), check_graphs=True)


@pytest.fixture(scope="module")
def converted(catalog, tmp_path_factory):
    """name -> (report dict, onnx ModelProto, out dir): one `builder onnx` run per graph."""
    results = {}
    for name in CONVERTED:
        out = tmp_path_factory.mktemp("onnx-" + name) / "new" / "dir"  # --out is created
        rc = cli.main(["onnx", name, "--catalog", catalog.path, "--out", str(out), "--json"])
        report = json.loads((out / (name + ".onnx.json")).read_text())
        results[name] = (rc, report, onnx.load(str(out / (name + ".onnx"))), out)
    return results


@pytest.mark.parametrize("name", CONVERTED)
def test_export_is_verified_against_tensorflow(converted, name):
    rc, report, _model, _out = converted[name]
    verification = report["verification"]
    assert rc == 0, verification["problems"]
    assert verification["ok"] is True and verification["problems"] == []
    cut = verification["cut"]["max_abs_error"]
    assert max(cut.values()) <= 1e-4, cut
    found = verification["detections"]
    assert found["tensorflow"] >= 5, found  # a comparison with something in it
    assert found["matched"] == found["tensorflow"] == found["onnx"], found
    assert found["min_iou"] >= 0.99 and found["max_score_error"] <= 1e-3, found
    assert "TensorFlow" in verification["cut"]["reference"]
    assert "onnxruntime" in verification["cut"]["runtime"]


@pytest.mark.parametrize("name", CONVERTED)
def test_report_holds_what_the_graph_was_built_with(converted, name):
    _rc, report, _model, out = converted[name]
    variant = VARIANTS[name]
    onnx_file = out / (name + ".onnx")
    assert report["onnx"] == str(onnx_file)
    assert report["onnx_sha256"] == hashlib.sha256(onnx_file.read_bytes()).hexdigest()
    assert report["anchors"] == expected_anchors(variant)
    assert report["num_classes"] == variant.num_classes
    assert report["input"]["shape"] == [1, 3, variant.input_size, variant.input_size]
    assert report["cut_tensors"]["boxes"] == "Squeeze:0"
    assert report["cut_tensors"]["scores"] == "concat_1:0"
    assert report["score_converter"] == "sigmoid"
    attributes = report["nms"]["attributes"]
    # Exports of 2019 on clip after their per-class NMS and drop the boxes left without
    # area there: the NMS node returns twice keep_top_k boxes for the clip to choose from.
    clips_after = variant.postprocessor_era == "2019"
    assert attributes == {"plugin_version": "1", "score_threshold": 1e-8,
                          "iou_threshold": 0.6, "max_output_boxes": 200 if clips_after else 100,
                          "background_class": 0, "score_activation": 0,
                          "class_agnostic": 0, "box_coding": 0}
    assert report["box_decoder"] == "graph"


@pytest.mark.parametrize("name", CONVERTED)
def test_onnx_graph_ends_in_one_efficient_nms(converted, name):
    _rc, report, model, _out = converted[name]
    ops = [node.op_type for node in model.graph.node]
    assert ops.count("EfficientNMS_TRT") == 1
    if VARIANTS[name].postprocessor_era == "2018":
        assert ops[-1] == "EfficientNMS_TRT"
    else:  # the clip after the NMS follows it: no other NMS, no TensorFlow op
        after = ops[ops.index("EfficientNMS_TRT") + 1:]
        assert after and "Clip" in after and "TopK" in after
    assert not [op for op in ops if "NonMaxSuppression" in op]  # TF's NMS is gone
    outputs = [(o.name, [d.dim_value for d in o.type.tensor_type.shape.dim],
                o.type.tensor_type.elem_type) for o in model.graph.output]
    keep = 100
    assert outputs == [("num_detections", [1, 1], onnx.TensorProto.INT32),
                       ("detection_boxes", [1, keep, 4], onnx.TensorProto.FLOAT),
                       ("detection_scores", [1, keep], onnx.TensorProto.FLOAT),
                       ("detection_classes", [1, keep], onnx.TensorProto.INT32)]
    assert [o["name"] for o in report["outputs"]] == [o[0] for o in outputs]
    (graph_input,) = model.graph.input
    assert graph_input.name == "Input"


def _spec(catalog, name, **changes):
    values = catalog.models[name].as_dict()
    values.update(changes)
    return type(catalog.models[name])(**values)


def test_wrong_box_coder_scales_fail_the_verification(catalog):
    # TF decodes with 10, 10, 5, 5; an ONNX graph scaled otherwise must not pass.
    spec = _spec(catalog, "ssd_mobilenet_v2_256", variance=[0.2, 0.2, 0.4, 0.4])
    exported = export.export_model(spec, lambda text: None, "graph")
    verification = crosscheck.crosscheck(exported)
    assert verification["ok"] is False
    assert verification["cut"]["max_abs_error"]["boxes"] <= 1e-4  # the cut is still right
    assert any("detections:" in problem for problem in verification["problems"])


def test_plugin_box_decoder_puts_anchors_into_the_nms_node(catalog):
    spec = _spec(catalog, "ssd_mobilenet_v1_egohands", box_decoder="plugin")
    exported = export.export_model(spec, lambda text: None, "plugin")
    nms = [node for node in exported.model.graph.node if node.op_type == "EfficientNMS_TRT"][0]
    assert list(nms.input) == ["nms_box_deltas", "nms_scores", "nms_anchors"]
    anchors = [init for init in exported.model.graph.initializer if init.name == "nms_anchors"]
    dims = list(anchors[0].dims)
    assert dims == [1, expected_anchors(VARIANTS[spec.name]), 4]
    assert exported.nms_attributes()["box_coding"] == nms_reference.BOX_CENTER_SIZE
    verification = crosscheck.crosscheck(exported)
    assert max(verification["cut"]["max_abs_error"].values()) <= 1e-4
    # The fused decoder does not clip to the image as TF does before its NMS: the figures
    # say how far apart the two are (recorded, not assumed equal).
    assert verification["detections"]["tensorflow"] > 0


def test_catalog_class_count_disagreeing_with_the_graph(catalog, tmp_path, capsys):
    text = (graphs_dir() / "models.yml").read_text()
    (tmp_path / "models.yml").write_text(text.replace(
        "graph: ssd_mobilenet_v1_egohands/", "graph: {}/ssd_mobilenet_v1_egohands/".format(
            graphs_dir())).replace("num_classes: auto", "num_classes: 7"))
    rc = cli.main(["onnx", "ssd_mobilenet_v1_egohands", "--catalog",
                   str(tmp_path / "models.yml"), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert rc == 2
    assert "num_classes is 7 in the catalog but 3 in the graph" in err
    assert "Change it in the catalog to 3 (or write 'auto')" in err
    assert not (tmp_path / "out" / "ssd_mobilenet_v1_egohands.onnx").exists()


# -- the numpy model of EfficientNMS_TRT ----------------------------------------------

ATTRS = {"score_threshold": 0.2, "iou_threshold": 0.5, "max_output_boxes": 3,
         "background_class": 0, "score_activation": 0, "class_agnostic": 0, "box_coding": 0}


def _run(boxes, scores, **changes):
    attrs = dict(ATTRS, **changes)
    return nms_reference.efficient_nms(np.array([boxes], np.float32),
                                       np.array([scores], np.float32), None, attrs)


def test_reference_suppresses_overlaps_of_the_same_class_only():
    boxes = [[0, 0, 1, 1], [0, 0, 0.9, 1], [0.5, 0.5, 1, 1]]
    scores = [[0, 0.9, 0.0], [0, 0.8, 0.7], [0, 0.1, 0.6]]
    out = _run(boxes, scores)
    assert int(out["num_detections"][0, 0]) == 3
    # box 1 class 1 is suppressed by box 0 class 1 (IoU 0.9); box 1 class 2 survives.
    assert out["detection_classes"][0].tolist() == [1, 2, 2]
    assert np.allclose(out["detection_scores"][0], [0.9, 0.7, 0.6])
    agnostic = _run(boxes, scores, class_agnostic=1)
    assert int(agnostic["num_detections"][0, 0]) == 2  # box 1 is gone for every class
    assert agnostic["detection_classes"][0][:2].tolist() == [1, 2]


def test_reference_threshold_background_and_padding():
    boxes = [[0, 0, 0.2, 0.2], [0.5, 0.5, 0.7, 0.7]]
    scores = [[0.99, 0.1, 0.3], [0.95, 0.25, 0.0]]
    out = _run(boxes, scores, max_output_boxes=4)
    assert int(out["num_detections"][0, 0]) == 2  # background 0.99 / 0.95 never count
    assert out["detection_classes"][0][:2].tolist() == [2, 1]
    assert out["detection_scores"][0][2:].tolist() == [0.0, 0.0]  # padded with zeros


def test_reference_decodes_center_size_like_the_plugin():
    anchors = np.array([[[0.5, 0.5, 0.2, 0.4]]])  # y, x, h, w
    deltas = np.array([[0.1, -0.2, np.log(2.0), 0.0]])
    (box,) = nms_reference.decode(deltas, anchors[0], nms_reference.BOX_CENTER_SIZE)
    # y = 0.1 * 0.2 + 0.5, x = -0.2 * 0.4 + 0.5, h = 0.2 * 2, w = 0.4
    assert np.allclose(box, [0.52 - 0.2, 0.42 - 0.2, 0.52 + 0.2, 0.42 + 0.2])


def test_export_needs_the_onnx_tools(monkeypatch):
    monkeypatch.setitem(sys.modules, "tf2onnx", None)
    with pytest.raises(UserError, match="pip install -r requirements/dev.txt"):
        export.import_exporters()
