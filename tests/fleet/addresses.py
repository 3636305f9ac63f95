"""Loopback addresses for simulated devices, shared by every fleet on this machine.

All of 127.0.0.0/8 is local on Linux, so each device gets its own 127.0.X.Y and the same
port. The registry (JSON, guarded by flock) records which fleet dir owns which address,
so two fleets started at once never collide. Entries of fleets that died without
`down` (no holder left, allocating process gone) are reclaimed.
"""

import errno
import fcntl
import json
import os
import socket
from contextlib import contextmanager
from pathlib import Path

from fleet import procs

REGISTRY = Path(os.environ.get("SIMFLEET_REGISTRY", "/run/simfleet/addresses.json"))
FIRST = (0, 2)          # 127.0.0.1 stays free for the host's own services


@contextmanager
def _locked_registry():
    REGISTRY.parent.mkdir(parents=True, exist_ok=True)
    with open(str(REGISTRY) + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            entries = json.loads(REGISTRY.read_text()) if REGISTRY.is_file() else {}
        except ValueError as exc:
            raise RuntimeError("{}: corrupt address registry ({}); delete it when no fleet "
                               "runs".format(REGISTRY, exc)) from None
        yield entries
        temporary = Path(str(REGISTRY) + ".tmp")
        temporary.write_text(json.dumps(entries, indent=1, sort_keys=True) + "\n")
        os.replace(temporary, REGISTRY)


def _candidates():
    third, fourth = FIRST
    while third < 256:
        yield "127.0.{}.{}".format(third, fourth)
        fourth += 1
        if fourth > 254:
            third, fourth = third + 1, 1


def _stale(entry):
    return not procs.alive(entry["pid"]) and not procs.holders_of(
        Path(entry["dir"]) / "devices")


def _port_free(address, port):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((address, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return False
            raise
    return True


def allocate(fleet_dir, count, port):
    """`count` addresses for fleet_dir whose port is free; recorded before returning."""
    fleet_dir = str(fleet_dir)
    with _locked_registry() as entries:
        for address in [a for a, e in entries.items() if e["dir"] != fleet_dir and _stale(e)]:
            del entries[address]
        chosen = []
        for address in _candidates():
            if len(chosen) == count:
                break
            if address not in entries and _port_free(address, port):
                chosen.append(address)
        if len(chosen) < count:
            raise RuntimeError("only {} free loopback addresses for port {} (need {})".format(
                len(chosen), port, count))
        for address in chosen:
            entries[address] = {"dir": fleet_dir, "pid": os.getpid()}
        return chosen


def release(fleet_dir):
    """Forget every address of fleet_dir; returns them."""
    fleet_dir = str(fleet_dir)
    with _locked_registry() as entries:
        mine = [address for address, entry in entries.items() if entry["dir"] == fleet_dir]
        for address in mine:
            del entries[address]
        return mine


def owned_by(fleet_dir):
    fleet_dir = str(fleet_dir)
    with _locked_registry() as entries:
        return sorted(a for a, e in entries.items() if e["dir"] == fleet_dir)
