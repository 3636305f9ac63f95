"""The builder's directory on a device (jetson_facts_root_dir, default /opt/trt-builder):
one home for its layout, read by the controller (controller/device_work.py, which spells every
device path of a build round) and by the facts module on the device (library/jetson_facts.py,
through module_utils/jetson_builder).

    <root>/venv/                     the pinned environment (jetson_env), with the builder
    <root>/venv/trt-builder-installed.json  which builder it holds (written by its install)
    <root>/wheels/<builder wheel>    the builder, built once on the controller
    <root>/work/<model>/             graphs, catalog.yml, TRT_<model>.bin, manifest.json,
                                     .graph-sums.json (builder/graphsums.py)
    <root>/timing-cache/             the device's timing cache; pushed/: the store's
    <root>/.build.lock               one builder process at a time
"""

VENV = "venv"
WHEELS = "wheels"
WORK = "work"
TIMING_CACHE = "timing-cache"
BUILD_LOCK = ".build.lock"
# Written by the builder's install after pip succeeded ({"builder_version", "builder_digest"}:
# controller/builder_wheel.py installed_marker), read back by the facts: a device whose marker
# is the run's builder gets no wheel and no install.
BUILDER_MARKER = "trt-builder-installed.json"


def venv_dir(root_dir):
    return "{}/{}".format(root_dir, VENV)


def venv_python(root_dir):
    """The builder venv's interpreter (made by the jetson_env role)."""
    return venv_dir(root_dir) + "/bin/python"


def builder_marker(root_dir):
    return "{}/{}".format(venv_dir(root_dir), BUILDER_MARKER)


def wheels_dir(root_dir):
    return "{}/{}".format(root_dir, WHEELS)


def work_dir(root_dir):
    return "{}/{}".format(root_dir, WORK)


def model_work_dir(root_dir, model):
    """A model's work directory: its graphs, one-model catalog, engine, manifest and build
    record."""
    return "{}/{}".format(work_dir(root_dir), model)


def timing_cache_dir(root_dir):
    return "{}/{}".format(root_dir, TIMING_CACHE)


def build_lock(root_dir):
    return "{}/{}".format(root_dir, BUILD_LOCK)
