#!/usr/bin/env python3
"""Genuine SSD exports by the TF1 Object Detection API exporter, built once per machine.

    python tests/graphs/genuine/genuine.py [--variant V ...] [--print-dir]

Tests call ``exports_dir()``: a directory holding models.yml (a model catalog with sha256
pins, models/README.md), facts.yml (per variant: what its pipeline config says and what
its export contains), timing.json (seconds per venv and per export), export.log (what the
exporter printed) and one sub-directory per variant with frozen_inference_graph.pb and
the pipeline.config the exporter wrote.

The exporter needs TensorFlow 1.15, so Python 3.7 (or 3.6): pyenv's interpreter gets a
venv of its own (requirements-cp37.txt), in which make_genuine_exports.py runs. All of it
lands in a cache outside the repository, $GENUINE_EXPORTS_CACHE (default
${XDG_CACHE_HOME:-~/.cache}/trt-engines/genuine-exports): the venv is named after a digest
of its requirements, the exports after a digest of the requirements, the export sources
and the configs (configs/VARIANT.config), so editing any of them makes a new build. A
file lock serializes the builders (parallel pytest processes): the first builds, the
others wait and reuse its result.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterable
from contextlib import contextmanager
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
CONFIGS_DIR = HERE / "configs"
EXPORT_SCRIPT = HERE / "make_genuine_exports.py"
EXPORT_SOURCES = (EXPORT_SCRIPT, HERE / "graph_checks.py")
PIP_REQUIREMENTS = HERE / "requirements-pip.txt"
SLIM_REQUIREMENTS = HERE / "requirements-slim.txt"
# TensorFlow 1.15 has wheels for these, preferred first; requirements-cpXY.txt pins each.
PYTHON_VERSIONS = ("3.7", "3.6")

GRAPH_FILE = "frozen_inference_graph.pb"
PIPELINE_FILE = "pipeline.config"
VARIANT_FACTS_FILE = "facts.json"  # written by make_genuine_exports.py
CATALOG_FILE = "models.yml"
FACTS_FILE = "facts.yml"
TIMING_FILE = "timing.json"
LOG_FILE = "export.log"
VENV_RECORD = "installed.json"
# Exporting is mostly single-threaded Python: one worker per core of the 2-core machines.
WORKERS = 2
BUILD_TIMEOUT = 3600
CATALOG_HEADER = """\
# Genuine exports of the TF1 Object Detection API exporter, with random weights (test data).
# Written by tests/graphs/genuine/genuine.py; facts.yml beside this file says more per model.
"""


class GenuineExportsError(RuntimeError):
    """Why the exports cannot be built, and what to do."""


def variants() -> list[str]:
    """Every variant: one per configs/VARIANT.config."""
    return sorted(path.stem for path in CONFIGS_DIR.glob("*.config"))


def cache_root() -> Path:
    configured = os.environ.get("GENUINE_EXPORTS_CACHE")
    if configured:
        return Path(configured).expanduser()
    cache_home = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache_home) / "trt-engines" / "genuine-exports"


# ---------------------------------------------------------------- the interpreter

def _pyenv_root() -> Path:
    if os.environ.get("PYENV_ROOT"):
        return Path(os.environ["PYENV_ROOT"])
    pyenv = shutil.which("pyenv")
    if pyenv:
        answer = subprocess.run([pyenv, "root"], capture_output=True, text=True, check=False)
        if answer.returncode == 0 and answer.stdout.strip():
            return Path(answer.stdout.strip())
    return Path.home() / ".pyenv"


def _patch_level(interpreter: Path) -> int:
    """16 for <root>/versions/3.7.16/bin/python3.7 (-1 for e.g. 3.7-dev)."""
    patch = interpreter.parents[1].name.split(".")[-1]
    return int(patch) if patch.isdigit() else -1


def find_interpreter() -> tuple[Path, str]:
    """pyenv's newest CPython 3.7 (else 3.6), and its tag: 'cp37'."""
    root = _pyenv_root()
    for version in PYTHON_VERSIONS:
        found = sorted(root.glob(f"versions/{version}.*/bin/python{version}"), key=_patch_level)
        if found:
            return found[-1], "cp" + version.replace(".", "")
    raise GenuineExportsError(
        f"no pyenv CPython {' or '.join(PYTHON_VERSIONS)} under {root}/versions: the TF1 "
        "Object Detection API exporter needs TensorFlow 1.15, which has no wheel for newer "
        f"Pythons. Install one with 'pyenv install 3.7.16' (or set PYENV_ROOT)")


def _requirements(tag: str) -> Path:
    path = HERE / f"requirements-{tag}.txt"
    if not path.is_file():
        raise GenuineExportsError(f"no pinned requirements for {tag} ({path} is missing)")
    return path


# ---------------------------------------------------------------- cache plumbing

def _digest(paths: Iterable[Path]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


@contextmanager
def _locked(root: Path):
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _write_atomically(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text)
    os.replace(temporary, path)


def _child_env() -> dict[str, str]:
    """This environment without what would let the main venv leak into the TF1 one."""
    env = {key: value for key, value in os.environ.items()
           if key not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env.update(PYTHONNOUSERSITE="1", PIP_DISABLE_PIP_VERSION_CHECK="1",
               TF_CPP_MIN_LOG_LEVEL="3")
    return env


def _run(command: list, what: str) -> None:
    result = subprocess.run([str(part) for part in command], capture_output=True, text=True,
                            env=_child_env(), check=False)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).splitlines()[-25:])
        raise GenuineExportsError(f"{what} failed (exit {result.returncode}):\n{tail}")


# ---------------------------------------------------------------- the TF1 venv

def _install_slim_nets(python: Path, venv: Path) -> None:
    """slim/nets of the pinned sdist into VENV/slim, on the venv's path via a .pth file."""
    with tempfile.TemporaryDirectory() as download:
        _run([python, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
              "--require-hashes", "-r", SLIM_REQUIREMENTS, "-d", download],
             "downloading the slim nets sdist")
        (sdist,) = Path(download).glob("*.tar.gz")
        with tarfile.open(sdist) as archive:
            for member in archive.getmembers():
                # <sdist>-<version>/slim/nets/... -> VENV/slim/nets/...
                parts = Path(member.name).parts[1:]
                if member.isfile() and parts[:2] == ("slim", "nets") and ".." not in parts:
                    destination = venv.joinpath(*parts)
                    destination.parent.mkdir(parents=True, exist_ok=True)
                    destination.write_bytes(archive.extractfile(member).read())
    (site_packages,) = venv.glob("lib/python*/site-packages")
    (site_packages / "slim-nets.pth").write_text(f"{venv / 'slim'}\n")


def _venv_python(interpreter: Path, tag: str, root: Path) -> Path:
    """The TF1 venv's python, made first if needed (call with the lock held)."""
    requirements = _requirements(tag)
    venv = root / f"venv-{tag}-{_digest([PIP_REQUIREMENTS, requirements, SLIM_REQUIREMENTS])}"
    python = venv / "bin" / "python"
    if (venv / VENV_RECORD).is_file():
        return python
    shutil.rmtree(venv, ignore_errors=True)  # left by an interrupted build
    print(f"genuine exports: creating the TensorFlow 1.15 venv {venv}", file=sys.stderr)
    started = time.monotonic()
    _run([interpreter, "-m", "venv", venv], "creating the venv")
    for pinned in (PIP_REQUIREMENTS, requirements):
        _run([python, "-m", "pip", "install", "--no-deps", "--require-hashes", "-r", pinned],
             f"installing {pinned.name}")
    _install_slim_nets(python, venv)
    record = {"interpreter": str(interpreter), "requirements": requirements.name,
              "seconds": round(time.monotonic() - started, 1)}
    (venv / VENV_RECORD).write_text(json.dumps(record, indent=1) + "\n")
    return python


def _venv_record(python: Path) -> dict:
    return json.loads((python.parents[1] / VENV_RECORD).read_text())


# ---------------------------------------------------------------- exports

def _export(python: Path, missing: list[str], target: Path) -> float:
    """Export ``missing`` into ``target`` with WORKERS processes; the wall time in seconds.

    The workers share one list: each variant goes to the first worker free for it. A
    variant exported in full moves into ``target`` even when another one fails, so the
    next build only redoes the rest.
    """
    target.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=target))
    log_path = target / LOG_FILE
    started = time.monotonic()
    command = [str(python), str(EXPORT_SCRIPT), "--configs", str(CONFIGS_DIR),
               "--out", str(staging), *missing]
    workers = []
    try:
        with open(log_path, "a") as log:
            # Progress lines (stdout) go to our stderr (fd 2, also under pytest's capture).
            workers = [subprocess.Popen(command, stdout=2, stderr=log, env=_child_env())
                       for _ in range(min(WORKERS, len(missing)))]
            codes = [worker.wait(timeout=BUILD_TIMEOUT) for worker in workers]
        for variant in missing:
            if (staging / variant / VARIANT_FACTS_FILE).is_file():
                os.replace(staging / variant, target / variant)
    finally:
        for worker in workers:
            if worker.poll() is None:  # timed out, or we were interrupted
                worker.kill()
                worker.wait()
        shutil.rmtree(staging, ignore_errors=True)
    failed = [variant for variant in missing if not (target / variant).is_dir()]
    if failed or any(codes):
        tail = "\n".join(log_path.read_text().splitlines()[-25:])
        raise GenuineExportsError(
            f"exporting {', '.join(failed) or 'the variants'} failed (exit codes {codes}); "
            f"the end of {log_path}:\n{tail}")
    return time.monotonic() - started


def _catalog_entry(variant: str, facts: dict, target: Path) -> dict:
    config = facts["config"]
    graph = target / variant / GRAPH_FILE
    entry = {
        "graph": f"{variant}/{GRAPH_FILE}",
        "sha256": hashlib.sha256(graph.read_bytes()).hexdigest(),
        # pipeline.config counts classes without the background, the catalog with it.
        "num_classes": config["num_classes"] + 1,
    }
    anchors = config["anchor_generator"]
    if anchors["kind"] == "ssd_anchor_generator":
        entry.update(min_size=anchors["min_scale"], max_size=anchors["max_scale"],
                     aspect_ratios=anchors["aspect_ratios"])
    # else multiscale_anchor_generator (FPN): it states no scales; the builder reads the
    # anchors from the graph (the catalog's default, auto).
    entry.update(input_order="auto", pipeline_config=f"{variant}/{PIPELINE_FILE}")
    return entry


def _write_summaries(target: Path, venv: dict, build: dict) -> None:
    """models.yml, facts.yml and timing.json for every variant exported in ``target``."""
    exported = [variant for variant in variants()
                if (target / variant / VARIANT_FACTS_FILE).is_file()]
    facts = {variant: json.loads((target / variant / VARIANT_FACTS_FILE).read_text())
             for variant in exported}
    catalog = {"version": 1,
               "models": {variant: _catalog_entry(variant, facts[variant], target)
                          for variant in exported}}
    timing_path = target / TIMING_FILE
    builds = json.loads(timing_path.read_text())["builds"] if timing_path.is_file() else []
    seconds = {variant: facts[variant]["seconds"] for variant in exported}
    timing = {"venv": venv, "variants": seconds,
              "variants_total_seconds": round(sum(s["total"] for s in seconds.values()), 1),
              "builds": [*builds, build]}
    # models.yml last: tests take the catalog as the sign of a finished build.
    _write_atomically(target / FACTS_FILE, yaml.safe_dump(facts, sort_keys=False))
    _write_atomically(timing_path, json.dumps(timing, indent=1) + "\n")
    _write_atomically(target / CATALOG_FILE,
                      CATALOG_HEADER + yaml.safe_dump(catalog, sort_keys=False))


def _catalogued(target: Path) -> set[str]:
    try:
        return set(yaml.safe_load((target / CATALOG_FILE).read_text())["models"])
    except FileNotFoundError:
        return set()


def _wanted(selected: Iterable[str] | None) -> list[str]:
    known = variants()
    if selected is None:
        return known
    unknown = sorted(set(selected) - set(known))
    if unknown:
        raise GenuineExportsError(f"unknown variant(s) {', '.join(unknown)}; known: "
                                  f"{', '.join(known)}")
    return [variant for variant in known if variant in set(selected)]


def exports_dir(selected: Iterable[str] | None = None) -> Path:
    """The directory of the exports (all variants, or ``selected``), built if needed.

    Raises GenuineExportsError, with what to do, when they cannot be built.
    """
    wanted = _wanted(selected)
    interpreter, tag = find_interpreter()
    requirements = _requirements(tag)
    inputs = [PIP_REQUIREMENTS, requirements, SLIM_REQUIREMENTS, *EXPORT_SOURCES,
              *sorted(CONFIGS_DIR.glob("*.config"))]
    root = cache_root()
    target = root / f"exports-{tag}-{_digest(inputs)}"
    if set(wanted) <= _catalogued(target):
        return target
    with _locked(root):
        missing = [variant for variant in wanted if not (target / variant).is_dir()]
        if missing or not set(wanted) <= _catalogued(target):
            python = _venv_python(interpreter, tag, root)
            wall = _export(python, missing, target) if missing else 0.0
            build = {"variants": missing, "workers": min(WORKERS, len(missing)),
                     "wall_seconds": round(wall, 1)}
            _write_summaries(target, _venv_record(python), build)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variant", action="append", metavar="V",
                        help=f"only this variant (repeatable); known: {', '.join(variants())}")
    parser.add_argument("--print-dir", action="store_true",
                        help="print only the directory of the exports")
    args = parser.parse_args(argv)
    try:
        target = exports_dir(args.variant)
    except GenuineExportsError as error:
        print(f"genuine exports: {error}", file=sys.stderr)
        return 1
    if args.print_dir:
        print(target)
        return 0
    timing = json.loads((target / TIMING_FILE).read_text())
    print(f"{target}\nvenv: {timing['venv']['seconds']} s")
    for variant, seconds in timing["variants"].items():
        print(f"{variant}: {seconds['total']} s")
    print(f"all exports: {timing['variants_total_seconds']} s of export time; builds (wall): "
          + ", ".join(f"{build['wall_seconds']} s" for build in timing["builds"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
