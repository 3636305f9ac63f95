"""What TensorRT logs when things fail, per version (severity, text) pairs.

Deserialization and OOM lines follow reference/tensorrt-python-api.yaml
(deserialize_incompatible_engine_messages, build_and_deserialize_failure) where it quotes
them; lines marked "unverified" are modelled on the same family of messages.
"""

ERROR = 1
INTERNAL_ERROR = 0


def _v(version):
    return version[:2]


def _is_legacy(version):
    """TensorRT <= 7: no numeric error-code prefix."""
    return version[0] <= 7


def _library(version, text):
    """Version as the deserializer prints it: 3 parts up to 8.4, as-is from 8.5 (yaml)."""
    if _v(version) >= (8, 5):
        return text
    return ".".join(text.split(".")[:3])


def _runtime_failed(version):
    if _is_legacy(version):
        return [(ERROR, "INVALID_STATE: std::exception"),
                (ERROR, "INVALID_CONFIG: Deserialize the cuda engine failed.")]
    line = 50 if _v(version) >= (8, 2) else 76
    return [(ERROR, "4: [runtime.cpp::deserializeCudaEngine::{}] Error Code 4: Internal Error "
                    "(Engine deserialization failed.)".format(line))]


def _core_failure(version):
    line = {5: 1247, 6: 1324, 7: 1546}.get(version[0], 1546)
    return (ERROR, "engine.cpp ({}) - Serialization Error in deserialize: 0 (Core engine "
                   "deserialization failure)".format(line))


def not_a_plan(version):
    if _is_legacy(version):
        return [(ERROR, "coreReadArchive.cpp (31) - Serialization Error in verifyHeader: 0 "
                        "(Magic tag does not match)")] + _runtime_failed(version)
    # unverified: 8.x magic-tag wording, modelled on the yaml's Version tag line.
    return [(ERROR, "1: [stdArchiveReader.cpp::StdArchiveReader::30] Error Code 1: Serialization "
                    "(Serialization assertion magicTagRead == kMAGIC_TAG failed.Magic Tag does "
                    "not match)")] + _runtime_failed(version)


SERIALIZATION_VERSIONS = {(8, 0): 205, (8, 2): 213, (8, 4): 226, (8, 5): 232, (8, 6): 236,
                          (10, 0): 237}  # 213 (8.2.1.8) and 205 cited; others illustrative


def _serialization_version(version):
    if version[0] == 8:
        minor = {1: 0, 3: 2}.get(version[1], version[1])
        return SERIALIZATION_VERSIONS.get((8, minor), 236)
    return SERIALIZATION_VERSIONS.get((version[0], 0), 200 + version[0])


def version_tag_mismatch(running, planned):
    if _is_legacy(running):
        return [(ERROR, "coreReadArchive.cpp (38) - Serialization Error in verifyHeader: 0 "
                        "(Version tag does not match)")] + _runtime_failed(running)
    return [(ERROR, "1: [stdArchiveReader.cpp::StdArchiveReader::40] Error Code 1: Serialization "
                    "(Serialization assertion stdVersionRead == serializationVersion failed."
                    "Version tag does not match. Note: Current Version: {}, Serialized Engine "
                    "Version: {})".format(_serialization_version(running),
                                          _serialization_version(planned)))
            ] + _runtime_failed(running)


def library_mismatch(running, running_text, planned_text):
    text = ("The engine plan file is not compatible with this version of TensorRT, expecting "
            "library version {} got {}, please rebuild.".format(
                _library(running, running_text), _library(running, planned_text)))
    if running[0] == 5:
        return [(ERROR, text)]
    if _is_legacy(running):
        return [(ERROR, "INVALID_CONFIG: " + text), _core_failure(running)] + \
            _runtime_failed(running)
    return [(ERROR, "6: " + text)] + _runtime_failed(running)


def device_mismatch(running, running_compute, planned_compute):
    text = ("The engine plan file is generated on an incompatible device, expecting compute {} "
            "got compute {}, please rebuild.".format(running_compute, planned_compute))
    if running[0] == 5:
        return [(ERROR, text), _core_failure(running)] + _runtime_failed(running)
    if _is_legacy(running):
        return [(ERROR, "INVALID_CONFIG: " + text), _core_failure(running)] + \
            _runtime_failed(running)
    return [(ERROR, "6: " + text)] + _runtime_failed(running)


def out_of_memory(version):
    """A build whose allocations fail (device out of memory)."""
    if _is_legacy(version):
        return [(ERROR, "../rtSafe/safeRuntime.cpp (25) - Cuda Error in allocate: 2 (out of "
                        "memory)"),
                (ERROR, "FAILED_ALLOCATION: std::exception")]
    # unverified line numbers; wording as printed by 8.x on Jetson out-of-memory builds.
    return [(ERROR, "1: [defaultAllocator.cpp::allocate::20] Error Code 1: Cuda Runtime (out of "
                    "memory)"),
            (ERROR, "2: [builder.cpp::buildSerializedNetwork::609] Error Code 2: Internal Error "
                    "(Assertion engine != nullptr failed. )")]


def no_output(version):
    if _is_legacy(version):
        return [(ERROR, "Network must have at least one output"),
                (ERROR, "Network validation failed.")]
    return [(ERROR, "4: [network.cpp::validate::2633] Error Code 4: Internal Error (Network must "
                    "have at least one output)")]


def dla_unavailable(version, core, cores):
    # unverified wording
    if _is_legacy(version):
        return [(ERROR, "Cannot create DLA engine, {} not available".format(core))]
    return [(ERROR, "2: [builderConfig.cpp::setDLACore] Error Code 2: Internal Error (DLA core {} "
                    "is not available: this platform has {} DLA core(s))".format(core, cores))]


def dla_layer_without_fallback(version, layer):
    text = ("Default DLA is enabled but layer {} is not supported on DLA and falling back to GPU "
            "is not enabled.".format(layer))
    if _is_legacy(version):
        return [(ERROR, text)]
    return [(ERROR, "2: [builder.cpp::buildSerializedNetwork] Error Code 2: Internal Error "
                    "({})".format(text))]


def nms_assertion(condition):
    return [(INTERNAL_ERROR,
             "nmsPlugin.cpp:139: virtual void "
             "nvinfer1::plugin::DetectionOutput::configureWithFormat"
             "(const nvinfer1::Dims*, int, const nvinfer1::Dims*, int, nvinfer1::DataType, "
             "nvinfer1::PluginFormat, int): Assertion `{}' failed.".format(condition))]


def execution_error(version, reason):
    if _is_legacy(version):
        return [(ERROR, "Parameter check failed at: engine.cpp::enqueue: {}".format(reason))]
    return [(ERROR, "3: [executionContext.cpp::enqueue] Error Code 3: API Usage Error "
                    "(Parameter check failed, condition: {})".format(reason))]


def precision_flag_on_strongly_typed(flag):
    """10.x: a strongly typed network built with a precision flag set (the reference's
    NetworkDefinitionCreationFlag.STRONGLY_TYPED 10.x note: NVIDIA/TensorRT#4253, #4228)."""
    return [(ERROR, "IBuilder::buildSerializedNetwork: Error Code 3: API Usage Error (Parameter "
                    "check failed, condition: !config.getFlag(BuilderFlag::k{}). )".format(flag))]
