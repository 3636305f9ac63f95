"""layout.py (generations, trees, gcc builds) and the fake CUDA runtime through ctypes."""

import subprocess
import sys

import layout
import pytest
from jetpack_harness import last_json


@pytest.mark.parametrize(("version", "generation"), [
    ("5.0.6", "trt5_6"), ("5.1.6", "trt5_6"), ("6.0.1", "trt5_6"), ("7.1.3", "trt7"),
    ("8.0.1.6", "trt8_0"), ("8.2.1.8", "trt8_0"), ("8.3.0", "trt8_0"), ("8.4.1.5", "trt8_4"),
    ("8.5.2.2", "trt8_4"), ("8.6.2", "trt8_4"), ("10.0.1", "trt10"), ("10.3.0", "trt10"),
    ("10.16.2", "trt10"), ("11.4.1", "trt11"), ("11.0.0.114", "trt11"),
])
def test_generation_for_parses_numbers(version, generation):
    assert layout.generation_for(version) == generation


@pytest.mark.parametrize("version", ["9.0.1", "4.1", "eight", "8", "12.0"])
def test_generation_for_rejects_unsupported(version):
    with pytest.raises(ValueError, match=version):
        layout.generation_for(version)


@pytest.mark.parametrize("generation", layout.GENERATIONS)
def test_site_tree_has_the_generation_packages(generation):
    tree = layout.site_packages_dir(generation)
    assert (tree / "tensorrt" / "__init__.py").is_file()
    has_uff = generation not in ("trt10", "trt11")
    assert (tree / "uff" / "__init__.py").is_file() is has_uff
    assert (tree / "graphsurgeon" / "__init__.py").is_file() is has_uff
    assert (tree / "_simjetson" / "_generation.py").read_text().endswith(
        "GENERATION = {!r}\n".format(generation))
    assert layout.site_packages_dir(generation) == tree  # cached: same tree, no rebuild


def test_build_cudart_is_cached(tmp_path):
    library = layout.build_cudart(tmp_path, "11.4")
    assert library.name == "libcudart.so.11.4"
    assert (tmp_path / "libcudart.so").resolve() == library.resolve()
    before = library.stat().st_mtime_ns
    assert layout.build_cudart(tmp_path, "11.4").stat().st_mtime_ns == before
    assert b"SIMULATED" in library.read_bytes()


CUDART_PROBE = r"""
import ctypes, json, sys
cu = ctypes.CDLL(sys.argv[1])
cu.cudaGetErrorString.restype = ctypes.c_char_p
size = 1 << 20
res = {}
ptr = ctypes.c_void_p()
res["malloc"] = cu.cudaMalloc(ctypes.byref(ptr), ctypes.c_size_t(size))
src = ctypes.create_string_buffer(bytes(range(256)) * 4096, size)
dst = ctypes.create_string_buffer(size)
res["h2d"] = cu.cudaMemcpy(ptr, src, ctypes.c_size_t(size), 1)
res["d2h"] = cu.cudaMemcpy(dst, ptr, ctypes.c_size_t(size), 2)
res["round_trip"] = dst.raw == src.raw
ptr2 = ctypes.c_void_p()
cu.cudaMalloc(ctypes.byref(ptr2), ctypes.c_size_t(size))
res["d2d"] = cu.cudaMemcpy(ptr2, ptr, ctypes.c_size_t(size), 3)
stream = ctypes.c_void_p()
res["stream"] = cu.cudaStreamCreate(ctypes.byref(stream))
res["async"] = cu.cudaMemcpyAsync(dst, ptr2, ctypes.c_size_t(size), 2, stream)
res["sync"] = cu.cudaStreamSynchronize(stream)
res["destroy"] = cu.cudaStreamDestroy(stream)
res["bad_kind"] = cu.cudaMemcpy(dst, ptr, ctypes.c_size_t(16), 7)
res["host_as_device"] = cu.cudaMemcpy(dst, src, ctypes.c_size_t(16), 2)
res["last_error"] = cu.cudaGetLastError()
res["last_error_reset"] = cu.cudaGetLastError()
big = ctypes.c_void_p()
res["too_big"] = cu.cudaMalloc(ctypes.byref(big), ctypes.c_size_t(65 << 20))
res["too_big_text"] = cu.cudaGetErrorString(res["too_big"]).decode()
res["free"] = cu.cudaFree(ptr)
res["double_free"] = cu.cudaFree(ptr)
version, count = ctypes.c_int(), ctypes.c_int()
cu.cudaRuntimeGetVersion(ctypes.byref(version)); cu.cudaGetDeviceCount(ctypes.byref(count))
res["version"], res["count"] = version.value, count.value
res["sync_device"] = cu.cudaDeviceSynchronize()
print(json.dumps(res))
"""


def test_cudart_through_ctypes(tmp_path):
    library = layout.build_cudart(tmp_path, "10.2")
    device = tmp_path / "device.json"
    device.write_text('{"memory_mib": 64}')
    result = subprocess.run([sys.executable, "-c", CUDART_PROBE, str(library)],
                            capture_output=True, text=True, check=True,
                            env={"SIMJETSON_DEVICE": str(device)})
    res = last_json(result)
    assert res["round_trip"] is True
    for key in ("malloc", "h2d", "d2h", "d2d", "stream", "async", "sync", "destroy", "free",
                "sync_device", "last_error_reset"):
        assert res[key] == 0, key
    assert res["bad_kind"] == 21  # cudaErrorInvalidMemcpyDirection
    assert res["host_as_device"] == 1  # cudaErrorInvalidValue
    assert res["last_error"] == 1
    assert res["too_big"] == 2 and res["too_big_text"] == "out of memory"  # over memory_mib
    assert res["double_free"] == 17  # cudaErrorInvalidDevicePointer
    assert res["version"] == 10020 and res["count"] == 1
