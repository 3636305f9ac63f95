"""UFF or ONNX -> TensorRT engine on this device, published with its manifest.

The steps around the TensorRT calls (which live in trt_adapter): refuse what cannot
work before spending minutes in TensorRT (DLA on a device without one, a workspace
beyond the device's memory, too little disk), keep the timing cache consistent under
concurrent builds, and publish ``TRT_<model>.bin`` + ``manifest.json`` atomically.
"""

import contextlib
import fcntl
import os
import time

from .. import __version__, atomic
from ..buildkey import build_key
from ..errors import UserError
from ..manifest import new_manifest, publish_engine, require_free_space
from ..platform import detect
from ..trt.adapter import parse_version
from ..uff.convert import UFF_INPUT, UFF_OUTPUT

# Where real JetPack 4 setups keep the FlattenConcat_TRT plugin that TensorRT 5/6 lack
# (compiled from the uff_ssd sample); --plugin-library overrides it.
DEFAULT_PLUGIN_LIBRARY = "/usr/local/lib/libflattenconcat.so"
# Manifest, log lines, filesystem slack on top of the engine itself.
PUBLISH_MARGIN_BYTES = 4 * 1024 * 1024
# TensorRT needs room for the network, the workspace and the tactics it times, and the
# engine ends up at roughly the size of the weights: ask for twice the UFF.
BUILD_SPACE_FACTOR = 2


class TimingCacheFile(object):
    """A timing cache file shared by builds on one device.

    Read under a lock, merged and written back under the lock (atomically), so two
    builds never lose each other's timings. The lock is a separate ``.lock`` file:
    the cache itself is replaced by rename, which would drop a lock held on it.
    """

    def __init__(self, path, merge_paths=()):
        """``merge_paths``: caches to combine into this one before the build (the controller
        pushes its store's caches of this platform; see TrtAdapter._attach_timing_cache)."""
        self.path = os.path.abspath(path)
        directory = os.path.dirname(self.path)
        if not os.path.isdir(directory):
            raise UserError("--timing-cache {}: directory {} does not exist; create it or "
                            "choose another path".format(path, directory))
        self.lock_path = self.path + ".lock"
        self.merge_paths = [os.path.abspath(merge) for merge in merge_paths]

    @contextlib.contextmanager
    def _locked(self):
        with open(self.lock_path, "a") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock.fileno(), fcntl.LOCK_UN)

    def _read_unlocked(self):
        try:
            with open(self.path, "rb") as handle:
                return handle.read()
        except FileNotFoundError:
            return b""

    def read(self):
        """The cache bytes (b"" when there is none yet)."""
        with self._locked():
            return self._read_unlocked()

    def update(self, merge):
        """Replace the cache with ``merge(current bytes)``, all under the lock."""
        with self._locked():
            atomic.write_bytes(self.path, merge(self._read_unlocked()))


def progress_printer(stream):
    """A ``progress(text)`` that prints timestamped lines to ``stream``."""
    def progress(text):
        stream.write("[{}] {}\n".format(time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                                        text))
        stream.flush()
    return progress


CLI_OPTION_NAMES = {"dla_core": "--dla-core", "workspace_mib": "--workspace-mib",
                    "precision": "--precision", "max_batch": "--max-batch"}


def check_options_for_platform(options, facts, names=None):
    """Refuse options this device cannot honour, before TensorRT spends minutes on them.

    ``names``: how the options are called where the user set them (the CLI's flags by
    default; the controller passes its inventory variable names).
    """
    names = dict(CLI_OPTION_NAMES, **(names or {}))
    module = facts.get("module") or "this device"
    if options.dla_core is not None:
        cores = facts.get("dla_cores") or 0
        if cores == 0:
            raise UserError(
                "{} {}: {} has no DLA (deep learning accelerator); DLA exists on "
                "Xavier and Orin modules, not on Nano, TX2, Orin Nano or Thor. Remove {} "
                "(GPU only)".format(names["dla_core"], options.dla_core, module, names["dla_core"]))
        if options.dla_core >= cores:
            raise UserError(
                "{} {}: {} has {} DLA core(s), numbered 0 to {}; choose one of "
                "them".format(names["dla_core"], options.dla_core, module, cores, cores - 1))
    if options.precision == "fp16" and "compute_capability" in facts:
        fast = detect.has_fast_fp16(facts["compute_capability"])
        # An unknown GPU is left to TensorRT's own check (platform_has_fast_fp16), which a
        # strongly typed TensorRT no longer has.
        if fast is False or (fast is None and detect.strongly_typed(facts.get("tensorrt"))):
            raise UserError(
                "{} fp16: {} (compute capability {}) {}; TensorRT would build fp32 layers or "
                "fail. Use {} fp32".format(
                    names["precision"], module, facts["compute_capability"] or "unknown",
                    "has no fast fp16 arithmetic" if fast is False else
                    "is not a GPU this builder knows, so fp16 cannot be promised",
                    names["precision"]))
    memory = facts.get("memory_mib")
    if memory and options.workspace_mib >= memory:
        raise UserError(
            "{} {} is not below the device's memory ({} MiB on {}, shared by "
            "CPU and GPU); TensorRT could not allocate it. Use a smaller workspace (256 to "
            "1024 MiB is typical; at most about half the memory)".format(
                names["workspace_mib"], options.workspace_mib, memory, module))


def check_options_for_engine_path(options, engine_path, names=None):
    """Refuse options the engine path cannot honour (the plan calls it too, per model, with
    the inventory's names): the ONNX path builds the export's batch of 1."""
    names = dict(CLI_OPTION_NAMES, **(names or {}))
    if engine_path == "onnx" and options.max_batch != 1:
        raise UserError("{} {}: the ONNX path builds the exported file's batch of 1 (explicit "
                        "batch); use {} 1".format(names["max_batch"], options.max_batch,
                                                  names["max_batch"]))


def check_tensorrt_matches_platform(adapter, facts, warn):
    """The bindings' version should be the one dpkg reports (it is in the platform_id)."""
    installed = facts.get("tensorrt")
    if installed and parse_version(installed)[:3] != adapter.version[:3]:
        warn("the tensorrt Python module is {} but dpkg reports TensorRT {}; the engine is "
             "keyed by the dpkg version ({}). Fix the Python path or the "
             "install".format(adapter.version_text, installed, facts.get("platform_id")))


class EngineSource(object):
    """The file an engine is built from and what is known about it.

    ``kind``: 'uff' or 'onnx'; ``path``, ``sha256``: the file; ``input_dims``: (C, H, W);
    ``derived``: what the UFF surgery derived (or None); ``onnx_report``: the report
    'builder onnx' wrote next to the .onnx (its verification figures go into the manifest).
    """

    def __init__(self, kind, path, sha256, input_dims, *, derived=None, onnx_report=None):
        self.kind = kind
        self.path = path
        self.sha256 = sha256
        self.input_dims = list(input_dims)
        self.derived = derived
        self.onnx_report = onnx_report

    def manifest_fields(self):
        fields = {"engine_path": self.kind, "uff_sha256": None, "onnx_sha256": None,
                  "onnx": None}
        fields[self.kind + "_sha256"] = self.sha256
        if self.onnx_report is not None:
            fields["onnx"] = {key: self.onnx_report.get(key) for key in ONNX_REPORT_KEYS}
        return fields


# What the manifest keeps of the ONNX report (the integrator's store reads these).
ONNX_REPORT_KEYS = ("onnx_sha256", "opset", "box_decoder", "nms", "cut_tensors", "anchors",
                    "num_classes", "score_converter", "input", "outputs", "verification")


def _parse_and_build(adapter, source, options, cache):
    if source.kind == "onnx":
        return adapter.build_from_onnx(source.path, options, timing_cache=cache)
    adapter.require_uff()
    return adapter.build_from_uff(source.path, [(UFF_INPUT, tuple(source.input_dims))],
                                  [UFF_OUTPUT], options, timing_cache=cache)


def build_engine(spec, source, out_dir, *, options, facts, adapter, progress,
                 graph_sha256, timing_cache=None, merge_timing_caches=(),
                 plugin_libraries=None, extra_warnings=()):
    """Build ``spec``'s engine from ``source`` (an EngineSource) into ``out_dir``.

    Returns (engine path, manifest). ``facts``: detect_platform() of this device;
    ``adapter``: a TrtAdapter. Raises UserError for bad input, TensorRTFailure when
    TensorRT refuses; on either, nothing new is written to ``out_dir``.
    """
    check_options_for_platform(options, facts)
    check_tensorrt_matches_platform(adapter, facts, adapter.warn)
    check_options_for_engine_path(options, source.kind)
    require_free_space(out_dir, os.path.getsize(source.path) * BUILD_SPACE_FACTOR
                       + PUBLISH_MARGIN_BYTES, "the engine of {}".format(spec.name))

    libraries = []
    if adapter.needs_plugin_library():
        libraries = list(plugin_libraries or [DEFAULT_PLUGIN_LIBRARY])
        progress("TensorRT {} lacks FlattenConcat_TRT: loading {}".format(
            adapter.version_text, ", ".join(libraries)))
    adapter.load_plugins(libraries)

    if merge_timing_caches and not timing_cache:
        raise UserError("--merge-timing-cache needs --timing-cache (the file they are combined "
                        "into)")
    cache = TimingCacheFile(timing_cache, merge_timing_caches) if timing_cache else None
    progress("building {} with TensorRT {} (API {}) from {}: {}, workspace {} MiB, max batch "
             "{}{}".format(spec.engine, adapter.version_text, adapter.generation,
                           source.kind.upper(), options.precision, options.workspace_mib,
                           options.max_batch, "" if options.dla_core is None
                           else ", DLA core {}".format(options.dla_core)))
    started = time.time()
    plan, outputs = _parse_and_build(adapter, source, options, cache)
    seconds = round(time.time() - started, 3)
    progress("engine built in {:.1f} s ({} bytes)".format(seconds, len(plan)))

    require_free_space(out_dir, len(plan) + PUBLISH_MARGIN_BYTES, spec.engine)
    platform_id = facts.get("platform_id")
    facts_for_manifest = {
        "model": spec.name,
        "graph_sha256": graph_sha256,
        "build_key": build_key(platform_id, graph_sha256, spec, options.as_dict(),
                               __version__),
        "spec": spec.as_dict(),
        "derived": source.derived,
        "input_dims": list(source.input_dims),
        "outputs": outputs,
        "platform": facts,
        "platform_id": platform_id,
        "tensorrt_version": adapter.version_text,
        "tensorrt_api": adapter.generation,
        "precision": options.precision,
        # "builder flag" (weakly typed, TensorRT <= 10) or "onnx tensor types" (strongly
        # typed, 11: the ONNX was checked to be of that precision before the build).
        "precision_source": adapter.precision_source,
        "workspace_mib": options.workspace_mib,
        "max_batch": options.max_batch,
        "dla_core": options.dla_core,
        "timing_cache": adapter.timing_cache_use,
        "build_seconds": seconds,
        "builder_version": __version__,
        "warnings": list(extra_warnings) + list(adapter.notes),
    }
    facts_for_manifest.update(source.manifest_fields())
    manifest = new_manifest(spec.engine, plan, facts_for_manifest)
    engine_path = publish_engine(out_dir, spec.engine, plan, manifest)
    progress("wrote {} and its manifest".format(engine_path))
    return engine_path, manifest
