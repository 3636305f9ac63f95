"""Where the JetPack test doubles live and how to materialise them.

Used by the simulated fleet (tests/fleet) and by the doubles' own tests:

- generation_for(version)      -> "trt5_6" | "trt7" | "trt8_0" | "trt8_4" | "trt10" | "trt11"
- site_packages_dir(gen)       -> a dist-packages directory providing tensorrt (+ uff,
                                  graphsurgeon up to trt8_4) for that generation
- build_cudart(out_dir, cuda)  -> the SIMULATED libcudart.so.<cuda> (gcc, cached)
- build_flattenconcat(out_dir) -> the SIMULATED libflattenconcat.so TRT 5/6 users load

Stdlib only; safe to call from several processes at once (everything is built in a
temporary name and renamed into place).
"""

import hashlib
import importlib.util
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
SHARED_PACKAGE = HERE / "_simjetson"
PACKAGES = HERE / "packages"
CUDART_SOURCE = HERE / "cudart" / "fake_cudart.c"
FLATTENCONCAT_SOURCE = HERE / "plugins" / "flattenconcat.c"
BUILD_ROOT = HERE / "_build"

# Where a TensorRT 5/6 device keeps the plugin library (the builder loads it from here
# with ctypes.CDLL before parsing; the doubles look for the file name in /proc/self/maps).
FLATTENCONCAT_DEVICE_PATH = "/usr/local/lib/libflattenconcat.so"

_GENERATION_PACKAGES = {
    "trt5_6": ("tensorrt", "uff", "graphsurgeon"),
    "trt7": ("tensorrt", "uff", "graphsurgeon"),
    "trt8_0": ("tensorrt", "uff", "graphsurgeon"),
    "trt8_4": ("tensorrt", "uff", "graphsurgeon"),
    "trt10": ("tensorrt",),  # JetPack 6 ships no UFF converter / graphsurgeon
    "trt11": ("tensorrt",),  # nor does TensorRT 11 (JetPack 7.2.2 and later)
}


def _load_versions():
    spec = importlib.util.spec_from_file_location("_simjetson_versions",
                                                  SHARED_PACKAGE / "versions.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_versions = _load_versions()
GENERATIONS = _versions.GENERATIONS


def generation_for(tensorrt_version: str) -> str:
    """'8.2.1.8' -> 'trt8_0'. Numbers are parsed; ValueError for unsupported versions."""
    return _versions.generation_for(tensorrt_version)


def packages_for(generation: str) -> tuple:
    """The importable packages a generation's tree provides."""
    _check_generation(generation)
    return _GENERATION_PACKAGES[generation]


def _check_generation(generation):
    if generation not in _GENERATION_PACKAGES:
        raise ValueError("unknown TensorRT generation {!r}; expected one of {}".format(
            generation, ", ".join(GENERATIONS)))


def _source_files(generation):
    """(relative destination, source path) for everything a generation's tree holds."""
    files = []
    for root in [SHARED_PACKAGE] + [PACKAGES / name for name in packages_for(generation)]:
        for source in sorted(root.rglob("*.py")):
            if "__pycache__" in source.parts:
                continue
            files.append((Path(root.name) / source.relative_to(root), source))
    return files


def _digest(parts):
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part if isinstance(part, bytes) else str(part).encode())
        digest.update(b"\0")
    return digest.hexdigest()


def site_packages_dir(generation: str) -> Path:
    """Assemble (when sources changed) and return the dist-packages tree of a generation."""
    files = _source_files(generation)
    stamp = _digest([generation] + [item for dest, src in files
                                    for item in (str(dest), src.read_bytes())])
    target = BUILD_ROOT / "site" / generation
    stamp_file = target / "_simjetson" / "_tree_stamp.txt"
    if stamp_file.is_file() and stamp_file.read_text().strip() == stamp:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=generation + ".", dir=target.parent))
    for dest, src in files:
        (staging / dest).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, staging / dest)
    (staging / "_simjetson" / "_generation.py").write_text(
        '"""SIMULATED: written by tests/jetpack/layout.py."""\nGENERATION = {!r}\n'.format(
            generation))
    (staging / "_simjetson" / "_tree_stamp.txt").write_text(stamp + "\n")
    _replace_directory(staging, target)
    return target


def _replace_directory(staging, target):
    """Swap staging into target's place. A concurrent builder of the same tree may win;
    both trees are identical, so losing the race is fine."""
    old = None
    if target.exists():
        old = target.with_name(target.name + ".old." + str(os.getpid()))
        try:
            target.rename(old)
        except FileNotFoundError:
            old = None
    try:
        staging.rename(target)
    except OSError:
        shutil.rmtree(staging)  # another process put an identical tree there first
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _compile_shared(source, output, defines=(), libraries=()):
    """gcc source into output (+ nothing else), cached on the source and flags."""
    stamp = _digest([source.read_bytes()] + list(defines) + list(libraries))
    stamp_file = output.with_name(output.name + ".stamp")
    if output.is_file() and stamp_file.is_file() and stamp_file.read_text().strip() == stamp:
        return output
    output.parent.mkdir(parents=True, exist_ok=True)
    temporary = output.with_name(".{}.{}.tmp".format(output.name, os.getpid()))
    command = ["gcc", "-O2", "-Wall", "-Wextra", "-Werror", "-shared", "-fPIC",
               "-o", str(temporary), str(source)]
    command += ["-D" + define for define in defines] + ["-l" + lib for lib in libraries]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError("gcc failed for {}:\n{}".format(source, result.stderr))
    os.replace(temporary, output)
    stamp_file.write_text(stamp + "\n")
    return output


def cudart_version_number(cuda_version: str) -> int:
    """'10.2' -> 10020, '11.4' -> 11040 (the value cudaRuntimeGetVersion reports)."""
    parts = str(cuda_version).split(".")
    try:
        major, minor = int(parts[0]), int(parts[1]) if len(parts) > 1 else 0
    except ValueError:
        raise ValueError("cuda_version {!r} is not like '10.2'".format(cuda_version)) from None
    return major * 1000 + minor * 10


def build_cudart(out_dir, cuda_version: str) -> Path:
    """out_dir/libcudart.so.<cuda_version> (+ libcudart.so symlink); rebuilt only on change."""
    out_dir = Path(out_dir)
    library = out_dir / "libcudart.so.{}".format(cuda_version)
    define = "SIMJETSON_CUDART_VERSION={}".format(cudart_version_number(cuda_version))
    _compile_shared(CUDART_SOURCE, library, defines=[define], libraries=["pthread"])
    link = out_dir / "libcudart.so"
    if not (link.is_symlink() and os.readlink(link) == library.name):
        temporary_link = out_dir / ".libcudart.so.{}.tmp".format(os.getpid())
        if temporary_link.is_symlink():
            temporary_link.unlink()
        temporary_link.symlink_to(library.name)
        os.replace(temporary_link, link)
    return library


def build_flattenconcat(out_dir) -> Path:
    """out_dir/libflattenconcat.so, the plugin library TensorRT 5/6 users load by hand."""
    return _compile_shared(FLATTENCONCAT_SOURCE, Path(out_dir) / "libflattenconcat.so")
