"""Which TensorRT Python API member exists in which version, and how it warns.

MATRIX is the quick_matrix of docs/reference/tensorrt-python-api.yaml, copied
verbatim (test_jetpack_surface.py checks it still matches the reference). EXTRA lists members the
reference does not tabulate but the doubles need; their columns are our reading of the
same reference (cited in the comments), not independent evidence.
"""

from .versions import COLUMNS

PRESENT = "present"
WARNS = "warns"
ABSENT = "absent"

MATRIX = {
    "Builder.max_workspace_size":
        "P | P | P | - | - | - | - | - | - | -",
    "Builder.max_batch_size":
        "P | P | P | P | P | D(warn) | D(warn) | D(warn) | - | -",
    "Builder.fp16_mode":
        "P | P | P | - | - | - | - | - | - | -",
    "Builder.int8_mode":
        "P | P | P | - | - | - | - | - | - | -",
    "Builder.strict_type_constraints":
        "P | P? | P | - | - | - | - | - | - | -",
    "Builder.build_cuda_engine":
        "P | P | P | - | - | - | - | - | - | -",
    "Builder.build_engine":
        "- | P | P | D(warn) | D(warn) | D(warn) | D(warn) | D(warn) | - | -",
    "Builder.build_serialized_network":
        "- | - | - | P | P | P | P | P | P | P",
    "Builder.create_builder_config":
        "- | P | P | P | P | P | P | P | P | P",
    "Builder.create_network":
        "present (no flags parameter) | present (flags accepted) | present (flags accepted) |"
        " P | P | P | P | P | P | P",
    "Builder.platform_has_fast_fp16":
        "P | P | P | P | P | P | P | P | P | -",
    "Builder.platform_has_fast_int8":
        "P | P | P | P | P | P | P | P | P | -",
    "Builder.create_optimization_profile":
        "- | P | P | P | P | P | P | P | P | P",
    "Builder.num_DLA_cores":
        "P? | P? | P? | P | P | P | P | P | P | P",
    "IBuilderConfig.max_workspace_size":
        "- | P | P | P | P | D(warn) | D(warn) | D(warn) | - | -",
    "IBuilderConfig.set_memory_pool_limit":
        "- | - | - | - | - | P | P | P | P | P",
    "IBuilderConfig.set_flag":
        "- | P | P | P | P | P | P | P | P | P",
    "IBuilderConfig.flags":
        "- | P | P | P | P | P | P | P | P | P",
    "IBuilderConfig.create_timing_cache":
        "- | - | - | P | P | P | P | P | P | P",
    "IBuilderConfig.set_timing_cache":
        "- | - | - | P | P | P | P | P | P | P",
    "IBuilderConfig.get_timing_cache":
        "- | - | - | P | P | P | P | P | P | P",
    "IBuilderConfig.default_device_type":
        "- | P? | P | P | P | P | P | P | P | P",
    "IBuilderConfig.DLA_core":
        "- | P? | P | P | P | P | P | P | P | P",
    "IBuilderConfig.set_device_type":
        "- | P? | P? | P | P | P | P | P | P | P",
    "IBuilderConfig.can_run_on_DLA":
        "- | P? | P? | P | P | P | P | P | P | P",
    "IBuilderConfig.int8_calibrator":
        "- | P? | P | P | P | P | P | P | D(warn) | -",
    "IInt8EntropyCalibrator2":
        "P? | P? | P? | P | P | P | P | P | P | -",
    "BuilderFlag.FP16":
        "- | P | P | P | P | P | P | P | P | -",
    "BuilderFlag.INT8":
        "- | P | P | P | P | P | P | P | P | -",
    "BuilderFlag.BF16":
        "- | - | - | - | - | - | - | - | P | -",
    "BuilderFlag.GPU_FALLBACK":
        "- | P | P | P | P | P | P | P | P | P",
    "BuilderFlag.STRICT_TYPES":
        "- | P | P | P | D(doc) | D(doc) | D(doc) | D(doc) | - | -",
    "BuilderFlag.REFIT":
        "- | P | P | P | P | P | P | P | P | P",
    "BuilderFlag.VERSION_COMPATIBLE":
        "- | - | - | - | - | - | - | P | P | P",
    "MemoryPoolType.WORKSPACE":
        "- | - | - | - | - | P | P | P | P | P",
    "NetworkDefinitionCreationFlag.EXPLICIT_BATCH":
        "- | P | P | P | P | P | P | P | present but deprecated/ignored (docstring only) | -",
    "NetworkDefinitionCreationFlag.STRONGLY_TYPED":
        "- | - | - | - | - | - | - | - | P | D(doc)",
    "UffParser":
        "P | P | P | P(C++dep) | P(C++dep) | P(C++dep) | P(C++dep) | P(C++dep) | - | -",
    "UffParser.register_input":
        "P | P? | P | P | P | P | P | P | - | -",
    "UffParser.register_output":
        "P | P? | P | P | P | P | P | P | - | -",
    "UffParser.parse":
        "P | P | P | P | P | P | P | P | - | -",
    "OnnxParser":
        "P | P | P | P | P | P | P | P | P | P",
    "CaffeParser":
        "P | P? | P | P(C++dep) | P(C++dep) | P(C++dep) | P(C++dep) | P(C++dep) | - | -",
    "Runtime.deserialize_cuda_engine":
        "P | P | P | P | P | P | P | P | P | P",
    "ICudaEngine.num_bindings":
        "P | P? | P | P | P | P | P | P | - | -",
    "ICudaEngine.get_binding_shape":
        "P | P? | P | P | P | P | D(warn) | D(warn) | - | -",
    "ICudaEngine.get_binding_name":
        "P | P? | P | P | P | P | D(warn) | D(warn) | - | -",
    "ICudaEngine.binding_is_input":
        "P | P? | P | P | P | P | D(warn) | D(warn) | - | -",
    "ICudaEngine.max_batch_size":
        "P | P? | P | P | P | D(warn) | D(warn) | D(warn) | - | -",
    "ICudaEngine.serialize":
        "P | P | P | P | P | P | P | P | P | P",
    "ICudaEngine.num_io_tensors":
        "- | - | - | - | - | - | P | P | P | P",
    "ICudaEngine.get_tensor_name":
        "- | - | - | - | - | - | P | P | P | P",
    "ICudaEngine.get_tensor_shape":
        "- | - | - | - | - | - | P | P | P | P",
    "ICudaEngine.device_memory_size":
        "P? | P | P? | P | P | P | P | P | D(warn) | -",
    "ICudaEngine.device_memory_size_v2":
        "- | - | - | - | - | - | - | - | P | P",
    "IExecutionContext.execute":
        "P | P | P? | P | P | D(warn) | D(warn) | D(warn) | - | -",
    "IExecutionContext.execute_async":
        "P | P | P | P | P | D(warn) | D(warn) | D(warn) | - | -",
    "IExecutionContext.execute_v2":
        "- | P? | P? | P | P | P | P | P | P | P",
    "IExecutionContext.execute_async_v2":
        "- | P | P | P | P | P | P | P | - | -",
    "IExecutionContext.execute_async_v3":
        "- | - | - | - | - | - | P | P | P | P",
    "IExecutionContext.set_tensor_address":
        "- | - | - | - | - | - | P | P | P | P",
    "init_libnvinfer_plugins":
        "P | P | P | P | P | P | P | P | P | P",
    "get_plugin_registry":
        "P? | P | P | P | P | P | P | P | P | P",
    "ITimingCache.combine":
        "- | - | - | P | P | P | P | P | P | P",
    "ITimingCache.serialize":
        "- | - | - | P | P | P | P | P | P | P",
}

EXTRA = {
    # 8.4+ pairs with set_memory_pool_limit (yaml IBuilderConfig.set_memory_pool_limit).
    "IBuilderConfig.get_memory_pool_limit": "- | - | - | - | - | P | P | P | P | P",
    # set_flag's note: "also clear_flag, get_flag".
    "IBuilderConfig.clear_flag": "- | P | P | P | P | P | P | P | P | P",
    "IBuilderConfig.get_flag": "- | P | P | P | P | P | P | P | P | P",
    # The 8.5 name-based I/O API (yaml ICudaEngine.num_io_tensors note).
    "ICudaEngine.get_tensor_mode": "- | - | - | - | - | - | P | P | P | P",
    "ICudaEngine.get_tensor_dtype": "- | - | - | - | - | - | P | P | P | P",
    "IExecutionContext.get_tensor_address": "- | - | - | - | - | - | P | P | P | P",
    "IExecutionContext.set_input_shape": "- | - | - | - | - | - | P | P | P | P",
    "TensorIOMode": "- | - | - | - | - | - | P | P | P | P",
    # Index-based binding helpers live and die with num_bindings.
    "ICudaEngine.get_binding_index": "P | P | P | P | P | P | P | P | - | -",
    "ICudaEngine.get_binding_dtype": "P | P | P | P | P | P | P | P | - | -",
    # Gone with implicit batch in 11 (yaml implicit_batch_allowed, 11.x; deprecated in 10.x,
    # which the doubles do not model: the builder never reads it from 10 on).
    "ICudaEngine.has_implicit_batch_dimension": "P | P | P | P | P | P | P | P | P | -",
    # The network's one stays, warning from 10.0 (yaml implicit_batch_allowed, 11.x note;
    # docs/reference/tensorrt-onnx-api.yaml has the row).
    "INetworkDefinition.has_implicit_batch_dimension":
        "P | P | P | P | P | P | P | P | D(warn) | D(warn)",
    # OnnxParser.parse_from_file appears in 7.1 (yaml OnnxParser note).
    "OnnxParser.parse_from_file": "- | - | P | P | P | P | P | P | P | P",
    "NetworkDefinitionCreationFlag": "- | P | P | P | P | P | P | P | P | P",
    "BuilderFlag": "- | P | P | P | P | P | P | P | P | P",
    "MemoryPoolType": "- | - | - | - | - | P | P | P | P | P",
    "DeviceType": "- | P | P | P | P | P | P | P | P | P",
    "IBuilderConfig": "- | P | P | P | P | P | P | P | P | P",
    "ITimingCache": "- | - | - | P | P | P | P | P | P | P",
    "UffInputOrder": "P | P | P | P | P | P | P | P | - | -",
    # The calibrators' base class is bound next to IInt8EntropyCalibrator2 in pyInt8.cpp and
    # goes with it in 11 (yaml IInt8EntropyCalibrator2 11.x note).
    "IInt8Calibrator": "P? | P? | P? | P | P | P | P | P | P | -",
}

# Cells of a column whose first releases differ from the rest of it (yaml
# meta.within_column_changes): name -> (column, first version the cell holds from, the
# state of the column's versions before it).
CHANGED_WITHIN = {
    "ICudaEngine.device_memory_size": ("10.0-10.3", (10, 1), PRESENT),
    "ICudaEngine.device_memory_size_v2": ("10.0-10.3", (10, 1), ABSENT),
    "IBuilderConfig.int8_calibrator": ("10.0-10.3", (10, 1), PRESENT),
}

# DeprecationWarning texts (yaml "warning:" fields); (getter text, setter text) for properties.
WARNING_TEXTS = {
    "Builder.max_batch_size":
        "Use network created with NetworkDefinitionCreationFlag::EXPLICIT_BATCH flag instead.",
    "Builder.build_engine": "Use build_serialized_network instead.",
    "IBuilderConfig.max_workspace_size":
        ("Use get_memory_pool_limit instead.", "Use set_memory_pool_limit instead."),
    "ICudaEngine.get_binding_shape": "Use get_tensor_shape instead.",
    "ICudaEngine.get_binding_name": "Use get_tensor_name instead.",
    "ICudaEngine.binding_is_input": "Use get_tensor_mode instead.",
    "ICudaEngine.max_batch_size":
        "Use network created with NetworkDefinitionCreationFlag::EXPLICIT_BATCH flag instead.",
    "IExecutionContext.execute": "Use execute_v2 instead.",
    "IExecutionContext.execute_async": "Use execute_async_v2 instead.",
    # utils::deprecateMember's "Use " + text + " instead." around 10.1's own texts.
    "ICudaEngine.device_memory_size":
        "Use Deprecated in TensorRT 10.1. Superseded by get_device_memory_size_v2 instead.",
    "IBuilderConfig.int8_calibrator":
        "Use Deprecated in TensorRT 10.1. Superseded by explicit quantization. instead.",
    "INetworkDefinition.has_implicit_batch_dimension":
        "Use Implicit batch dimensions support has been removed instead.",
}

CONTEXT_MANAGER_WARNING = (
    "Context managers for TensorRT types are deprecated. Memory will be freed automatically "
    "when the reference count reaches 0."
)


def _status_word(cell):
    cell = cell.strip()
    if cell == "-":
        return ABSENT
    if cell == "D(warn)":
        return WARNS
    if cell == "?":
        raise ValueError("unverified cell has no simulated behaviour")
    return PRESENT  # P, P?, D(doc), P(C++dep), "present (...)" long forms


def cells(name):
    row = MATRIX.get(name) or EXTRA.get(name)
    if row is None:
        return None
    parts = [part.strip() for part in row.split("|")]
    if len(parts) != len(COLUMNS):
        raise ValueError("surface row {} has {} cells, expected {}".format(
            name, len(parts), len(COLUMNS)))
    return dict(zip(COLUMNS, parts))


def status(name, column, version=None):
    """PRESENT / WARNS / ABSENT for 'Class.member' (or a top-level name) in a column, for
    ``version`` (a tuple) where CHANGED_WITHIN says the column's first releases differ.
    Names not tabulated are present in every version."""
    row = cells(name)
    if row is None:
        return PRESENT
    changed = CHANGED_WITHIN.get(name)
    if changed and version is not None and changed[0] == column and \
            tuple(version[:2]) < changed[1]:
        return changed[2]
    return _status_word(row[column])
