"""The simulated fleet survives changes to its host: apt replacing files while devices run.

apt (dpkg) writes a new /var/lib/dpkg/status next to the old one and renames it over. A
rename over a path that is a mount point in another mount namespace detaches that mount
there (Linux >= 3.18), so a device that had its own status file bound onto the host's
path would suddenly see the host's packages and lose its JetPack. The test plays the host
in a private mount namespace whose /var/lib/dpkg is a copy, so the real host's dpkg
database is never touched (other fleets may be running on this machine).
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fleet import fleet, profiles
from fleet.fixture import SimFleet

pytestmark = pytest.mark.fleet

SIMFLEET = Path(__file__).resolve().parent / "simfleet.py"
HOSTS = "nano=1,xavier=1,xavier@35.4.1=1"


def _apt_style_replace(path, text):
    """What dpkg does to its status file: write status-new, fsync, rename over."""
    new = path.with_name(path.name + "-new")
    with open(new, "w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(new, path)


def _tensorrt_versions(sim):
    return {name: sim.ssh(name, "dpkg-query --show --showformat='${Version}' tensorrt")
            for name in sim.names}


def test_devices_keep_their_tensorrt_when_host_apt_rewrites_dpkg_status(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("the simulated fleet needs root (mount namespaces, loop devices)")
    host_dpkg = tmp_path / "host-dpkg"
    shutil.copytree("/var/lib/dpkg", host_dpkg, symlinks=True)
    fleet_dir = tmp_path / "fleet"
    # The fleet's "host" is a namespace whose /var/lib/dpkg is host_dpkg.
    up = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c",
         'mount --bind "$1" /var/lib/dpkg && exec "$2" "$3" up --dir "$4" --hosts "$5" '
         '--owner-pid "$6"', "sh", str(host_dpkg), sys.executable, str(SIMFLEET),
         str(fleet_dir), HOSTS, str(os.getpid())],
        capture_output=True, text=True, timeout=300, check=False)
    assert up.returncode == 0, up.stdout + up.stderr
    try:
        sim = SimFleet(fleet_dir)
        expected = {host["name"]: profiles.profile(host["profile"]).release.tensorrt_deb
                    for host in sim.hosts}
        before = _tensorrt_versions(sim)
        assert {name: r.stdout for name, r in before.items()} == expected, before

        status = host_dpkg / "status"
        old_inode = status.stat().st_ino
        host_text = status.read_text()
        _apt_style_replace(status, host_text + "\n" + (
            "Package: simjetson-host-upgrade\nStatus: install ok installed\n"
            "Maintainer: simjetson\nArchitecture: all\nVersion: 1.0\n"
            "Description: SIMULATED apt run on the host\n"))
        assert status.stat().st_ino != old_inode   # really a new file renamed over

        after = _tensorrt_versions(sim)
        failures = {name: (r.returncode, r.stdout, r.stderr) for name, r in after.items()
                    if r.returncode != 0 or r.stdout != expected[name]}
        assert not failures, "devices lost their JetPack packages: {}".format(failures)
        for name in sim.names:   # the host's new package is the host's, not the device's
            listed = sim.ssh(name, "dpkg-query --show simjetson-host-upgrade")
            assert listed.returncode != 0, (name, listed.stdout)
    finally:
        fleet.down(fleet_dir)


def test_shared_tree_and_fleet_under_tmp_are_reachable_from_the_devices(tmp_path):
    """A clone under /tmp (or /root, /opt, /var/tmp) puts the shared tree and the fleet dir
    where the devices' own directories hide the host's: the devices still see the tree,
    write above it, and the host's copy stays untouched."""
    if os.geteuid() != 0:
        pytest.skip("the simulated fleet needs root (mount namespaces, loop devices)")
    tree = tmp_path / "clone" / ".cache" / "venv"
    (tree / "bin").mkdir(parents=True)
    (tree / "bin" / "marker").write_text("shared tree under {}\n".format(tmp_path))
    fleet_dir = tmp_path / "clone" / ".fleet"
    try:
        fleet.up(fleet_dir, "nano=1,tx2=1", owner_pid=os.getpid(), with_jetpack=False,
                 shared_tree=(str(tree), "/opt/trt-builder/venv"))
        sim = SimFleet(fleet_dir)
        for name in sim.names:
            read = sim.ssh(name, "cat /opt/trt-builder/venv/bin/marker && "
                                 "echo {0} > /opt/trt-builder/venv/bin/own && "
                                 "cat /opt/trt-builder/venv/bin/own".format(name))
            assert read.returncode == 0, (name, read.stderr)
            assert read.stdout == "shared tree under {}\n{}\n".format(tmp_path, name)
        assert sorted(p.name for p in (tree / "bin").iterdir()) == ["marker"]
    finally:
        fleet.down(fleet_dir)
