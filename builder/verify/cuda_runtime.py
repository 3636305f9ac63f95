"""The few CUDA runtime calls verify needs, through ctypes over libcudart.

No pycuda / cuda-python on the devices: libcudart comes with JetPack
(/usr/local/cuda/lib64). Every call's cudaError_t is checked and reported with
cudaGetErrorString.
"""

import ctypes
import ctypes.util
import glob
import os

from ..errors import UserError

CUDA_SUCCESS = 0
MEMCPY_HOST_TO_DEVICE = 1
MEMCPY_DEVICE_TO_HOST = 2
DEFAULT_LIBRARY_GLOBS = (
    "/usr/local/cuda/lib64/libcudart.so*",
    "/usr/local/cuda/targets/aarch64-linux/lib/libcudart.so*",
    "/usr/lib/aarch64-linux-gnu/libcudart.so*",
)


class CudaError(Exception):
    """A CUDA runtime call failed (exit code 1): names the call, the code and its text."""


def find_libcudart(explicit=None):
    """Path or name of libcudart to load: ``explicit``, else JetPack's, else the loader's.

    JetPack's runtime under /usr/local/cuda comes first: it is the CUDA TensorRT was
    built against, while the loader may know another CUDA installed beside it.
    """
    if explicit:
        if not os.path.exists(explicit):
            raise UserError("--cudart {}: no such file; give the path of libcudart.so "
                            "(JetPack: /usr/local/cuda/lib64/libcudart.so)".format(explicit))
        return explicit
    for pattern in DEFAULT_LIBRARY_GLOBS:
        matches = sorted(glob.glob(pattern))
        if matches:
            return matches[0]
    found = ctypes.util.find_library("cudart")
    if found:
        return found
    raise UserError(
        "cannot find libcudart (the CUDA runtime): not known to the dynamic loader and "
        "not in {}. JetPack installs it under /usr/local/cuda/lib64; give its path with "
        "--cudart".format(", ".join(DEFAULT_LIBRARY_GLOBS))
    )


class CudaRuntime(object):
    """Device memory, copies and streams; every failure raises CudaError."""

    def __init__(self, library=None):
        self.path = find_libcudart(library)
        try:
            self._lib = ctypes.CDLL(self.path)
        except OSError as error:
            raise UserError("cannot load libcudart {} ({}); check the CUDA install or "
                            "give another path with --cudart".format(self.path, error)) from error
        lib = self._lib
        c_size = ctypes.c_size_t
        void_p = ctypes.c_void_p
        signatures = {
            "cudaMalloc": [ctypes.POINTER(void_p), c_size],
            "cudaFree": [void_p],
            "cudaMemcpy": [void_p, void_p, c_size, ctypes.c_int],
            "cudaStreamCreate": [ctypes.POINTER(void_p)],
            "cudaStreamSynchronize": [void_p],
            "cudaStreamDestroy": [void_p],
            "cudaRuntimeGetVersion": [ctypes.POINTER(ctypes.c_int)],
        }
        for name, argtypes in signatures.items():
            function = getattr(lib, name)
            function.argtypes = argtypes
            function.restype = ctypes.c_int
        lib.cudaGetErrorString.argtypes = [ctypes.c_int]
        lib.cudaGetErrorString.restype = ctypes.c_char_p

    def _check(self, code, call):
        if code != CUDA_SUCCESS:
            text = self._lib.cudaGetErrorString(code)
            raise CudaError("{} failed: cudaError {} ({})".format(
                call, code, text.decode("utf-8", "replace") if text else "no description"))

    def runtime_version(self):
        """'10.2' for CUDA 10.2 (cudaRuntimeGetVersion gives 1000*major + 10*minor)."""
        value = ctypes.c_int(0)
        self._check(self._lib.cudaRuntimeGetVersion(ctypes.byref(value)),
                    "cudaRuntimeGetVersion")
        return "{}.{}".format(value.value // 1000, (value.value % 1000) // 10)

    def malloc(self, nbytes):
        pointer = ctypes.c_void_p()
        self._check(self._lib.cudaMalloc(ctypes.byref(pointer), nbytes),
                    "cudaMalloc({} bytes)".format(nbytes))
        return pointer.value

    def free(self, pointer):
        self._check(self._lib.cudaFree(pointer), "cudaFree")

    def to_device(self, pointer, data):
        """Copy ``data`` (bytes-like) to device memory at ``pointer``."""
        view = memoryview(data).cast("B")
        host = (ctypes.c_char * len(view)).from_buffer_copy(view)
        self._check(self._lib.cudaMemcpy(pointer, host, len(view), MEMCPY_HOST_TO_DEVICE),
                    "cudaMemcpy host->device ({} bytes)".format(len(view)))

    def from_device(self, pointer, nbytes):
        host = ctypes.create_string_buffer(nbytes)
        self._check(self._lib.cudaMemcpy(host, pointer, nbytes, MEMCPY_DEVICE_TO_HOST),
                    "cudaMemcpy device->host ({} bytes)".format(nbytes))
        return host.raw

    def stream_create(self):
        stream = ctypes.c_void_p()
        self._check(self._lib.cudaStreamCreate(ctypes.byref(stream)), "cudaStreamCreate")
        return stream.value

    def stream_synchronize(self, stream):
        self._check(self._lib.cudaStreamSynchronize(stream), "cudaStreamSynchronize")

    def stream_destroy(self, stream):
        self._check(self._lib.cudaStreamDestroy(stream), "cudaStreamDestroy")


class DeviceBuffers(object):
    """Device allocations freed together: ``with DeviceBuffers(cuda, sizes) as pointers``."""

    def __init__(self, cuda, sizes):
        self._cuda = cuda
        self._sizes = list(sizes)
        self.pointers = []

    def __enter__(self):
        try:
            for size in self._sizes:
                self.pointers.append(self._cuda.malloc(size))
        except CudaError:
            self._release()
            raise
        return self.pointers

    def __exit__(self, *exc_info):
        self._release()
        return False

    def _release(self):
        while self.pointers:
            self._cuda.free(self.pointers.pop())
