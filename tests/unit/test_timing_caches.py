"""Timing caches per platform in the store (controller/store.py), what a device is pushed and
runs with (controller/device_work.py), and what it may send back (controller/collect.py)."""

import hashlib
import os
import subprocess
import threading
import time

import pytest

from controller import collect
from controller.device_work import build_processes, timing_cache_prepare, timing_cache_work
from controller.store import TIMING_CACHE_MAX_BYTES, EngineStore, StoreError
from controller.trust import Untrusted

NANO = "jetson-nano_l4t32.7.1_trt8.2.1"
ROOT = "/opt/trt-builder"


def returned_cache(tmp_path, content, name="returned.cache"):
    path = tmp_path / name
    path.write_bytes(content)
    return path


def cache_name(content):
    return hashlib.sha256(content).hexdigest() + ".cache"


def names(store):
    return [path.name for path in store.timing_caches(NANO)]


def test_a_returned_cache_replaces_the_ones_pushed_and_keeps_the_others(tmp_path):
    store = EngineStore(tmp_path / "store")
    first = store.replace_timing_caches(NANO, returned_cache(tmp_path, b"A"), [],
                                        source="host nano-1")
    assert names(store) == [cache_name(b"A")] and first.read_bytes() == b"A"
    # nano-1 and nano-2 were both pushed A; each returns its own combination.
    store.replace_timing_caches(NANO, returned_cache(tmp_path, b"A+1"), [cache_name(b"A")],
                                source="host nano-1")
    store.replace_timing_caches(NANO, returned_cache(tmp_path, b"A+2"), [cache_name(b"A")],
                                source="host nano-2")
    assert sorted(names(store)) == sorted([cache_name(b"A+1"), cache_name(b"A+2")])
    # The next builder is pushed both and returns one holding them all.
    store.replace_timing_caches(NANO, returned_cache(tmp_path, b"A+1+2"), names(store),
                                source="host nano-1")
    assert names(store) == [cache_name(b"A+1+2")]
    assert store.timing_caches("jetson-tx2_l4t32.3.1_trt6.0.1") == []
    assert not [p for p in store.timing_cache_dir(NANO).iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize("make, problem", [
    (lambda tmp: returned_cache(tmp, b""), "is empty: refused"),
    (lambda tmp: returned_cache(tmp, b"x" * 101), "above the limit of 100"),
    (lambda tmp: _link_to(tmp, returned_cache(tmp, b"A", "elsewhere")), "symbolic link"),
    (lambda tmp: tmp / "never-fetched.cache", "No such file"),
])
def test_a_refused_cache_changes_nothing(tmp_path, make, problem):
    store = EngineStore(tmp_path / "store")
    kept = store.replace_timing_caches(NANO, returned_cache(tmp_path, b"A"), [],
                                       source="host nano-1")
    with pytest.raises(StoreError, match=problem):
        store.replace_timing_caches(NANO, make(tmp_path), [kept.name], source="host nano-2",
                                    max_bytes=100)
    assert names(store) == [kept.name]


def _link_to(tmp_path, target):
    link = tmp_path / "link.cache"
    link.symlink_to(target)
    return link


def test_pushed_names_and_platform_ids_are_checked(tmp_path):
    store = EngineStore(tmp_path / "store")
    cache = returned_cache(tmp_path, b"A")
    with pytest.raises(Untrusted, match="not a plain name"):
        store.replace_timing_caches("../outside", cache, [], source="host nano-1")
    with pytest.raises(Untrusted, match="not a plain name"):
        store.replace_timing_caches(NANO, cache, ["../../index.json"], source="host nano-1")
    assert not (tmp_path / "outside").exists()


def test_only_plain_sha256_named_files_count_as_caches(tmp_path):
    store = EngineStore(tmp_path / "store")
    store.replace_timing_caches(NANO, returned_cache(tmp_path, b"A"), [], source="host nano-1")
    directory = store.timing_cache_dir(NANO)
    (directory / "notes.txt").write_text("x")
    (directory / (("b" * 64) + ".cache")).symlink_to(tmp_path / "returned.cache")
    assert names(store) == [cache_name(b"A")]


def test_replacements_are_made_under_the_store_lock(tmp_path):
    store = EngineStore(tmp_path / "store")
    pushed = store.replace_timing_caches(NANO, returned_cache(tmp_path, b"A"), [],
                                         source="host nano-1").name
    done = threading.Event()
    with store.locked():
        worker = threading.Thread(target=lambda: (EngineStore(tmp_path / "store")
                                                  .replace_timing_caches(
                                                      NANO, returned_cache(tmp_path, b"B"),
                                                      [pushed], source="host nano-2"),
                                                  done.set()))
        worker.start()
        time.sleep(0.2)
        assert not done.is_set() and names(store) == [pushed]  # waits for the lock
    worker.join(timeout=10)
    assert done.is_set() and names(store) == [cache_name(b"B")]


def test_a_tensorrt_8_device_is_pushed_every_cache_of_its_platform(tmp_path):
    caches = [tmp_path / cache_name(b"A"), tmp_path / cache_name(b"B")]
    work = timing_cache_work(caches, NANO, "8.2.1", ROOT)
    assert work["device_file"] == "{}/timing-cache/{}.cache".format(ROOT, NANO)
    assert [p["src"] for p in work["push"]] == [str(c) for c in caches]
    (process,) = build_processes({"m": {"name": "m", "graph": "/g/m.pb", "sha256": "a" * 64}},
                                 ["m"], python="py", root_dir=ROOT, build_processes="per_device",
                                 options_args=[], deadline_s=60, timing_cache=work)
    assert process["shell"].startswith("mkdir -p {}/timing-cache/pushed && ".format(ROOT))
    build = process["shell"].split(" && exec ")[1]
    assert "--timing-cache {}".format(work["device_file"]) in build
    for cache in caches:
        assert "--merge-timing-cache {}/timing-cache/pushed/{}".format(ROOT, cache.name) in build


def test_caches_pushed_before_leave_the_device_and_this_rounds_stay(tmp_path):
    root = str(tmp_path / "root")
    caches = [tmp_path / cache_name(b"A"), tmp_path / cache_name(b"B")]
    work = timing_cache_work(caches, NANO, "8.2.1", root)
    pushed = tmp_path / "root" / "timing-cache" / "pushed"
    for run in (1, 2):  # the first run finds no directory, the second one old caches
        old = pushed / cache_name(b"pushed by run %d" % run)
        if run == 2:
            old.write_bytes(b"old")
            for cache in caches:
                (pushed / cache.name).write_bytes(b"this round")
        subprocess.run(" && ".join(timing_cache_prepare(work)), shell=True, check=True)
        assert sorted(p.name for p in pushed.iterdir()) == (
            sorted(c.name for c in caches) if run == 2 else [])


@pytest.mark.parametrize("tensorrt", ["7.1.3", "6.0.1", None, "not a version"])
def test_no_timing_cache_before_tensorrt_8(tmp_path, tensorrt):
    work = timing_cache_work([tmp_path / cache_name(b"A")], NANO, tensorrt, ROOT)
    assert work["device_file"] is None and work["push"] == []
    (process,) = build_processes({"m": {"name": "m", "graph": "/g/m.pb", "sha256": "a" * 64}},
                                 ["m"], python="py", root_dir=ROOT, build_processes="per_device",
                                 options_args=[], deadline_s=60, timing_cache=work)
    assert "timing-cache" not in process["shell"]


DEVICE_FILE = ROOT + "/timing-cache/{}.cache".format(NANO)


@pytest.mark.parametrize("stat, refusal", [
    ({"exists": True, "isreg": False, "islnk": True, "size": 10}, "not a regular file"),
    ({"exists": True, "isreg": True, "islnk": False, "size": TIMING_CACHE_MAX_BYTES + 1},
     "above the limit"),
    ({"exists": True, "isreg": True, "islnk": False, "size": 0}, "is empty"),
])
def test_a_device_cache_that_is_not_a_plain_bounded_file_is_not_fetched(tmp_path, stat,
                                                                         refusal):
    dest, refused = collect.timing_cache_fetch(stat, DEVICE_FILE, "nano-1", tmp_path)
    assert dest is None and refusal in refused and "nano-1" in refused


def test_a_plain_device_cache_is_fetched_into_the_hosts_staging_area(tmp_path):
    stat = {"exists": True, "isreg": True, "islnk": False, "size": 10}
    staging = EngineStore(tmp_path).staging_dir("nano-1")
    fetch, refused = collect.timing_cache_fetch(stat, DEVICE_FILE, "nano-1", staging)
    assert refused is None
    assert fetch == {"src": DEVICE_FILE, "dest": os.path.join(
        os.path.realpath(str(tmp_path)), ".staging", "nano-1", ".timing-cache",
        "returned.cache")}
    assert collect.timing_cache_fetch({"exists": False}, DEVICE_FILE, "nano-1",
                                      staging) == (None, None)


def test_filing_a_fetched_cache_says_why_it_was_not_stored(tmp_path):
    store_dir = str(tmp_path / "store")
    path, warning = collect.file_timing_cache(store_dir, "nano-1", NANO, [])
    assert path is None and warning.startswith("timing cache not stored: host nano-1")
    stat = {"exists": True, "isreg": True, "islnk": False, "size": 1}
    fetch, _ = collect.timing_cache_fetch(stat, DEVICE_FILE, "nano-1",
                                          EngineStore(store_dir).staging_dir("nano-1"))
    dest = fetch["dest"]
    os.makedirs(os.path.dirname(dest))
    with open(dest, "wb") as handle:
        handle.write(b"A")
    path, warning = collect.file_timing_cache(store_dir, "nano-1", NANO, [])
    assert warning is None and os.path.basename(path) == cache_name(b"A")
