"""The host-side directory of one simulated device and the mount plan built from it.

    DIR/devices/<name>/
      etc.upper/        overlay upper of the device's /etc (nv_tegra_release, hostname,
                        ssh/ with sshd_config + host key, simjetson/ device.json + fault)
      usrlocal.upper/   overlay upper of /usr/local (cuda-X.Y/lib64/libcudart*, cuda link)
      pysite.upper/     overlay upper of /usr/local/lib/python3.X/dist-packages, whose
                        lower layer is the JetPack doubles tree of the device's generation
      firmware/         bound read-only onto /sys/firmware (devicetree/base/model...)
      dpkg.upper/status overlay upper of /var/lib/dpkg (the host's dpkg database is the
                        lower layer): the device's own copy of the status file
      disk.img          sparse ext4 image: the device's /root, /opt, /tmp, /var/tmp
      shared.upper/     (only with a shared tree) writable upper layer over the shared tree
      plan.json, holder.log
"""

import json
import os
import shutil
import subprocess
from pathlib import Path

from fleet import device_files

DISK_SIZE = "16G"            # sparse: costs what is written (TensorFlow venvs ~1 GB each)
DEVICE_DISK_MOUNT = "/run/simjetson/disk"
SHARED_STAGE = "/run/simjetson/shared"   # where a shared tree stays reachable
PYTHON_STAGE = "/run/simjetson/python"   # where the device's Python build stays reachable
DEVICE_STAGE = "/run/simjetson/device"   # this device dir (overlay upper layers)
# Device dir -> where it lives on the device's own disk image (name, mode).
WRITABLE_DIRS = (("/root", "root", "0700"), ("/opt", "opt", "0755"),
                 ("/tmp", "tmp", "1777"), ("/var/tmp", "var-tmp", "1777"))
HOST_KEY = "ssh/ssh_host_ed25519_key"
DPKG_DIR = "/var/lib/dpkg"


class DeviceDir:
    def __init__(self, path):
        self.path = Path(path)
        self.etc = self.path / "etc.upper"
        self.usrlocal = self.path / "usrlocal.upper"
        self.pysite = self.path / "pysite.upper"
        self.firmware = self.path / "firmware"
        self.dpkg_upper = self.path / "dpkg.upper"
        self.dpkg_status = self.dpkg_upper / "status"
        self.disk = self.path / "disk.img"
        self.plan_file = self.path / "plan.json"
        self.log = self.path / "holder.log"

    @property
    def host_key(self):
        return self.etc / HOST_KEY

    def host_public_key(self):
        return Path(str(self.host_key) + ".pub").read_text().split()[:2]

    def start_host_key_job(self):
        """ssh-keygen for this device unless the key exists (keys survive down/up)."""
        if self.host_key.is_file():
            return None
        self.host_key.parent.mkdir(parents=True, exist_ok=True)
        return subprocess.Popen(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", self.path.name,
             "-f", str(self.host_key)], stdin=subprocess.DEVNULL)

    def write_files(self, name, profile, *, address, port, client_public_key,
                    host_dpkg_status, architecture, sshd_log_level="INFO"):
        for directory in (self.etc / "simjetson", self.etc / "ssh", self.firmware /
                          "devicetree" / "base", self.usrlocal, self.pysite, self.dpkg_upper):
            directory.mkdir(parents=True, exist_ok=True)
        for work in ("etc.work", "usrlocal.work", "pysite.work", "dpkg.work"):
            (self.path / work).mkdir(exist_ok=True)
        texts = {
            self.etc / "nv_tegra_release": device_files.nv_tegra_release(profile),
            self.etc / "hostname": name + "\n",
            self.etc / "ssh" / "sshd_config": device_files.sshd_config(
                name, address, port, sshd_log_level, kex=profile.release.ssh_kex),
            self.etc / "ssh" / "simjetson_authorized_keys": client_public_key,
            self.etc / "simjetson" / "device.json": device_files.device_json(name, profile),
            self.etc / "simjetson" / "fault": "ok\n",
            self.dpkg_status: device_files.dpkg_status(profile, host_dpkg_status, architecture),
        }
        for path, text in texts.items():
            path.write_text(text)
        base = self.firmware / "devicetree" / "base"
        (base / "model").write_bytes(device_files.devicetree_model(profile))
        (base / "compatible").write_bytes(device_files.devicetree_compatible(profile))
        stale_marker = self.etc / "simjetson" / "build-started"
        if stale_marker.exists():
            stale_marker.unlink()

    def install_cuda(self, cudart, cuda_version, cudart_deb):
        """/usr/local/cuda -> cuda-X.Y with lib64/libcudart.so{,.SONAME,.FULL} like JetPack."""
        major = int(cuda_version.split(".")[0])
        soname = "libcudart.so." + (cuda_version if major < 11 else
                                    "{}.0".format(major) if major == 11 else str(major))
        full = "libcudart.so.{}.{}".format(cuda_version, cudart_deb.split("-")[0].split(".")[2])
        lib64 = self.usrlocal / "cuda-{}".format(cuda_version) / "lib64"
        lib64.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(cudart, lib64 / full)
        for link, target in ((lib64 / soname, full), (lib64 / "libcudart.so", soname),
                             (self.usrlocal / "cuda", "cuda-{}".format(cuda_version))):
            if link.is_symlink() or link.exists():
                link.unlink()
            link.symlink_to(target)

    def install_file(self, source, device_path):
        """Copy a file to a path under /usr/local on the device."""
        relative = Path(device_path).relative_to("/usr/local")
        destination = self.usrlocal / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, destination)

    def create_disk(self):
        """A sparse ext4 image, created once (mkfs with lazy init takes milliseconds)."""
        if self.disk.is_file():
            return
        temporary = self.disk.with_suffix(".tmp")
        with open(temporary, "wb") as handle:
            handle.truncate(_parse_size(DISK_SIZE))
        # -m 0: no root reserve, the ssh user is root and disk-full must hit it too.
        subprocess.run(["mkfs.ext4", "-q", "-F", "-m", "0", "-L", self.path.name[:16],
                        "-E", "lazy_itable_init=1,lazy_journal_init=1,nodiscard",
                        str(temporary)], check=True, capture_output=True)
        os.replace(temporary, self.disk)

    def write_plan(self, name, python_version, doubles_tree, owner_pid, *, shared_tree=None,
                   interpreter=None, system_packages=()):
        """shared_tree: optional (host dir, device path): the host dir is mounted at the device
        path as the read-only lower layer of an overlay whose upper layer is this device's own
        (fresh at every up), e.g. one provisioned venv shared by many devices.
        interpreter: optional prefix of a Python build (pyenv's X.Y.Z) that becomes the
        device's /usr/bin/python3, at the same absolute path, seeing the doubles through a
        .pth file; python_version is then its X.Y. system_packages: host package directories
        (pure Python) that the interpreter finds in dist-packages, as JetPack's apt installs
        them for its system Python."""
        dist_packages = "/usr/local/lib/python{}/dist-packages".format(python_version)
        (self.usrlocal / dist_packages[len("/usr/local/"):]).mkdir(parents=True, exist_ok=True)
        steps = [
            {"kind": "tmpfs", "target": "/run", "options": "size=64m,mode=0755"},
            {"kind": "mkdir", "path": "/run/sshd", "mode": "0755"},
            {"kind": "mkdir", "path": DEVICE_DISK_MOUNT, "mode": "0755"},
            {"kind": "loop", "image": str(self.disk), "target": DEVICE_DISK_MOUNT},
        ]
        steps += [{"kind": "mkdir", "path": "{}/{}".format(DEVICE_DISK_MOUNT, sub), "mode": mode}
                  for _, sub, mode in WRITABLE_DIRS]
        steps += [
            _overlay("/etc", ["/etc"], self.etc, self.path / "etc.work"),
            _overlay("/usr/local", ["/usr/local"], self.usrlocal, self.path / "usrlocal.work"),
        ]
        if doubles_tree is not None:
            steps.append(_overlay(dist_packages, [str(doubles_tree), dist_packages],
                                  self.pysite, self.path / "pysite.work"))
        # Mount points are directories only, never a host file: the host's apt replaces
        # /var/lib/dpkg/status by renaming a new file over it, and a rename over a mount
        # point detaches that mount in every namespace (the device would see the host's
        # packages, without JetPack). The device's status is its own file in an overlay.
        steps += [
            {"kind": "bind", "source": str(self.firmware), "target": "/sys/firmware",
             "readonly": True},
            _overlay(DPKG_DIR, [DPKG_DIR], self.dpkg_upper, self.path / "dpkg.work"),
        ]
        late = []    # mounted once the device's own /root, /opt, /tmp, /var/tmp are in place
        if shared_tree is not None or interpreter is not None:
            # Those directories hide the host's, where a shared tree, a pyenv build or this
            # device dir may live (a clone under /tmp, pyenv under /root): reach them
            # through binds under the device's /run, made while the host paths are visible.
            steps += [{"kind": "mkdir", "path": DEVICE_STAGE, "mode": "0755"},
                      {"kind": "bind", "source": str(self.path), "target": DEVICE_STAGE}]
        if shared_tree is not None:
            source, device_path = shared_tree
            steps += self._stage(source, SHARED_STAGE)
            late += [{"kind": "mkdir", "path": device_path, "mode": "0755"},
                     self._staged_overlay(device_path, SHARED_STAGE, "shared")]
        if interpreter is not None:
            steps += self._stage(str(interpreter), PYTHON_STAGE)
            steps += self._device_python(interpreter, python_version)
            self._install_system_packages(dist_packages, system_packages)
            late += [{"kind": "mkdir", "path": str(interpreter), "mode": "0755"},
                     self._staged_overlay(str(interpreter), PYTHON_STAGE, "python",
                                          fresh=False)]
        # These may hide the fleet dir itself (a fleet under /tmp or /root).
        steps += [{"kind": "bind", "source": "{}/{}".format(DEVICE_DISK_MOUNT, sub),
                   "target": target} for target, sub, _ in WRITABLE_DIRS]
        steps += late
        self.plan_file.write_text(json.dumps(
            {"hostname": name, "owner_pid": owner_pid, "steps": steps}, indent=1) + "\n")

    @staticmethod
    def _stage(source, stage):
        return [{"kind": "mkdir", "path": stage, "mode": "0755"},
                {"kind": "bind", "source": source, "target": stage, "readonly": True}]

    def _staged_overlay(self, target, stage, layer, fresh=True):
        """Overlay of a staged lower dir; upper and work in this device dir (via its stage)."""
        upper, work = self.path / (layer + ".upper"), self.path / (layer + ".work")
        for directory in (upper, work):
            if fresh or directory.name.endswith(".work"):
                shutil.rmtree(directory, ignore_errors=True)
            directory.mkdir(exist_ok=True)
        staged = Path(DEVICE_STAGE)
        return _overlay(target, [stage], staged / upper.name, staged / work.name)

    def _install_system_packages(self, dist_packages, packages):
        """Copies below this device's /usr/local layer (without the host's C extensions)."""
        target = self.usrlocal / dist_packages[len("/usr/local/"):]
        for package in packages:
            shutil.rmtree(target / package.name, ignore_errors=True)
            shutil.copytree(str(package), str(target / package.name),
                            ignore=shutil.ignore_patterns("*.so", "__pycache__"))

    def _device_python(self, interpreter, python_version):
        """/usr/bin/python3 -> the build; a .pth makes it see the JetPack doubles."""
        site = self.path / "python.upper" / "lib" / "python{}".format(python_version) / \
            "site-packages"
        site.mkdir(parents=True, exist_ok=True)
        (site / "simjetson-dist-packages.pth").write_text(
            "/usr/local/lib/python{}/dist-packages\n".format(python_version))
        usrbin = self.path / "usrbin.upper"
        usrbin.mkdir(exist_ok=True)
        (self.path / "usrbin.work").mkdir(exist_ok=True)
        link = usrbin / "python3"
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to("{}/bin/python{}".format(interpreter, python_version))
        return [_overlay("/usr/bin", ["/usr/bin"], usrbin, self.path / "usrbin.work")]


def _overlay(target, lower, upper, work):
    return {"kind": "overlay", "target": target, "lower": [str(p) for p in lower],
            "upper": str(upper), "work": str(work)}


def _parse_size(text):
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    return int(text[:-1]) * units[text[-1]] if text[-1] in units else int(text)
