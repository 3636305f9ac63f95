"""Builder, IBuilderConfig, ITimingCache, INetworkDefinition: the build rules of TensorRT."""

import json

from . import context, device, messages, plan, trtlog
from .hostmem import IHostMemory
from .network import NetworkState

MIB = 1024 * 1024


def log_all(logger, pairs):
    severity_enum = context.get().severity
    for severity, text in pairs:
        trtlog.emit(logger, severity_enum(severity), text)


def fast_int8(ctx):
    """INT8 tensor math needs SM 6.1 or 7.x+ (Nano 5.3 and TX2 6.2 have none)."""
    major, minor = (int(p) for p in str(ctx.device["compute_capability"]).split("."))
    return (major, minor) == (6, 1) or major >= 7


# numpy dtype names of the parsed tensors -> DataType member names.
_DATA_TYPES = {"int32": "INT32", "float16": "HALF", "int8": "INT8", "bool": "BOOL"}


def data_type(dtype_name):
    """The trt.DataType of a tensor type name ('float32', 'float16', 'int32', ...)."""
    members = context.get().enums["DataType"]
    return getattr(members, _DATA_TYPES.get(dtype_name, "FLOAT"), members.FLOAT)


def tensor_precision(state):
    """fp16 when any tensor of a parsed network is float16 (a strongly typed network computes
    in its tensors' types), else fp32."""
    for layer in state.layers:
        if any(tensor.dtype == "float16" for tensor in list(layer.inputs) + list(layer.outputs)):
            return "fp16"
    if any(tensor.dtype == "float16" for tensor in state.inputs):
        return "fp16"
    return "fp32"


class ITensorImpl:
    def __init__(self, info):
        self._info = info

    @property
    def name(self):
        return self._info.name

    @property
    def shape(self):
        return self._info.shape

    @property
    def dtype(self):
        return data_type(self._info.dtype)


class ILayerImpl:
    def __init__(self, info):
        self._info = info

    @property
    def name(self):
        return self._info.name

    @property
    def type(self):
        return "PLUGIN" if self._info.plugin else self._info.op

    @property
    def num_inputs(self):
        return len(self._info.inputs)

    @property
    def num_outputs(self):
        return len(self._info.outputs)

    def get_input(self, index):
        return context.get().classes["ITensor"](self._info.inputs[index])

    def get_output(self, index):
        return context.get().classes["ITensor"](self._info.outputs[index])


class INetworkDefinitionImpl:
    def __init__(self, explicit_batch, strongly_typed=False):
        self._state = NetworkState(explicit_batch, strongly_typed)

    @property
    def num_inputs(self):
        return len(self._state.inputs)

    @property
    def num_outputs(self):
        return len(self._state.outputs)

    @property
    def num_layers(self):
        return len(self._state.layers)

    @property
    def has_implicit_batch_dimension(self):
        return not self._state.explicit_batch

    def get_input(self, index):
        return context.get().classes["ITensor"](self._state.inputs[index])

    def get_output(self, index):
        return context.get().classes["ITensor"](self._state.outputs[index])

    def get_layer(self, index):
        return context.get().classes["ILayer"](self._state.layers[index])

    def mark_output(self, tensor):
        self._state.outputs.append(tensor._info)


class ITimingCacheImpl:
    """Tactic timings by layer: recorded, serialized and combined, never used to go faster
    (what a real cache saves cannot be measured here, so the doubles do not pretend to)."""

    def __init__(self, entries, platform):
        self._entries = dict(entries)
        self._platform = platform

    def serialize(self):
        header = "SIMULATED TensorRT timing cache | platform={}\n".format(self._platform)
        return IHostMemory(header.encode() + json.dumps(self._entries, sort_keys=True).encode())

    def combine(self, input_cache, ignore_mismatch):
        """NvInfer.h (8.0.1 on): the input must come from the exact same TensorRT version
        (else skipped, False, whatever ignore_mismatch says); from another device only with
        ignore_mismatch; conflicting entries are skipped (this cache's own are kept)."""
        theirs_device, _, theirs_version = input_cache._platform.rpartition("/")
        ours_device, _, ours_version = self._platform.rpartition("/")
        if theirs_version != ours_version:
            return False
        if theirs_device != ours_device and not ignore_mismatch:
            return False
        for key, value in input_cache._entries.items():
            self._entries.setdefault(key, value)
        return True

    def reset(self):
        self._entries.clear()
        return True


def _platform_key(ctx):
    return "{}/{}/{}".format(ctx.device["module"], ctx.device["compute_capability"],
                             ctx.version_string)


def load_timing_cache(blob):
    data = bytes(blob)
    if not data:
        return {}, _platform_key(context.get())
    first, _, rest = data.partition(b"\n")
    if not first.startswith(b"SIMULATED TensorRT timing cache | platform="):
        return None, None
    return json.loads(rest.decode()), first.split(b"platform=", 1)[1].decode()


class IBuilderConfigImpl:
    def __init__(self):
        ctx = context.get()
        # 8.4+ defaults the workspace pool to the device's memory; earlier defaults to 0.
        default = ctx.device["memory_mib"] * MIB if ctx.version[:2] >= (8, 4) else 0
        self._pools = {0: default}
        self._flags = set()
        self._default_device_type = 0
        self._dla_core = -1
        self._layer_devices = {}
        self._timing_cache = None
        self._calibrator = None

    def _get_workspace(self):
        return self._pools[0]

    def _set_workspace(self, size):
        self._pools[0] = int(size)

    max_workspace_size = property(_get_workspace, _set_workspace)

    def set_memory_pool_limit(self, pool, pool_size):
        self._pools[int(pool)] = int(pool_size)

    def get_memory_pool_limit(self, pool):
        return self._pools.get(int(pool), 0)

    def set_flag(self, flag):
        self._flags.add(int(flag))

    def clear_flag(self, flag):
        self._flags.discard(int(flag))

    def get_flag(self, flag):
        return int(flag) in self._flags

    def _get_flags(self):
        return sum(1 << flag for flag in self._flags)

    def _set_flags(self, mask):
        self._flags = {bit for bit in range(64) if mask >> bit & 1}

    flags = property(_get_flags, _set_flags)

    def _get_device_type(self):
        return context.get().enums["DeviceType"](self._default_device_type)

    def _set_device_type_default(self, device_type):
        self._default_device_type = int(device_type)

    default_device_type = property(_get_device_type, _set_device_type_default)

    def _get_dla_core(self):
        return self._dla_core

    def _set_dla_core(self, core):
        self._dla_core = int(core)

    DLA_core = property(_get_dla_core, _set_dla_core)

    def set_device_type(self, layer, device_type):
        self._layer_devices[layer.name] = int(device_type)

    def can_run_on_DLA(self, layer):
        return not layer._info.plugin

    def create_timing_cache(self, serialized_timing_cache):
        entries, platform = load_timing_cache(serialized_timing_cache)
        if entries is None:
            return None
        return context.get().classes["ITimingCache"](entries, platform)

    def set_timing_cache(self, cache, ignore_mismatch):
        if cache._platform != _platform_key(context.get()) and not ignore_mismatch:
            return False
        self._timing_cache = cache
        return True

    def get_timing_cache(self):
        return self._timing_cache

    def _get_calibrator(self):
        return self._calibrator

    def _set_calibrator(self, calibrator):
        self._calibrator = calibrator

    int8_calibrator = property(_get_calibrator, _set_calibrator)


class BuildSettings:
    """What one build uses, gathered from the Builder (5-7) or an IBuilderConfig (6+)."""

    def __init__(self, workspace, fp16, int8, max_batch_size, config=None):
        self.workspace = workspace
        self.fp16 = fp16
        self.int8 = int8
        self.max_batch_size = max_batch_size
        self.config = config


class BuilderImpl:
    def __init__(self, logger):
        ctx = context.get()
        trtlog.check_logger(logger, ctx.version, "Builder")
        self._logger = logger
        ctx.last_logger = logger
        self._max_workspace_size = 0
        self._max_batch_size = 1
        self._fp16 = False
        self._int8 = False
        self._strict = False

    # -- TensorRT 5-7 builder-level settings ------------------------------------------
    def _attr_property(field):  # noqa: N805  (class-body helper, not a method)
        return property(lambda self: getattr(self, field),
                        lambda self, value: setattr(self, field, value))

    max_workspace_size = _attr_property("_max_workspace_size")
    max_batch_size = _attr_property("_max_batch_size")
    fp16_mode = _attr_property("_fp16")
    int8_mode = _attr_property("_int8")
    strict_type_constraints = _attr_property("_strict")
    del _attr_property

    @property
    def platform_has_fast_fp16(self):
        return True  # every Jetson GPU (Maxwell and newer)

    @property
    def platform_has_fast_int8(self):
        return fast_int8(context.get())

    @property
    def num_DLA_cores(self):
        return context.get().device["dla_cores"]

    def create_network(self, flags=0):
        """Explicit batch: always from 10, with EXPLICIT_BATCH (bit 0) before. Strongly
        typed: always from 11, with STRONGLY_TYPED (bit 1) in 10 (the reference's
        NetworkDefinitionCreationFlag rows)."""
        ctx = context.get()
        mask = int(flags)
        explicit = bool(mask & 1) or ctx.version[0] >= 10
        strongly_typed = ctx.version[0] >= 11 or (ctx.version[0] == 10 and bool(mask & 2))
        return ctx.classes["INetworkDefinition"](explicit, strongly_typed)

    def create_builder_config(self):
        return context.get().classes["IBuilderConfig"]()

    def create_optimization_profile(self):
        return context.get().classes["IOptimizationProfile"]()

    def build_cuda_engine(self, network):
        settings = BuildSettings(self._max_workspace_size, self._fp16, self._int8,
                                 self._max_batch_size)
        return self._engine_or_none(self._build(network, settings))

    def build_engine(self, network, config):
        return self._engine_or_none(self._build(network, self._config_settings(config)))

    def build_serialized_network(self, network, config):
        data = self._build(network, self._config_settings(config))
        return None if data is None else IHostMemory(data)

    # -- the build -------------------------------------------------------------------
    def _config_settings(self, config):
        flags = context.get().enums["BuilderFlag"]
        # TensorRT 11 has no precision flags to set.
        fp16, int8 = (hasattr(flags, name) and int(getattr(flags, name)) in config._flags
                      for name in ("FP16", "INT8"))
        return BuildSettings(config._pools[0], fp16, int8, self._max_batch_size, config)

    def _engine_or_none(self, data):
        if data is None:
            return None
        from .engine import engine_from_plan  # noqa: PLC0415  (engine imports builder)

        return engine_from_plan(data, self._logger)

    def _build(self, network, settings):
        """Plan bytes, or None after logging why (TensorRT never raises on a failed build)."""
        ctx = context.get()
        state = network._state
        fault = device.current_fault()
        if fault in ("drop-mid-build", "freeze-mid-build"):
            device.announce_build_start()
        while fault == "hang":  # a builder that never ends (until the fleet lifts the fault)
            device.sleep_in_steps(1.0)
            fault = device.current_fault()
        if not state.outputs:
            log_all(self._logger, messages.no_output(ctx.version))
            return None
        failure = (self._typing_failure(state, settings) or self._dla_failure(state, settings)
                   or self._nms_failure(state))
        if failure:
            log_all(self._logger, failure)
            return None
        duration = float(ctx.device["build_seconds"]) * device.slow_factor()
        memory = ctx.device["memory_mib"] * MIB
        if fault == "oom" or settings.workspace > memory:
            device.sleep_in_steps(duration / 2)
            log_all(self._logger, messages.out_of_memory(ctx.version))
            return None
        precision = tensor_precision(state) if state.strongly_typed else \
            self._precision(settings)
        device.sleep_in_steps(duration)
        if settings.config is not None and settings.config._timing_cache is not None:
            settings.config._timing_cache._entries.update(
                {layer.name: layer.op for layer in state.layers})
        serialized = plan.serialize(self._plan_header(state, settings, precision))
        device.record_build()
        return serialized

    def _precision(self, settings):
        if settings.int8 and fast_int8(context.get()):
            return "int8"
        if settings.int8:
            log_all(self._logger, [(2, "Int8 support requested on hardware without native Int8 "
                                       "support, performance will be negatively affected.")])
        return "fp16" if settings.fp16 else "fp32"

    @staticmethod
    def _typing_failure(state, settings):
        """A strongly typed network takes its precision from its tensors: 10.x refuses the
        precision flags on one (11 has none to set)."""
        if not state.strongly_typed:
            return None
        for flag, wanted in (("FP16", settings.fp16), ("INT8", settings.int8)):
            if wanted:
                return messages.precision_flag_on_strongly_typed(flag)
        return None

    def _dla_layers(self, state, settings):
        config = settings.config
        if config is None:
            return []
        return [layer for layer in state.layers
                if config._layer_devices.get(layer.name, config._default_device_type) == 1]

    def _dla_failure(self, state, settings):
        on_dla = self._dla_layers(state, settings)
        if not on_dla:
            return None
        ctx = context.get()
        cores = ctx.device["dla_cores"]
        core = max(settings.config._dla_core, 0)
        if core >= cores:
            return messages.dla_unavailable(ctx.version, core, cores)
        fallback = int(ctx.enums["BuilderFlag"].GPU_FALLBACK) in settings.config._flags
        for layer in on_dla:
            if layer.plugin and not fallback:
                return messages.dla_layer_without_fallback(ctx.version, layer.name)
        return None

    def _nms_failure(self, state):
        for layer in state.layers:
            if layer.op != "_NMS_TRT":
                continue
            order = list(layer.attrs.get("inputOrder") or [0, 1, 2])
            if sorted(order) != [0, 1, 2]:
                return messages.nms_assertion("param.inputOrder is a permutation of 0, 1, 2")
            loc, conf, prior = (layer.inputs[i] for i in order)
            num_classes = int(layer.attrs.get("numClasses", 0))
            share = bool(layer.attrs.get("shareLocation", 1))
            num_loc_classes = 1 if share else num_classes
            num_priors = prior.shape[1] // 4 if len(prior.shape) > 1 else 0
            if num_priors * num_loc_classes * 4 != loc.shape[0]:
                return messages.nms_assertion(
                    "numPriors * numLocClasses * 4 == inputDims[param.inputOrder[0]].d[0]")
            if num_priors * num_classes != conf.shape[0]:
                return messages.nms_assertion(
                    "numPriors * param.numClasses == inputDims[param.inputOrder[1]].d[0]")
        return None

    def _plan_header(self, state, settings, precision):
        ctx = context.get()
        bindings = [{"name": t.name, "shape": list(t.shape), "dtype": t.dtype, "is_input": True}
                    for t in state.inputs]
        bindings += [{"name": t.name, "shape": list(t.shape), "dtype": t.dtype,
                      "is_input": False} for t in state.outputs]
        plugins = [{"name": layer.name, "op": layer.op.lstrip("_"), "attrs": layer.attrs,
                    "input_shapes": [list(tensor.shape) for tensor in layer.inputs]}
                   for layer in state.layers if layer.plugin]
        on_dla = [layer.name for layer in self._dla_layers(state, settings) if not layer.plugin]
        return {
            "format": plan.FORMAT, "module": ctx.device["module"],
            "compute_capability": str(ctx.device["compute_capability"]),
            "tensorrt_version": ctx.version_string, "device_name": ctx.device["name"],
            "implicit_batch": not state.explicit_batch,
            "max_batch_size": settings.max_batch_size if not state.explicit_batch else 1,
            "bindings": bindings, "plugins": plugins, "precision": precision,
            "dla_core": max(settings.config._dla_core, 0) if on_dla else None,
            "layers_on_dla": on_dla, "weights_nbytes": state.weights_nbytes(),
            "typing": "strong" if state.strongly_typed else "weak",
            "precision_source": "tensor types" if state.strongly_typed else "builder flags",
            "device_memory_nbytes": state.activation_nbytes(precision),
        }
