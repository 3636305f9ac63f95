"""The plugin registry: which plugin creators a process has, per TensorRT version."""

from . import context

FLATTENCONCAT_LIBRARY = "libflattenconcat.so"
# Creators in libnvinfer_plugin, registered by trt.init_libnvinfer_plugins(logger, "").
_BUILTIN = ("GridAnchor_TRT", "NMS_TRT", "Normalize_TRT", "PriorBox_TRT", "Reorg_TRT",
            "Region_TRT", "Clip_TRT", "LReLU_TRT")
_BUILTIN_SINCE_7 = ("FlattenConcat_TRT", "BatchedNMS_TRT")
# plugin/efficientNMSPlugin is part of TensorRT's plugin library from 8.0 (see
# docs/reference/onnx-tensorrt-operators.md); the builder uses it from 8.4 only.
_BUILTIN_SINCE_8 = ("EfficientNMS_TRT",)
# TensorRT 11.0 removed these plugins (OSS CHANGELOG 11.0: "Removed deprecated plugins: ...
# clip, ... leakyRelu, normalize, ... nms"; plugin/batchedNMSPlugin is gone from the v11.0
# tree, https://github.com/NVIDIA/TensorRT/tree/771d8efdf7f9d7b1eeb0864eb05d4dd8a7755bb5/plugin).
# EfficientNMS_TRT stays, deprecated since 10.12 (plugin/efficientNMSPlugin/README.md at
# v11.1), like every IPluginV2 plugin: deprecated, not removed.
_REMOVED_IN_11 = ("NMS_TRT", "Normalize_TRT", "Clip_TRT", "LReLU_TRT", "BatchedNMS_TRT")


def library_loaded(basename, maps_file="/proc/self/maps"):
    """Whether a shared library with this file name is mapped into this process."""
    with open(maps_file) as handle:
        for line in handle:
            fields = line.rstrip("\n").split(None, 5)
            if len(fields) == 6 and fields[5].rsplit("/", 1)[-1].startswith(basename):
                return True
    return False


def creator_names():
    ctx = context.get()
    names = []
    if ctx.plugins_initialised:
        names.extend(_BUILTIN)
        if ctx.version[0] >= 7:
            names.extend(_BUILTIN_SINCE_7)
        if ctx.version[0] >= 8:
            names.extend(_BUILTIN_SINCE_8)
        if ctx.version[0] >= 11:
            names = [name for name in names if name not in _REMOVED_IN_11]
    # TRT 5/6: FlattenConcat_TRT lives in the sample's plugin library, which registers its
    # creator when loaded (ctypes.CDLL), with or without init_libnvinfer_plugins.
    if ctx.version[0] < 7 and library_loaded(FLATTENCONCAT_LIBRARY):
        names.append("FlattenConcat_TRT")
    return names


class PluginCreatorImpl:
    def __init__(self, name):
        self.name = name
        self.plugin_version = "1"
        self.plugin_namespace = ""


class PluginRegistryImpl:
    @property
    def plugin_creator_list(self):
        return [PluginCreatorImpl(name) for name in creator_names()]

    def get_plugin_creator(self, type, version, plugin_namespace=""):  # noqa: A002 (real name)
        if type in creator_names() and str(version) == "1" and plugin_namespace == "":
            return PluginCreatorImpl(type)
        return None
