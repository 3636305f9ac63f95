"""Graph sums taken while a file is unchanged (builder/graphsums.py): the builder's record for
the facts step, and the controller's cache for the preflight. A sum is taken only while the file
keeps its size, mtime, inode and ctime; any change is read again."""

import hashlib
import os
import time

from builder import graphsums

FAKE = "f" * 64  # a recorded sum that is not the file's: taken only while the record holds


def graph(directory, name="frozen_inference_graph.pb", data=b"graph bytes"):
    path = directory / name
    path.write_bytes(data)
    return path


def test_a_recorded_sum_is_taken_while_the_file_is_unchanged(tmp_path):
    path = graph(tmp_path)
    graphsums.record(str(tmp_path), {str(path): FAKE})
    sums = graphsums.recorded(str(tmp_path))
    assert graphsums.graph_sha256(str(tmp_path), path.name, sums) == FAKE


def test_a_file_written_since_is_read_again(tmp_path):
    path = graph(tmp_path)
    graphsums.record(str(tmp_path), {str(path): FAKE})
    sums = graphsums.recorded(str(tmp_path))
    # The push's way: a new file renamed over the old one, same size, same mtime.
    stat = path.stat()
    replacement = graph(tmp_path, ".incoming.part", b"GRAPH BYTES")
    os.utime(str(replacement), ns=(stat.st_atime_ns, stat.st_mtime_ns))
    os.replace(str(replacement), str(path))
    assert graphsums.graph_sha256(str(tmp_path), path.name, sums) == \
        hashlib.sha256(b"GRAPH BYTES").hexdigest()
    # Edited in place: the mtime moves.
    graphsums.record(str(tmp_path), {str(path): FAKE})
    with open(str(path), "ab") as handle:
        handle.write(b"!")
    assert graphsums.graph_sha256(str(tmp_path), path.name, graphsums.recorded(
        str(tmp_path))) == hashlib.sha256(b"GRAPH BYTES!").hexdigest()


def test_only_graphs_of_the_directory_itself_are_recorded(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    inside, uff = graph(work), graph(work, "m.uff")
    outside = graph(tmp_path, "elsewhere.pb")
    graphsums.record(str(work), {str(inside): FAKE, str(outside): FAKE, str(uff): FAKE})
    assert list(graphsums.recorded(str(work))) == [inside.name]
    assert not (tmp_path / graphsums.GRAPH_SUMS).exists()
    graphsums.record(str(tmp_path / "nothing"), {str(outside): FAKE})  # nothing to write
    assert not (tmp_path / "nothing").exists()


def test_a_record_that_is_not_the_builders_is_ignored(tmp_path):
    path = graph(tmp_path)
    record = tmp_path / graphsums.GRAPH_SUMS
    real = hashlib.sha256(b"graph bytes").hexdigest()
    for text in ("{truncated", "[1, 2]", '{"files": [1]}', '{"files": {"%s": "x"}}' % path.name,
                 " " * (graphsums.MAX_BYTES + 1)):
        record.write_text(text)
        sums = graphsums.recorded(str(tmp_path))
        assert graphsums.graph_sha256(str(tmp_path), path.name, sums) == real, text


# ---------------------------------------------------------------- the controller's cache

def settled(path, monkeypatch):
    """Let ``path``'s current stamp count as settled (it was written a moment ago)."""
    time.sleep(0.05)  # past the kernel's file-time tick, so a later change moves the ctime
    monkeypatch.setattr(graphsums, "RACY_SECONDS", 0.0)


def test_a_known_sum_is_taken_while_the_file_is_unchanged(tmp_path, monkeypatch):
    path = graph(tmp_path)
    settled(path, monkeypatch)
    known = {}
    real = hashlib.sha256(b"graph bytes").hexdigest()
    assert graphsums.known_sha256(str(path), known) == real
    assert known[str(path)]["sha256"] == real
    known[str(path)]["sha256"] = FAKE  # proves the next answer is the cache's
    assert graphsums.known_sha256(str(path), known) == FAKE


def test_a_file_edited_in_place_with_its_mtime_set_back_is_read_again(tmp_path, monkeypatch):
    path = graph(tmp_path)
    settled(path, monkeypatch)
    known = {str(path): {"sha256": FAKE, "stamp": graphsums.stamp(str(path))}}
    before = path.stat()
    time.sleep(0.05)
    with open(str(path), "r+b") as handle:
        handle.write(b"G")  # same size
    os.utime(str(path), ns=(before.st_atime_ns, before.st_mtime_ns))
    assert graphsums.known_sha256(str(path), known) == hashlib.sha256(b"Graph bytes").hexdigest()


def test_a_file_changed_a_moment_ago_is_read_but_not_kept(tmp_path):
    path = graph(tmp_path)
    known = {}
    assert graphsums.known_sha256(str(path), known) == hashlib.sha256(b"graph bytes").hexdigest()
    assert known == {}


def test_a_cache_file_that_is_not_a_record_reads_as_empty(tmp_path):
    cache = tmp_path / "sums.json"
    assert graphsums.read_sums(str(cache)) == {}
    graphsums.write_sums(str(cache), {"/x.pb": {"sha256": FAKE, "stamp": [1, 2, 3, 4]}})
    assert graphsums.read_sums(str(cache)) == {"/x.pb": {"sha256": FAKE, "stamp": [1, 2, 3, 4]}}
    assert graphsums.read_sums(str(cache), max_bytes=10) == {}
