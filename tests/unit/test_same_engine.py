"""Two catalog models that would build the same engine (same graph bytes, same settings; the
name is not in the build key) are refused by the preflight, naming both models, their catalog
lines and the hosts that select the second, and the advice it gives clears the problem."""

from __future__ import annotations

import hashlib
import time

import pytest
import yaml

from builder import graphsums
from controller import preflight
from tests.unit.catalog_files import write_catalog

SETTINGS = {"num_classes": 91, "input_dims": "[3, 300, 300]"}


@pytest.fixture
def site(tmp_path):
    (tmp_path / "catalog").mkdir()
    (tmp_path / "catalog" / "a.pb").write_bytes(b"one graph")
    (tmp_path / "catalog" / "b.pb").write_bytes(b"one graph")
    (tmp_path / "catalog" / "c.pb").write_bytes(b"another graph")
    (tmp_path / "inventory" / "host_vars").mkdir(parents=True)
    return tmp_path


def run(site, models, selected_by):
    """Preflight of a catalog {model: settings} and hosts {host: [models]} (group nano)."""
    catalog = write_catalog(site / "catalog" / "models.yml", models)
    hostvars = {}
    for host, selected in selected_by.items():
        values = {"engine_models": selected}
        (site / "inventory" / "host_vars" / f"{host}.yml").write_text(yaml.safe_dump(values))
        hostvars[host] = dict(values, group_names=["nano"])
    return preflight.run_preflight(str(catalog), list(selected_by), hostvars,
                                   [str(site / "inventory")], None)


def same_engine(result):
    return [p for p in result["problems"] if "would build the same engine" in p]


def test_two_names_for_one_graph_and_settings_are_refused(site):
    models = {"front": dict(SETTINGS, graph="a.pb"), "rear": dict(SETTINGS, graph="a.pb")}
    result = run(site, models, {"nano-1": ["front"], "nano-2": ["rear"]})
    [problem] = same_engine(result)
    catalog = str(site / "catalog" / "models.yml")
    assert problem.startswith(f"{catalog}:10: models 'front' and 'rear' ({catalog}:6)")
    assert "hosts that select 'rear': nano-2" in problem
    assert "Remove 'rear' from the catalog and select 'front' instead" in problem


def test_a_copied_graph_file_is_the_same_graph(site):
    models = {"front": dict(SETTINGS, graph="a.pb"), "rear": dict(SETTINGS, graph="b.pb")}
    [problem] = same_engine(run(site, models, {"nano-1": ["front", "rear"]}))
    assert "hosts that select 'rear': nano-1" in problem


@pytest.mark.parametrize("rear", [
    dict(SETTINGS, graph="c.pb"),
    dict(SETTINGS, graph="a.pb", num_classes=90),
    dict(SETTINGS, graph="a.pb", min_size=0.3),
])
def test_another_graph_or_setting_is_another_engine(site, rear):
    models = {"front": dict(SETTINGS, graph="a.pb"), "rear": rear}
    assert same_engine(run(site, models, {"nano-1": ["front", "rear"]})) == []


def test_only_selected_models_count_and_the_advice_clears_it(site):
    models = {"front": dict(SETTINGS, graph="a.pb"), "rear": dict(SETTINGS, graph="a.pb")}
    assert same_engine(run(site, models, {"nano-1": ["front"]})) == []
    # The advice followed: 'rear' removed from the catalog, 'front' selected in its place.
    result = run(site, {"front": models["front"]}, {"nano-1": ["front"], "nano-2": ["front"]})
    assert same_engine(result) == []
    assert not [p for p in result["problems"] if "'rear'" in p]


def test_a_graph_unchanged_since_the_last_run_is_not_read_again(site, monkeypatch, tmp_path):
    # The pin check and the unpinned sum read each graph once; the next run takes the sums
    # from the controller's cache while the files are unchanged, and reads a changed one.
    monkeypatch.setattr(preflight, "GRAPH_SUMS_CACHE", tmp_path / "cache" / "sums.json")
    monkeypatch.setattr(graphsums, "RACY_SECONDS", 0.0)
    catalog = site / "catalog"
    pinned = dict(SETTINGS, graph="a.pb", sha256=hashlib.sha256(b"one graph").hexdigest())
    models = {"front": pinned, "rear": dict(SETTINGS, graph="c.pb")}
    read = []
    real_sha256 = graphsums.file_sha256
    monkeypatch.setattr(graphsums, "file_sha256", lambda path: read.append(path) or
                        real_sha256(path))
    time.sleep(0.05)
    first = run(site, models, {"nano-1": ["front", "rear"]})
    assert not pin_problems(first) and sorted(read) == [str(catalog / "a.pb"),
                                                         str(catalog / "c.pb")]
    del read[:]
    again = run(site, models, {"nano-1": ["front", "rear"]})
    assert read == [] and not pin_problems(again)
    assert again["catalog"]["rear"]["sha256"] == hashlib.sha256(b"another graph").hexdigest()
    (catalog / "a.pb").write_bytes(b"one graph, changed")
    changed = run(site, models, {"nano-1": ["front", "rear"]})
    assert read == [str(catalog / "a.pb")]
    assert pin_problems(changed)


def pin_problems(result):
    return [p for p in result["problems"] if "does not match the pin" in p]
