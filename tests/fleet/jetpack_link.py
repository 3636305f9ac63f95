"""The fleet's only door to the JetPack test doubles (tests/jetpack/layout.py)."""

import importlib.util
from pathlib import Path

LAYOUT = Path(__file__).resolve().parent.parent / "jetpack" / "layout.py"


class JetpackMissing(RuntimeError):
    """The doubles are not there; the fleet can only run without them (--without-jetpack)."""


def _layout():
    if not LAYOUT.is_file():
        raise JetpackMissing(
            "{} not found: the JetPack test doubles (tensorrt, uff, graphsurgeon, libcudart) "
            "are missing, so devices would have no TensorRT. Restore tests/jetpack/ or start "
            "the fleet with --without-jetpack.".format(LAYOUT))
    spec = importlib.util.spec_from_file_location("simjetson_layout", LAYOUT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def available():
    return LAYOUT.is_file()


class Jetpack:
    """Per-generation trees and compiled libraries, built once per fleet `up`."""

    def __init__(self, cache_dir):
        self._layout = _layout()
        self._cache_dir = Path(cache_dir)
        self._trees = {}
        self._cudart = {}

    def generation(self, tensorrt_version):
        return self._layout.generation_for(tensorrt_version)

    def site_packages(self, tensorrt_version):
        generation = self.generation(tensorrt_version)
        if generation not in self._trees:
            self._trees[generation] = Path(self._layout.site_packages_dir(generation))
        return self._trees[generation]

    def cudart(self, cuda_version):
        if cuda_version not in self._cudart:
            self._cudart[cuda_version] = Path(self._layout.build_cudart(
                self._cache_dir / ("cuda-" + cuda_version), cuda_version))
        return self._cudart[cuda_version]

    def flattenconcat(self):
        """libflattenconcat.so for TensorRT 5/6 devices (None if the doubles lack it)."""
        build = getattr(self._layout, "build_flattenconcat", None)
        if build is None:
            return None
        return Path(build(self._cache_dir / "plugins"))

    def flattenconcat_device_path(self):
        return getattr(self._layout, "FLATTENCONCAT_DEVICE_PATH", None)
