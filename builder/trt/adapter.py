"""One adapter over every TensorRT Python API generation the fleet runs.

    5.x        builder.max_workspace_size / fp16_mode / build_cuda_engine;
               FlattenConcat plugin comes from a separate library (ctypes)
    6.x, 7.x   create_builder_config + build_engine(network, config)
    8.0-8.3    config.max_workspace_size, build_serialized_network, timing cache
    8.4-8.6    config.set_memory_pool_limit(MemoryPoolType.WORKSPACE, ...)
    10.x       no UffParser, no implicit batch: UFF models are refused
    11.x       strongly typed only: no precision builder flags (BuilderFlag.FP16 / INT8),
               no platform_has_fast_fp16, no calibrators, no device_memory_size (v2 only).
               An engine computes in its ONNX's tensor types: fp16 needs an fp16 ONNX, and
               a build whose ONNX types disagree with the precision asked is refused

The API is chosen by feature detection (the newest call that exists is used, so a
call removed in 8.0 is never touched on 8.x); the parsed numeric version is used only
where an attribute cannot tell (logger style, plugin library). Never string compares:
"10.3" < "7" as strings.
"""

import ctypes
import os
import sys
import warnings

from ..errors import UserError
from ..platform.detect import ONNX_FROM, api_generation, version_tuple
from ..trt import enginepath
from ..trt.log import TrtLog

NO_UFF_NOTE = "UFF models cannot be built on JetPack 6 and later (TensorRT 10 and 11)"
# How an engine got its precision (manifest "precision_source"): the FP16 builder flag on a
# weakly typed network (TensorRT <= 10), or the ONNX's tensor types (strongly typed, 11).
PRECISION_FROM_FLAG = "builder flag"
PRECISION_FROM_TYPES = "onnx tensor types"
# Binding element sizes by DataType name (trt.nptype needs numpy, which may be absent).
_ITEMSIZE = {
    "FLOAT": 4, "HALF": 2, "INT8": 1, "INT32": 4, "BOOL": 1, "UINT8": 1, "INT64": 8,
    "BF16": 2, "FP8": 1,
}


class TensorRTFailure(Exception):
    """TensorRT refused a parse, build, deserialization or run (exit code 1).

    ``summary`` is one line saying what failed; ``lines`` are TensorRT's own messages.
    """

    def __init__(self, summary, lines):
        Exception.__init__(self, summary)
        self.summary = summary
        self.lines = list(lines)


def import_tensorrt():
    """The ``tensorrt`` module, or a UserError saying where it comes from."""
    try:
        import tensorrt  # noqa: PLC0415 (JetPack package, imported when needed)
    except ImportError as error:
        raise UserError(
            "cannot import the TensorRT Python bindings ({}). They come with JetPack "
            "(package python3-libnvinfer, in /usr/lib/python3.X/dist-packages): run the "
            "builder with the system python3, or from a venv created with "
            "--system-site-packages".format(error)
        ) from error
    return tensorrt


def parse_version(text):
    """'8.2.1.8' -> (8, 2, 1, 8); '10.3.0' -> (10, 3, 0, 0). Padded (or cut) to 4 numbers."""
    numbers = version_tuple(text)
    if not numbers:
        raise UserError(
            "cannot read the TensorRT version from tensorrt.__version__ = {!r}; "
            "reinstall the JetPack TensorRT Python bindings (python3-libnvinfer)".format(text)
        )
    return (numbers + (0, 0, 0, 0))[:4]


def strongly_typed_only(trt):
    """True where the bindings have no precision builder flags (TensorRT 11: every network
    is strongly typed). TensorRT 5 has no BuilderFlag at all but builds weakly typed."""
    flags = getattr(trt, "BuilderFlag", None)
    return flags is not None and not hasattr(flags, "FP16")


def check_uff_support(trt):
    """UserError naming the ONNX way when this TensorRT has no UFF parser (10.x)."""
    if hasattr(trt, "UffParser"):
        return
    version = parse_version(trt.__version__)
    raise UserError(
        "TensorRT {}.{} has no UFF parser: export the model to ONNX (tf2onnx) and build "
        "the engine from the .onnx instead (trtexec --onnx=...); {}. Build this model on "
        "a JetPack 4/5 device (TensorRT 5-8) or move it to ONNX.".format(
            version[0], version[1], NO_UFF_NOTE)
    )


def optional_tensorrt():
    """The tensorrt module when importable, else None (for steps that only check it)."""
    try:
        import tensorrt  # noqa: PLC0415 (JetPack package, imported when needed)
    except ImportError:
        return None
    return tensorrt


class BuildOptions(object):
    """What the user chose for one engine build."""

    def __init__(self, precision="fp16", workspace_mib=256, max_batch=1, dla_core=None):
        if precision not in ("fp16", "fp32"):
            raise UserError("--precision must be fp16 or fp32, not {!r}".format(precision))
        if workspace_mib < 1:
            raise UserError("--workspace-mib must be at least 1 (MiB), not {}".format(
                workspace_mib))
        if max_batch < 1:
            raise UserError("--max-batch must be at least 1, not {}".format(max_batch))
        if dla_core is not None and dla_core < 0:
            raise UserError("--dla-core must be 0 or more, not {}".format(dla_core))
        self.precision = precision
        self.workspace_mib = workspace_mib
        self.max_batch = max_batch
        self.dla_core = dla_core

    @property
    def workspace_bytes(self):
        return self.workspace_mib * 1024 * 1024

    def as_dict(self):
        return {
            "precision": self.precision,
            "workspace_mib": self.workspace_mib,
            "max_batch": self.max_batch,
            "dla_core": self.dla_core,
        }


class TensorInfo(object):
    """One engine input or output."""

    __slots__ = ("index", "name", "shape", "is_input", "dtype_name")

    def __init__(self, index, name, shape, is_input, dtype_name):
        self.index = index
        self.name = name
        self.shape = shape
        self.is_input = is_input
        self.dtype_name = dtype_name

    @property
    def itemsize(self):
        return _ITEMSIZE[self.dtype_name]

    @property
    def volume(self):
        count = 1
        for dim in self.shape:
            count *= max(int(dim), 1)
        return count

    @property
    def nbytes(self):
        return self.volume * self.itemsize


class TrtAdapter(object):
    """TensorRT calls for building from UFF and running an engine, any generation.

    ``notes`` collects the warnings the adapter printed (for the manifest).
    """

    def __init__(self, trt, verbose=False, echo=None):
        self.trt = trt
        self.version_text = str(trt.__version__)
        self.version = parse_version(self.version_text)
        self.generation = api_generation(self.version)
        self._echo = sys.stderr if echo is None else echo
        self.log = TrtLog(
            trt,
            use_python_logger=self.version >= (8, 0, 0, 0),
            min_severity="INFO" if verbose else "WARNING",
            echo=self._echo,
        )
        self.notes = []
        # What the last build did with its timing cache (for the manifest), None without one.
        self.timing_cache_use = None
        self.strongly_typed = strongly_typed_only(trt)
        # How the last build's precision was obtained (PRECISION_FROM_*), for the manifest.
        self.precision_source = None
        self._plugins_ready = False
        self._runtime = None

    # -- shared -----------------------------------------------------------------

    def warn(self, message):
        self.notes.append(message)
        self._echo.write("warning: {}\n".format(message))
        self._echo.flush()

    def _failure(self, summary, mark):
        lines = [str(record) for record in self.log.since(mark) if record.is_error()]
        if not lines:
            lines = [str(record) for record in self.log.since(mark)]
        if not lines:
            lines = ["(TensorRT logged nothing; rerun with --verbose for its INFO lines)"]
        return TensorRTFailure(summary, lines)

    def needs_plugin_library(self):
        """TensorRT 5 and 6 lack FlattenConcat_TRT in libnvinfer_plugin (7 has it)."""
        return self.version < (7, 0, 0, 0)

    def load_plugins(self, libraries=()):
        """Load extra plugin libraries, then register TensorRT's own plugins.

        GridAnchor_TRT / NMS_TRT (and FlattenConcat_TRT from 7) live in
        libnvinfer_plugin and must be registered before a UFF parse or an engine load.
        """
        if self._plugins_ready:
            return
        for path in libraries:
            try:
                ctypes.CDLL(path)
            except OSError as error:
                raise UserError(
                    "cannot load the TensorRT plugin library {} ({}); TensorRT {} needs "
                    "FlattenConcat_TRT from it: build it from the TensorRT samples or give "
                    "its path with --plugin-library".format(path, error, self.version_text)
                ) from error
        mark = self.log.mark()
        with self.log.capturing():
            ok = self.trt.init_libnvinfer_plugins(self.log.logger, "")
        if ok is False:
            raise self._failure("TensorRT could not register its plugins", mark)
        self._plugins_ready = True

    # -- build --------------------------------------------------------------------

    def require_uff(self):
        """Refuse clearly where TensorRT has no UFF parser (10.x, JetPack 6)."""
        check_uff_support(self.trt)

    def check_dla(self, builder, options):
        if options.dla_core is None:
            return
        available = getattr(builder, "num_DLA_cores", None)
        if available is not None and options.dla_core >= available:
            raise UserError(
                "--dla-core {}: TensorRT sees {} DLA core(s) on this device; use a core "
                "number below {} or drop --dla-core".format(
                    options.dla_core, available, available)
            )

    def build_from_uff(self, uff_path, inputs, outputs, options, timing_cache=None):
        """Parse ``uff_path`` and build a serialized engine: (bytes, output bindings).

        ``inputs``: [(name, (C, H, W))]; ``outputs``: [name]; ``timing_cache``: an object
        with ``read() -> bytes`` and ``update(merge)`` (see engine_build.TimingCacheFile)
        or None. Raises TensorRTFailure with TensorRT's lines when it refuses.
        """
        trt = self.trt
        self.require_uff()
        mark = self.log.mark()
        with self.log.capturing():
            builder = trt.Builder(self.log.logger)
            network = builder.create_network()  # implicit batch, what UFF needs
            parser = trt.UffParser()
            refused = [name for name, dims in inputs
                       if parser.register_input(name, tuple(dims)) is False]
            refused += [name for name in outputs if parser.register_output(name) is False]
            parsed = not refused and parser.parse(uff_path, network)
        # Raised outside the capture: fd-captured lines are recorded when it ends.
        if refused:
            raise self._failure("TensorRT refused to register {}".format(
                ", ".join(refused)), mark)
        if not parsed:
            raise self._failure("TensorRT could not parse {}".format(uff_path), mark)
        return self._build_network(builder, network, options, timing_cache, uff_path)

    def build_from_onnx(self, onnx_path, options, timing_cache=None):
        """Parse ``onnx_path`` (explicit batch, OnnxParser) and build: (bytes, bindings).

        The ONNX graph's EfficientNMS_TRT node is resolved by the parser from the plugin
        registry: ``load_plugins`` must have run. Raises TensorRTFailure with the
        parser's errors (one per line) when it refuses.
        """
        trt = self.trt
        if not enginepath.can_build(enginepath.ONNX, self.version):
            raise UserError("TensorRT {} cannot build the ONNX path (EfficientNMS_TRT needs "
                            "TensorRT >= {}.{}); build this model from UFF".format(
                                self.version_text, *ONNX_FROM))
        mark = self.log.mark()
        with self.log.capturing():
            builder = trt.Builder(self.log.logger)
            network = builder.create_network(self._network_flags())
            parser = trt.OnnxParser(network, self.log.logger)
            parsed = parser.parse_from_file(onnx_path)
            errors = [str(parser.get_error(index)) for index in range(parser.num_errors)]
        if not parsed:
            failure = self._failure("TensorRT could not parse {}".format(onnx_path), mark)
            failure.lines.extend(line for line in errors if line not in failure.lines)
            raise failure
        if self.strongly_typed:
            self.check_onnx_precision(network_precision(network), options, onnx_path)
        return self._build_network(builder, network, options, timing_cache, onnx_path)

    def check_onnx_precision(self, onnx_precision, options, onnx_path):
        """On a strongly typed TensorRT the engine computes in the ONNX's tensor types: refuse
        (UserError, before the build) an ONNX whose types are not the precision asked, rather
        than build another precision than the one asked."""
        if onnx_precision == options.precision:
            return
        if options.precision == "fp16":
            raise UserError(
                "TensorRT {} is strongly typed: fp16 needs an fp16 ONNX (float16 tensors), and "
                "{} has none (an fp32 export), so the engine would be fp32. Build from the "
                "fp16 export (python3 -m builder onnx MODEL --precision fp16 on the "
                "controller, which makes it for engine_precision fp16 on TensorRT 11 "
                "devices), or ask for fp32 (--precision fp32 / engine_precision: fp32). "
                "Nothing was built".format(self.version_text, onnx_path))
        raise UserError(
            "TensorRT {} is strongly typed: {} needs an {} ONNX, and {} has float16 tensors "
            "(an fp16 export), so the engine would be fp16. Build from the fp32 export (python3 "
            "-m builder onnx MODEL), or ask for fp16. Nothing was built".format(
                self.version_text, options.precision, options.precision, onnx_path))

    def _network_flags(self):
        """create_network flags: explicit batch (the ONNX parser needs it) up to 8.6. From 10
        every network is explicit batch, and on 11 strongly typed, its STRONGLY_TYPED flag
        deprecated and ignored (its bit moved: 1 in 10.x, 0 in 11), so nothing is passed."""
        flag = getattr(self.trt, "NetworkDefinitionCreationFlag", None)
        if self.version >= (10, 0, 0, 0) or flag is None:
            return 0
        return 1 << int(flag.EXPLICIT_BATCH)

    def _build_network(self, builder, network, options, timing_cache, source):
        """Configure and build a parsed network: (plan bytes, output bindings)."""
        self.check_dla(builder, options)
        # platform_has_fast_fp16 is gone with weak typing in 11 (an fp16 ONNX decides there).
        if options.precision == "fp16" and not self.strongly_typed and \
                not builder.platform_has_fast_fp16:
            self.warn("this GPU has no fast FP16; building FP16 anyway as asked")
        self.precision_source = PRECISION_FROM_TYPES if self.strongly_typed else \
            PRECISION_FROM_FLAG
        implicit = self.version < (10, 0, 0, 0) and network_is_implicit(network)
        config = self._configure(builder, options, implicit_batch=implicit)
        cache_attached = self._attach_timing_cache(config, timing_cache)
        outputs = network_outputs(network)

        mark = self.log.mark()
        with self.log.capturing():
            plan = self._build(builder, network, config)
        if not plan:
            raise self._failure("TensorRT could not build the engine from {}".format(
                source), mark)
        if cache_attached:
            timing_cache.update(
                lambda existing: self._merged_timing_cache(config, existing, timing_cache.path))
        return plan, outputs

    def _configure(self, builder, options, implicit_batch=True):
        """Apply options through the newest API present; None config on TensorRT 5."""
        trt = self.trt
        if implicit_batch:
            with warnings.catch_warnings():
                # Implicit batch (all UFF can do) is deprecated from 8.4 but still works.
                warnings.simplefilter("ignore", DeprecationWarning)
                builder.max_batch_size = options.max_batch
        if not hasattr(builder, "create_builder_config"):
            builder.max_workspace_size = options.workspace_bytes
            builder.fp16_mode = options.precision == "fp16"
            if options.dla_core is not None:
                raise UserError(
                    "--dla-core needs TensorRT 6 or newer (builder config); this device has "
                    "TensorRT {}: drop --dla-core".format(self.version_text)
                )
            return None
        config = builder.create_builder_config()
        if hasattr(config, "set_memory_pool_limit"):
            config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, options.workspace_bytes)
        else:
            config.max_workspace_size = options.workspace_bytes
        if options.precision == "fp16" and not self.strongly_typed:
            config.set_flag(trt.BuilderFlag.FP16)
        if options.dla_core is not None:
            config.default_device_type = trt.DeviceType.DLA
            config.DLA_core = options.dla_core
            # Layers the DLA cannot run (the SSD plugins among them) go to the GPU.
            config.set_flag(trt.BuilderFlag.GPU_FALLBACK)
        return config

    def _build(self, builder, network, config):
        """Serialized engine bytes, or None when TensorRT refused."""
        if hasattr(builder, "build_serialized_network"):
            plan = builder.build_serialized_network(network, config)
            return None if plan is None else bytes(plan)
        if config is not None:
            engine = builder.build_engine(network, config)
        else:
            engine = builder.build_cuda_engine(network)
        if engine is None:
            return None
        return bytes(engine.serialize())

    def _attach_timing_cache(self, config, timing_cache):
        """Attach the file's cache, with the caches to merge combined into it (each one that
        does not fit this device and TensorRT dropped with a warning); True when attached.

        Records in ``timing_cache_use`` whether the build starts from timings (``used``), the
        serialized size it starts from, and which caches were merged or dropped.
        """
        if timing_cache is None:
            return False
        if config is None or not hasattr(config, "create_timing_cache"):
            self.warn(
                "--timing-cache ignored: TensorRT {} has no timing cache "
                "(it came with 8.0)".format(self.version_text)
            )
            return False
        mark = self.log.mark()
        with self.log.capturing():
            cache = config.create_timing_cache(timing_cache.read())
            attached = cache is not None and config.set_timing_cache(cache, False)
        if not attached:
            self.warn(
                "timing cache {} does not fit this device/TensorRT ({}); starting an "
                "empty one".format(timing_cache.path, "; ".join(
                    str(record) for record in self.log.since(mark)) or "no reason logged")
            )
            cache = config.create_timing_cache(b"")
            config.set_timing_cache(cache, False)
        merged, dropped = [], []
        for path in timing_cache.merge_paths:
            (merged if self._combine_timing_cache(config, cache, path) else dropped).append(
                os.path.basename(path))
        size = len(bytes(cache.serialize()))
        self.timing_cache_use = {"file": timing_cache.path, "merged": merged,
                                 "dropped": dropped, "start_bytes": size,
                                 "used": size > len(bytes(config.create_timing_cache(
                                     b"").serialize()))}
        return True

    def _combine_timing_cache(self, config, cache, path):
        """Combine the cache in file ``path`` into ``cache``; False (with a warning) when it
        is unreadable or from another device or TensorRT version."""
        try:
            with open(path, "rb") as handle:
                data = handle.read()
        except OSError as error:
            self.warn("timing cache {} dropped: cannot read it ({})".format(path, error.strerror))
            return False
        mark = self.log.mark()
        with self.log.capturing():
            other = config.create_timing_cache(data) if data else None
            combined = other is not None and cache.combine(other, False)
        if not combined:
            self.warn("timing cache {} dropped: {} ({})".format(
                path, "it is empty" if not data else "it does not fit this device/TensorRT "
                "or is damaged", "; ".join(str(r) for r in self.log.since(mark))
                or "no reason logged"))
        return combined

    def _merged_timing_cache(self, config, existing, path):
        """This build's timing cache combined with what is on disk now, serialized."""
        own = config.get_timing_cache()
        if existing:
            with self.log.capturing():
                other = config.create_timing_cache(existing)
                combined = other is not None and own.combine(other, False)
            if not combined:
                self.warn("timing cache {}: the file on disk could not be merged; "
                          "replacing it with this build's cache".format(path))
        return bytes(own.serialize())

    # -- run ----------------------------------------------------------------------

    def deserialize(self, plan):
        """An ICudaEngine from engine bytes; TensorRTFailure with TensorRT's reason."""
        mark = self.log.mark()
        with self.log.capturing():
            self._runtime = self.trt.Runtime(self.log.logger)
            engine = self._runtime.deserialize_cuda_engine(plan)
        if engine is None:
            raise self._failure("TensorRT could not load the engine", mark)
        return engine

    def device_memory_bytes(self, engine):
        """Device memory an execution context of ``engine`` takes (bytes), or None where the
        bindings do not say. device_memory_size_v2 from 10.1 (device_memory_size warns there
        and is gone in 11); device_memory_size before."""
        if hasattr(engine, "device_memory_size_v2"):
            return int(engine.device_memory_size_v2)
        size = getattr(engine, "device_memory_size", None)
        return None if size is None else int(size)

    def tensors(self, engine):
        """Inputs and outputs of ``engine`` in binding order, as TensorInfo."""
        found = []
        if hasattr(engine, "num_io_tensors"):  # 8.5+
            for index in range(engine.num_io_tensors):
                name = engine.get_tensor_name(index)
                is_input = engine.get_tensor_mode(name) == self.trt.TensorIOMode.INPUT
                found.append(TensorInfo(index, name, tuple(engine.get_tensor_shape(name)),
                                        is_input, _dtype_name(engine.get_tensor_dtype(name))))
            return found
        for index in range(engine.num_bindings):
            found.append(TensorInfo(
                index, engine.get_binding_name(index), tuple(engine.get_binding_shape(index)),
                bool(engine.binding_is_input(index)),
                _dtype_name(engine.get_binding_dtype(index)),
            ))
        return found

    def create_context(self, engine):
        mark = self.log.mark()
        with self.log.capturing():
            context = engine.create_execution_context()
        if context is None:
            raise self._failure("TensorRT could not create an execution context", mark)
        return context

    def execute(self, engine, context, tensors, addresses, stream):
        """Run once (batch 1). ``addresses``: device pointer per tensor, same order."""
        # From 10 there is no implicit batch (and the property warns, then goes in 11).
        implicit = self.version < (10, 0, 0, 0) and bool(
            getattr(engine, "has_implicit_batch_dimension", True))
        mark = self.log.mark()
        with self.log.capturing(), warnings.catch_warnings():
            # execute() is deprecated from 8.4 but is the call for implicit batch.
            warnings.simplefilter("ignore", DeprecationWarning)
            if implicit:
                ok = context.execute(1, list(addresses))
            elif hasattr(context, "execute_async_v3"):
                for tensor, address in zip(tensors, addresses):
                    context.set_tensor_address(tensor.name, address)
                ok = context.execute_async_v3(stream)
            else:
                ok = context.execute_v2(list(addresses))
        if not ok:
            raise self._failure("TensorRT could not run the engine", mark)


def network_is_implicit(network):
    return bool(getattr(network, "has_implicit_batch_dimension", True))


def network_precision(network):
    """'fp16' when a parsed network has float16 tensors (an fp16 or mixed-precision ONNX:
    a strongly typed network keeps the ONNX's types), else 'fp32'."""
    tensors = [network.get_input(index) for index in range(network.num_inputs)]
    for index in range(network.num_layers):
        layer = network.get_layer(index)
        tensors.extend(layer.get_output(output) for output in range(layer.num_outputs))
    names = {str(tensor.dtype).rsplit(".", 1)[-1].upper() for tensor in tensors
             if tensor is not None}
    return "fp16" if "HALF" in names else "fp32"


def network_outputs(network):
    """[{name, shape, dtype}] of a parsed network's outputs (what the engine will bind)."""
    found = []
    for index in range(network.num_outputs):
        tensor = network.get_output(index)
        found.append({"name": tensor.name, "shape": [int(d) for d in tensor.shape],
                      "dtype": _dtype_name(tensor.dtype)})
    return found


def _dtype_name(dtype):
    name = str(dtype).rsplit(".", 1)[-1].upper()
    if name not in _ITEMSIZE:
        raise UserError("the engine has a tensor of type {}, which verify cannot read".format(
            dtype))
    return name
