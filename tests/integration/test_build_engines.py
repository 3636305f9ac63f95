"""`ansible-playbook build_engines.yml` end to end on one simulated mixed fleet.

The tests of this module run in file order on the same fleet, catalog and store (the
environment of each device is installed once): check mode first, then the first real run,
then reruns that must change nothing or only what the test changed. Each scenario prints
its wall time (pytest -s, or in the report on failure).
"""

import hashlib
import json
import subprocess
import sys
import threading
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml

from controller import runlock
from module_utils.trt_deploy import STATEMENT

FLEET = "nano=2,tx2=1,xavier=1,xavier@35.4.1=1,orin=1"
MODELS = ["ssd_mobilenet_v1_coco", "ssd_mobilenet_v2_coco"]
CHANGED_MODEL = "ssd_mobilenet_v1_coco"
ROOT_DIR = "/opt/trt-builder"
ORIN = "orin-1"
NANOS = ["nano-1", "nano-2"]
# Platform scope: one device of each platform builds each model; a platform's builds spread
# over its devices (the two Nanos build one model each). xavier-2 (L4T 35.4.1, TensorRT 8.5)
# and orin-1 (TensorRT 10) build from ONNX files exported on the controller, the others from
# UFF.
SOLE = ["orin-1", "tx2-1", "xavier-1", "xavier-2"]  # alone on their platform: build both
ONNX_HOSTS = ["orin-1", "xavier-2"]
PLATFORMS = 5
# TensorRT 8.0+ (the timing cache came with 8.0): nano-* (8.2.1), xavier-2 (8.5.2), orin-1
# (10.3.0); tx2-1 (6.0.1) and xavier-1 (7.1.3) have none.
TIMING_CACHE_PLATFORMS = ("jetson-nano", "jetson-agx-xavier_l4t35", "jetson-agx-orin")
# How TensorRT refuses a plan from another GPU / another TensorRT (reference/jetson-platforms.md).
REFUSALS = ("generated on an incompatible device", "Version tag does not match",
            "not compatible with this version of TensorRT")
REPO = Path(__file__).resolve().parents[2]
REGISTERED = "first-run-registered.jsonl"  # every registered result of the first run
ANSIBLE = Path(sys.executable).parent / "ansible"


def sha256_file(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def store_snapshot(store):
    """path -> (sha256, mtime_ns) of every file of the store except its lock."""
    return {
        str(path.relative_to(store)): (sha256_file(path), path.stat().st_mtime_ns)
        for path in sorted(Path(store).rglob("*"))
        if path.is_file() and path.name != ".lock"
    }


def timing_caches(store):
    """platform_id -> the names of its timing caches in the store."""
    root = Path(store) / ".timing-caches"
    return {d.name: sorted(f.name for f in d.glob("*.cache")) for d in sorted(root.iterdir())
            } if root.is_dir() else {}


def timing_cache_entries(store, platform_id, names):
    """Every entry of the named caches of a platform, as the SIMULATED doubles write them (a
    header line, then the entries as JSON)."""
    entries = {}
    for name in names:
        text = (Path(store) / ".timing-caches" / platform_id / name).read_text()
        entries.update(json.loads(text.split("\n", 1)[1]))
    return entries


def platform_dirs(store):
    """The store's platform directories (not its dot directories, not its ONNX exports)."""
    return sorted(p.name for p in Path(store).iterdir()
                  if p.is_dir() and not p.name.startswith(".") and p.name != "onnx")


def timed(record, name, run):
    record[name] = round(run.seconds, 1)
    print("scenario {}: {:.1f} s".format(name, run.seconds))
    return run


# ---------------------------------------------------------------- the fleet


@pytest.fixture(scope="module")
def timings():
    record = {}
    yield record
    print("scenario wall times (s): {}".format(json.dumps(record, sort_keys=True)))


@pytest.mark.fleet
def test_check_mode_prints_the_plan_and_changes_nothing(fleet, runner, timings):
    run = timed(timings, "check_mode", runner.run("--check"))

    assert "would build" in run.output, run.describe()
    for host in SOLE:
        statuses = {r["model"]: r["status"] for r in run.summary() if r["host"] == host}
        assert statuses == dict.fromkeys(MODELS, "would build"), run.describe()
    nano = {(r["host"], r["model"]): r["status"] for r in run.summary() if r["host"] in NANOS}
    for model in MODELS:  # one Nano builds it, the other is its fallback
        assert sorted(nano[(h, model)] for h in NANOS) == ["fallback", "would build"]
    assert {h for (h, m), s in nano.items() if s == "would build"} == set(NANOS)
    assert run.rows_by("failed") == []
    assert run.builds() == []
    assert not runner.store.exists()
    for host in fleet.names:
        probe = fleet.ssh(host, "test -e {}".format(ROOT_DIR))
        assert probe.returncode == 1, "{}: {} exists after --check".format(host, ROOT_DIR)


@pytest.mark.fleet
def test_mixed_fleet_end_to_end(fleet, runner, timings):
    run = timed(timings, "first_run", runner.run(registered=runner.log_dir / REGISTERED))

    assert run.returncode == 0, run.describe()
    # A conditional that is not a boolean is deprecated in ansible-core 2.16 and an error
    # from 2.19: a cold run (installs, builds, confirmations) must use none.
    assert "DEPRECATION WARNING" not in run.output, run.describe()
    nano_builds = [(h, m) for h, m in run.builds() if h in NANOS]
    assert sorted(m for _, m in nano_builds) == sorted(MODELS)
    assert sorted(h for h, _ in nano_builds) == NANOS, "the Nanos' builds are spread"
    assert run.builds() == sorted([(h, m) for h in SOLE for m in MODELS] + nano_builds)
    assert set(run.rows_by("built")) == set(run.builds())
    assert set(run.rows_by("shared")) == {(h, m) for h in NANOS for m in MODELS} - set(
        nano_builds)

    index = json.loads((runner.store / "index.json").read_text())
    assert index["format"] == 2 and index["simulated"] is True
    platforms = platform_dirs(runner.store)
    assert len(platforms) == PLATFORMS
    entries = {(e["platform_id"], e["model"]): (rel, e) for rel, e in index["entries"].items()}
    assert sorted({p for p, _ in entries}) == platforms
    for platform_id in platforms:
        for model in MODELS:
            rel, summary = entries[(platform_id, model)]
            entry_dir = runner.store / rel
            assert rel == "{}/{}/{}".format(platform_id, model, summary["variant"])
            assert sorted(p.name for p in entry_dir.iterdir()) == sorted(
                ["TRT_{}.bin".format(model), "manifest.json", STATEMENT])
            manifest = json.loads((entry_dir / "manifest.json").read_text())
            engine = entry_dir / manifest["engine_file"]
            assert manifest["platform_id"] == platform_id and manifest["model"] == model
            assert manifest["engine_sha256"] == sha256_file(engine)
            assert manifest["verify"], "engine verified on its device before collection"
            assert b"SIMULATED" in engine.read_bytes()[:4096]
            assert summary["build_key"] == manifest["build_key"]
            onnx = platform_id.startswith(("jetson-agx-orin", "jetson-agx-xavier_l4t35"))
            assert manifest["engine_path"] == ("onnx" if onnx else "uff"), platform_id
            if onnx:
                assert manifest["onnx"]["verification"]["ok"] is True
                assert [o["name"] for o in manifest["outputs"]] == [
                    "num_detections", "detection_boxes", "detection_scores",
                    "detection_classes"]
    (nano_platform,) = [p for p in platforms if p.startswith("jetson-nano")]
    for model in MODELS:  # each Nano's engine was verified by the other before it was shared
        summary = entries[(nano_platform, model)][1]
        assert {summary["built_on"], *summary["confirmed_by"]} == set(NANOS), summary
    # ... in the first round, as soon as the other had filed it: no round had work after it
    # (controller/confirm_wait.py).
    works = {}
    for line in (runner.log_dir / REGISTERED).read_text().splitlines():
        entry = json.loads(line)
        if entry["register"] == "engine_round" and not entry["result"].get("skipped"):
            works[entry["result"]["round"]] = entry["result"]["work"]
    assert sorted(works[0]) == sorted(NANOS + SOLE), works
    assert {r: w for r, w in works.items() if r > 0} == {1: {}}, works
    assert not list(runner.store.glob(".staging/*")), "staging area left behind"
    caches = timing_caches(runner.store)
    assert sorted(caches) == sorted(p for p in platforms if p.startswith(TIMING_CACHE_PLATFORMS))
    for platform_id, names in caches.items():
        # The two Nanos built at the same time, each returned its own; one builder elsewhere.
        assert len(names) == (2 if platform_id.startswith("jetson-nano") else 1), caches
    check_reports_match_index(runner.store, index, NANOS + SOLE)
    # One ONNX export per model on the controller, kept in the store, pushed to both.
    assert len(list(runner.store.glob("onnx/*/*/*.onnx"))) == len(MODELS)


class _ReportRows(HTMLParser):
    """(platform, model) -> {cell class: data-value} of report.html's engines table."""

    def __init__(self):
        super().__init__()
        self.rows, self._row = {}, None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "tr" and "data-platform" in attrs:
            self._row = self.rows.setdefault((attrs["data-platform"], attrs["data-model"]), {})
        elif self._row is not None and "data-value" in attrs:
            self._row[attrs.get("class", "").split()[-1]] = attrs["data-value"]


def check_reports_match_index(store, index, builders):
    """report.html and report.md show every engine of index.json with its own values."""
    page = _ReportRows()
    page.feed((store / "report.html").read_text())
    markdown = (store / "report.md").read_text()
    expected = {(e["platform_id"], e["model"]): e for e in index["entries"].values()}
    assert set(page.rows) == set(expected)
    for (platform_id, model), entry in expected.items():
        row = page.rows[(platform_id, model)]
        assert row["status"] == "verified", (platform_id, model, row)
        assert row["fps"] == str(entry["verify"]["fps"])
        assert row["size"] == str(entry["engine_size"])
        assert row["graph"] == entry["graph_sha256"] and row["built"] == entry["created_utc"]
        assert row["built-on"] == entry["built_on"] and entry["built_on"] in builders
        assert any(line.startswith("| {} (".format(platform_id)) and "| {} |".format(model) in line
                   for line in markdown.splitlines()), (platform_id, model)



def test_one_model_follows_the_route(runner):
    """docs/internals.md, "The route of a model": one model of one host through the first
    run's registered results, under its own name at every step after the user's."""
    host, model = "tx2-1", MODELS[0]
    registered = {}
    for line in (runner.log_dir / REGISTERED).read_text().splitlines():
        entry = json.loads(line)
        # run_once steps are reported for the first host only; the others are the host's.
        run_once = entry["register"] in ("preflight_result", "engine_plan_result",
                                         "engine_round")
        if (run_once or entry["host"] == host) and not entry["result"].get("skipped"):
            registered.setdefault(entry["register"], []).append(entry["result"])
    # 1. selection
    (preflight,) = registered["preflight_result"]
    assert model in preflight["selections"][host]["models"]
    # 2. plan entry
    (the_plan,) = registered["engine_plan_result"]
    entry = the_plan["hosts"][host]["models"][model]
    # 3. round item: the round that builds it, with its files and commands
    (work,) = [r["work"][host] for r in registered["engine_round"] if model in
               (r["work"].get(host) or {}).get("build", [])]
    work_dir = "{}/work/{}".format(ROOT_DIR, model)
    assert any(push["dest"] == work_dir + "/" for push in work["push"])
    assert any(model in process["models"] for process in work["processes"])
    assert work_dir in work["listing"]
    # 4. round result (the device's records and listing, read back in the device's last step):
    # the outcome from the builder's record naming the model, and the fetch of its engine and
    # manifest, both found in the device's listing of its work directory
    # (the first round that read it back built; later rounds carry its outcome on)
    result = next(r for r in registered["engine_round_result"] if model in r.get("outcomes", {}))
    outcome = result["outcomes"][model]
    assert outcome["status"] == "built" and outcome["verify"] is not None
    assert outcome["build_key"] == entry["build_key"]
    fetch = {item["name"]: item for item in result["fetch"] if item["model"] == model}
    assert set(fetch) == {entry["engine"], "manifest.json"}
    assert {item["src"] for item in fetch.values()} == {
        "{}/{}".format(work_dir, name) for name in fetch}
    assert result["fetch_failed"] is None
    assert {Path(path).name for path in result["fetched"]} >= set(fetch)
    # 5. store: filed under the plan's platform, model and variant
    filed = registered["engine_round_result"][-1]
    stored = Path(filed["filed"][model])
    assert stored.parts[-3:] == (the_plan["hosts"][host]["platform_id"], model,
                                 entry["variant"])
    assert (stored / "manifest.json").is_file()
    assert json.loads((stored / "manifest.json").read_text())["build_key"] == entry["build_key"]

def _push_and_verify(fleet, host, engine):
    """Copy an engine into a device's /tmp and run `builder verify` on it there."""
    target = "/tmp/{}".format(engine.name)
    fleet.device_path(host, target).write_bytes(engine.read_bytes())
    return fleet.ssh(host, "{}/venv/bin/python -m builder verify {} --json".format(
        ROOT_DIR, target))


@pytest.mark.fleet
def test_engines_load_on_their_platform_only(fleet, runner):
    nano_dir = next(p for p in platform_dirs(runner.store) if p.startswith("jetson-nano"))
    (engine,) = (runner.store / nano_dir / MODELS[0]).glob("*/TRT_{}.bin".format(MODELS[0]))

    # The store's copy (fetched, filed) still loads on its platform ...
    same = _push_and_verify(fleet, "nano-1", engine)
    assert same.returncode == 0, same.stderr
    assert json.loads(same.stdout)["result"]["ok"] is True

    # ... and is refused on other GPUs (nano-2 has no builder venv: it built nothing).
    for host in ("xavier-1", "tx2-1"):
        other = _push_and_verify(fleet, host, engine)
        assert other.returncode == 1, (host, other.stdout, other.stderr)
        assert any(reason in other.stderr for reason in REFUSALS), (host, other.stderr)


@pytest.mark.fleet
def test_second_run_changes_nothing(runner, timings):
    before = store_snapshot(runner.store)
    run = timed(timings, "second_run", runner.run())

    assert run.builds() == [], run.describe()
    recap = run.recap()
    assert recap and all(counts["changed"] == 0 for counts in recap.values()), recap
    # Nothing else ran than the facts on every device and, counted on the first host, the
    # preflight and the plan, which also reported.
    assert sorted(counts["ok"] for counts in recap.values()) == [1] * (len(recap) - 1) + [3], \
        recap
    assert "Summarize each host and model" not in run.output, run.describe()
    assert store_snapshot(runner.store) == before
    assert run.returncode == 0, run.describe()
    assert run.rows_by("failed") == []


@pytest.mark.fleet
def test_a_truncated_index_is_rebuilt_by_the_next_run(runner, timings):
    index_path = runner.store / "index.json"
    good = json.loads(index_path.read_text())
    index_path.write_text(index_path.read_text()[:100])  # a run killed while writing it
    run = timed(timings, "truncated_index", runner.run())
    assert run.builds() == [], run.describe()
    assert "rebuilt it from the manifests" in run.output, run.describe()
    rebuilt = json.loads(index_path.read_text())
    assert {rel: e["build_key"] for rel, e in rebuilt["entries"].items()} == {
        rel: e["build_key"] for rel, e in good["entries"].items()}


@pytest.mark.fleet
def test_a_second_run_on_the_same_store_does_not_build_twice(runner, timings):
    # A second run while the first holds the store stops at once (engine_store_wait_s: 0),
    # saying who holds it; it builds nothing and leaves the first run's lock alone.
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    lock = runner.store / ".run-lock"
    try:
        lock.write_text(json.dumps(dict(runlock.machine(), pid=holder.pid,
                                        start=runlock.process_start(holder.pid), user="root",
                                        since="now",
                                        command="ansible-playbook build_engines.yml")))
        run = timed(timings, "store_busy", runner.run(extra_vars={"engine_store_wait_s": 0}))
        assert run.returncode != 0 and run.builds() == [], run.describe()
        assert "is in use by the run of pid {}".format(holder.pid) in run.output, run.describe()
        assert lock.exists()
    finally:
        holder.kill()
        holder.wait()
    # Its process gone, the lock is stale: the next run takes the store over.
    run = timed(timings, "stale_lock", runner.run())
    assert run.builds() == [] and "is in use" not in run.output, run.describe()
    assert not lock.exists()


def _change_graph(catalog, model):
    """Give ``model`` a different (still valid) graph and pin its new sha256 in the catalog."""
    from tensorflow.core.framework import graph_pb2  # noqa: PLC0415  (slow import)

    data = yaml.safe_load(catalog.read_text())
    graph_path = catalog.parent / data["models"][model]["graph"]
    graph = graph_pb2.GraphDef()
    graph.ParseFromString(graph_path.read_bytes())
    marker = graph.node.add()
    marker.name = "test_revision_marker"
    marker.op = "NoOp"
    graph_path.write_bytes(graph.SerializeToString(deterministic=True))
    data["models"][model]["sha256"] = sha256_file(graph_path)
    catalog.write_text(yaml.safe_dump(data, sort_keys=False))


@pytest.mark.fleet
def test_changed_graph_rebuilds_that_model_only(runner, timings):
    before = store_snapshot(runner.store)
    caches_before = timing_caches(runner.store)
    entries_before = {platform_id: timing_cache_entries(runner.store, platform_id, names)
                      for platform_id, names in caches_before.items()}
    _change_graph(runner.catalog, CHANGED_MODEL)
    run = timed(timings, "changed_graph", runner.run())

    builders = [h for h, m in run.builds() if m == CHANGED_MODEL]
    assert len(builders) == PLATFORMS and set(SOLE) < set(builders), run.describe()
    assert [m for _, m in run.builds()] == [CHANGED_MODEL] * PLATFORMS, run.describe()
    after = store_snapshot(runner.store)
    for path, state in before.items():
        if CHANGED_MODEL in path or path in ("index.json", "report.md", "report.html") \
                or path.startswith(".timing-caches/"):
            continue
        assert after[path] == state, "{} changed".format(path)
    changed = [p for p in after if CHANGED_MODEL in p and p.endswith("manifest.json")]
    assert len(changed) == PLATFORMS and all(after[p] != before[p] for p in changed)
    # The rebuild started from the store's timing caches of its platform (all of them,
    # combined on the device), and the one cache it returned replaced them.
    caches_after = timing_caches(runner.store)
    assert sorted(caches_after) == sorted(caches_before)
    for path in changed:
        platform_id = path.split("/", 1)[0]
        used = json.loads((runner.store / path).read_text())["timing_cache"]
        if platform_id not in caches_before:
            assert used is None, path  # TensorRT < 8
            continue
        assert used["used"] is True and used["dropped"] == [], (path, used)
        assert sorted(used["merged"]) == caches_before[platform_id], (path, used)
        assert len(caches_after[platform_id]) == 1, caches_after
        # The one cache holds every entry of those it replaced. A graph whose layers were all
        # timed before adds none (its bytes changed, not its layers): then it is the same file.
        grown = timing_cache_entries(runner.store, platform_id, caches_after[platform_id])
        assert entries_before[platform_id].items() <= grown.items(), (platform_id, grown)


@pytest.mark.fleet
def test_added_host_of_a_known_platform_builds_nothing(runner, module_sim_fleet, timings):
    extra = module_sim_fleet("nano=1")
    inventory = yaml.safe_load(extra.inventory.read_text())
    hosts = inventory["all"]["children"]["nano"]["hosts"]
    hosts["nano-added"] = hosts.pop("nano-1")
    renamed = extra.dir / "inventory-renamed.yml"
    renamed.write_text(yaml.safe_dump(inventory))
    runner.inventories.append(renamed)
    try:
        run = timed(timings, "added_host", runner.run())
    finally:
        runner.inventories.remove(renamed)

    assert run.builds() == [], run.describe()
    assert {(r["model"], r["status"]) for r in run.summary() if r["host"] == "nano-added"} == {
        (m, "cached") for m in MODELS}
    assert run.recap()["nano-added"]["changed"] == 0
    probe = extra.ssh("nano-1", "test -e {}/venv".format(ROOT_DIR))
    assert probe.returncode == 1, "no environment installed on a host that builds nothing"


@pytest.mark.fleet
def test_unreachable_and_oom_then_rerun_finishes_what_is_missing(fleet, runner, timings):
    # New options give every platform new build keys, so every builder has work.
    options = {"engine_precision": "fp32", "engine_models": [MODELS[1]]}
    fleet.fault("nano-1", "oom")
    cut = threading.Event()

    def cut_tx2_after_facts(line):
        if not cut.is_set() and line.startswith("TASK [Plan who builds what"):
            cut.set()
            fleet.fault("tx2-1", "unreachable")

    try:
        run = timed(timings, "faults", runner.run(extra_vars=options, on_line=cut_tx2_after_facts))
    finally:
        fleet.fault("nano-1", "ok")
        fleet.fault("tx2-1", "ok")

    assert cut.is_set()
    assert run.returncode != 0, run.describe()
    rows = {(r["host"], r["model"]): r for r in run.summary()}
    assert rows[("nano-1", MODELS[1])]["status"] == "failed"
    assert rows[("nano-2", MODELS[1])]["status"] == "built", "next nano took over"
    assert rows[("tx2-1", MODELS[1])]["status"] == "failed"
    assert "unreachable" in rows[("tx2-1", MODELS[1])]["detail"]
    assert rows[("xavier-1", MODELS[1])]["status"] == "built"
    assert run.recap()["tx2-1"]["unreachable"] == 1
    # The report's platform x model grid names the failure; the Nano's OOM is not there
    # (nano-2 built that engine in the same run).
    assert grid_failures(runner.store) == {("jetson-tx2", MODELS[1], "tx2-1")}

    rerun = timed(timings, "after_faults", runner.run(extra_vars=options))
    assert rerun.builds() == [("tx2-1", MODELS[1])], rerun.describe()
    statuses = {(r["host"], r["model"]): r["status"] for r in rerun.summary()}
    assert statuses[("tx2-1", MODELS[1])] == "built"
    # nano-2 built it after nano-1 ran out of memory; nano-1 verifies it now, before it is
    # shared (the run that built it had no round left for that).
    assert statuses[("nano-1", MODELS[1])] == "shared"
    assert rerun.rows_by("failed") == []
    assert grid_failures(runner.store) == set()


def grid_failures(store):
    """{(module, model, host)} of the failures report.md's platform x model grid shows."""
    section = (Path(store) / "report.md").read_text().split("## Platform × model")[1]
    header = next(line for line in section.splitlines() if line.startswith("| platform |"))
    models = [cell.strip() for cell in header.strip("|").split("|")][1:]
    found = set()
    for line in section.splitlines():
        if not line.startswith("| jetson-"):
            continue
        cells = [cell.strip() for cell in line.strip("|").split(" | ")]
        for model, cell in zip(models, cells[1:]):
            for part in cell.split("; "):
                if part.startswith("failed "):
                    found.add((cells[0].split("_")[0], model, part.split(" on ")[1].split()[0]))
    return found


@pytest.mark.fleet
def test_build_survives_a_dropped_connection(fleet, runner, timings):
    # The device cuts every SSH session when the build starts and refuses new ones for a
    # while; the build goes on and Ansible's polling picks the result up afterwards.
    options = {"engine_precision": "fp32", "engine_models": [MODELS[0]]}
    fleet.fault("xavier-1", "drop-mid-build")
    try:
        run = timed(timings, "dropped_connection",
                    runner.run("--limit", "xavier-1", extra_vars=options))
    finally:
        fleet.fault("xavier-1", "ok")

    assert run.builds() == [("xavier-1", MODELS[0])], run.describe()
    assert run.rows_by("built") == [("xavier-1", MODELS[0])], run.describe()
    assert run.recap()["xavier-1"]["unreachable"] == 0
    assert run.returncode == 0, run.describe()
