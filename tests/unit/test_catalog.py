"""The model catalog: every validation rule, its message (file, model, key, fix), and `check`."""

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from builder import cli
from builder.atomic import file_sha256
from builder.commands import check as check_command
from builder.spec.catalog import (
    CatalogError,
    ModelSpec,
    load_catalog,
)

REPO = Path(__file__).resolve().parents[2]
GRAPH_BYTES = b"not really a GraphDef, only bytes to checksum\n" * 100


@pytest.fixture
def own_subcommands(monkeypatch):
    """Only the subcommands under test: a sibling subcommand that is broken or not yet
    written must not fail the catalog's tests (the subprocess test uses the full CLI). The
    graphs here are bytes to checksum, not GraphDefs: check runs as on a controller without
    TensorFlow (the graph checks have their own test below, on a generated graph)."""
    monkeypatch.setattr(cli, "SUBCOMMANDS", (("check", "commands.check"),
                                             ("platform", "commands.platform")))
    monkeypatch.setattr(check_command, "tensorflow_available", lambda: False)


@pytest.fixture
def workdir(tmp_path):
    graph_dir = tmp_path / "ssd"
    graph_dir.mkdir()
    (graph_dir / "frozen_inference_graph.pb").write_bytes(GRAPH_BYTES)
    (graph_dir / "pipeline.config").write_text("model { ssd { num_classes: 90 } }\n")
    return tmp_path


def write_catalog(directory, text, name="models.yml"):
    path = directory / name
    path.write_text(text)
    return path


GOOD_MODEL = """\
    graph: ssd/frozen_inference_graph.pb
    num_classes: 91
    min_size: 0.2
    max_size: 0.95
    input_order: auto
    input_dims: [3, 300, 300]
"""


def one_model(extra="", base=GOOD_MODEL, name="m1"):
    return "version: 1\nmodels:\n  {}:\n{}{}".format(name, base, extra)


def problems_of(path, **kwargs):
    with pytest.raises(CatalogError) as caught:
        load_catalog(str(path), **kwargs)
    return caught.value.problems, str(caught.value)


# ------------------------------------------------------------------ success


def test_good_catalog_fills_defaults_and_resolves_paths(workdir):
    path = write_catalog(workdir, one_model())
    catalog = load_catalog(str(path))
    assert catalog.path == str(path)
    spec = catalog.models["m1"]
    assert isinstance(spec, ModelSpec)
    assert spec.graph == str(workdir / "ssd" / "frozen_inference_graph.pb")
    assert spec.num_classes == 91
    assert (spec.min_size, spec.max_size) == (0.2, 0.95)
    assert spec.input_order == "auto"
    assert spec.input_dims == [3, 300, 300]
    assert spec.aspect_ratios == "auto"
    assert spec.feature_map_shapes is None
    assert spec.variance == [0.1, 0.1, 0.2, 0.2]
    assert spec.confidence_threshold == 1e-8
    assert spec.nms_threshold == 0.6
    assert (spec.top_k, spec.keep_top_k) == (100, 100)
    assert spec.engine == "TRT_m1.bin"
    assert spec.pipeline_config is None
    assert spec.sha256 is None


def test_as_dict_is_json_and_complete(workdir):
    catalog = load_catalog(str(write_catalog(workdir, one_model())))
    spec_dict = catalog.models["m1"].as_dict()
    assert json.loads(json.dumps(spec_dict)) == dict(spec_dict)
    assert spec_dict["name"] == "m1"
    assert spec_dict["engine"] == "TRT_m1.bin"
    assert set(spec_dict) >= {"graph", "sha256", "num_classes", "min_size", "max_size",
                              "input_order", "input_dims", "aspect_ratios",
                              "feature_map_shapes", "variance", "confidence_threshold",
                              "nms_threshold", "top_k", "keep_top_k", "engine",
                              "pipeline_config", "pipeline_config_sha256"}


def test_optional_keys_are_normalised(workdir):
    graph = workdir / "ssd" / "frozen_inference_graph.pb"
    extra = (
        "    sha256: {}\n"
        "    aspect_ratios: [1, 2.0, 0.5]\n"
        "    feature_map_shapes: [19, 10, 5, 3, 2, 1]\n"
        "    variance: [0.1, 0.1, 0.2, 0.2]\n"
        "    confidence_threshold: 1e-8\n"  # YAML 1.1 reads this as a string
        "    nms_threshold: 1\n"
        "    top_k: 200\n"
        "    keep_top_k: 100\n"
        "    engine: custom-name.v2.bin\n"
        "    pipeline_config: ssd/pipeline.config\n"
    ).format(hashlib.sha256(GRAPH_BYTES).hexdigest().upper())
    spec = load_catalog(str(write_catalog(workdir, one_model(extra)))).models["m1"]
    assert spec.sha256 == hashlib.sha256(GRAPH_BYTES).hexdigest()
    assert spec.aspect_ratios == [1.0, 2.0, 0.5]
    assert all(isinstance(ratio, float) for ratio in spec.aspect_ratios)
    assert spec.feature_map_shapes == [19, 10, 5, 3, 2, 1]
    assert spec.confidence_threshold == 1e-8
    assert spec.nms_threshold == 1.0
    assert spec.engine == "custom-name.v2.bin"
    assert spec.pipeline_config == str(workdir / "ssd" / "pipeline.config")
    assert spec.pipeline_config_sha256 == file_sha256(str(workdir / "ssd" / "pipeline.config"))
    assert graph.exists()


def test_absolute_graph_path_and_explicit_input_order(workdir):
    graph = workdir / "ssd" / "frozen_inference_graph.pb"
    base = GOOD_MODEL.replace("ssd/frozen_inference_graph.pb", str(graph)).replace(
        "input_order: auto", "input_order: [1, 0, 2]").replace("num_classes: 91",
                                                               "num_classes: auto")
    other_dir = workdir / "elsewhere"
    other_dir.mkdir()
    spec = load_catalog(str(write_catalog(other_dir, one_model(base=base)))).models["m1"]
    assert spec.graph == str(graph)
    assert spec.input_order == [1, 0, 2]
    assert spec.num_classes == "auto"


def test_models_selection_keeps_catalog_order_and_skips_broken_others(workdir):
    text = one_model() + "  m2:\n" + GOOD_MODEL + "  broken:\n    graph: 12\n"
    path = write_catalog(workdir, text)
    catalog = load_catalog(str(path), models=["m2", "m1", "m2"])
    assert list(catalog.models) == ["m1", "m2"]
    with pytest.raises(CatalogError):
        load_catalog(str(path))


def test_file_sha256_streams_in_chunks(tmp_path):
    path = tmp_path / "big.bin"
    data = os.urandom(3 * 1024 * 1024 + 17)
    path.write_bytes(data)
    assert file_sha256(str(path)) == file_sha256(path) == hashlib.sha256(data).hexdigest()


def test_check_graphs_false_skips_file_checks(workdir):
    base = GOOD_MODEL.replace("ssd/frozen", "missing/frozen")
    path = write_catalog(workdir, one_model("    sha256: {}\n".format("a" * 64), base=base))
    spec = load_catalog(str(path), check_graphs=False).models["m1"]
    assert spec.graph == str(workdir / "missing" / "frozen_inference_graph.pb")
    problems, _ = problems_of(path)
    assert [p.key for p in problems] == ["graph"]


# ------------------------------------------------------------------ per-model rules

# (extra lines or replaced base, key, words the message must contain)
MODEL_CASES = [
    ("    aspect_ratio: [1.0]\n", "aspect_ratio", ["unknown key", "Did you mean 'aspect_ratios'"]),
    ("    sha256: abc\n", "sha256", ["64 hexadecimal", "sha256sum"]),
    ("    num_classes: true\n", "num_classes", ["integer >= 2 or 'auto'", "background"]),
    ("    num_classes: 1\n", "num_classes", ["integer >= 2", "background"]),
    ("    num_classes: '91'\n", "num_classes", ["integer >= 2"]),
    ("    min_size: 0\n", "min_size", ["outside (0, 1]", "min_scale"]),
    ("    max_size: 1.5\n", "max_size", ["outside (0, 1]", "max_scale"]),
    ("    min_size: 0.9\n    max_size: 0.5\n", "max_size", ["must be smaller", "pipeline.config"]),
    ("    min_size: big\n", "min_size", ["expected a number"]),
    ("    max_size: false\n", "max_size", ["expected a number"]),
    ("    input_order: [0, 0, 1]\n", "input_order", ["permutation of 0, 1, 2", "'auto'"]),
    ("    input_order: [0, 1]\n", "input_order", ["permutation"]),
    ("    input_order: [0, 1, true]\n", "input_order", ["permutation"]),
    ("    input_order: automatic\n", "input_order", ["permutation"]),
    ("    input_dims: [1, 300, 300]\n", "input_dims", ["channel", "[3, height, width]"]),
    ("    input_dims: [3, 300]\n", "input_dims", ["3 positive integers"]),
    ("    input_dims: [3, 0, 300]\n", "input_dims", ["3 positive integers"]),
    ("    input_dims: [3, 300.0, 300]\n", "input_dims", ["3 positive integers"]),
    ("    variance: [0.1, 0.1]\n", "variance", ["4 positive numbers"]),
    ("    variance: [0.1, 0.1, 0.2, -0.2]\n", "variance", ["4 positive numbers"]),
    ("    aspect_ratios: []\n", "aspect_ratios", ["positive numbers"]),
    ("    aspect_ratios: [1.0, x]\n", "aspect_ratios", ["expected a number"]),
    ("    feature_map_shapes: [19, 0]\n", "feature_map_shapes", ["positive integers"]),
    ("    confidence_threshold: 0\n", "confidence_threshold", ["outside (0, 1]"]),
    ("    nms_threshold: 1.01\n", "nms_threshold", ["outside (0, 1]"]),
    ("    nms_threshold: yes\n", "nms_threshold", ["expected a number"]),
    ("    top_k: 0\n", "top_k", ["below the minimum 1"]),
    ("    top_k: 10.5\n", "top_k", ["whole number"]),
    ("    top_k: 10\n    keep_top_k: 20\n", "keep_top_k", ["larger than top_k", "<= top_k"]),
    ("    engine: ../escape.bin\n", "engine", ["plain file name", "no '/'"]),
    ("    engine: .hidden.bin\n", "engine", ["plain file name"]),
    ("    engine: model.engine\n", "engine", ["ending in .bin"]),
    ("    pipeline_config: ssd/nothere.config\n", "pipeline_config",
     ["pipeline config not found", "nothere.config", "relative to the catalog"]),
    ("    pipeline_config: ssd\n", "pipeline_config", ["is a directory"]),
    ("    graph: ''\n", "graph", ["expected a file path"]),
]


@pytest.mark.parametrize(("extra", "key", "words"), MODEL_CASES,
                         ids=[case[0].strip().replace("\n", "|") for case in MODEL_CASES])
def test_model_key_errors(workdir, extra, key, words):
    base = GOOD_MODEL
    for line in extra.splitlines():
        # Replace the key when the base already has it, so each case has one problem.
        prefix = line.split(":")[0] + ":"
        base = "".join(old for old in base.splitlines(True) if not old.startswith(prefix))
    path = write_catalog(workdir, one_model(extra, base=base))
    problems, text = problems_of(path)
    assert [(p.model, p.key) for p in problems] == [("m1", key)], text
    for word in words:
        assert word in problems[0].message, problems[0].message
    rendered = problems[0].render()
    assert rendered.startswith(str(path) + ":")
    assert "model 'm1', key '{}': ".format(key) in rendered
    assert problems[0].line is not None and problems[0].line >= 3


def test_missing_required_keys(workdir):
    path = write_catalog(workdir, "models:\n  m1:\n    num_classes: 91\n")
    problems, _ = problems_of(path)
    assert [(p.model, p.key) for p in problems] == [("m1", "graph")]
    assert all("missing (required)" in p.message for p in problems)


def test_anchor_settings_default_to_auto(workdir):
    """min_size, max_size, aspect_ratios come from the graph's anchors unless written."""
    spec = load_catalog(str(write_catalog(workdir, "models:\n  m1:\n    graph: "
                                                   "ssd/frozen_inference_graph.pb\n"))).models["m1"]
    assert (spec.min_size, spec.max_size, spec.aspect_ratios) == ("auto", "auto", "auto")
    written = load_catalog(str(write_catalog(workdir, "models:\n  m1:\n    graph: "
                                                      "ssd/frozen_inference_graph.pb\n"
                                                      "    min_size: auto\n    max_size: 0.9\n"
                                                      "    aspect_ratios: auto\n"))).models["m1"]
    assert (written.min_size, written.max_size, written.aspect_ratios) == ("auto", 0.9, "auto")


def test_graph_not_found_names_the_tried_path(workdir):
    base = GOOD_MODEL.replace("ssd/frozen_inference_graph.pb", "nope/graph.pb")
    problems, text = problems_of(write_catalog(workdir, one_model(base=base)))
    assert [p.key for p in problems] == ["graph"]
    assert str(workdir / "nope" / "graph.pb") in text
    assert "relative to the catalog's directory {}".format(workdir) in text


def test_absolute_graph_not_found_does_not_mention_relative_paths(workdir):
    base = GOOD_MODEL.replace("ssd/frozen_inference_graph.pb", "/nonexistent/graph.pb")
    problems, text = problems_of(write_catalog(workdir, one_model(base=base)))
    assert "looked for /nonexistent/graph.pb" in text
    assert "relative" not in text


def test_sha256_mismatch_shows_both_and_the_fix(workdir):
    pin = "ab" * 32
    problems, text = problems_of(write_catalog(workdir, one_model("    sha256: " + pin + "\n")))
    assert [p.key for p in problems] == ["sha256"]
    assert "expected " + pin in text
    assert "actual " + hashlib.sha256(GRAPH_BYTES).hexdigest() in text
    assert "Update the pin" in text and "restore the original graph" in text


@pytest.mark.parametrize("pin", ["0" * 64, "1234" * 16])
def test_sha256_that_yaml_reads_as_a_number(workdir, pin):
    problems, _ = problems_of(write_catalog(workdir, one_model("    sha256: " + pin + "\n")))
    assert [p.key for p in problems] == ["sha256"]
    assert "read the value as a number" in problems[0].message
    assert "Quote the checksum" in problems[0].message


@pytest.mark.parametrize("name", [".hidden", "../up", "a/b", "spaces here", "ü"])
def test_unsafe_model_names(workdir, name):
    text = "models:\n  '{}':\n{}".format(name, GOOD_MODEL)
    problems, _ = problems_of(write_catalog(workdir, text))
    assert [(p.model, p.key) for p in problems] == [(name, None)]
    assert "Rename the model" in problems[0].message


def test_non_text_model_name(workdir):
    problems, _ = problems_of(write_catalog(workdir, "models:\n  123:\n" + GOOD_MODEL))
    assert [(p.model, p.key) for p in problems] == [("123", None)]
    assert "Quote the name" in problems[0].message


def test_model_that_is_not_a_mapping(workdir):
    problems, _ = problems_of(write_catalog(workdir, "models:\n  m1: just-a-string\n"))
    assert [(p.model, p.key) for p in problems] == [("m1", None)]
    assert "expected a mapping" in problems[0].message


def test_every_problem_is_reported_at_once(workdir):
    text = (
        "version: 1\nmodels:\n"
        "  a:\n" + GOOD_MODEL + "    top_k: 0\n    nms_thresold: 0.5\n"
        "  b:\n    graph: ssd/frozen_inference_graph.pb\n    min_size: 0.3\n    max_size: 0.2\n"
        "  c:\n" + GOOD_MODEL.replace("ssd/frozen", "gone/frozen")
    )
    problems, message = problems_of(write_catalog(workdir, text))
    assert [(p.model, p.key) for p in problems] == [
        ("a", "nms_thresold"), ("a", "top_k"), ("b", "max_size"), ("c", "graph")]
    assert message.startswith("4 problems in the model catalog:")
    assert len(message.splitlines()) == 5


# ------------------------------------------------------------------ file-level rules


def test_catalog_file_missing(tmp_path):
    path = tmp_path / "nope.yml"
    problems, text = problems_of(path)
    assert [(p.model, p.key) for p in problems] == [(None, None)]
    assert "file not found (looked for {})".format(path) in text
    assert "--catalog" in text


def test_catalog_is_a_directory(tmp_path):
    _, text = problems_of(tmp_path)
    assert "is a directory" in text


def test_catalog_not_utf8(tmp_path):
    path = tmp_path / "models.yml"
    path.write_bytes(b"models:\n  m\xff: {}\n")
    _, text = problems_of(path)
    assert "not UTF-8" in text


def test_yaml_syntax_error_has_file_and_line(tmp_path):
    path = write_catalog(tmp_path, "models:\n  m1:\n    graph: [unclosed\n    min_size: 0.2\n")
    problems, text = problems_of(path)
    assert len(problems) == 1
    assert problems[0].line == 4
    assert text.startswith("{}:4: YAML syntax error".format(path))


@pytest.mark.parametrize(("text", "words"), [
    ("", "the file is empty"),
    ("# only a comment\n", "the file is empty"),
    ("- a\n- b\n", "not a mapping"),
    ("version: 1\n", "key 'models': missing"),
    ("models: {}\n", "non-empty mapping"),
    ("models: [a, b]\n", "non-empty mapping"),
])
def test_unusable_top_level(tmp_path, text, words):
    _, message = problems_of(write_catalog(tmp_path, text))
    assert words in message


def test_unknown_top_level_key_and_version(workdir):
    text = "version: 2\nmodel: {}\nmodels:\n  m1:\n" + GOOD_MODEL
    problems, _ = problems_of(write_catalog(workdir, text))
    assert [(p.model, p.key, p.line) for p in problems] == [
        (None, "model", 2), (None, "version", 1)]
    assert "Did you mean 'models'" in problems[0].message
    assert "Write 'version: 1'" in problems[1].message


def test_duplicate_model_and_key(workdir):
    text = ("models:\n  m1:\n" + GOOD_MODEL + "    min_size: 0.3\n"
            "  m1:\n" + GOOD_MODEL)
    problems, _ = problems_of(write_catalog(workdir, text))
    assert [(p.model, p.key) for p in problems] == [("m1", "min_size"), ("m1", None)]
    assert problems[0].line == 9 and "line 5" in problems[0].message
    assert problems[1].line == 10 and "line 2" in problems[1].message


def test_unknown_selected_model_suggests_nearest(workdir):
    path = write_catalog(workdir, one_model(name="ssd_mobilenet_v2_coco"))
    problems, _ = problems_of(path, models=["ssd_mobilenet_v2_cocoo", "zzz"])
    assert [(p.model, p.line) for p in problems] == [
        ("ssd_mobilenet_v2_cocoo", None), ("zzz", None)]
    assert "Did you mean 'ssd_mobilenet_v2_coco'" in problems[0].message
    assert "Did you mean" not in problems[1].message
    assert "Models in the catalog: ssd_mobilenet_v2_coco" in problems[1].message


# ------------------------------------------------------------------ the shipped catalog


def test_shipped_catalog_is_valid_except_for_the_missing_graph():
    catalog_path = REPO / "models" / "models.yml"
    spec = load_catalog(str(catalog_path), check_graphs=False).models["ssd_mobilenet_v2_coco"]
    assert (spec.num_classes, spec.min_size, spec.max_size) == (91, "auto", "auto")
    assert spec.input_order == "auto" and spec.input_dims == [3, 300, 300]
    if not Path(spec.graph).exists():
        problems, _ = problems_of(catalog_path)
        assert [(p.model, p.key) for p in problems] == [("ssd_mobilenet_v2_coco", "graph")]


# ------------------------------------------------------------------ `check` command


def test_check_ok(workdir, capsys, own_subcommands):
    path = write_catalog(workdir, one_model())
    assert cli.main(["check", "--catalog", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("OK m1: ")
    assert "TRT_m1.bin" in out


def test_check_errors_exit_2_with_all_messages(workdir, capsys, own_subcommands):
    path = write_catalog(workdir, one_model("    top_k: 0\n    nms_threshold: 2\n"))
    assert cli.main(["check", "--catalog", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: 2 problems in the model catalog:")
    assert "key 'top_k'" in err and "key 'nms_threshold'" in err
    assert "Traceback" not in err


def test_check_json_success(workdir, capsys, own_subcommands):
    path = write_catalog(workdir, one_model() + "  m2:\n" + GOOD_MODEL)
    assert cli.main(["check", "--catalog", str(path), "--json", "m2"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["status"] == "ok" and record["kind"] is None
    result = record["result"]
    assert result["catalog"] == str(path)
    assert list(result["models"]) == ["m2"]
    assert result["models"]["m2"]["engine"] == "TRT_m2.bin"


def test_check_json_errors(workdir, capsys, own_subcommands):
    base = GOOD_MODEL.replace("input_order: auto", "input_order: [2, 2, 2]")
    path = write_catalog(workdir, one_model(base=base))
    assert cli.main(["check", "--catalog", str(path), "--json"]) == 2
    captured = capsys.readouterr()
    record = json.loads(captured.out)
    assert (record["status"], record["kind"]) == ("failed", "user")
    errors = record["result"]["errors"]
    assert [(e["file"], e["model"], e["key"]) for e in errors] == [
        (str(path), "m1", "input_order")]
    assert "permutation" in errors[0]["message"]
    assert errors[0]["text"].startswith(str(path))
    assert captured.err == "error: the check command reported problems (see result)\n"


def test_check_no_graphs_option(workdir, capsys, own_subcommands):
    base = GOOD_MODEL.replace("ssd/frozen", "absent/frozen")
    path = write_catalog(workdir, one_model(base=base))
    assert cli.main(["check", "--catalog", str(path)]) == 2
    assert cli.main(["check", "--catalog", str(path), "--no-graphs"]) == 0


def test_python_m_builder_check_subprocess(workdir):
    path = write_catalog(workdir, one_model("    keep_top_k: 500\n"))
    result = subprocess.run(
        [sys.executable, "-m", "builder", "check", "--catalog", str(path)],
        cwd=str(REPO), capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2, result.stderr
    assert "model 'm1', key 'keep_top_k': keep_top_k 500 is larger than top_k 100" in (
        result.stderr)
    assert "Traceback" not in result.stderr


def test_check_compares_the_catalog_with_a_real_graph(tmp_path, capsys, monkeypatch):
    from tests.graphs.generated import graphs_dir  # noqa: PLC0415 (generates with TensorFlow)

    monkeypatch.setattr(cli, "SUBCOMMANDS", (("check", "commands.check"),))
    source = graphs_dir()
    catalog = tmp_path / "models.yml"
    catalog.write_text("version: 1\nmodels:\n  m:\n    graph: {}\n    min_size: 0.2\n"
                       "    max_size: 0.95\n    num_classes: 90\n".format(
                           source / "ssd_mobilenet_v2_coco" / "frozen_inference_graph.pb"))
    assert cli.main(["check", "--catalog", str(catalog)]) == 2
    err = capsys.readouterr().err
    assert "num_classes is 90 in the catalog but 91 in the graph" in err
    assert "Change it in the catalog to 91 (or write 'auto')" in err
    catalog.write_text(catalog.read_text().replace("num_classes: 90", "num_classes: auto"))
    assert cli.main(["check", "--catalog", str(catalog)]) == 0
    assert "graph checked" in capsys.readouterr().out
