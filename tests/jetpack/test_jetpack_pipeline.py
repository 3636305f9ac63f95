"""Reference recipe -> UFF -> engine -> inference on every UFF generation; engines refused
on other platforms with each generation's messages."""

import json
import math

import pytest
from jetpack_drivers import BUILD, INFER
from jetpack_harness import Generation, last_json

UFF_VERSIONS = ["5.1.6", "6.0.1", "7.1.3", "8.0.1.6", "8.2.1.8", "8.5.2.2", "8.6.2"]
NUM_CLASSES, KEEP_TOP_K = 3, 10


def build(gen, uff, version, check_built=True, **opts):
    device = opts.pop("device", {})
    fault = opts.pop("fault", "ok")
    extra_env = opts.pop("extra_env", None)
    result = gen.run(BUILD, version, fault=fault, extra_env=extra_env,
                     input=json.dumps(dict(opts, uff=str(uff))), **device)
    verdict = last_json(result)
    if check_built:
        assert verdict.get("built"), result.stdout + result.stderr
    return verdict, result.stdout + result.stderr


def infer(gen, plan, version, fills=(0.25,), **device):
    result = gen.run(INFER, version, input=json.dumps({"plan": plan, "fills": list(fills)}),
                     **device)
    return last_json(result), result.stdout + result.stderr


def assert_sane(run):
    assert run["ok"] is True
    assert 0 <= run["count"] <= KEEP_TOP_K
    scores = [row[2] for row in run["rows"]]
    assert scores == sorted(scores, reverse=True)
    for image_id, label, score, xmin, ymin, xmax, ymax in run["rows"]:
        assert image_id == 0
        assert label == int(label) and 1 <= label < NUM_CLASSES
        assert math.isfinite(score) and 0.0 <= score <= 1.0
        assert 0.0 <= xmin < xmax <= 1.0 and 0.0 <= ymin < ymax <= 1.0


@pytest.mark.parametrize("version", UFF_VERSIONS)
def test_engine_round_trip(gen, uff_files, version):
    verdict, _ = build(gen, uff_files["good"], version)
    with open(verdict["plan"], "rb") as handle:
        first_line = handle.readline().decode()
    assert "SIMULATED" in first_line
    assert "module=jetson-nano" in first_line and "compute=5.3" in first_line
    assert "tensorrt={}".format(version) in first_line
    result, _ = infer(gen, verdict["plan"], version, fills=(0.25, 0.25, -0.75, 0.5))
    assert result["engine"] is True
    assert result["bindings"] == [["Input", [3, 300, 300], True],
                                  ["NMS", [1, KEEP_TOP_K, 7], False], ["NMS_1", [1, 1, 1], False]]
    runs = result["runs"]
    for run in runs:
        assert_sane(run)
    assert runs[0] == runs[1]  # deterministic for the same image
    assert len({json.dumps(run) for run in runs}) > 2  # and depends on the image
    assert result["bad_pointer"] is False  # host addresses are not device memory


def test_fp16_engine_is_smaller(gen, uff_files):
    fp32, _ = build(gen, uff_files["good"], "8.2.1.8")
    fp16, _ = build(gen, uff_files["good"], "8.2.1.8", fp16=True)
    assert fp16["size"] < fp32["size"]


@pytest.fixture(scope="module")
def nano_plans(tmp_path_factory, libs, uff_files):
    runner = Generation(tmp_path_factory.mktemp("plans"), libs)
    return {version: build(runner, uff_files["good"], version)[0]["plan"]
            for version in ("7.1.3", "8.2.1.8")}


@pytest.mark.parametrize(("built", "running", "device", "expected"), [
    ("8.2.1.8", "8.2.1.8", {"compute_capability": "7.2"},
     "[TRT] [E] 6: The engine plan file is generated on an incompatible device, expecting "
     "compute 7.2 got compute 5.3, please rebuild."),
    ("8.2.1.8", "8.2.3.0", {},
     "[TRT] [E] 6: The engine plan file is not compatible with this version of TensorRT, "
     "expecting library version 8.2.3 got 8.2.1, please rebuild."),
    ("8.2.1.8", "7.1.3", {},
     "[TensorRT] ERROR: coreReadArchive.cpp (38) - Serialization Error in verifyHeader: 0 "
     "(Version tag does not match)"),
    ("7.1.3", "7.1.3", {"compute_capability": "7.2"},
     "[TensorRT] ERROR: INVALID_CONFIG: The engine plan file is generated on an incompatible "
     "device, expecting compute 7.2 got compute 5.3, please rebuild."),
    ("7.1.3", "8.0.1.6", {},
     "[TensorRT] ERROR: 1: [stdArchiveReader.cpp::StdArchiveReader::40] Error Code 1: "
     "Serialization (Serialization assertion stdVersionRead == serializationVersion failed."
     "Version tag does not match."),
])
def test_engine_refused_elsewhere(gen, nano_plans, built, running, device,  # noqa: PLR0917
                                  expected):
    result, log = infer(gen, nano_plans[built], running, **device)
    assert result["engine"] is False
    assert expected in log


def test_not_a_plan_is_refused(gen, tmp_path):
    bogus = tmp_path / "bogus.bin"
    bogus.write_bytes(b"\x00" * 512)
    result, log = infer(gen, str(bogus), "8.5.2.2")
    assert result["engine"] is False
    assert "Magic Tag does not match" in log
    assert "Error Code 4: Internal Error (Engine deserialization failed.)" in log
