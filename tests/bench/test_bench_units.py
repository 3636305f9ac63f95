"""The benchmark's parsers and writers, without a fleet (fast)."""

import struct
import zlib

import pytest

from bench import png_chart, report, sshd_log, timeline
from bench.fleet_session import mixed_hosts
from bench.run import _size_set, median_record, single_model_floor
from bench.workload import _varint

LOG = """\
Server listening on 127.0.0.2 port 2222.
Accepted publickey for root from 127.0.0.1 port 50206 ssh2: ED25519 SHA256:x
Starting session: command for root from 127.0.0.1 port 50206 id 0
Starting session: subsystem 'sftp' for root from 127.0.0.1 port 50206 id 1
Starting session: command for root from 127.0.0.1 port 50206 id 2
Close session: user root from 127.0.0.1 port 50206 id 2
Received disconnect from 127.0.0.1 port 50206:11: disconnected by user
Accepted publickey for root from 127.0.0.1 port 50300 ssh2: ED25519 SHA256:x
Starting session: shell on pts/0 for root from 127.0.0.1 port 50300 id 0
"""


def test_sshd_log_figures_count_sessions_and_bytes():
    assert sshd_log.figures(LOG) == {"commands": 2, "file_transfers": 1, "connections": 2}


def test_mixed_hosts_deals_kinds_round_robin():
    assert mixed_hosts(1, ["nano", "tx2", "xavier"]) == "nano=1"
    assert mixed_hosts(7, ["nano", "tx2", "xavier"]) == "nano=3,tx2=2,xavier=2"


def test_varint_encoding():
    assert _varint(1) == b"\x01"
    assert _varint(300) == b"\xac\x02"


def test_png_is_valid():
    data = png_chart.line_chart("t", ["1", "4"], [("a", [1.0, None]), ("b", [0.0, 3.0])],
                                "s", width=120, height=80)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    length, kind = struct.unpack(">I4s", data[8:16])
    assert kind == b"IHDR" and length == 13
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (120, 80)
    idat_at = data.index(b"IDAT")
    idat_len = struct.unpack(">I", data[idat_at - 4:idat_at])[0]
    raw = zlib.decompress(data[idat_at + 4:idat_at + 4 + idat_len])
    assert len(raw) == height * (1 + 3 * width)


def _step(**figures):
    base = {"rc": 0, "wall_s": 10.0, "commands_max_device": 1, "commands_per_device": 1,
            "file_transfers_per_device": 0, "controller_cpu_per_device_s": 0.05, "builds": 0,
            "bytes_to_device_per_device": 1000}
    return dict(base, **figures)


def _met(rows, prefix):
    (met,) = [ok for name, _, _, ok in rows if name.startswith(prefix)]
    return met


def _entry_of_32():
    return {"size": 32, "platforms": 3, "naive_builds": 64, "distinct_builds": 6,
             "hosts": "nano=11,tx2=11,xavier=10", "models": ["a", "b"],
             "scopes": {"platform": {
                 "cold": _step(builds=6, wall_s=100.0, commands_max_device=30, floor_s=60.0,
                               floor_device={"host": "nano-1", "busy_s": 60.0,
                                             "waiting_s": 9.0, "waiting_after_facts_s": 3.5,
                                             "span_s": 70.0}),
                 "noop": _step(commands_max_device=3, wall_s=6.0, controller_cpu_s=8.0,
                               bytes_to_device_per_device=1200),
                 "ping": _step(wall_s=5.0, controller_cpu_s=5.0,
                               bytes_to_device_per_device=1000),
                 "changed": _step(builds=4), "env_in_cold": False}}}


def test_targets_judge_the_figures():
    entry = _entry_of_32()
    previous = {"size": 16, "scopes": {"platform": {"noop": _step(controller_cpu_s=4.0)}}}
    rows = report.targets(entry, previous)
    assert _met(rows, "no-op: remote executions per device <= 2") is False
    assert _met(rows, "no-op: 0 files sent") is True
    assert _met(rows, "no-op: controller CPU per device <= 0.1 s (run total") is True
    # (8.0 - 4.0) / (32 - 16) = 0.25 s per added device
    assert _met(rows, "no-op: controller CPU per added device") is False
    assert _met(rows, "cold: builds = distinct (platform, model)") is True
    assert _met(rows, "changed: only the changed model's builds") is False
    assert _met(rows, "cold: no device waits on another") is False
    # 6.0 / 5.0 = 1.2, 8.0 / 5.0 = 1.6, 1200 / 1000 = 1.2 against 1.25
    assert _met(rows, "no-op / ping wall") is True
    assert _met(rows, "no-op / ping controller CPU") is False
    assert _met(rows, "no-op / ping bytes sent") is True
    # 100 s cold over a 60 s single-model builder run: 1.67 > 1.5
    assert _met(rows, "cold wall / longest single-model builder run") is False
    entry["scopes"]["platform"]["cold"]["floor_device"]["waiting_after_facts_s"] = 0.4
    entry["scopes"]["platform"]["cold"]["floor_s"] = 80.0
    rows = report.targets(entry, previous)
    assert _met(rows, "cold: no device waits on another") is True
    assert _met(rows, "cold wall / longest single-model builder run") is True
    # a platform with fewer devices than models: the floor target is not judged
    entry["hosts"] = "nano=1,tx2=1"
    names = [name for name, *_ in report.targets(entry, previous)]
    assert not [name for name in names if name.startswith("cold wall")]


def test_a_size_outside_changed_sizes_is_judged_and_shown_without_its_changed_run():
    entry = dict(_entry_of_32(), baseline=None)
    entry["scopes"]["platform"].update(changed=None, check=_step())
    names = [name for name, *_ in report.targets(entry)]
    assert "no-op: 0 builds" in names
    assert not [name for name in names if name.startswith("changed")]
    meta = {"started": "t", "cpus": 2, "machine": "x86_64", "build_seconds": "nano=1",
            "models": "a,b", "kinds": "nano"}
    (row,) = [line for line in report.markdown(meta, [entry]).splitlines()
              if line.startswith("| 32 | platform | - | 100.0 |")]
    cells = [cell.strip() for cell in row.split("|")]
    assert cells[6] == "-"                          # changed wall
    assert cells[8].startswith("6 / 0 / - (64, 6)")  # builds cold / no-op / changed
    assert cells[12] == "0.05 / 0.050 / - (-)"       # ctrl CPU, changed (no baseline)


def test_the_floor_is_the_longest_run_of_a_device_that_built_one_model():
    record = {"builder_runs": {"nano-1": 30.0, "nano-2": 12.5, "tx2-1": 50.0},
              "builds_by_host": {"nano-1": 1, "nano-2": 1, "tx2-1": 2, "xavier-1": 0}}
    assert single_model_floor(record) == 30.0
    record["builds_by_host"] = {"tx2-1": 2}
    assert single_model_floor(record) is None


def test_builder_runs_go_from_the_start_of_the_builds_to_the_end_of_their_wait():
    build, wait = "engine_build : Build the engines x", "engine_build : Wait for the builds y"
    events = [dict(_event("a", 0, 1), task=build), dict(_event("a", 1, 2), task=wait),
              dict(_event("a", 5, 5.5), task=build), dict(_event("a", 5.5, 6), task=wait),
              dict(_event("b", 0, 9), task="engine_build : Push each graph"),
              dict(_event("b", 1, 4, status="skipped"), task=build),
              dict(_event("c", 0, 1), task=build), dict(_event("c", 1, 30), task=wait),
              dict(_event("d", 0, 1), task=build),
              dict(_event("d", 1, 30), task=wait, builds_wait_s=20.5)]
    assert timeline.builder_runs(events) == {"a": 3.0, "c": 30.0, "d": 21.5}


def _event(host, start, end, on_device=True, status="ok"):
    return {"host": host, "task": "t", "start": start, "end": end, "on_device": on_device,
            "status": status}


def test_device_times_leave_the_wait_for_the_facts_of_others_apart():
    # a's first task (its facts) ends at 1; b's facts run until 3, then both work
    times = timeline.device_times([_event("a", 0, 1), _event("b", 0, 3), _event("a", 3, 4),
                                   _event("b", 3, 6), _event("a", 6, 7)])
    assert times["a"]["waiting_s"] == 4.0
    assert times["a"]["waiting_after_facts_s"] == 2.0


def test_device_times_count_waiting_only_while_another_device_works():
    events = [_event("a", 0, 2), _event("a", 2, 3, on_device=False),
              _event("a", 3, 5, status="skipped"), _event("a", 5, 6), _event("b", 0, 4),
              _event("c", 7, 9)]
    times = timeline.device_times(events)
    # a: busy 0-2 and 5-6; b works 2-4 while a does not (before a's second task: the plan's
    # wait for every device's first task); c works after a's last task
    assert times["a"] == {"busy_s": 3.0, "waiting_s": 2.0, "waiting_after_facts_s": 0.0,
                          "span_s": 6.0}
    assert times["b"] == {"busy_s": 4.0, "waiting_s": 0.0, "waiting_after_facts_s": 0.0,
                          "span_s": 4.0}
    assert times["c"]["waiting_s"] == 0.0


def test_added_device_ratios_compare_growth_at_the_same_forks():
    def pair(size, forks, noop_cpu, ping_cpu):
        return (size, forks, _step(controller_cpu_s=noop_cpu, wall_s=noop_cpu),
                _step(controller_cpu_s=ping_cpu, wall_s=ping_cpu), _step())
    pairs = [pair(1, 32, 3.0, 0.5), pair(32, 32, 9.2, 3.6), pair(128, 32, 28.4, 13.2),
             pair(128, 128, 30.0, 12.0)]
    slopes = report.added_device_ratios(pairs)
    assert [(small, large, forks) for small, large, forks, _ in slopes] == [
        (1, 32, 32), (32, 128, 32)]
    cpu = slopes[1][3]["controller_cpu_s"]
    assert cpu == (pytest.approx(0.2), pytest.approx(0.1))


def test_the_processes_table_puts_both_settings_side_by_side():
    def step(wall, runs, rc=0):
        return {"wall_s": wall, "builder_runs": runs, "controller_cpu_s": 3.0, "builds": 2,
                "rc": rc}
    lines = report.processes_lines({"kind": "xavier", "emulated_build_s": 8, "runs": {
        "per_device": step(40.0, {"xavier-1": 25.0}),
        "per_model": step(47.5, {"xavier-1": 32.25}, rc=2)}})
    assert lines[1].startswith("## Builder processes (one xavier device")
    assert "| per_device | 40.0 | 25.0 | 3.00 | 2 | 0 |" in lines
    assert "| per_model | 47.5 | 32.2 | 3.00 | 2 | 2 |" in lines
    assert report.processes_lines(None) == []


def test_default_size_sets_keep_to_their_range():
    assert _size_set(None, [1, 4, 32], 4, 2) == {4}
    assert _size_set(None, [1, 4, 32], 1) == {1}
    assert _size_set(None, [8, 32], 4) == {8}   # none in range: the smallest
    assert _size_set("16,32", [1, 4, 32], 4) == {16, 32}


def test_median_record_takes_each_figure_median_and_keeps_every_rep():
    runs = [{"step": "noop", "rc": 0, "wall_s": wall, "controller_cpu_s": cpu, "log": str(i),
             "bytes_to_device_per_device": 1000, "controller_peak_rss_mib": None}
            for i, (wall, cpu) in enumerate([(1.5, 1.2), (1.2, 0.9), (2.9, 1.0)])]
    runs[1]["rc"] = 2
    record = median_record(runs)
    assert (record["wall_s"], record["controller_cpu_s"]) == (1.5, 1.0)
    assert record["controller_peak_rss_mib"] is None  # no rep measured it
    assert record["rc"] == 2  # a failed repetition fails the step
    assert [rep["wall_s"] for rep in record["reps"]] == [1.5, 1.2, 2.9]
    assert record["step"] == "noop" and runs[0]["wall_s"] == 1.5  # the inputs are untouched


def test_a_noop_size_judges_the_ping_at_its_forks_and_lists_every_forks():
    entry = {"size": 128, "noop_only": True, "check": _step(),
             "runs": {"32": {"noop": _step(wall_s=17.5, controller_cpu_s=7.7)},
                      "128": {"noop": _step(wall_s=18.5, controller_cpu_s=8.3),
                              "ping": _step(wall_s=17.4, controller_cpu_s=9.5)}}}
    names = [name for name, *_ in report.noop_only_targets(entry)]
    assert "no-op / ping wall <= 1.25x (forks 128)" in names
    assert not [name for name in names if "ping" in name and "forks 32" in name]
    assert "no-op: remote executions per device <= 2 (forks 32)" in names
    assert [pair[1] for pair in report._pairs([entry], 128)] == [128]
    lines = report.forks_lines([entry])
    assert [line.split("|")[2].strip() for line in lines if line.startswith("| 128 |")] == [
        "32", "128"]
