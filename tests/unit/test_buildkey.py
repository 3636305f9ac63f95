"""The build key: stable, canonical, and sensitive to exactly the engine-affecting inputs."""

import hashlib
import tempfile
from pathlib import Path

import pytest

from builder.buildkey import OPTION_FIELDS, SPEC_FIELDS, build_key, build_key_payload
from builder.spec.catalog import load_catalog

PLATFORM = "jetson-nano_l4t32.7.1_trt8.2.1"
GRAPH_SHA = hashlib.sha256(b"graph").hexdigest()
OPTIONS = {"precision": "fp16", "workspace_mib": 1024, "max_batch": 1, "dla_core": None}

CATALOG = """\
version: 1
models:
  {name}:
    graph: g.pb
    num_classes: 91
    min_size: {min_size}
    max_size: 0.95
    engine: {engine}
"""


def spec(tmp_path, name="m1", min_size="0.2", engine="TRT_m1.bin", extra=""):
    directory = Path(tempfile.mkdtemp(dir=str(tmp_path)))
    (directory / "g.pb").write_bytes(b"graph")
    (directory / "pipeline.config").write_text("ssd_anchor_generator { min_scale: 0.2 }\n")
    text = CATALOG.format(name=name, min_size=min_size, engine=engine) + extra
    (directory / "models.yml").write_text(text)
    return load_catalog(str(directory / "models.yml")).models[name]


def key(model_spec, **changes):
    args = {"platform_id": PLATFORM, "graph_sha256": GRAPH_SHA, "spec": model_spec,
            "options": dict(OPTIONS), "builder_version": "0.1.0"}
    args.update(changes)
    return build_key(**args)


def test_key_is_sha256_hex_and_stable(tmp_path):
    first = key(spec(tmp_path))
    assert len(first) == 64 and int(first, 16) >= 0
    assert key(spec(tmp_path, name="m1", engine="TRT_m1.bin", extra="")) == first
    # Pinned value: a change here means every stored engine gets rebuilt. Bump KEY_SCHEMA
    # deliberately when it must change.
    assert first == "fd00c1507805860bd40a60ec294460badbbd6451e1968fd96041faa3dc7420d2"


def test_model_spec_and_its_dict_give_the_same_key(tmp_path):
    model = spec(tmp_path)
    assert key(model) == key(model.as_dict())


def test_fields_that_do_not_affect_the_engine(tmp_path):
    base = key(spec(tmp_path))
    assert key(spec(tmp_path, name="other", engine="TRT_m1.bin")) == base
    assert key(spec(tmp_path, engine="renamed.bin")) == base
    assert key(spec(tmp_path), options=dict(OPTIONS, timeout_s=600)) == base
    assert key(spec(tmp_path), options=dict(OPTIONS, precision="FP16")) == base


def test_int_and_float_spellings_give_the_same_key(tmp_path):
    as_float = spec(tmp_path, min_size="0.5").as_dict()
    as_int = dict(as_float, nms_threshold=1, confidence_threshold=1)
    as_float_one = dict(as_float, nms_threshold=1.0, confidence_threshold=1.0)
    assert key(as_int) == key(as_float_one)
    assert key(dict(as_float, variance=[1, 1, 2, 2])) == key(
        dict(as_float, variance=[1.0, 1.0, 2.0, 2.0]))


@pytest.mark.parametrize(("field", "value"), [
    ("num_classes", 2), ("min_size", 0.3), ("max_size", 0.9), ("input_order", [1, 0, 2]),
    ("input_dims", [3, 512, 512]), ("aspect_ratios", [1.0, 2.0]),
    ("feature_map_shapes", [19, 10, 5, 3, 2, 1]), ("variance", [0.1, 0.1, 0.2, 0.3]),
    ("confidence_threshold", 0.3), ("nms_threshold", 0.5), ("top_k", 200),
    ("keep_top_k", 50), ("engine_path", "uff"), ("box_decoder", "plugin"),
])
def test_every_spec_field_changes_the_key(tmp_path, field, value):
    assert field in SPEC_FIELDS
    base = spec(tmp_path).as_dict()
    assert key(dict(base, **{field: value})) != key(base)


@pytest.mark.parametrize(("field", "value"), [
    ("precision", "fp32"), ("workspace_mib", 2048), ("max_batch", 4), ("dla_core", 0),
])
def test_every_option_changes_the_key(tmp_path, field, value):
    assert field in OPTION_FIELDS
    model = spec(tmp_path)
    assert key(model, options=dict(OPTIONS, **{field: value})) != key(model)


def test_platform_graph_and_builder_version_change_the_key(tmp_path):
    model = spec(tmp_path)
    base = key(model)
    assert key(model, platform_id="jetson-agx-xavier_l4t32.7.1_trt8.2.1") != base
    assert key(model, graph_sha256=hashlib.sha256(b"other").hexdigest()) != base
    assert key(model, builder_version="0.2.0") != base
    assert key(model, graph_sha256=GRAPH_SHA.upper()) == base


def test_pipeline_config_content_counts_not_its_path(tmp_path):
    with_config = spec(tmp_path, extra="    pipeline_config: pipeline.config\n").as_dict()
    assert with_config["pipeline_config_sha256"]
    moved = dict(with_config, pipeline_config="/elsewhere/pipeline.config")
    assert key(moved) == key(with_config)
    edited = dict(with_config, pipeline_config_sha256="f" * 64)
    assert key(edited) != key(with_config)
    assert key(with_config) != key(spec(tmp_path))


def test_pipeline_config_without_checksum_is_refused(tmp_path):
    model = dict(spec(tmp_path).as_dict(), pipeline_config="/x/pipeline.config")
    with pytest.raises(ValueError, match="pipeline_config_sha256"):
        key(model)


def test_missing_inputs_are_refused(tmp_path):
    model = spec(tmp_path).as_dict()
    del model["top_k"]
    with pytest.raises(ValueError, match="spec lacks top_k"):
        key(model)
    with pytest.raises(ValueError, match="options lack dla_core"):
        key(spec(tmp_path), options={"precision": "fp16", "workspace_mib": 1, "max_batch": 1})


def test_payload_is_canonical_json(tmp_path):
    text = build_key_payload(PLATFORM, GRAPH_SHA, spec(tmp_path), OPTIONS, "0.1.0")
    assert " " not in text
    assert text.index('"builder_version"') < text.index('"graph_sha256"')
    assert '"engine":' not in text and '"graph":' not in text and '"name":' not in text
    assert hashlib.sha256(text.encode()).hexdigest() == key(spec(tmp_path))
