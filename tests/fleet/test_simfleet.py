"""The simulated fleet against the real thing: sshd, ssh, namespaces, loop disks, Ansible."""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from fleet import addresses, faults, fleet, jetpack_link, procs
from fleet.fixture import fleet_processes

pytestmark = pytest.mark.fleet

SIMFLEET = Path(__file__).resolve().parent / "simfleet.py"
# The ansible next to the interpreter running the tests (the project venv, `make venv`).
ANSIBLE = Path(sys.executable).parent / "ansible"


@pytest.fixture(scope="module")
def shared(module_sim_fleet):
    """One fleet for the read-only and fault tests; each fault test restores `ok`."""
    return module_sim_fleet("nano=2,tx2=1,xavier=1")


def _simfleet(*args, timeout=60):
    return subprocess.run([sys.executable, str(SIMFLEET), *args], capture_output=True,
                          text=True, timeout=timeout, check=False)


def _mounts_mentioning(text):
    return [line for line in Path("/proc/mounts").read_text().splitlines() if text in line]


def _loops_of(fleet_dir):
    listing = subprocess.run(["losetup", "--list", "--noheadings", "--output", "BACK-FILE"],
                             capture_output=True, text=True, check=True).stdout
    return [line for line in listing.splitlines() if str(fleet_dir) in line]


def _assert_nothing_left(fleet_dir, namespaces):
    assert not procs.holders_of(Path(fleet_dir) / "devices")
    for namespace in namespaces:
        assert procs.pids_in_namespace(namespace) == [], namespace
    assert not _mounts_mentioning(str(fleet_dir))
    assert not _loops_of(fleet_dir)
    assert addresses.owned_by(fleet_dir) == []


# --- identity ----------------------------------------------------------------------

def test_devices_report_their_own_identity_over_ssh(shared):
    script = ("hostname; head -1 /etc/nv_tegra_release; "
              "tr '\\0' '|' < /sys/firmware/devicetree/base/model; echo; "
              "tr '\\0' '|' < /sys/firmware/devicetree/base/compatible; echo; "
              "dpkg-query --show tensorrt; cat /etc/simjetson/device.json")
    nano, tx2 = shared.ssh("nano-1", script), shared.ssh("tx2-1", script)
    assert nano.returncode == 0, nano.stderr
    assert tx2.returncode == 0, tx2.stderr
    nano_lines, tx2_lines = nano.stdout.splitlines(), tx2.stdout.splitlines()
    assert nano_lines[0] == "nano-1" and tx2_lines[0] == "tx2-1"
    assert "REVISION: 7.1," in nano_lines[1] and "BOARD: t210ref" in nano_lines[1]
    assert "REVISION: 3.1," in tx2_lines[1] and "BOARD: t186ref" in tx2_lines[1]
    assert nano_lines[2] == "NVIDIA Jetson Nano Developer Kit|"
    assert tx2_lines[3] == "nvidia,p2771-0000|nvidia,tegra186|"
    assert nano_lines[4] == "tensorrt\t8.2.1.8-1+cuda10.2"
    assert tx2_lines[4] == "tensorrt\t6.0.1.10-1+cuda10.0"
    device = json.loads("\n".join(tx2_lines[5:]))
    assert device["name"] == "tx2-1" and device["compute_capability"] == "6.2"


def test_devices_do_not_share_writable_dirs(shared):
    for directory in ("/root", "/opt", "/tmp", "/var/tmp"):
        marker = "{}/simfleet-marker-{}".format(directory, os.getpid())
        written = shared.ssh("nano-1", "echo nano-1 > {}".format(marker))
        assert written.returncode == 0, written.stderr
        other = shared.ssh("nano-2", "cat {}".format(marker))
        assert other.returncode != 0 and "No such file" in other.stderr
        assert not Path(marker).exists()  # the host does not see it either
        shared.ssh("nano-1", "rm {}".format(marker))


# --- faults ------------------------------------------------------------------------

def test_unreachable_cuts_sessions_refuses_ssh_and_ok_restores(shared):
    session = subprocess.Popen(shared.ssh_command("xavier-1", "sleep 30"),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(0.5)
        assert session.poll() is None
        shared.fault("xavier-1", "unreachable")
        assert session.wait(timeout=5) == 255   # the open connection broke
        refused = shared.ssh("xavier-1", "true")
        assert refused.returncode == 255
        assert "Connection refused" in refused.stderr
    finally:
        session.kill()
        shared.fault("xavier-1", "ok")
    restored = shared.ssh("xavier-1", "cat /etc/simjetson/fault")
    assert restored.returncode == 0, restored.stderr
    assert restored.stdout.strip() == "ok"


WRITE_1MB = ("python3 -c \"import errno, sys\ntry:\n open(sys.argv[1], 'wb').write(b'x' * 2**20)"
             "\nexcept OSError as e:\n print(errno.errorcode[e.errno])\nelse:\n print('written')\""
             " {}")


def test_disk_full_gives_enospc_and_ok_clears_it(shared):
    try:
        shared.fault("nano-2", "disk-full")
        for directory in ("/root", "/opt", "/tmp", "/var/tmp"):
            full = shared.ssh("nano-2", WRITE_1MB.format(directory + "/big"))
            assert full.stdout.strip() == "ENOSPC", (directory, full.stdout, full.stderr)
        # Other devices are not affected.
        assert shared.ssh("nano-1", WRITE_1MB.format("/tmp/big")).stdout.strip() == "written"
    finally:
        shared.fault("nano-2", "ok")
    again = shared.ssh("nano-2", WRITE_1MB.format("/opt/big") + " && rm /opt/big /tmp/big")
    assert again.stdout.strip() == "written", again.stderr
    shared.ssh("nano-1", "rm -f /tmp/big")


READ_FAULT = "python3 -c \"print(open('/etc/simjetson/fault').read().strip())\""


@pytest.mark.parametrize("kind", ["slow", "oom"])
def test_slow_and_oom_are_visible_to_python_on_the_device(shared, kind):
    try:
        shared.fault("tx2-1", kind)
        seen = shared.ssh("tx2-1", READ_FAULT)
        assert seen.stdout.strip() == kind, seen.stderr
        assert shared.ssh("nano-1", READ_FAULT).stdout.strip() == "ok"
    finally:
        shared.fault("tx2-1", "ok")
    assert shared.ssh("tx2-1", READ_FAULT).stdout.strip() == "ok"


def _announce_build_command():
    """What the doubles do at build start; through the doubles themselves when present."""
    if jetpack_link.available():
        announce = "python3 -c 'from _simjetson import device; device.announce_build_start()'"
    else:
        announce = ("printf 'SIMULATED build started\\npid=%s\\n' $$ > /etc/simjetson/b.tmp && "
                    "mv /etc/simjetson/b.tmp /etc/simjetson/build-started")
    # A detached "build" that must survive the drop, like an Ansible async job.
    return ("setsid sh -c 'echo $$ > /tmp/build.pid; {}; sleep 20' "
            "</dev/null >/dev/null 2>&1 &".format(announce.replace("'", "'\\''")))


def test_drop_mid_build_cuts_open_connection_then_accepts_again(shared):
    shared.fault("nano-1", "drop-mid-build", drop_seconds=2)
    session = subprocess.Popen(shared.ssh_command("nano-1", "sleep 30"),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(0.5)
        assert session.poll() is None  # nothing dropped before a build starts
        started = shared.ssh("nano-1", _announce_build_command())
        assert started.returncode == 0, started.stderr
        assert session.wait(timeout=5) == 255
        during = shared.ssh("nano-1", "true")
        assert during.returncode == 255 and "Connection refused" in during.stderr
        deadline = time.monotonic() + 10
        while shared.ssh("nano-1", "true").returncode != 0:
            assert time.monotonic() < deadline, "sshd did not come back after the drop"
            time.sleep(0.2)
        after = shared.ssh("nano-1", "kill -0 $(cat /tmp/build.pid) && echo build-alive; "
                                     "cat /etc/simjetson/build-started.seen")
        assert "build-alive" in after.stdout, after.stderr
        assert "SIMULATED" in after.stdout
    finally:
        session.kill()
        shared.fault("nano-1", "ok")
        shared.ssh("nano-1", "kill $(cat /tmp/build.pid); rm -f /tmp/build.pid")
    assert faults.watcher_pids(shared.dir) == []


# --- Ansible -------------------------------------------------------------------------

def _ansible_ping(inventory, tmp_path):
    """Ad-hoc ping with fresh ControlPersist sockets (a live master would skip the
    host key check of a new connection)."""
    control_dir = tempfile.mkdtemp(prefix="cp", dir="/tmp")  # socket paths must stay short
    env = dict(os.environ, ANSIBLE_HOST_KEY_CHECKING="True", ANSIBLE_FORCE_COLOR="0",
               ANSIBLE_LOCAL_TEMP=str(tmp_path / "ansible-local"),
               ANSIBLE_SSH_CONTROL_PATH_DIR=control_dir)
    try:
        return subprocess.run([str(ANSIBLE), "all", "-i", str(inventory), "-m",
                               "ansible.builtin.ping", "--one-line"], capture_output=True,
                              text=True, timeout=120, check=False, env=env, cwd=tmp_path)
    finally:
        shutil.rmtree(control_dir, ignore_errors=True)


@pytest.mark.skipif(not ANSIBLE.exists(), reason="ansible not installed at " + str(ANSIBLE))
def test_ansible_ping_reaches_every_host_with_host_key_checking(shared, tmp_path):
    result = _ansible_ping(shared.inventory, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    for name in shared.names:
        assert any(line.startswith(name + " | SUCCESS") and '"pong"' in line
                   for line in result.stdout.splitlines()), result.stdout
    # Host key checking is really on: a wrong key for one host makes it unreachable.
    original = shared.known_hosts.read_text()
    lines = original.splitlines()
    tx2 = next(i for i, h in enumerate(shared.hosts) if h["name"] == "tx2-1")
    other_key = lines[(tx2 + 1) % len(lines)].split(" ", 1)[1]
    lines[tx2] = lines[tx2].split(" ", 1)[0] + " " + other_key
    try:
        shared.known_hosts.write_text("\n".join(lines) + "\n")
        spoofed = _ansible_ping(shared.inventory, tmp_path)
    finally:
        shared.known_hosts.write_text(original)
    assert spoofed.returncode != 0
    tx2_line = next(line for line in spoofed.stdout.splitlines() if line.startswith("tx2-1"))
    assert "UNREACHABLE" in tx2_line
    assert "Host key verification failed" in spoofed.stdout
    assert spoofed.stdout.count("| SUCCESS") == len(shared.names) - 1


# --- JetPack doubles on the device ---------------------------------------------------

@pytest.mark.skipif(not jetpack_link.available(),
                    reason="tests/jetpack/layout.py missing: devices have no TensorRT doubles")
def test_system_python_sees_the_tensorrt_of_its_generation(sim_fleet):
    sim = sim_fleet("tx2=1,xavier@35.4.1=1,orin=1")
    probe = ("python3 -c \"import json, tensorrt; "
             "print(tensorrt.__version__, json.load(open('/etc/simjetson/device.json'))"
             "['tensorrt_version'])\"; python3 -c 'import uff, graphsurgeon' && echo has-uff; "
             "ls /usr/local/cuda/lib64/")
    for name, version, has_uff in (("tx2-1", "6.0.1.10", True),
                                   ("xavier-1", "8.5.2.2", True),
                                   ("orin-1", "10.3.0", False)):
        result = sim.ssh(name, probe)
        lines = result.stdout.splitlines()
        assert lines and lines[0] == "{} {}".format(version, version), result.stderr
        assert ("has-uff" in lines) is has_uff, result.stdout + result.stderr
        assert "libcudart.so" in lines


def test_devices_offer_the_key_exchanges_of_their_ubuntu(sim_fleet):
    # JetPack 4 (Ubuntu 18.04) and 5 (20.04) predate OpenSSH's post-quantum default; 6 has it.
    sim = sim_fleet("nano=1,xavier@35.4.1=1,orin=1")
    for name, kex in (("nano-1", "curve25519-sha256"), ("xavier-1", "curve25519-sha256"),
                      ("orin-1", "sntrup761x25519-sha512@openssh.com")):
        result = subprocess.run(sim.ssh_command(name, "true", "-v"), capture_output=True,
                                text=True, timeout=60, check=False, stdin=subprocess.DEVNULL)
        assert result.returncode == 0, result.stderr
        assert "kex: algorithm: {}\n".format(kex) in result.stderr, result.stderr


# --- lifecycle -----------------------------------------------------------------------

def test_down_leaves_no_process_mount_loop_or_address(sim_fleet):
    sim = sim_fleet("nano=1,orin=1")
    namespaces = [h["namespace"] for h in sim.hosts]
    assert len(set(namespaces)) == 2 and fleet_processes(sim)
    assert sim.ssh("orin-1", "sleep 60 </dev/null >/dev/null 2>&1 & echo ok").returncode == 0
    sim.fault("nano-1", "drop-mid-build")
    sim.down()
    _assert_nothing_left(sim.dir, namespaces)
    rows = fleet.status(sim.dir)
    assert [row[3] for row in rows] == ["down", "down"]


def test_failed_up_cleans_up_and_names_the_device(tmp_path):
    bad = tmp_path / "devices" / "nano-2"
    bad.mkdir(parents=True)
    (bad / "disk.img").write_bytes(b"not an ext4 image" * 1000)
    result = _simfleet("up", "--dir", str(tmp_path), "--hosts", "nano=3", "--without-jetpack")
    assert result.returncode == 2
    assert "device nano-2 did not come up" in result.stderr
    _assert_nothing_left(tmp_path, [])


def test_down_after_a_killed_up(tmp_path):
    up = subprocess.Popen([sys.executable, str(SIMFLEET), "up", "--dir", str(tmp_path),
                           "--hosts", "nano=8,xavier=8", "--without-jetpack"],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while not procs.holders_of(tmp_path / "devices"):
        assert up.poll() is None and time.monotonic() < deadline, "up ended before holders ran"
        time.sleep(0.005)
    up.send_signal(signal.SIGKILL)
    up.wait()
    state = fleet.load_state(tmp_path)
    assert state["state"] == "starting"       # the record of a partial up
    # A holder caught before it unshared is still in our namespace: `down` kills it by pid,
    # and _assert_nothing_left finds no holder left.
    own = procs.mount_namespace(os.getpid())
    namespaces = [ns for ns in (procs.mount_namespace(p) for p in
                                procs.holders_of(tmp_path / "devices").values()) if ns != own]
    result = _simfleet("down", "--dir", str(tmp_path))
    assert result.returncode == 0, result.stderr
    _assert_nothing_left(tmp_path, namespaces)


def test_devices_die_with_their_owner(tmp_path):
    owner = subprocess.Popen(["sleep", "60"])
    result = _simfleet("up", "--dir", str(tmp_path), "--hosts", "nano=2",
                       "--without-jetpack", "--owner-pid", str(owner.pid))
    assert result.returncode == 0, result.stderr
    namespaces = [h["namespace"] for h in fleet.load_state(tmp_path)["hosts"]]
    assert all(procs.pids_in_namespace(ns) for ns in namespaces)
    owner.kill()
    owner.wait()
    deadline = time.monotonic() + 5
    while any(procs.pids_in_namespace(ns) for ns in namespaces):
        assert time.monotonic() < deadline, "holders outlived their owner"
        time.sleep(0.05)
    assert _simfleet("down", "--dir", str(tmp_path)).returncode == 0
    _assert_nothing_left(tmp_path, namespaces)


def test_two_fleets_started_at_once_get_distinct_addresses(tmp_path):
    results = {}

    def start(name):
        results[name] = _simfleet("up", "--dir", str(tmp_path / name), "--hosts", "nano=4",
                                  "--without-jetpack")

    threads = [threading.Thread(target=start, args=(n,)) for n in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        for result in results.values():
            assert result.returncode == 0, result.stderr
        a = {h["address"] for h in fleet.load_state(tmp_path / "a")["hosts"]}
        b = {h["address"] for h in fleet.load_state(tmp_path / "b")["hosts"]}
        assert len(a) == 4 and len(b) == 4 and not a & b
    finally:
        for name in ("a", "b"):
            _simfleet("down", "--dir", str(tmp_path / name))


@pytest.mark.parametrize("count", [8, 32])
def test_up_time(tmp_path, count):
    """Prints the figure; asserts only that the fleet came up and answers."""
    if not shutil.which("ssh"):
        pytest.skip("no ssh client")
    half = count // 2
    jetpack = [] if jetpack_link.available() else ["--without-jetpack"]
    result = _simfleet("up", "--dir", str(tmp_path), "--hosts",
                       "nano={},xavier@35.4.1={}".format(half, count - half), *jetpack)
    try:
        assert result.returncode == 0, result.stderr
        state = fleet.load_state(tmp_path)
        print("\nsimfleet up: {} hosts in {:.2f} s (fresh dir)".format(count,
                                                                      state["up_seconds"]))
        assert len(state["hosts"]) == count
    finally:
        assert _simfleet("down", "--dir", str(tmp_path)).returncode == 0
