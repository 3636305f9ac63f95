"""builder onnx on genuine exports of the TF1 Object Detection API (tests/graphs/genuine).

Each variant was written by the OD API's own exporter (our pipeline configs, random
weights). It either converts and matches TensorFlow on both test images (the graph's input
size and another size) within the targets of the ONNX path, or it is refused as the user's
to fix: kind ``user``, exit 2, a message naming the graph feature and what to do. Never a
builder bug, never an export that passes with a mismatch.
"""

import json
import sys
from pathlib import Path

import pytest

from builder import cli

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "graphs" / "genuine"))
from genuine import exports_dir, variants  # noqa: E402

# Variants the ONNX path cannot take, and the words its refusal must contain: the feature.
REFUSED = {
    # The resize size is computed from each image; an engine has one input size.
    "ssd_mobilenet_v1_keep_aspect": ("keep_aspect_ratio_resizer", "fixed_shape_resizer"),
    # Fake quantization: TensorRT would build INT8 layers that round as TensorFlow does not.
    "ssd_mobilenet_v1_quantized": ("quantization-rewritten", "remove the graph_rewriter"),
    "ssd_mobilenet_v2_quantized": ("quantization-rewritten", "remove the graph_rewriter"),
}
CUT_TOLERANCE = 1e-4
MIN_IOU = 0.99
SCORE_TOLERANCE = 1e-3


@pytest.fixture(scope="module")
def genuine():
    return exports_dir()


def _onnx(catalog, name, out, capsys):
    rc = cli.main(["onnx", name, "--catalog", str(catalog), "--out", str(out), "--json"])
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()
               if line.startswith('{"command"')]
    return rc, records


@pytest.mark.parametrize("name", variants())
def test_every_genuine_export_converts_or_is_refused_as_the_users(genuine, name, tmp_path,
                                                                  capsys):
    rc, records = _onnx(genuine / "models.yml", name, tmp_path, capsys)
    if name in REFUSED:
        (record,) = records
        assert rc == 2 and record["kind"] == "user", record
        for words in REFUSED[name]:
            assert words in record["message"], record["message"]
        assert not (tmp_path / (name + ".onnx")).exists()
        return
    report = json.loads((tmp_path / (name + ".onnx.json")).read_text())
    verification = report["verification"]
    assert rc == 0, verification["problems"]
    assert [image["image"] for image in verification["images"]] == [
        "the graph's input size", "another size"]
    for image in verification["images"]:
        assert max(image["cut_max_abs_error"].values()) <= CUT_TOLERANCE, image
        found = image["detections"]
        assert found["tensorflow"] >= 1, image  # a comparison with something in it
        assert found["matched"] == found["tensorflow"] == found["onnx"], image
        assert found["min_iou"] >= MIN_IOU and found["max_score_error"] <= SCORE_TOLERANCE
    print("{}: {} anchors, {} classes, clip {}, cut max abs error {}, detections {}".format(
        name, report["anchors"], report["num_classes"], verification["nms"]["clip"],
        verification["cut"]["max_abs_error"], verification["detections"]["matched"]))


# fp16 ONNX files (strongly typed TensorRT 11): a backbone of each kind.
FP16_VARIANTS = ("ssd_mobilenet_v1_coco", "ssd_inception_v2_coco", "ssd_mobilenet_v1_fpn_640")


def _elem_types(model):
    """{tensor name: element type} of every typed tensor of an ONNX model."""
    graph = model.graph
    typed = list(graph.input) + list(graph.output) + list(graph.value_info)
    types = {value.name: value.type.tensor_type.elem_type for value in typed}
    types.update((init.name, init.data_type) for init in graph.initializer)
    return types


@pytest.mark.parametrize("name", FP16_VARIANTS)
def test_fp16_export_computes_in_fp16_and_matches_the_fp32_one(genuine, name, tmp_path,
                                                                capsys):
    import onnx  # noqa: PLC0415

    rc = cli.main(["onnx", name, "--catalog", str(genuine / "models.yml"), "--out",
                   str(tmp_path), "--precision", "fp16", "--json"])
    report = json.loads((tmp_path / (name + ".onnx.json")).read_text())
    assert rc == 0, report["verification"]["problems"]
    assert report["precision"] == "fp16" and report["fp16_verification"]["ok"]
    for image in report["fp16_verification"]["images"]:
        assert max(image["cut_max_abs_error"].values()) <= 0.05, image
        found = image["detections"]
        assert found["tensorflow"] >= 1 and found["matched"] == found["tensorflow"] == \
            found["onnx"], image
    model = onnx.shape_inference.infer_shapes(onnx.load(str(tmp_path / (name + ".onnx"))))
    types = _elem_types(model)
    convs = [node for node in model.graph.node if node.op_type == "Conv"]
    assert convs and all(types[node.input[1]] == onnx.TensorProto.FLOAT16 for node in convs)
    nms = [node for node in model.graph.node if node.op_type == "EfficientNMS_TRT"][0]
    assert [types[tensor] for tensor in nms.input] == [onnx.TensorProto.FLOAT] * 2
    assert types["Input"] == onnx.TensorProto.FLOAT  # the engine takes what fp32 ones take
    assert report["onnx_sha256"] != report["fp32_sha256"]
