"""up / down / status / fault of a simulated fleet living in one directory.

DIR/fleet.json is the record of the fleet (hosts, addresses, holder pids, namespaces,
faults); DIR/.lock serialises commands on the same fleet. `down` does not trust the
record alone: it also finds holders and watchers by command line and kills whole
namespaces, so it cleans up after a crashed or interrupted `up`.
"""

import fcntl
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

from fleet import (
    addresses,
    device_python,
    faults,
    inventory,
    jetpack_link,
    procs,
    profiles,
    sshd_ctl,
)
from fleet.device_dir import DeviceDir

HOLDER = Path(__file__).resolve().parent / "holder.py"
SYSTEM_PYTHON = "/usr/bin/python3"   # the devices' ansible_python_interpreter
# Compiled doubles (libcudart per CUDA version) shared by every fleet; layout.py rebuilds
# them only when their sources change.
JETPACK_CACHE = Path(__file__).resolve().parent / "_build"


class FleetError(RuntimeError):
    """A fleet command that cannot be done; the message says why and what to do."""


@contextmanager
def _locked(fleet_dir):
    fleet_dir.mkdir(parents=True, exist_ok=True)
    with open(fleet_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _state_file(fleet_dir):
    return fleet_dir / "fleet.json"


def load_state(fleet_dir):
    path = _state_file(Path(fleet_dir).resolve())
    if not path.is_file():
        return None
    return json.loads(path.read_text())


def _save_state(fleet_dir, state):
    path = _state_file(fleet_dir)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(state, indent=1) + "\n")
    os.replace(temporary, path)


def _system_python_version():
    command = "import sys; print('%d.%d' % sys.version_info[:2])"
    result = subprocess.run([SYSTEM_PYTHON, "-c", command], capture_output=True, text=True,
                            check=True)
    return result.stdout.strip()


def _dpkg_architecture():
    result = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True,
                            check=False)
    # Native architecture: `dpkg-query --show` then prints names without ":arm64",
    # exactly like on a Jetson, where arm64 is native.
    return result.stdout.strip() or "arm64"


def _client_key(fleet_dir):
    key = fleet_dir / "id_ed25519"
    if not key.is_file():
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "simfleet-client",
                        "-f", str(key)], check=True, stdin=subprocess.DEVNULL)
    return key


def up(fleet_dir, hosts_text, build_seconds_text="", *, port=profiles.DEFAULT_PORT,
       owner_pid=None, with_jetpack=True, sshd_log_level="INFO", shared_tree=None,
       device_pythons=True):
    """Start the fleet; returns the state dict. Cleans up after itself when it fails.

    sshd_log_level: the devices' sshd LogLevel. shared_tree: (host dir, device path) mounted
    on every device as the lower layer of a per-device overlay (see DeviceDir.write_plan).
    device_pythons: each device runs the Python of its JetPack (tests/fleet/device_python.py)
    where the host has a build of it, else the host's Python (said in the host's python note);
    False (`simfleet.py up --host-python`): every device runs the host's Python.
    """
    fleet_dir = Path(fleet_dir).resolve()
    plan = profiles.plan_hosts(hosts_text, build_seconds_text)
    if shared_tree is not None:
        shared_tree = _check_shared_tree(fleet_dir, shared_tree)
    with _locked(fleet_dir):
        running = procs.holders_of(fleet_dir / "devices")
        if running:
            raise FleetError("a fleet is already up in {} ({} devices); run `simfleet.py down "
                             "--dir {}` first".format(fleet_dir, len(running), fleet_dir))
        started = time.monotonic()
        try:
            state = _up_locked(fleet_dir, plan, build_seconds_text, port=port,
                               owner_pid=owner_pid, with_jetpack=with_jetpack,
                               sshd_log_level=sshd_log_level, shared_tree=shared_tree,
                               device_pythons=device_pythons)
        except BaseException:
            _down_locked(fleet_dir)
            raise
        state["up_seconds"] = round(time.monotonic() - started, 3)
        _save_state(fleet_dir, state)
        return state


def _check_shared_tree(fleet_dir, shared_tree):
    """(host dir, device path), checked; the host dir may be anywhere (also under /tmp)."""
    source, device_path = Path(shared_tree[0]).resolve(), shared_tree[1]
    if not source.is_dir():
        raise FleetError("shared tree {}: no such directory".format(source))
    if not device_path.startswith("/") or device_path == "/":
        raise FleetError("shared tree: device path {!r} must be an absolute path below /"
                         .format(device_path))
    return str(source), device_path


def _device_pythons(plan, host_version):
    """[(X.Y, build prefix or None, note or None)] per planned host."""
    root = device_python.pyenv_root()
    chosen = []
    for name, profile in plan:
        minor = device_python.wanted(profile.release)
        build = device_python.find_build(minor, root)
        note = None if build else (
            "{}: no Python {} build under {}/versions (JetPack {} ships {}): the device runs "
            "the host's Python {}".format(name, minor, root, profile.release.jetpack, minor,
                                         host_version))
        chosen.append((minor, build, note) if build else (host_version, None, note))
    return chosen


def _up_locked(fleet_dir, plan, build_seconds_text, *, port, owner_pid, with_jetpack,
               sshd_log_level="INFO", shared_tree=None, device_pythons=True):
    jetpack = jetpack_link.Jetpack(JETPACK_CACHE) if with_jetpack else None
    addresses.release(fleet_dir)   # leftovers of an earlier crashed run of this dir
    allocated = addresses.allocate(fleet_dir, len(plan), port)
    hosts = [{"name": name, "profile": profile.name, "group": profile.module.group,
              "address": address, "port": port, "fault": "ok", "holder_pid": None,
              "namespace": None}
             for (name, profile), address in zip(plan, allocated)]
    state = {"dir": str(fleet_dir), "hosts": hosts, "jetpack": jetpack is not None,
             "owner_pid": owner_pid, "state": "starting",
             "build_seconds": build_seconds_text, "sshd_log_level": sshd_log_level,
             "shared_tree": list(shared_tree) if shared_tree else None,
             "device_pythons": device_pythons}
    _save_state(fleet_dir, state)  # from here on `down` knows what to clean

    client_key = _client_key(fleet_dir)
    client_public = Path(str(client_key) + ".pub").read_text()
    devices = [DeviceDir(fleet_dir / "devices" / h["name"]) for h in hosts]
    key_jobs = [job for job in (d.start_host_key_job() for d in devices) if job]
    host_python = _system_python_version()
    pythons = (_device_pythons(plan, host_python) if device_pythons
               else [(host_python, None, None)] * len(plan))
    for host, (version, build, note) in zip(hosts, pythons):
        host["python"] = {"version": version, "build": str(build) if build else None,
                          "fallback": bool(device_pythons and build is None), "note": note}
    host_status = Path("/var/lib/dpkg/status").read_text()
    system_packages = (device_python.host_system_packages(SYSTEM_PYTHON)
                       if any(h["python"]["build"] for h in hosts) else [])
    architecture = _dpkg_architecture()
    for host, device, (_, profile) in zip(hosts, devices, plan):
        device.write_files(host["name"], profile, address=host["address"], port=port,
                           client_public_key=client_public, host_dpkg_status=host_status,
                           architecture=architecture, sshd_log_level=sshd_log_level)
        device.create_disk()
        tree = None
        if jetpack is not None:
            tree = jetpack.site_packages(profile.release.tensorrt_version)
            device.install_cuda(jetpack.cudart(profile.release.cuda_version),
                                profile.release.cuda_version, profile.release.cudart_deb)
            if jetpack.generation(profile.release.tensorrt_version) == "trt5_6":
                plugin = jetpack.flattenconcat()
                if plugin is not None:
                    device.install_file(plugin, jetpack.flattenconcat_device_path())
        device.write_plan(host["name"], host["python"]["version"], tree, owner_pid,
                          shared_tree=shared_tree, interpreter=host["python"]["build"],
                          system_packages=system_packages)
    for job in key_jobs:
        if job.wait() != 0:
            raise FleetError("ssh-keygen failed for a device host key (exit {})".format(
                job.returncode))

    failures = _start_holders(hosts, devices)
    _save_state(fleet_dir, state)
    if failures:
        raise FleetError("; ".join(failures))

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda h: sshd_ctl.start(h["holder_pid"]), hosts))
    silent = sshd_ctl.wait_listening([(h["address"], h["port"]) for h in hosts])
    if silent:
        host = next(h for h in hosts if (h["address"], h["port"]) == silent[0])
        raise FleetError("sshd of {} never listened on {}:{}: {}".format(
            host["name"], host["address"], host["port"], sshd_ctl.log_tail(host["holder_pid"])))

    for host, device in zip(hosts, devices):
        host["host_key"] = device.host_public_key()
    known_hosts = fleet_dir / "known_hosts"
    known_hosts.write_text(inventory.known_hosts_text(hosts))
    (fleet_dir / "inventory.yml").write_text(
        inventory.inventory_text(fleet_dir, hosts, client_key, known_hosts))
    state["state"] = "up"
    return state


def _start_holders(hosts, devices):
    """Start every device's holder; its pid and namespace go into its host record.

    Every holder reports (ready, or its exit) and is recorded before a failure is raised: a
    holder still starting when `down` looks could be caught before it left our mount
    namespace, and outlive the cleanup.
    """
    holders = [_start_holder(device) for device in devices]
    failures = []
    for host, device, holder in zip(hosts, devices, holders):
        line = holder.stdout.readline().strip()
        holder.stdout.close()
        if line == "ready":
            host["holder_pid"] = holder.pid
            host["namespace"] = procs.mount_namespace(holder.pid)
        else:
            holder.wait(5)
            failures.append("device {} did not come up: {} (see {})".format(
                host["name"], line or "holder exited {}".format(holder.returncode), device.log))
    return failures


def _start_holder(device):
    with open(device.log, "wb") as log:
        return subprocess.Popen(
            ["unshare", "--mount", "--uts", "--propagation", "private", "--",
             sys.executable, str(HOLDER), procs.HOLDER_MARKER, str(device.path),
             str(device.plan_file)],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log, text=True,
            start_new_session=True)


def down(fleet_dir):
    """Stop everything the fleet started; safe to repeat and after a partial `up`."""
    fleet_dir = Path(fleet_dir).resolve()
    if not fleet_dir.is_dir():
        raise FleetError("{} does not exist: no fleet to stop there".format(fleet_dir))
    with _locked(fleet_dir):
        return _down_locked(fleet_dir)


def _down_locked(fleet_dir):
    state = load_state(fleet_dir) or {"dir": str(fleet_dir), "hosts": []}
    faults.stop_watchers(fleet_dir)
    own = procs.mount_namespace(os.getpid())
    namespaces = {h["namespace"] for h in state["hosts"] if h.get("namespace")}
    # A holder that has not unshared yet (a crashed `up` caught it starting) is still in our
    # namespace, which is never killed whole: that holder is killed by pid.
    unshared = []
    for pid in procs.holders_of(fleet_dir / "devices").values():
        namespace = procs.mount_namespace(pid)
        if namespace == own:
            unshared.append(pid)
        else:
            namespaces.add(namespace)
    namespaces.discard(None)
    namespaces.discard(own)
    survivors = procs.kill_all(unshared)
    survivors += [pid for ns in namespaces for pid in procs.kill_namespace(ns)]
    _detach_loops(fleet_dir)
    released = addresses.release(fleet_dir)
    for host in state["hosts"]:
        host.update(holder_pid=None, namespace=None, fault="ok")
    state["state"] = "down"
    if fleet_dir.is_dir():
        _save_state(fleet_dir, state)
    if survivors:
        raise FleetError("processes {} of the fleet in {} survived SIGKILL".format(
            survivors, fleet_dir))
    return {"namespaces": len(namespaces), "addresses": released}


def _detach_loops(fleet_dir, timeout=5.0):
    """Loop devices clear themselves once the namespace's mount is gone; make sure."""
    images = {str(p) for p in (fleet_dir / "devices").glob("*/disk.img")}
    deadline = time.monotonic() + timeout
    while images:
        listing = subprocess.run(["losetup", "--list", "--noheadings", "--output",
                                  "NAME,BACK-FILE"], capture_output=True, text=True, check=True)
        attached = [line.split(None, 1) for line in listing.stdout.splitlines()]
        busy = [(dev, back.strip()) for dev, back in attached if back.strip() in images]
        if not busy:
            return
        if time.monotonic() > deadline:
            for dev, _ in busy:
                subprocess.run(["losetup", "--detach", dev], check=False)
            return
        time.sleep(0.05)


def _host(state, name):
    for host in state["hosts"]:
        if host["name"] == name:
            return host
    raise FleetError("no host {!r} in this fleet; hosts: {}".format(
        name, ", ".join(h["name"] for h in state["hosts"])))


def _require_up(fleet_dir, state):
    if state is None or state.get("state") != "up":
        raise FleetError("no fleet is up in {}; start one with `simfleet.py up --dir {} "
                         "--hosts nano=1`".format(fleet_dir, fleet_dir))


def fault(fleet_dir, host_name, kind, drop_seconds=5.0):
    fleet_dir = Path(fleet_dir).resolve()
    with _locked(fleet_dir):
        state = load_state(fleet_dir)
        _require_up(fleet_dir, state)
        host = _host(state, host_name)
        if not procs.alive(host["holder_pid"]):
            raise FleetError("device {} is gone (holder {} not running); run down and up "
                             "again".format(host_name, host["holder_pid"]))
        faults.apply(fleet_dir, host, kind, drop_seconds)
        host["fault"] = kind
        _save_state(fleet_dir, state)
        return host


def status(fleet_dir):
    """[(host, address:port, profile, state, fault, python)]; state is checked live."""
    fleet_dir = Path(fleet_dir).resolve()
    state = load_state(fleet_dir)
    if state is None:
        raise FleetError("{} holds no fleet (no fleet.json)".format(fleet_dir))
    rows = []
    for host in state["hosts"]:
        holder = host.get("holder_pid")
        if not holder or not procs.alive(holder):
            live = "down"
        elif sshd_ctl.running(holder):
            live = "up"
        else:
            live = "sshd stopped"
        python = host.get("python") or {}
        rows.append((host["name"], "{}:{}".format(host["address"], host["port"]),
                     host["profile"], live, host.get("fault", "ok"),
                     "{}{}".format(python.get("version", "?"),
                                   " (host's: fallback)" if python.get("fallback") else "")))
    return rows
