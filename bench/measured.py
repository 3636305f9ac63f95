#!/usr/bin/env python3
"""Run one command and account for everything it cost on the controller.

    python3 bench/measured.py --result R.json --log L.txt [--control-dir D] -- COMMAND...

Writes R.json: {"rc", "wall_s", "cpu_s", "cpu_user_s", "cpu_sys_s", "peak_rss_mib",
"peak_tree_pss_mib"}. The wall time runs from the start to the exit of COMMAND. The CPU time
is user + sys of
COMMAND's whole process tree, including the ssh ControlPersist masters that detach from it:
this process is a child subreaper, so they are re-parented here, and after COMMAND exits
they are told to exit (ssh -O exit on every socket in --control-dir) and reaped, which adds
their CPU time to RUSAGE_CHILDREN. A separate process, so that nothing else is counted.
peak_rss_mib is the largest resident set of any one process of the tree (the kernel keeps a
maximum, not a sum); peak_tree_pss_mib is the largest sum, over the whole tree, of the
proportional set sizes (shared pages split between the processes sharing them, so forked
workers are not counted as copies of their parent), sampled every SAMPLE_S: what the
controller needs in memory at once.
"""

import argparse
import ctypes
import json
import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

PR_SET_CHILD_SUBREAPER = 36
REAP_TIMEOUT_S = 15.0
SAMPLE_S = 0.5


def become_subreaper():
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER) failed")


def close_masters(control_dir):
    """Ask every ControlPersist master with a socket in control_dir to exit."""
    if control_dir is None or not control_dir.is_dir():
        return 0
    sockets = [p for p in control_dir.iterdir() if p.is_socket()]
    for socket in sockets:
        subprocess.run(["ssh", "-o", "ControlPath={}".format(socket), "-O", "exit", "closing"],
                       stdin=subprocess.DEVNULL, capture_output=True, check=False)
    return len(sockets)


def reap_all(timeout):
    """Wait for every remaining (re-parented) child; returns the pids still alive at timeout."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return []
        if pid == 0:
            if time.monotonic() > deadline:
                return _children()
            time.sleep(0.05)


def _parents():
    """{pid: parent pid} of every process."""
    parents = {}
    for status in Path("/proc").glob("[0-9]*/stat"):
        try:
            parents[int(status.parent.name)] = int(status.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
    return parents


def _children():
    me = os.getpid()
    return [pid for pid, parent in _parents().items() if parent == me]


def _descendants(parents, root):
    children = {}
    for pid, parent in parents.items():
        children.setdefault(parent, []).append(pid)
    found, pending = [], list(children.get(root, ()))
    while pending:
        pid = pending.pop()
        found.append(pid)
        pending += children.get(pid, ())
    return found


def _pss_kib(pid):
    try:
        for line in Path("/proc/{}/smaps_rollup".format(pid)).read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass  # gone meanwhile: it holds no memory now
    return 0


class TreeMemory(threading.Thread):
    """The peak of the summed PSS of this process's descendants, sampled every SAMPLE_S."""

    def __init__(self):
        super().__init__(daemon=True)
        self.peak_kib = 0
        self.stopped = threading.Event()

    def run(self):
        me = os.getpid()
        while not self.stopped.wait(SAMPLE_S):
            total = sum(_pss_kib(pid) for pid in _descendants(_parents(), me))
            self.peak_kib = max(self.peak_kib, total)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--result", required=True, type=Path)
    parser.add_argument("--log", required=True, type=Path)
    parser.add_argument("--control-dir", type=Path, default=None)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no COMMAND given after --")
    become_subreaper()
    memory = TreeMemory()
    with open(args.log, "wb") as log:
        started = time.monotonic()
        memory.start()
        rc = subprocess.call(command, stdout=log, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL)
        wall = time.monotonic() - started
    memory.stopped.set()
    memory.join()
    masters = close_masters(args.control_dir)
    survivors = reap_all(REAP_TIMEOUT_S)
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = {"rc": rc, "wall_s": round(wall, 3),
              "cpu_user_s": round(usage.ru_utime, 3), "cpu_sys_s": round(usage.ru_stime, 3),
              "cpu_s": round(usage.ru_utime + usage.ru_stime, 3),
              "peak_rss_mib": round(usage.ru_maxrss / 1024.0, 1),  # Linux: KiB
              "peak_tree_pss_mib": round(memory.peak_kib / 1024.0, 1),
              "masters_closed": masters, "unreaped_pids": survivors}
    args.result.write_text(json.dumps(result, indent=1) + "\n")
    return 0 if not survivors else 3


if __name__ == "__main__":
    sys.exit(main())
