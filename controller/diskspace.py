"""A device's disk, looked at when one of its steps failed: the free space of the directories
the steps write to, and the `disk` failure that names the device, the directory and the figure.

A full disk stops a device before any module of ours runs: with pipelining, Ansible's module
wrapper (AnsiballZ) first unpacks each module into Python's temporary directory (TMPDIR, else
/tmp, /var/tmp, /usr/tmp, the current directory), and fails with "MODULE FAILURE" and "No
usable temporary directory found" when none has room. So the disk is looked at with a plain
shell command that writes nothing (``df -Pk``), run over the same connection, and its answer
is read as the device's: untrusted, parsed strictly.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Sequence
from typing import Any

# Where the steps write besides the builder's directory: the module wrapper's temporary
# directory, and the connecting user's home (Ansible's async job files, ~/.ansible_async).
TEMP_DIR = "/tmp"
HOME = "$HOME"
# Below this a directory is full for our purposes: a module, a wheel or a graph needs more.
LOW_MIB = 16
# What a full disk makes the device's Python, Ansible's module wrapper and its tools say.
FULL_DISK_SIGNS = ("No space left on device", "[Errno 28]", "No usable temporary directory",
                   "ENOSPC")
KIND = "disk"
# The fix of every disk message: the facts step reads jetson_facts_root_dir (else its older
# name jetson_env_root_dir) and every later step the directory the device reported.
MOVE_ROOT_DIR = ("or set jetson_facts_root_dir (group_vars or host_vars; jetson_env_root_dir "
                 "too, to the same, where the inventory sets that older name) to a directory "
                 "on a larger disk")
# One line of `df -P`: file system, 1024-blocks, used, available, capacity, mount point.
DF_LINE = re.compile(r"^\S+\s+\d+\s+\d+\s+(\d{1,20})\s+\d{1,3}%\s+/.*$")
MAX_PATH = 4096


def probe_command(directories: Sequence[str]) -> str:
    """A POSIX shell command that prints, for each directory, its name and the `df -Pk` line
    of its file system (of its nearest existing parent when it does not exist yet).
    ``HOME`` stands for the connecting user's home directory."""
    words = " ".join(HOME if directory == HOME else shlex.quote(directory)
                     for directory in directories)
    return ("for d in {}; do e=$d; while [ ! -e \"$e\" ]; do e=$(dirname -- \"$e\"); done; "
            "printf '%s\\n' \"$d\"; df -Pk -- \"$e\" | tail -n 1; done".format(words))


def parse_probe(stdout: str) -> dict[str, int]:
    """directory -> free MiB from the probe's output; lines that do not fit are left out."""
    free: dict[str, int] = {}
    lines = stdout.splitlines()
    for name, line in zip(lines[::2], lines[1::2]):
        match = DF_LINE.match(line.strip())
        if (match and name.startswith("/") and len(name) <= MAX_PATH
                and name.isprintable() and ".." not in name.split("/")):
            free[name] = int(match.group(1)) // 1024
    return free


def says_full(text: str) -> bool:
    return any(sign in text for sign in FULL_DISK_SIGNS)


def disk_failure(host: str, step: str, free: dict[str, int], failure_text: str,
                 root_dir: str | None = None) -> str | None:
    """The failure of ``step`` as a `disk` failure (None when the disk is not what failed):
    its free space is below LOW_MIB in a directory the steps write to, or the failure says
    the device ran out of space. ``failure_text`` is only searched, never shown (it may hold
    what a task hides)."""
    low = {name: mib for name, mib in free.items() if mib < LOW_MIB}
    if not low and not says_full(failure_text):
        return None
    shown = low or free
    figures = ", ".join("{} has {} MiB free".format(name, mib) for name, mib in shown.items())
    advice = "Free space on the device"
    if root_dir is not None and root_dir in low:
        advice += ", " + MOVE_ROOT_DIR
    return ("device {}: its disk is full at step '{}': {}. {} ({})".format(
        host, step, figures or "the device says it has no space left (its free space could not "
        "be read)", advice, KIND))


def probe(run: Callable[[str], dict[str, Any]], directories: Sequence[str]) -> dict[str, int]:
    """Free MiB of ``directories`` on the device; ``run(command)`` runs a shell command over
    the task's connection (an action's ``_low_level_execute_command``)."""
    return parse_probe(str(run(probe_command(directories)).get("stdout") or ""))
