"""The provisioned environment that large fleets start from (the TensorFlow venv).

Installing TensorFlow into a venv costs ~30 s of CPU and 1 GB per simulated device, so only the
small fleets install it (measured, through the jetson_env role). Their devices then give:
  - the venv the role created (copied once to the cache, without the builder package, which
    every run installs itself), mounted on the larger fleets' devices at the same path as a
    shared read-only layer under a per-device writable one (simfleet --shared-tree);
  - the environment marker the role wrote for each device profile, written onto each device
    of that profile, so jetson_facts reports a provisioned device and jetson_env skips it:
    the same code path as a device provisioned by an earlier run.
The cache is keyed by the pin sets (roles/jetson_env/vars/main.yml) and the devices' Python
(simulated devices run their JetPack's interpreter: one venv serves kinds of one Python only).
"""

import hashlib
import shutil
import subprocess
from pathlib import Path

from bench.fleet_session import REPO_ROOT, BenchError
from builder import layout
from controller import schema
from module_utils.trt_deploy import BUILDER_ENV_MARKER as MARKER_NAME

ROOT_DIR = schema.BUILDER_ROOT_DIR      # jetson_facts_root_dir / jetson_env_root_dir
VENV_DIR = layout.venv_dir(ROOT_DIR)
PIN_SETS = REPO_ROOT / "roles" / "jetson_env" / "vars" / "main.yml"
BUILDER_DIST = "jetson-engine-builder"


class Seed:
    def __init__(self, cache_root, device_python):
        """device_python: the X.Y every device of the benchmark's kinds runs."""
        key = hashlib.sha256(PIN_SETS.read_bytes() + device_python.encode())
        self.dir = Path(cache_root) / "seed-{}".format(key.hexdigest()[:16])
        self.venv = self.dir / "venv"
        self.markers = self.dir / "markers"

    def has_venv(self):
        return (self.venv / "pyvenv.cfg").is_file()

    def marker(self, profile):
        path = self.markers / (profile + ".json")
        return path.read_text() if path.is_file() else None

    def missing_profiles(self, profiles):
        return sorted(p for p in set(profiles) if self.marker(p) is None)

    def harvest(self, fleet):
        """Take the venv and the markers from the devices of a fleet whose run installed the
        environment; returns the profiles it has markers for."""
        found = []
        self.markers.mkdir(parents=True, exist_ok=True)
        for host in fleet.hosts:
            venv = fleet.device_path(host, VENV_DIR)
            marker = venv / MARKER_NAME
            if not marker.is_file():
                continue
            (self.markers / (host["profile"] + ".json")).write_text(marker.read_text())
            found.append(host["profile"])
            if not self.has_venv():
                self._copy_venv(venv)
        return sorted(set(found))

    def _copy_venv(self, device_venv):
        staging = self.dir / "venv.tmp"
        shutil.rmtree(staging, ignore_errors=True)
        shutil.copytree(device_venv, staging, symlinks=True)
        (staging / MARKER_NAME).unlink()
        # The builder is not part of the environment: each run installs its own wheel.
        result = subprocess.run([str(staging / "bin" / "python"), "-m", "pip", "uninstall",
                                 "--yes", "--quiet", BUILDER_DIST],
                                capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise BenchError("removing the builder from the seed venv {} failed: {}".format(
                staging, result.stderr.strip()))
        staging.rename(self.venv)

    def shared_tree(self):
        return (str(self.venv), VENV_DIR)

    def mark_provisioned(self, fleet):
        """Write each device's environment marker (as the role wrote it on that profile)."""
        for host in fleet.hosts:
            text = self.marker(host["profile"])
            if text is None:
                raise BenchError("no environment marker for profile {} in {}".format(
                    host["profile"], self.markers))
            fleet.device_path(host, VENV_DIR + "/" + MARKER_NAME).write_text(text)
