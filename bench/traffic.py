"""Bytes between the controller and each simulated device, counted by nftables.

Every device listens on its own loopback address (same network namespace as the controller),
so two named counters per device in the output hook see all of its SSH traffic: packets to
ADDRESS:PORT (controller -> device) and from it (device -> controller). Bytes on the wire,
IP and TCP headers included. Needs `nft` (Debian package nftables) and root.
"""

import json
import os
import shutil
import subprocess


class TrafficError(RuntimeError):
    pass


def _nft(*args, script=None):
    if shutil.which("nft") is None:
        raise TrafficError("nft not found: install nftables (apt-get install nftables); the "
                           "benchmark counts the bytes sent to each device with it")
    result = subprocess.run(["nft"] + list(args), input=script, capture_output=True,
                            text=True, check=False)
    if result.returncode != 0:
        raise TrafficError("nft {} failed: {}".format(" ".join(args), result.stderr.strip()))
    return result.stdout


def _name(direction, address):
    return "{}_{}".format(direction, address.replace(".", "_"))


class Counters:
    def __init__(self, hosts):
        """hosts: [{"name", "address", "port"}]"""
        self.hosts = hosts
        self.table = "bench_{}".format(os.getpid())

    def install(self):
        lines = ["table inet {} {{".format(self.table)]
        for host in self.hosts:
            lines += ["  counter {} {{ }}".format(_name(direction, host["address"]))
                      for direction in ("to", "from")]
        lines.append("  chain output {")
        lines.append("    type filter hook output priority 0; policy accept;")
        for host in self.hosts:
            lines.append("    ip daddr {a} tcp dport {p} counter name {n}".format(
                a=host["address"], p=host["port"], n=_name("to", host["address"])))
            lines.append("    ip saddr {a} tcp sport {p} counter name {n}".format(
                a=host["address"], p=host["port"], n=_name("from", host["address"])))
        lines += ["  }", "}"]
        _nft("-f", "-", script="\n".join(lines) + "\n")
        return self

    def remove(self):
        _nft("delete", "table", "inet", self.table)

    def read(self):
        """{host name: {"bytes_to_device", "bytes_from_device"}} since install."""
        data = json.loads(_nft("-j", "list", "counters", "table", "inet", self.table))
        counters = {item["counter"]["name"]: item["counter"]["bytes"]
                    for item in data["nftables"] if "counter" in item}
        return {host["name"]: {"bytes_to_device": counters[_name("to", host["address"])],
                               "bytes_from_device": counters[_name("from", host["address"])]}
                for host in self.hosts}
