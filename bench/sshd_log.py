"""Per-device figures from a simulated device's sshd log (the fleet runs sshd at LogLevel VERBOSE).

At VERBOSE, sshd logs one line per connection it accepts and per session it starts:

    Accepted publickey for root from 127.0.0.1 port 40012 ssh2: ED25519 SHA256:...
    Starting session: command for root from 127.0.0.1 port 40012 id 0
    Starting session: subsystem 'sftp' for root from 127.0.0.1 port 40012 id 1

With Ansible's pipelining every module execution is one `command` session (a launched async
job and each of its polls are one each); every file copied or fetched (and every scp since
OpenSSH 9) is one `sftp` session. Bytes are counted elsewhere (traffic.py): sshd does not log
them when the client disconnects.
"""

import re
from pathlib import Path

SESSION = re.compile(r"Starting session: (command|subsystem '([^']+)'|shell|forced-command)")
ACCEPTED = re.compile(r"Accepted \w+ for ")
DEVICE_LOG = "run/simjetson/sshd.log"   # on the device's own /run (tests/fleet/sshd_ctl.py)


def log_path(holder_pid):
    """The device's sshd log, seen from the host through the holder's mount namespace."""
    return Path("/proc/{}/root".format(holder_pid)) / DEVICE_LOG


def log_size(holder_pid):
    return log_path(holder_pid).stat().st_size


def figures(text):
    """Counts over a piece of sshd log: command / sftp sessions, connections."""
    counts = {"commands": 0, "file_transfers": 0, "connections": 0}
    for line in text.splitlines():
        session = SESSION.search(line)
        if session:
            if session.group(1) == "command":
                counts["commands"] += 1
            elif session.group(2) == "sftp":
                counts["file_transfers"] += 1
            continue
        if ACCEPTED.search(line):
            counts["connections"] += 1
    return counts


def figures_since(holder_pid, offset):
    """Figures of what the device's sshd logged after byte `offset` of its log."""
    with open(log_path(holder_pid), "rb") as handle:
        handle.seek(offset)
        return figures(handle.read().decode("utf-8", "replace"))
