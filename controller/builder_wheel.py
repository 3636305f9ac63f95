"""The builder wheel that devices install, built on the controller once per builder source.

The build and the deploy push the same file: ``<repo>/.cache/builder-wheel/<digest16>/
jetson_engine_builder-<version>-py3-none-any.whl``. The directory is named by a digest of the
builder's sources, so an edit without a version bump still gets a fresh wheel.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from builder import __version__ as BUILDER_VERSION

REPO_ROOT = Path(__file__).resolve().parents[1]
WHEEL_CACHE = REPO_ROOT / ".cache" / "builder-wheel"


class WheelError(RuntimeError):
    """pip could not build the builder wheel (its output is in the message)."""


def builder_sources(root: Path = REPO_ROOT) -> list[Path]:
    """What the wheel is made of: the builder's modules and pyproject.toml (relative to
    ``root``). The digest covers exactly these, and the wheel is built from a copy of them."""
    modules = sorted(path.relative_to(root) for path in (root / "builder").rglob("*.py"))
    return modules + [Path("pyproject.toml")]


def builder_source_digest(root: Path = REPO_ROOT) -> str:
    """sha256 over the builder's sources and pyproject.toml."""
    digest = hashlib.sha256()
    for path in builder_sources(root):
        digest.update(str(path).encode("utf-8") + b"\0")
        digest.update((root / path).read_bytes() + b"\0")
    return digest.hexdigest()


def wheel_name(version: str = BUILDER_VERSION) -> str:
    return "jetson_engine_builder-{}-py3-none-any.whl".format(version)


def wheel_path(digest: str, version: str = BUILDER_VERSION, cache: Path = WHEEL_CACHE) -> Path:
    return cache / digest[:16] / wheel_name(version)


def installed_marker(digest: str, version: str = BUILDER_VERSION) -> dict[str, str]:
    """What a venv holding this builder says it holds (the build venv's builder marker,
    builder/layout.py, and the deploy venv's env marker): compared with what the facts read."""
    return {"builder_version": version, "builder_digest": digest}


def ensure_wheel(digest: str, version: str = BUILDER_VERSION, cache: Path = WHEEL_CACHE,
                 root: Path = REPO_ROOT) -> Path:
    """The wheel's path, built first when it is not there yet. pip writes into a temporary
    directory that is renamed into place, so a wheel in the cache is always complete (two runs
    building at once both end with one whole wheel).

    Built from a copy of ``builder_sources`` only: setuptools builds in the source tree and
    keeps its build/ directory, so a wheel built in the repository would still carry a module
    removed since an earlier build (and the checkout would get build/ and an egg-info)."""
    path = wheel_path(digest, version, cache)
    if path.is_file():
        return path
    path.parent.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".building-", dir=str(path.parent.parent)) as tmp:
        source = Path(tmp) / "source"
        for relative in builder_sources(root):
            (source / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(str(root / relative), str(source / relative))
        done = subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
             "--no-build-isolation", "--disable-pip-version-check", "--wheel-dir", tmp,
             str(source)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            universal_newlines=True, check=False)
        built = Path(tmp) / path.name
        if done.returncode != 0 or not built.is_file():
            raise WheelError("pip wheel {} failed (exit {}): {}".format(
                root, done.returncode, done.stdout.strip()[-2000:]))
        staged = Path(tmp) / "dir"
        staged.mkdir()
        shutil.move(str(built), str(staged / path.name))
        try:
            staged.rename(path.parent)
        except OSError:
            if not path.is_file():  # not another run's wheel that won the race
                raise
    return path
