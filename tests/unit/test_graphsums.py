"""The graph sums the builder records for the facts step (builder/graphsums.py): a recorded sum
is taken only while the file keeps its size, mtime and inode; any change is read again."""

import hashlib
import os

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
