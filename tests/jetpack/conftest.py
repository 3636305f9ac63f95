"""Fixtures for the JetPack doubles' tests (helpers live in jetpack_harness.py)."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import layout  # noqa: E402  (needs the path above)
from jetpack_harness import UFF_VARIANTS, Generation, last_json  # noqa: E402


@pytest.fixture(scope="session")
def libs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("libs")
    layout.build_cudart(folder, "10.2")
    layout.build_flattenconcat(folder)
    return folder


@pytest.fixture
def gen(tmp_path, libs):
    return Generation(tmp_path, libs)


@pytest.fixture(scope="session")
def uff_files(tmp_path_factory, libs):
    """SIMULATED .uff files of the mini SSD (reference recipe; good and broken variants)."""
    runner = Generation(tmp_path_factory.mktemp("uff"), libs)
    result = runner.run(UFF_VARIANTS, "8.2.1.8",
                        extra_env={"PYTHONPATH": "{}:{}".format(
                            layout.site_packages_dir("trt8_0"), Path(__file__).parent)})
    return {name: result.folder / path for name, path in last_json(result).items()}
