"""The CI version of the benchmark (2 devices) runs end to end and writes a well-formed table.

Its figures are printed, never asserted: timings depend on the machine and its load.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent.parent

pytestmark = [
    pytest.mark.fleet,
    pytest.mark.skipif(os.geteuid() != 0, reason="the simulated fleet needs root"),
]

STEP_KEYS = {"wall_s", "controller_cpu_per_device_s", "commands_per_device",
             "commands_max_device", "file_transfers_per_device", "bytes_to_device_per_device",
             "builds", "per_device", "rc"}


def test_quick_benchmark_writes_table_json_and_chart(tmp_path):
    result = subprocess.run(
        [sys.executable, "bench/run.py", "--sizes", "2", "--quick", "--results-dir", tmp_path],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=600, check=False)
    print(result.stdout)   # the figures, for the CI log
    assert result.returncode == 0, result.stderr[-3000:]

    markdown = next(tmp_path.glob("*.md")).read_text()
    assert "## Targets" in markdown
    main_table, _, targets_table = markdown.partition("## Targets")
    first_table = main_table.split("\n## ")[0]
    table = [line for line in first_table.splitlines() if line.startswith("| 2 |")]
    scopes = sorted(line.split("|")[2].strip() for line in table
                    if line.split("|")[2].strip() in ("platform", "device"))
    assert scopes == ["device", "platform"]
    targets = [line for line in targets_table.splitlines()
               if line.startswith("| 2 | no-op: remote executions per device")]
    assert len(targets) == 2
    for line in table:
        assert len(line.strip("|").split("|")) == 13, line
    # no-op beside a bare ping of the same fleet, and a deploy with its up-to-date rerun
    assert "## No-op rerun against `ansible all -m ping`" in main_table
    assert "## deploy_engines.yml" in main_table
    assert [line for line in targets_table.splitlines()
            if line.startswith("| 2 | no-op / ping bytes sent")]

    data = json.loads(next(tmp_path.glob("*.json")).read_text())
    (entry,) = data["entries"]
    assert entry["size"] == 2 and entry["naive_builds"] == 4
    for scope in ("platform", "device"):
        for step in ("cold", "noop", "changed"):
            record = entry["scopes"][scope][step]
            assert set(record) >= STEP_KEYS, (scope, step)
            assert set(record["per_device"]) == {"nano-1", "tx2-1"}
            # every run talks to every device: the sshd logs were read
            assert all(d["commands"] > 0 for d in record["per_device"].values())
            # and the traffic counters saw every device's SSH connection
            assert all(d["bytes_to_device"] > 0 for d in record["per_device"].values())
            if step == "noop":
                # measured as a user runs it: without the benchmark's timeline callback
                assert "device_times" not in record
                continue
            # the task timeline saw every device busy
            assert set(record["device_times"]) == {"nano-1", "tx2-1"}
            assert all(t["busy_s"] > 0 for t in record["device_times"].values())
        # the device that did the slowest build (nano: 3 s against tx2's 2 s)
        assert entry["scopes"][scope]["cold"]["floor_device"]["host"] == "nano-1"
    platform = entry["scopes"]["platform"]
    for step in ("check", "ping", "deploy", "deploy_again"):
        assert set(platform[step]) >= STEP_KEYS, step
        assert platform[step]["rc"] == 0, (step, platform[step]["log"])
    assert platform["ping"]["commands_max_device"] == 1
    # the up-to-date deploy sends no engine: fewer bytes than the first deploy
    assert (platform["deploy_again"]["bytes_to_device_per_device"]
            < platform["deploy"]["bytes_to_device_per_device"])
    assert set(entry["baseline"]) >= STEP_KEYS
    assert next(tmp_path.glob("*.png")).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
