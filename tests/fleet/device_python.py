"""Which Python a simulated device runs: the one its JetPack ships, when the host has it.

JetPack 4 (L4T R32) ships Python 3.6, JetPack 5 (R35) 3.8, JetPack 6 (R36) 3.10, JetPack 7
(R38 and later) 3.12 (docs/reference/jetson-platforms.md). Real interpreters come from
pyenv builds on the host (`pyenv root`/versions/X.Y.Z); the device gets that build at the
same absolute path (pyenv builds find their libpython through an absolute RUNPATH) and as
its /usr/bin/python3. Without such a build the device runs the host's Python, and the fleet
says so (`up`'s output, fleet.json, the inventory variable simjetson_python_fallback).
"""

import os
import re
import shutil
import subprocess
from pathlib import Path

PYTHON_BY_L4T_MAJOR = {32: "3.6", 35: "3.8", 36: "3.10", 38: "3.12", 39: "3.12"}
# Packages of JetPack's Ubuntu that its system Python imports (apt: python3-yaml, which the
# deploy venv and JetPack's own tools rely on). A device on a pyenv build gets the host's copy
# of their pure-Python modules, as the host's Python has them (the C extension is the host's).
SYSTEM_PACKAGES = ("yaml",)


def wanted(release):
    """X.Y the device's JetPack ships."""
    return PYTHON_BY_L4T_MAJOR.get(release.major, PYTHON_BY_L4T_MAJOR[max(PYTHON_BY_L4T_MAJOR)])


def pyenv_root():
    found = shutil.which("pyenv")
    if found:
        result = subprocess.run([found, "root"], capture_output=True, text=True, check=False)
        if result.returncode == 0 and result.stdout.strip():
            return Path(result.stdout.strip())
    return Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")


def find_build(minor, root=None):
    """The newest pyenv build X.Y.Z of ``minor`` ('3.6'), as its prefix directory, or None."""
    versions = Path(root or pyenv_root()) / "versions"
    candidates = []
    for path in versions.glob(minor + ".*") if versions.is_dir() else ():
        match = re.match(r"^{}\.(\d+)$".format(re.escape(minor)), path.name)
        if match and (path / "bin" / ("python" + minor)).is_file():
            candidates.append((int(match.group(1)), path))
    return max(candidates)[1] if candidates else None


def host_system_packages(system_python, names=SYSTEM_PACKAGES):
    """[package directory] of ``names`` in the host's system Python (those it has)."""
    found = []
    for name in names:
        result = subprocess.run(
            [system_python, "-c", "import {0}; print({0}.__file__)".format(name)],
            capture_output=True, text=True, check=False)
        if result.returncode == 0:
            found.append(Path(result.stdout.strip()).parent)
    return found
