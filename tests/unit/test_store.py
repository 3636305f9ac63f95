"""The engine store (controller/store.py): variants, verification, quarantine, migration of
the old layout, the store tool, and refusals that leave nothing behind."""

import hashlib
import json
import os
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

from controller import onnx_exports
from controller.store import EngineStore, StoreError
from tests.unit.store_helpers import staged

NANO = "jetson-nano_l4t32.7.1_trt8.2.1"
REPO = Path(__file__).resolve().parents[2]
FP16 = {"precision": "fp16", "workspace_mib": 512, "max_batch": 1, "dla_core": None}
FP32_DLA = {"precision": "fp32", "workspace_mib": 2048, "max_batch": 1, "dla_core": 0}


def snapshot(root):
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(Path(root).rglob("*"))
            if p.is_file() and p.name != ".lock"}


def file_one(store_dir, tmp_path, model="m1", key="a" * 64, *, options=FP16, host="nano-1",
             plan=None):
    """File a staged engine; ``plan`` overrides what the plan expects of it."""
    directory = tmp_path / "staged" / host / model
    manifest = staged(directory, model, NANO, key, options)
    expected = dict(platform_id=NANO, model=model, build_key=key, variant=_variant(options))
    expected.update(plan or {})
    result = EngineStore(store_dir).file_engine(directory, built_on=host, max_bytes=1 << 20,
                                                **expected)
    return manifest, result


def _variant(options):
    from controller.selection import EngineOptions  # noqa: PLC0415
    return EngineOptions(**options).variant


def test_two_variants_of_one_model_live_side_by_side(tmp_path):
    store_dir = tmp_path / "engines"
    file_one(store_dir, tmp_path, key="a" * 64, options=FP16)
    file_one(store_dir, tmp_path, key="b" * 64, options=FP32_DLA, host="xavier-2")
    assert sorted(p.name for p in (store_dir / NANO / "m1").iterdir()) == [
        "fp16-ws512", "fp32-dla0-ws2048"]
    index = json.loads((store_dir / "index.json").read_text())
    assert index["format"] == 2 and index["simulated"] is True
    assert {e["build_key"]: rel for rel, e in index["entries"].items()} == {
        "a" * 64: NANO + "/m1/fp16-ws512", "b" * 64: NANO + "/m1/fp32-dla0-ws2048"}
    store = EngineStore(store_dir)
    entry = store.lookup("b" * 64)
    assert entry.variant == "fp32-dla0-ws2048" and store.verify(entry) is None
    assert index["entries"][NANO + "/m1/fp32-dla0-ws2048"]["built_on"] == "xavier-2"


def test_filing_the_same_engine_again_changes_nothing(tmp_path):
    store_dir = tmp_path / "engines"
    _, first = file_one(store_dir, tmp_path)
    before = snapshot(store_dir)
    _, again = file_one(store_dir, tmp_path)
    assert first["changed"] and not again["changed"]
    assert snapshot(store_dir) == before


@pytest.mark.parametrize("override, message", [
    ({"platform_id": "jetson-agx-xavier_l4t32.4.4_trt7.1.3"}, "its manifest says platform_id"),
    ({"model": "m2"}, "its manifest says model"),
    ({"build_key": "c" * 64}, "its manifest says build_key"),
    ({"variant": "fp32-ws512"}, "built with options fp16-ws512"),
])
def test_a_misfiled_engine_is_refused_and_nothing_is_written(tmp_path, override, message):
    store_dir = tmp_path / "engines"
    with pytest.raises(StoreError, match=message):
        file_one(store_dir, tmp_path, plan=override)
    assert snapshot(store_dir) == {}


def test_a_corrupt_transfer_or_an_oversized_file_is_refused(tmp_path):
    store_dir = tmp_path / "engines"
    directory = tmp_path / "staged" / "m1"
    staged(directory, "m1", NANO, "a" * 64, FP16)
    engine = directory / "TRT_m1.bin"
    engine.write_bytes(engine.read_bytes()[:-1] + b"X")
    store = EngineStore(store_dir)
    args = dict(platform_id=NANO, model="m1", variant="fp16-ws512", build_key="a" * 64,
                built_on="nano-1")
    with pytest.raises(StoreError, match="does not match its manifest"):
        store.file_engine(directory, max_bytes=1 << 20, **args)
    with pytest.raises(StoreError, match="above the limit of 10"):
        store.file_engine(directory, max_bytes=10, **args)
    engine.unlink()
    engine.symlink_to("/etc/shadow")
    with pytest.raises(StoreError, match="symbolic link"):
        store.file_engine(directory, max_bytes=1 << 20, **args)
    assert snapshot(store_dir) == {}


def test_a_manifest_naming_paths_is_refused(tmp_path):
    directory = tmp_path / "staged" / "m1"
    manifest = staged(directory, "m1", NANO, "a" * 64, FP16)
    manifest["engine_file"] = "../../../../tmp/owned.bin"
    (directory / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(StoreError, match="engine_file"):
        EngineStore(tmp_path / "engines").file_engine(
            directory, platform_id=NANO, model="m1", variant="fp16-ws512",
            build_key="a" * 64, built_on="nano-1", max_bytes=1 << 20)
    assert not (tmp_path / "engines").exists() or snapshot(tmp_path / "engines") == {}


def _file_in_process(args):
    store_dir, tmp, model = args
    sys.path.insert(0, str(REPO))
    file_one(Path(store_dir), Path(tmp), model=model,
             key=hashlib.sha256(model.encode()).hexdigest())
    return model


def test_concurrent_writers_keep_every_entry(tmp_path):
    store_dir = tmp_path / "engines"
    models = ["m{}".format(i) for i in range(8)]
    with ProcessPoolExecutor(max_workers=4) as pool:
        list(pool.map(_file_in_process, [(str(store_dir), str(tmp_path / m), m) for m in models]))
    index = json.loads((store_dir / "index.json").read_text())
    assert sorted(e["model"] for e in index["entries"].values()) == models


def test_the_old_layout_is_migrated_on_first_use(tmp_path):
    store_dir = tmp_path / "engines"
    old = store_dir / NANO / "m1"
    staged(old, "m1", NANO, "a" * 64, FP16)
    (store_dir / "index.json").write_text(json.dumps({"format": 1, "engines": {}}))
    store = EngineStore(store_dir)
    entry = store.lookup("a" * 64)
    assert entry is not None and entry.dir == store_dir / NANO / "m1" / "fp16-ws512"
    assert store.verify(entry) is None
    assert sorted(p.name for p in old.iterdir()) == ["fp16-ws512"]
    assert any("old layout" in note for note in store.notes)
    assert json.loads((store_dir / "index.json").read_text())["format"] == 2


def test_an_unreadable_index_is_rebuilt_by_the_next_user(tmp_path):
    store_dir = tmp_path / "engines"
    file_one(store_dir, tmp_path)
    good = (store_dir / "index.json").read_text()
    (store_dir / "index.json").write_text(good[: len(good) // 2])  # truncated
    store = EngineStore(store_dir)
    assert store.lookup("a" * 64) is not None
    assert "unreadable" in store.notes[0]
    rebuilt = json.loads((store_dir / "index.json").read_text())["entries"]
    assert {rel: e["build_key"] for rel, e in rebuilt.items()} == {
        rel: e["build_key"] for rel, e in json.loads(good)["entries"].items()}


def run_tool(*args):
    return subprocess.run([sys.executable, "-m", "controller", "store", *map(str, args)],
                          cwd=str(REPO), capture_output=True, text=True, check=False)


def test_the_store_tool_finds_and_repairs_what_a_killed_run_and_a_bad_disk_left(tmp_path):
    store_dir = tmp_path / "engines"
    file_one(store_dir, tmp_path, key="a" * 64)
    file_one(store_dir, tmp_path, model="m2", key="b" * 64)
    (store_dir / ".staging" / "nano-1" / "m1").mkdir(parents=True)
    (store_dir / ".index-abc123").write_text("{")
    engine = store_dir / NANO / "m2" / "fp16-ws512" / "TRT_m2.bin"
    engine.write_bytes(engine.read_bytes().replace(b"SIMULATED", b"SIMULATEX"))
    (store_dir / "index.json").unlink()

    checked = run_tool("check", store_dir)
    assert checked.returncode == 1
    assert "index.json is missing" in checked.stdout
    assert "m2/fp16-ws512: corrupt" in checked.stdout
    assert ".staging" in checked.stdout and ".index-abc123" in checked.stdout
    # The advice the check gives, followed as written.
    advice = checked.stdout.strip().splitlines()[-1].split("run: ", 1)[1]
    assert advice == "python3 -m controller store repair {}".format(store_dir)
    repaired = subprocess.run(advice.replace("python3", sys.executable, 1).split(),
                              cwd=str(REPO), capture_output=True, text=True, check=False)
    assert repaired.returncode == 0, repaired.stderr
    assert "quarantined" in repaired.stdout
    healthy = run_tool("check", store_dir)
    assert healthy.returncode == 0, healthy.stdout
    index = json.loads((store_dir / "index.json").read_text())
    assert [e["model"] for e in index["entries"].values()] == ["m1"]
    assert not (store_dir / ".staging").exists()
    assert not list(store_dir.glob(".index-*"))
    (reason,) = (store_dir / ".quarantine").glob("*/REASON.txt")
    assert "sha256" in reason.read_text()


def test_a_full_store_says_where_how_much_and_what_to_set(tmp_path, monkeypatch):
    import shutil  # noqa: PLC0415

    real = shutil.disk_usage

    def nearly_full(path):
        usage = real(path)
        return usage._replace(free=4096)

    monkeypatch.setattr(shutil, "disk_usage", nearly_full)
    with pytest.raises(StoreError) as error:
        file_one(tmp_path / "engines", tmp_path)
    text = str(error.value)
    assert str(tmp_path / "engines") in text and "0 MiB free" in text
    assert "engine_store_dir" in text
    assert not list((tmp_path / "engines").rglob("*.bin"))


def test_lookups_hash_an_engine_only_when_its_stat_changed(tmp_path, monkeypatch):
    store_dir = tmp_path / "engines"
    file_one(store_dir, tmp_path)
    hashed = []
    import controller.store as store_module  # noqa: PLC0415

    real = store_module.file_sha256
    monkeypatch.setattr(store_module, "file_sha256", lambda p: hashed.append(p) or real(p))
    store = EngineStore(store_dir)
    assert store.verify(store.lookup("a" * 64)) is None
    assert hashed == []  # size, mtime and inode as recorded when it was filed
    engine = store_dir / NANO / "m1" / "fp16-ws512" / "TRT_m1.bin"
    os.utime(engine, ns=(1, 1))
    store = EngineStore(store_dir)
    assert store.verify(store.lookup("a" * 64)) is None
    assert len(hashed) == 1
    store.save_verified_stats()  # the plan does this: the new stat is the hashed one
    store = EngineStore(store_dir)
    assert store.verify(store.lookup("a" * 64)) is None
    assert len(hashed) == 1


def test_a_devices_listing_is_checked_before_a_byte_is_fetched(tmp_path):
    from controller.collect import fetchable, limit_of  # noqa: PLC0415

    plan = {"models": {"m1": {"engine": "TRT_m1.bin"}, "m2": {"engine": "TRT_m2.bin"}}}

    def listing(model, where=None, **engine):
        directory = where or "/w/work/" + model
        info = dict({"path": "{}/TRT_{}.bin".format(directory, model), "isreg": True,
                     "islnk": False, "size": 100}, **engine)
        return [info, {"path": directory + "/manifest.json", "isreg": True, "islnk": False,
                       "size": 10}]

    catalog = {"m1": {"max_engine_mib": 1}, "m2": {}}
    limits = {m: limit_of(m, catalog, 50) for m in ("m1", "m2")}
    assert limits == {"m1": 1 << 20, "m2": 50}
    staging = tmp_path / ".staging" / "nano-1"

    def check(files, models):
        return fetchable(files, models, plan, limits, "nano-1", root_dir="/w",
                         staging=staging)

    allowed, refused = check(listing("m1") + listing("m2"), ["m1", "m2"])
    assert [(f["model"], f["src"], f["dest"]) for f in allowed] == [
        ("m1", "/w/work/m1/TRT_m1.bin", str(staging / "m1") + "/"),
        ("m1", "/w/work/m1/manifest.json", str(staging / "m1") + "/")]
    assert "has 100 bytes, above the limit of 50 bytes" in refused["m2"]
    allowed, refused = check(listing("m1", islnk=True, isreg=False), ["m1"])
    assert allowed == [] and "not a regular file (a link?)" in refused["m1"]
    # A file listed anywhere but in the model's own work directory is not the model's.
    for elsewhere in ("/w/work/m2", "/w/work/m1/sub", "/etc"):
        allowed, refused = check(listing("m1", where=elsewhere), ["m1"])
        assert allowed == [] and "missing in its work directory" in refused["m1"]


def test_a_read_only_store_rebuilds_an_unreadable_index_in_memory_only(tmp_path):
    store_dir = tmp_path / "engines"
    file_one(store_dir, tmp_path)
    (store_dir / "index.json").write_text("{trunc")
    store = EngineStore(store_dir, read_only=True)  # what --check uses
    assert store.lookup("a" * 64) is not None
    assert (store_dir / "index.json").read_text() == "{trunc"


def _export(store_dir, model, key, *, ok=True, sha=None):
    directory = store_dir / "onnx" / model / key
    directory.mkdir(parents=True)
    onnx = directory / (model + ".onnx")
    onnx.write_bytes(b"onnx graph of " + model.encode())
    digest = sha or hashlib.sha256(onnx.read_bytes()).hexdigest()
    (directory / (model + ".onnx.json")).write_text(json.dumps(
        {"onnx_sha256": digest, "verification": {"ok": ok}}))
    return directory


def test_an_export_that_reports_ok_but_leaves_no_files_is_refused(tmp_path, monkeypatch):
    def run(argv, **kwargs):  # builder onnx says ok, but writes nothing
        return subprocess.CompletedProcess(argv, 0, '{"record": 1, "status": "ok"}', "")

    monkeypatch.setattr(onnx_exports.subprocess, "run", run)
    store = EngineStore(tmp_path / "engines")
    with pytest.raises(StoreError, match="left no m1.onnx and m1.onnx.json"):
        onnx_exports.export(store, "m1", "k1", "catalog.yml")


def test_the_store_tool_checks_the_onnx_exports_and_removes_broken_ones(tmp_path):
    store_dir = tmp_path / "engines"
    file_one(store_dir, tmp_path)
    sound = _export(store_dir, "m1", "k1")
    damaged = _export(store_dir, "m1", "k2", sha="0" * 64)
    failed = _export(store_dir, "m2", "k3", ok=False)
    half = _export(store_dir, "m2", "k4")
    (half / "m2.onnx").unlink()
    (store_dir / "onnx" / "m2" / ".new-onnx-x1").mkdir()

    checked = run_tool("check", store_dir)
    assert checked.returncode == 1
    lines = checked.stdout.splitlines()
    assert any(str(damaged) in line and "does not match the sha256" in line for line in lines)
    assert any(str(failed) in line and "verification" in line for line in lines)
    assert any(str(half) in line and "incomplete" in line for line in lines)
    assert any(".new-onnx-x1" in line and "interrupted run" in line for line in lines)
    assert not any(str(sound) + ":" in line for line in lines)

    repaired = run_tool("repair", store_dir)
    assert repaired.returncode == 0, repaired.stderr
    assert repaired.stdout.count("removed ONNX export") == 3
    assert run_tool("check", store_dir).returncode == 0
    assert sound.is_dir() and not damaged.exists() and not half.exists()


def test_variant_of_a_strongly_typed_build_says_typed():
    from controller.store import variant_of  # noqa: PLC0415

    manifest = {"precision": "fp16", "workspace_mib": 1024, "max_batch": 1, "dla_core": None}
    assert variant_of(manifest) == "fp16-ws1024"  # manifests before TensorRT 11 too
    assert variant_of(dict(manifest, precision_source="builder flag")) == "fp16-ws1024"
    assert variant_of(dict(manifest, precision_source="onnx tensor types")) == \
        "fp16-typed-ws1024"
