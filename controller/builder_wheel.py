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


def builder_source_digest() -> str:
    """sha256 over the builder's sources and pyproject.toml."""
    digest = hashlib.sha256()
    paths = sorted((REPO_ROOT / "builder").rglob("*.py")) + [REPO_ROOT / "pyproject.toml"]
    for path in paths:
        digest.update(str(path.relative_to(REPO_ROOT)).encode("utf-8") + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def wheel_name(version: str = BUILDER_VERSION) -> str:
    return "jetson_engine_builder-{}-py3-none-any.whl".format(version)


def wheel_path(digest: str, version: str = BUILDER_VERSION, cache: Path = WHEEL_CACHE) -> Path:
    return cache / digest[:16] / wheel_name(version)


def installed_marker(digest: str, version: str = BUILDER_VERSION) -> dict[str, str]:
    """What a venv holding this builder says it holds (the build venv's builder marker,
    builder/layout.py, and the deploy venv's env marker): compared with what the facts read."""
    return {"builder_version": version, "builder_digest": digest}


def ensure_wheel(digest: str, version: str = BUILDER_VERSION, cache: Path = WHEEL_CACHE
                 ) -> Path:
    """The wheel's path, built first when it is not there yet. pip writes into a temporary
    directory that is renamed into place, so a wheel in the cache is always complete (two runs
    building at once both end with one whole wheel)."""
    path = wheel_path(digest, version, cache)
    if path.is_file():
        return path
    path.parent.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".building-", dir=str(path.parent.parent)) as tmp:
        done = subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
             "--no-build-isolation", "--disable-pip-version-check", "--wheel-dir", tmp,
             str(REPO_ROOT)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            universal_newlines=True, check=False)
        built = Path(tmp) / path.name
        if done.returncode != 0 or not built.is_file():
            raise WheelError("pip wheel {} failed (exit {}): {}".format(
                REPO_ROOT, done.returncode, done.stdout.strip()[-2000:]))
        staged = Path(tmp) / "dir"
        staged.mkdir()
        shutil.move(str(built), str(staged / path.name))
        try:
            staged.rename(path.parent)
        except OSError:
            if not path.is_file():  # not another run's wheel that won the race
                raise
    return path
