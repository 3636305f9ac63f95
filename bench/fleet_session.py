"""A simulated fleet for one benchmark step: up, per-device log offsets and figures, down.

The fleet is started with sshd at LogLevel VERBOSE (sessions and bytes per device, see
sshd_log.py) and, for provisioned devices, with the seed venv as a shared tree (seed.py).
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from bench import sshd_log, traffic

REPO_ROOT = Path(__file__).resolve().parent.parent
SIMFLEET = REPO_ROOT / "tests" / "fleet" / "simfleet.py"
# A line of the TensorRT double's builds.log (tests/jetpack/_simjetson/device.py record_build).
BUILD_LINE = re.compile(r"^SIMULATED build finished time=([0-9.]+) ")


class BenchError(RuntimeError):
    """The benchmark cannot go on; the message says what failed and where to look."""


def mixed_hosts(size, kinds):
    """`kind=count,...` for `size` devices dealt round-robin over `kinds` (mixed fleet)."""
    counts = {}
    for index in range(size):
        kind = kinds[index % len(kinds)]
        counts[kind] = counts.get(kind, 0) + 1
    return ",".join("{}={}".format(kind, counts[kind]) for kind in kinds if kind in counts)


class Fleet:
    def __init__(self, fleet_dir, hosts_text, build_seconds, shared_tree=None):
        self.dir = Path(fleet_dir).resolve()
        self.hosts_text = hosts_text
        self.build_seconds = build_seconds
        self.shared_tree = shared_tree
        self.hosts = []
        self.counters = None

    def _simfleet(self, *args):
        command = [sys.executable, str(SIMFLEET)] + [str(a) for a in args]
        result = subprocess.run(command, capture_output=True, text=True, check=False,
                                stdin=subprocess.DEVNULL)
        if result.returncode != 0:
            raise BenchError("{} failed (exit {}): {}".format(
                " ".join(command), result.returncode, (result.stderr or result.stdout).strip()))
        return result.stdout

    def up(self):
        args = ["up", "--dir", self.dir, "--hosts", self.hosts_text,
                "--build-seconds", self.build_seconds, "--sshd-log-level", "VERBOSE",
                "--owner-pid", os.getpid()]
        if self.shared_tree is not None:
            args += ["--shared-tree", "{}:{}".format(*self.shared_tree)]
        self._simfleet(*args)
        state = json.loads((self.dir / "fleet.json").read_text())
        self.hosts = state["hosts"]
        self.counters = traffic.Counters(self.hosts).install()
        return self

    def down(self):
        if self.counters is not None:
            self.counters.remove()
            self.counters = None
        self._simfleet("down", "--dir", self.dir)

    def __enter__(self):
        return self.up()

    def __exit__(self, *exc):
        self.down()

    @property
    def inventory(self):
        return self.dir / "inventory.yml"

    def device_path(self, host, path):
        """A path on the device, seen from the host through its holder's mount namespace."""
        return Path("/proc/{}/root".format(host["holder_pid"])) / str(path).lstrip("/")

    def mark(self):
        """Where the per-device figures stand now (sshd log offsets, byte counters)."""
        return {"logs": {h["name"]: sshd_log.log_size(h["holder_pid"]) for h in self.hosts},
                "bytes": self.counters.read()}

    def figures_since(self, mark):
        """Per device: sessions from its sshd log and bytes from the counters, since mark."""
        now = self.counters.read()
        figures = {}
        for host in self.hosts:
            name = host["name"]
            counts = sshd_log.figures_since(host["holder_pid"], mark["logs"][name])
            for key, value in now[name].items():
                counts[key] = value - mark["bytes"][name][key]
            figures[name] = counts
        return figures

    def builds_since(self, since_epoch):
        """Per host: the builds the device's TensorRT double finished after since_epoch (its
        /etc/simjetson/builds.log, one line each). Engine files would count a confirming
        device's pushed engine as a build."""
        counts = {}
        for host in self.hosts:
            log = self.device_path(host, "/etc/simjetson/builds.log")
            lines = log.read_text().splitlines() if log.is_file() else []
            times = [float(found.group(1)) for found in map(BUILD_LINE.match, lines) if found]
            counts[host["name"]] = sum(1 for finished in times if finished >= since_epoch)
        return counts
