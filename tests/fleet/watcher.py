"""drop-mid-build / freeze-mid-build watcher of one simulated device (`simfleet.py fault`).

    python3 watcher.py simjetson-watcher FLEET_DIR HOST HOLDER_PID DROP_SECONDS [KIND]

Whenever a build announces itself in /etc/simjetson/build-started (the JetPack doubles
write it while the fault is one of these), drop-mid-build cuts every ssh session into the
device and refuses connections for DROP_SECONDS; freeze-mid-build stops every sshd of the
device (SIGSTOP): connections are accepted and never answered, until the fault changes
(faults.apply sends SIGCONT). The build itself (a detached job) keeps running. The marker is
renamed to build-started.seen so that each build acts once.
Runs until killed (`fault ... ok`, another fault, `down`) or the device is gone.
"""

import os
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fleet import faults, procs, sshd_ctl  # noqa: E402  (after the sys.path line above)

POLL_SECONDS = 0.05


def _log(message):
    print("{:.3f} {}".format(time.time(), message), flush=True)


def main(argv):
    if len(argv) not in (5, 6) or argv[0] != faults.WATCHER_MARKER:
        print("usage: watcher.py {} FLEET_DIR HOST HOLDER_PID DROP_SECONDS [KIND]".format(
            faults.WATCHER_MARKER), file=sys.stderr)
        return 2
    host, holder, drop_seconds = argv[2], int(argv[3]), float(argv[4])
    kind = argv[5] if len(argv) == 6 else "drop-mid-build"
    marker = faults.device_path(holder, "/etc/simjetson/build-started")
    seen = marker.with_name("build-started.seen")
    config = faults.device_path(holder, "/etc/ssh/sshd_config").read_text()
    listen = next(line.split()[1] for line in config.splitlines()
                  if line.startswith("ListenAddress "))
    address, port = listen.rsplit(":", 1)
    _log("watching {} (holder {}), drop for {}s".format(host, holder, drop_seconds))
    while procs.alive(holder):
        if marker.exists():
            marker.replace(seen)
            started = seen.read_text().strip().replace("\n", " ")
            if kind == "freeze-mid-build":
                frozen = procs.sshd_pids(procs.mount_namespace(holder))
                for pid in frozen:
                    os.kill(pid, signal.SIGSTOP)
                _log("build started ({}); sshd {} stopped".format(started, frozen))
                time.sleep(POLL_SECONDS)
                continue
            _log("build started ({}); cutting ssh".format(started))
            sshd_ctl.cut(holder)
            time.sleep(drop_seconds)
            faults.restore_sshd(holder, address, int(port))
            _log("ssh accepted again")
        time.sleep(POLL_SECONDS)
    _log("device gone; watcher exits")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
