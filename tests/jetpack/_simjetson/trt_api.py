"""Assembles the `tensorrt` module of one TensorRT version from the implementation classes.

Every class is generated per process from an *Impl class: members the version lacks are
left out (AttributeError, on the class and on instances), members it deprecates emit the
reference's DeprecationWarning, and 8.0+ context managers warn on __enter__.
"""

import functools
import warnings

from . import builder, context, engine, enums, parsers, plugins, surface, trtlog
from .hostmem import IHostMemory


class IOptimizationProfileImpl:
    def __init__(self):
        self._shapes = {}

    def set_shape(self, input, min, opt, max):  # noqa: A002  (binding parameter names)
        self._shapes[input] = (tuple(min), tuple(opt), tuple(max))

    def get_shape(self, input):  # noqa: A002
        return list(self._shapes.get(input, ()))


class IInt8CalibratorImpl:
    """The calibrator interface (subclassed by users; INT8 calibration is not simulated)."""

    def get_batch_size(self):
        return 1

    def get_batch(self, names):
        return None

    def read_calibration_cache(self):
        return None

    def write_calibration_cache(self, cache):
        return None


class IInt8EntropyCalibrator2Impl(IInt8CalibratorImpl):
    pass


def _create_network_without_flags(self):
    """TensorRT 5: create_network() takes no flags (yaml Builder.create_network)."""
    return builder.BuilderImpl.create_network(self, 0)


def _deserialize_without_factory(self, serialized_engine):
    """8.0+: the plugin_factory parameter is gone (yaml Runtime.deserialize_cuda_engine)."""
    return engine.engine_from_plan(serialized_engine, self._logger)


_VARIANTS = {
    ("Builder", "create_network"): lambda version: (
        _create_network_without_flags if version[0] == 5 else None),
    ("Runtime", "deserialize_cuda_engine"): lambda version: (
        _deserialize_without_factory if version[0] >= 8 else None),
}

_CONTEXT_MANAGED = ("ILogger", "Builder", "ICudaEngine", "IExecutionContext", "Runtime",
                    "INetworkDefinition", "UffParser", "CaffeParser", "OnnxParser",
                    "IBuilderConfig")


def _warn(text, function):
    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        warnings.warn(text, DeprecationWarning, stacklevel=2)
        return function(*args, **kwargs)

    return wrapper


def _deprecated(member, texts):
    if isinstance(member, property):
        get_text, set_text = texts if isinstance(texts, tuple) else (texts, texts)
        return property(_warn(get_text, member.fget),
                        _warn(set_text, member.fset) if member.fset else None)
    return _warn(texts, member)


def _enter_with_warning(self):
    warnings.warn(surface.CONTEXT_MANAGER_WARNING, DeprecationWarning, stacklevel=2)
    return self


def _enter(self):
    return self


def _exit(self, exc_type, exc_value, traceback):
    return False


def specialize(impl, name, ctx, bases=(object,)):
    namespace = {}
    for klass in reversed(impl.__mro__[:-1]):
        namespace.update({key: value for key, value in vars(klass).items()
                          if key not in ("__dict__", "__weakref__")})
    for attr in [a for a in namespace if not a.startswith("_")]:
        qualified = "{}.{}".format(name, attr)
        state = surface.status(qualified, ctx.column, ctx.version)
        variant = _VARIANTS.get((name, attr), lambda version: None)(ctx.version)
        if variant is not None:
            namespace[attr] = variant
        if state == surface.ABSENT:
            del namespace[attr]
        elif state == surface.WARNS:
            namespace[attr] = _deprecated(namespace[attr], surface.WARNING_TEXTS[qualified])
    if name in _CONTEXT_MANAGED:
        namespace["__enter__"] = _enter_with_warning if ctx.version[0] >= 8 else _enter
        namespace["__exit__"] = _exit
    namespace["__module__"] = "tensorrt"
    namespace["__qualname__"] = name
    return type(name, bases, namespace)


def init_libnvinfer_plugins(logger, namespace):
    """Registers the built-in plugin creators (GridAnchor_TRT, NMS_TRT, ...)."""
    context.get().plugins_initialised = True
    return True


def build_namespace():
    """Everything `import tensorrt` exposes on this device."""
    ctx = context.get()
    ctx.severity = enums.severity_enum(ctx.version)
    ctx.enums = enums.make_enums(ctx.version, ctx.column)
    ctx.last_logger = None
    classes = {}
    ilogger = specialize(trtlog.ILoggerImpl, "ILogger", ctx)
    logger = specialize(trtlog.LoggerImpl, "Logger", ctx, bases=(ilogger,))
    for klass in (ilogger, logger):
        klass.Severity = ctx.severity
        for member in ctx.severity:
            setattr(klass, member.name, member)
    logger._VERSION = ctx.version
    logger._SEVERITY = ctx.severity
    logger._SIMJETSON_BUILTIN_LOGGER = True
    classes.update(ILogger=ilogger, Logger=logger)
    for name, impl in (("Builder", builder.BuilderImpl),
                       ("IBuilderConfig", builder.IBuilderConfigImpl),
                       ("ITimingCache", builder.ITimingCacheImpl),
                       ("INetworkDefinition", builder.INetworkDefinitionImpl),
                       ("ITensor", builder.ITensorImpl), ("ILayer", builder.ILayerImpl),
                       ("IOptimizationProfile", IOptimizationProfileImpl),
                       ("Runtime", engine.RuntimeImpl), ("ICudaEngine", engine.ICudaEngineImpl),
                       ("IExecutionContext", engine.IExecutionContextImpl),
                       ("UffParser", parsers.UffParserImpl),
                       ("OnnxParser", parsers.OnnxParserImpl),
                       ("CaffeParser", parsers.CaffeParserImpl),
                       ("IParserError", parsers.ParserErrorImpl),
                       ("IPluginRegistry", plugins.PluginRegistryImpl),
                       ("IPluginCreator", plugins.PluginCreatorImpl)):
        classes[name] = specialize(impl, name, ctx)
    classes["IInt8Calibrator"] = specialize(IInt8CalibratorImpl, "IInt8Calibrator", ctx)
    classes["IInt8EntropyCalibrator2"] = specialize(
        IInt8EntropyCalibrator2Impl, "IInt8EntropyCalibrator2", ctx,
        bases=(classes["IInt8Calibrator"],))
    ctx.classes = classes
    registry = classes["IPluginRegistry"]()
    exported = dict(classes)
    exported.update(ctx.enums)
    exported.update(IHostMemory=IHostMemory, __version__=ctx.version_string,
                    init_libnvinfer_plugins=init_libnvinfer_plugins,
                    get_plugin_registry=lambda: registry)
    return {name: value for name, value in exported.items()
            if name.startswith("__")
            or surface.status(name, ctx.column, ctx.version) != surface.ABSENT}
