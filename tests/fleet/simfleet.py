"""Simulated Jetson fleet: one sshd per device, each in its own mount + UTS namespace.

    python3 tests/fleet/simfleet.py up     --dir DIR --hosts nano=2,tx2=1,xavier@35.4.1=1
                                           [--build-seconds nano=30,xavier=8] [--port 2222]
                                           [--without-jetpack] [--sshd-log-level VERBOSE]
                                           [--shared-tree HOSTDIR:DEVICEPATH] [--host-python]
    python3 tests/fleet/simfleet.py status --dir DIR
    python3 tests/fleet/simfleet.py fault  --dir DIR HOST KIND [--drop-seconds 5]
    python3 tests/fleet/simfleet.py down   --dir DIR

`up` writes DIR/inventory.yml and DIR/known_hosts; run Ansible with
`-i DIR/inventory.yml`. Needs root (namespaces, mounts, loop devices).
"""

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fleet import faults, fleet, jetpack_link, profiles  # noqa: E402  (after sys.path)

KINDS_HELP = ", ".join("{}@{}".format(kind, module.default_l4t)
                       for kind, module in sorted(profiles.MODULES.items()))


def _parser():
    parser = argparse.ArgumentParser(prog="simfleet.py", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="start the fleet")
    up.add_argument("--dir", required=True, type=Path)
    up.add_argument("--hosts", required=True,
                    help="KIND[@L4T[+trtN]]=COUNT,... (defaults: {}; also L4T {})".format(
                        KINDS_HELP, ", ".join(sorted(profiles.RELEASES))))
    up.add_argument("--build-seconds", default="",
                    help="emulated engine build time: KIND|KIND@L4T|HOST=SECONDS,...")
    up.add_argument("--port", type=int, default=profiles.DEFAULT_PORT)
    up.add_argument("--owner-pid", type=int, default=None,
                    help="tear every device down when this process exits")
    up.add_argument("--without-jetpack", action="store_true",
                    help="devices without the TensorRT/uff/graphsurgeon doubles")
    up.add_argument("--sshd-log-level", default="INFO",
                    choices=["QUIET", "FATAL", "ERROR", "INFO", "VERBOSE", "DEBUG1"],
                    help="VERBOSE logs every session and the bytes of every connection")
    pythons = up.add_mutually_exclusive_group()
    pythons.add_argument("--device-pythons", dest="device_pythons", action="store_true",
                         default=True,
                         help="the default: each device runs its JetPack's Python (3.6 / 3.8 / "
                              "3.10 / 3.12) from the host's pyenv builds, the host's Python "
                              "where one is missing (said in the output)")
    pythons.add_argument("--host-python", dest="device_pythons", action="store_false",
                         help="every device runs the host's Python (faster environment "
                              "installs; for machines without pyenv builds)")
    up.add_argument("--shared-tree", default=None, metavar="HOSTDIR:DEVICEPATH",
                    help="mount HOSTDIR at DEVICEPATH on every device, read-only below a "
                         "per-device writable layer (e.g. an already provisioned venv)")
    down = commands.add_parser("down", help="stop everything the fleet started")
    down.add_argument("--dir", required=True, type=Path)
    status = commands.add_parser("status", help="print hosts and their state")
    status.add_argument("--dir", required=True, type=Path)
    fault = commands.add_parser("fault", help="switch a device's fault")
    fault.add_argument("--dir", required=True, type=Path)
    fault.add_argument("host")
    fault.add_argument("kind", choices=faults.KINDS)
    fault.add_argument("--drop-seconds", type=float, default=5.0,
                       help="drop-mid-build: how long new connections are refused")
    return parser


def _shared_tree(text):
    if text is None:
        return None
    source, sep, device_path = text.rpartition(":")
    if not sep or not source or not device_path:
        raise fleet.FleetError("--shared-tree {!r}: expected HOSTDIR:DEVICEPATH, e.g. "
                               ".cache/venv:/opt/trt-builder/venv".format(text))
    return source, device_path


def _run(args):
    if args.command == "up":
        state = fleet.up(args.dir, args.hosts, args.build_seconds, port=args.port,
                         owner_pid=args.owner_pid, with_jetpack=not args.without_jetpack,
                         sshd_log_level=args.sshd_log_level,
                         shared_tree=_shared_tree(args.shared_tree),
                         device_pythons=args.device_pythons)
        print("fleet up in {:.2f} s: {} hosts; inventory {}".format(
            state["up_seconds"], len(state["hosts"]), Path(state["dir"]) / "inventory.yml"))
        if not state["jetpack"]:
            print("note: devices have no JetPack test doubles (--without-jetpack)")
        for host in state["hosts"]:
            if host["python"]["note"]:
                print("note: " + host["python"]["note"])
    elif args.command == "down":
        result = fleet.down(args.dir)
        print("fleet down: {} devices stopped, {} addresses released".format(
            result["namespaces"], len(result["addresses"])))
    elif args.command == "status":
        for row in fleet.status(args.dir):
            print("{:<14} {:<18} {:<18} {:<13} fault={:<14} python={}".format(*row))
    elif args.command == "fault":
        host = fleet.fault(args.dir, args.host, args.kind, args.drop_seconds)
        print("{}: fault {}".format(host["name"], host["fault"]))
    return 0


def main(argv=None):
    args = _parser().parse_args(argv)
    if os.geteuid() != 0:
        print("error: simfleet needs root (mount namespaces, loop devices)", file=sys.stderr)
        return 2
    try:
        return _run(args)
    except (fleet.FleetError, profiles.ProfileError, jetpack_link.JetpackMissing) as exc:
        print("error: {}".format(exc), file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
