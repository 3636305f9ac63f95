"""builder onnx on a real TF1 Object Detection API export, when one is on this machine.

No registry we reach serves the TF1 model zoo, and nothing fetched is committed, so the test
runs only where a user (or a CI with the file cached) put a real export in place: the
shipped catalog's entry (models/models.yml: models/ssd_mobilenet_v2_coco/
frozen_inference_graph.pb, e.g. from ssd_mobilenet_v2_coco_2018_03_29.tar.gz of the TF1
detection model zoo), or a catalog named by ENGINE_REAL_TF1_CATALOG (its every model is
converted). Skipped, and saying why, when there is none. The figures are the issue's
targets, the same as for the generated graphs (tests/unit/test_onnx_export.py).
"""

import json
import os
from pathlib import Path

import pytest
import yaml

from builder import cli

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "models" / "models.yml"


def real_models():
    """[(catalog path, model name)] whose graph file exists."""
    named = os.environ.get("ENGINE_REAL_TF1_CATALOG")
    catalog = Path(named) if named else SHIPPED
    if not catalog.is_file():
        return []
    models = (yaml.safe_load(catalog.read_text()) or {}).get("models") or {}
    return [(catalog, name) for name, entry in sorted(models.items())
            if (catalog.parent / entry["graph"]).is_file()]


REAL = real_models()


@pytest.mark.skipif(not REAL, reason="no real TF1 export here: put frozen_inference_graph.pb "
                                     "where models/models.yml says, or set "
                                     "ENGINE_REAL_TF1_CATALOG to a catalog of real exports")
@pytest.mark.parametrize("catalog,name", REAL, ids=[name for _, name in REAL])
def test_a_real_export_converts_and_matches_tensorflow(catalog, name, tmp_path):
    rc = cli.main(["onnx", name, "--catalog", str(catalog), "--out", str(tmp_path), "--json"])
    report = json.loads((tmp_path / (name + ".onnx.json")).read_text())
    verification = report["verification"]
    assert rc == 0, verification["problems"]
    assert max(verification["cut"]["max_abs_error"].values()) <= 1e-4
    found = verification["detections"]
    assert found["matched"] == found["tensorflow"] == found["onnx"], found
    if found["tensorflow"]:
        assert found["min_iou"] >= 0.99 and found["max_score_error"] <= 1e-3, found
    print("{}: {} anchors, cut max abs error {}, detections {}".format(
        name, report["anchors"], verification["cut"]["max_abs_error"], found))
