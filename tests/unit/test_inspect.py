"""``python3 -m builder inspect``: derived values on stdout, transformed graph as .pbtxt."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "graphs"))
from generated import graphs_dir  # noqa: E402

from builder.cli import main  # noqa: E402


def test_inspect_json_and_pbtxt(tmp_path, capsys):
    catalog = graphs_dir() / "models.yml"
    code = main(["inspect", "ssd_mobilenet_v2_coco", "--catalog", str(catalog),
                 "--out", str(tmp_path), "--json"])
    out = capsys.readouterr().out
    assert code == 0
    report = json.loads(out)["result"]
    assert report["num_classes"] == 91
    assert report["input_order"] == [1, 0, 2]
    assert report["num_layers"] == 6
    assert report["feature_map_shapes"] == [19, 10, 5, 3, 2, 1]
    assert report["input_dims"] == [3, 300, 300]
    assert report["anchors"] == 1917
    assert report["problems"] == []
    pbtxt = tmp_path / "ssd_mobilenet_v2_coco.pbtxt"
    assert report["pbtxt"] == str(pbtxt)
    text = pbtxt.read_text()
    assert 'op: "NMS_TRT"' in text and 'op: "GridAnchor_TRT"' in text
    assert "Postprocessor/" not in text


def test_inspect_text_output_defaults_to_current_directory(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code = main(["inspect", "ssd_mobilenet_v1_egohands", "--catalog",
                 str(graphs_dir() / "models.yml")])
    out = capsys.readouterr().out
    assert code == 0
    assert "num_classes           3" in out
    assert "input_order           [0, 2, 1]" in out
    assert (tmp_path / "ssd_mobilenet_v1_egohands.pbtxt").is_file()


def test_inspect_shows_graph_values_then_fails_on_disagreement(tmp_path, capsys):
    graph = graphs_dir() / "ssd_mobilenet_v2_coco" / "frozen_inference_graph.pb"
    catalog = tmp_path / "models.yml"
    catalog.write_text(f"version: 1\nmodels:\n  m:\n    graph: {graph}\n    min_size: 0.2\n"
                       "    max_size: 0.95\n    num_classes: 2\n    input_order: [0, 2, 1]\n")
    code = main(["inspect", "m", "--catalog", str(catalog), "--out", str(tmp_path), "--json"])
    captured = capsys.readouterr()
    assert code == 2
    record = json.loads(captured.out)
    assert (record["status"], record["kind"]) == ("failed", "user")
    report = record["result"]
    assert report["num_classes"] == 91 and report["input_order"] == [1, 0, 2]
    assert len(report["problems"]) == 2
    assert "num_classes is 2 in the catalog but 91" in captured.err
    assert "input_order is [0, 2, 1] in the catalog but [1, 0, 2]" in captured.err
    assert (tmp_path / "m.pbtxt").is_file()


def test_inspect_creates_a_missing_out_dir(tmp_path, capsys):
    out = tmp_path / "missing" / "deeper"
    code = main(["inspect", "ssd_mobilenet_v1_coco", "--catalog",
                 str(graphs_dir() / "models.yml"), "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    assert (out / "ssd_mobilenet_v1_coco.pbtxt").is_file()


def test_inspect_out_that_is_a_file_is_refused(tmp_path, capsys):
    taken = tmp_path / "a-file"
    taken.write_text("not a directory\n")
    code = main(["inspect", "ssd_mobilenet_v1_coco", "--catalog",
                 str(graphs_dir() / "models.yml"), "--out", str(taken)])
    assert code == 2
    err = capsys.readouterr().err
    assert "--out {}: exists and is not a directory".format(taken) in err
    assert taken.read_text() == "not a directory\n"
