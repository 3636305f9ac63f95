"""pytest fixture over the simulated fleet (exported by tests/conftest.py).

    def test_something(sim_fleet):
        fleet = sim_fleet("nano=1,xavier@35.4.1=1")
        result = fleet.ssh("nano-1", "cat /etc/nv_tegra_release")

Every fleet started here is torn down by the fixture finalizer, by atexit, on SIGTERM,
and (if the pytest process is SIGKILLed) by its own holders, which watch the pytest
pid (`owner_pid`) and kill their device when it is gone.
"""

import atexit
import os
import signal
import subprocess
from contextlib import contextmanager
from pathlib import Path

import pytest

from fleet import fleet as fleet_ops
from fleet import jetpack_link, procs

_ACTIVE = set()        # fleet dirs this process has up
_HANDLERS = {"installed": False}


def _down_all():
    for fleet_dir in sorted(_ACTIVE):
        fleet_ops.down(fleet_dir)
        _ACTIVE.discard(fleet_dir)


def _install_handlers():
    """atexit + SIGTERM -> SystemExit, so finalizers and atexit run on a polite kill."""
    if _HANDLERS["installed"]:
        return
    atexit.register(_down_all)
    previous = signal.getsignal(signal.SIGTERM)

    def on_sigterm(signum, frame):
        _down_all()
        if callable(previous):
            previous(signum, frame)
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_sigterm)
    _HANDLERS["installed"] = True


class SimFleet:
    """A running fleet: its files, hosts and helpers to reach the devices."""

    def __init__(self, fleet_dir):
        self.dir = Path(fleet_dir).resolve()
        self.inventory = self.dir / "inventory.yml"
        self.known_hosts = self.dir / "known_hosts"
        self.private_key = self.dir / "id_ed25519"

    @property
    def state(self):
        return fleet_ops.load_state(self.dir)

    @property
    def hosts(self):
        return self.state["hosts"]

    @property
    def names(self):
        return [h["name"] for h in self.hosts]

    def host(self, name):
        return next(h for h in self.hosts if h["name"] == name)

    def ssh_command(self, name, command, *options):
        host = self.host(name)
        return ["ssh", "-i", str(self.private_key), "-p", str(host["port"]),
                "-o", "UserKnownHostsFile={}".format(self.known_hosts),
                "-o", "GlobalKnownHostsFile=/dev/null",
                "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes",
                "-o", "ConnectTimeout=5", *options,
                "root@{}".format(host["address"]), command]

    def ssh(self, name, command, timeout=60):
        """Run a command on a device over real ssh; CompletedProcess (text)."""
        return subprocess.run(self.ssh_command(name, command), capture_output=True, text=True,
                              timeout=timeout, check=False, stdin=subprocess.DEVNULL)

    def device_path(self, name, path):
        """A file of the device as seen from the host (through its holder's /proc root)."""
        return Path("/proc/{}/root{}".format(self.host(name)["holder_pid"], path))

    def fault(self, name, kind, drop_seconds=5.0):
        return fleet_ops.fault(self.dir, name, kind, drop_seconds)

    def down(self):
        fleet_ops.down(self.dir)
        _ACTIVE.discard(self.dir)


def start_fleet(fleet_dir, hosts, build_seconds="", with_jetpack=None, device_pythons=True):
    """Start a fleet registered for teardown at exit; with_jetpack=None: when present.

    device_pythons=False: every device runs the host's Python (`simfleet.py up --host-python`).
    """
    _install_handlers()
    if with_jetpack is None:
        with_jetpack = jetpack_link.available()
    fleet_dir = Path(fleet_dir).resolve()
    _ACTIVE.add(fleet_dir)
    fleet_ops.up(fleet_dir, hosts, build_seconds, owner_pid=os.getpid(),
                 with_jetpack=with_jetpack, device_pythons=device_pythons)
    return SimFleet(fleet_dir)


@contextmanager
def running_fleet(fleet_dir, hosts, build_seconds="", with_jetpack=None, device_pythons=True):
    """For fixtures of any scope: `with running_fleet(tmp, "nano=2") as fleet: ...`."""
    sim = start_fleet(fleet_dir, hosts, build_seconds, with_jetpack, device_pythons)
    try:
        yield sim
    finally:
        sim.down()


def _skip_unless_root():
    if os.geteuid() != 0:
        pytest.skip("the simulated fleet needs root (mount namespaces, loop devices)")


def _factory(tmp_path_factory):
    """(start function, list of the fleets it started)."""
    _skip_unless_root()
    started = []

    def start(hosts, build_seconds="", with_jetpack=None, device_pythons=True):
        sim = start_fleet(tmp_path_factory.mktemp("fleet"), hosts, build_seconds,
                          with_jetpack, device_pythons)
        started.append(sim)
        return sim

    return start, started


@pytest.fixture
def sim_fleet(tmp_path_factory):
    """Factory: sim_fleet("nano=2,tx2=1", build_seconds="", with_jetpack=None,
    device_pythons=True) -> SimFleet."""
    start, started = _factory(tmp_path_factory)
    yield start
    for sim in started:
        sim.down()


@pytest.fixture(scope="module")
def module_sim_fleet(tmp_path_factory):
    """Like sim_fleet, but the fleets live for the whole test module."""
    start, started = _factory(tmp_path_factory)
    yield start
    for sim in started:
        sim.down()


def fleet_processes(sim):
    """Every live process belonging to a fleet (for leak checks)."""
    namespaces = {h["namespace"] for h in sim.hosts if h.get("namespace")}
    return [pid for ns in namespaces for pid in procs.pids_in_namespace(ns)]
