"""Namespace holder of one simulated device.

Started by the fleet as
    unshare --mount --uts --propagation private -- \
        python3 holder.py simjetson-holder DEVICE_DIR PLAN
it sets the hostname, performs the mounts listed in PLAN (JSON written by
tests/fleet/device_dir.py), prints "ready" (or "error: ..." and exits 1) and then
keeps the namespace alive. sshd and everything else of the device run in this
namespace through `nsenter --target <holder pid> --mount --uts`.

When the plan names an owner pid (the pytest process), the holder kills its whole
device once that owner is gone, so a killed test run leaves no device behind.
"""

import json
import os
import select
import signal
import socket
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fleet import procs  # noqa: E402  (after the sys.path line above)


class MountError(RuntimeError):
    pass


def _run_mount(args):
    result = subprocess.run(["mount"] + args, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise MountError("mount {} failed: {}".format(" ".join(args), result.stderr.strip()))


def _step(step):
    kind = step["kind"]
    if kind == "mkdir":
        Path(step["path"]).mkdir(parents=True, exist_ok=True)
        os.chmod(step["path"], int(step["mode"], 8))
    elif kind == "tmpfs":
        _run_mount(["-t", "tmpfs", "-o", step["options"], "tmpfs", step["target"]])
    elif kind == "loop":
        _run_mount(["-o", "loop", step["image"], step["target"]])
    elif kind == "overlay":
        options = "lowerdir={},upperdir={},workdir={}".format(
            ":".join(step["lower"]), step["upper"], step["work"])
        _run_mount(["-t", "overlay", "-o", options, "overlay", step["target"]])
    elif kind == "bind":
        _run_mount(["--bind", step["source"], step["target"]])
        if step.get("readonly"):
            _run_mount(["-o", "remount,bind,ro", step["target"]])
    else:
        raise MountError("unknown plan step {!r}".format(kind))


def _wait_for_owner(owner_pid):
    """Block until the owner exits (pidfd: immune to pid reuse); forever without owner."""
    if not owner_pid:
        while True:
            signal.pause()
    try:
        pidfd = os.pidfd_open(owner_pid)
    except ProcessLookupError:
        return
    select.select([pidfd], [], [])


def main(argv):
    if len(argv) != 3 or argv[0] != procs.HOLDER_MARKER:
        print("usage: holder.py {} DEVICE_DIR PLAN".format(procs.HOLDER_MARKER), file=sys.stderr)
        return 2
    plan = json.loads(Path(argv[2]).read_text())
    try:
        socket.sethostname(plan["hostname"])
        for step in plan["steps"]:
            _step(step)
    except (MountError, OSError) as exc:
        print("error: {}: {}".format(plan["hostname"], exc), flush=True)
        return 1
    print("ready", flush=True)
    # Nobody reads stdout any more; keep no pipe to the starter open.
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 1)
    os.dup2(devnull, 0)
    _wait_for_owner(plan.get("owner_pid"))
    survivors = procs.kill_namespace(procs.mount_namespace(os.getpid()))
    if survivors:
        print("owner gone; could not kill {}".format(survivors), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
