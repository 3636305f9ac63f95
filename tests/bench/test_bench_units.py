"""The benchmark's parsers and writers, without a fleet (fast)."""

import struct
import zlib

from bench import png_chart, report, sshd_log
from bench.fleet_session import mixed_hosts
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


def test_targets_judge_the_figures():
    entry = {"size": 32, "platforms": 3, "naive_builds": 64, "distinct_builds": 6,
             "floor_s": 12.0, "scopes": {"platform": {
                 "cold": _step(builds=6, wall_s=100.0, commands_max_device=30),
                 "noop": _step(commands_max_device=3, wall_s=6.0),
                 "changed": _step(builds=4)}}}
    lone = {"size": 1, "floor_s": 10.0, "scopes": {"platform": {
        "cold": _step(wall_s=40.0, commands_max_device=15)}}}
    met = {name: ok for name, _, _, ok in report.targets(entry, lone)}
    assert met["no-op: remote executions per device <= 2"] is False
    assert met["no-op: 0 files sent (environment, graphs)"] is True
    assert met["cold: builds = distinct (platform, model)"] is True
    assert met["changed: only the changed model's builds"] is False
    # a remote execution costs (40 - 10) / 15 = 2 s alone: allowed = 12 + 30 * 2 = 72 < 100
    assert met["cold: wall <= slowest build + its remote executions"] is False
