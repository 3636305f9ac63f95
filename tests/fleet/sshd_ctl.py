"""Starting and cutting the sshd of a simulated device (inside its namespace)."""

import socket
import subprocess
import time

from fleet import procs

SSHD = "/usr/sbin/sshd"
SSHD_LOG = "/run/simjetson/sshd.log"   # on the device's own /run


class SshdError(RuntimeError):
    pass


def start(holder_pid):
    """Start the device's sshd; it daemonizes, so this returns once the config was accepted.

    Does not wait for the listener: call wait_listening (cheaper to do for all devices
    at once).
    """
    result = subprocess.run(
        ["nsenter", "--target", str(holder_pid), "--mount", "--uts", "--",
         SSHD, "-f", "/etc/ssh/sshd_config", "-E", SSHD_LOG],
        capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        raise SshdError("sshd of holder {} did not start (exit {}): {}".format(
            holder_pid, result.returncode, (result.stderr or result.stdout).strip()))


def running(holder_pid):
    return bool(procs.sshd_pids(procs.mount_namespace(holder_pid)))


def cut(holder_pid):
    """Kill the listener and every ssh session into the device: clients see the
    connection drop (ControlPersist masters too), new ones are refused."""
    namespace = procs.mount_namespace(holder_pid)
    survivors = procs.kill_all(procs.sshd_pids(namespace))
    if survivors:
        raise SshdError("sshd processes {} of holder {} survived SIGKILL".format(
            survivors, holder_pid))


def _accepts(address, port):
    try:
        with socket.create_connection((address, port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_listening(endpoints, timeout=10.0):
    """Wait until every (address, port) accepts TCP; returns the ones that never did."""
    deadline = time.monotonic() + timeout
    waiting = list(endpoints)
    while waiting:
        waiting = [ep for ep in waiting if not _accepts(*ep)]
        if not waiting or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    return waiting


def log_tail(holder_pid, lines=20):
    try:
        with open("/proc/{}/root{}".format(holder_pid, SSHD_LOG)) as handle:
            return "".join(handle.readlines()[-lines:])
    except OSError as exc:
        return "(no sshd log: {})".format(exc)
