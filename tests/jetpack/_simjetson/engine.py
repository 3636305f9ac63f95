"""Runtime, ICudaEngine, IExecutionContext: deserialization rules and simulated inference."""

import hashlib
import random
import struct

from . import context, cudamem, device, messages, plan, trtlog
from .builder import data_type, log_all
from .hostmem import IHostMemory

_ITEMSIZE = {"float32": 4, "int32": 4, "float16": 2}


class RuntimeImpl:
    def __init__(self, logger):
        ctx = context.get()
        trtlog.check_logger(logger, ctx.version, "Runtime")
        self._logger = logger
        ctx.last_logger = logger

    def deserialize_cuda_engine(self, serialized_engine, plugin_factory=None):
        return engine_from_plan(serialized_engine, self._logger)


def _deserialize_failure(header, ctx):
    planned = tuple(int(p) for p in header["tensorrt_version"].split("."))
    if planned[0] != ctx.version[0]:
        return messages.version_tag_mismatch(ctx.version, planned)
    if planned != ctx.version:
        return messages.library_mismatch(ctx.version, ctx.version_string,
                                         header["tensorrt_version"])
    running_compute = str(ctx.device["compute_capability"])
    if header["compute_capability"] != running_compute:
        return messages.device_mismatch(ctx.version, running_compute,
                                        header["compute_capability"])
    return None


def engine_from_plan(data, logger):
    ctx = context.get()
    try:
        header = plan.parse_header(bytes(data))
    except plan.NotAPlan:
        log_all(logger, messages.not_a_plan(ctx.version))
        return None
    failure = _deserialize_failure(header, ctx)
    if failure:
        log_all(logger, failure)
        return None
    return ctx.classes["ICudaEngine"](bytes(data), header, logger)


class ICudaEngineImpl:
    def __init__(self, data, header, logger):
        self._data = data
        self._header = header
        self._logger = logger
        self._bindings = header["bindings"]

    # -- index-based API (up to 8.6) -------------------------------------------------
    @property
    def num_bindings(self):
        return len(self._bindings)

    def __len__(self):
        return len(self._bindings)

    def __getitem__(self, index):
        return self._binding(index)["name"]

    def _binding(self, key):
        if isinstance(key, str):
            for binding in self._bindings:
                if binding["name"] == key:
                    return binding
            raise IndexError("no binding named {!r}".format(key))
        return self._bindings[key]

    def get_binding_index(self, name):
        for index, binding in enumerate(self._bindings):
            if binding["name"] == name:
                return index
        return -1

    def get_binding_name(self, index):
        return self._binding(index)["name"]

    def get_binding_shape(self, binding):
        return tuple(self._binding(binding)["shape"])

    def binding_is_input(self, binding):
        return self._binding(binding)["is_input"]

    def get_binding_dtype(self, binding):
        return self._dtype(self._binding(binding))

    @property
    def max_batch_size(self):
        return self._header["max_batch_size"]

    @property
    def has_implicit_batch_dimension(self):
        return self._header["implicit_batch"]

    # -- name-based API (8.5+) -------------------------------------------------------
    @property
    def num_io_tensors(self):
        return len(self._bindings)

    def get_tensor_name(self, index):
        return self._bindings[index]["name"]

    def get_tensor_shape(self, name):
        return tuple(self._binding(name)["shape"])

    def get_tensor_mode(self, name):
        modes = context.get().enums["TensorIOMode"]
        return modes.INPUT if self._binding(name)["is_input"] else modes.OUTPUT

    def get_tensor_dtype(self, name):
        return self._dtype(self._binding(name))

    def _dtype(self, binding):
        return data_type(binding["dtype"])

    # -- device memory of an execution context (v2 from 10.1; v1 gone in 11) ------------
    @property
    def device_memory_size(self):
        return self._header.get("device_memory_nbytes", 0)

    @property
    def device_memory_size_v2(self):
        return self._header.get("device_memory_nbytes", 0)

    # -- both ------------------------------------------------------------------------
    def serialize(self):
        return IHostMemory(self._data)

    def create_execution_context(self):
        return context.get().classes["IExecutionContext"](self)


class IExecutionContextImpl:
    def __init__(self, engine):
        self._engine = engine
        self._addresses = {}

    @property
    def engine(self):
        return self._engine

    def execute(self, batch_size=1, bindings=None):
        return self._run(batch_size, bindings, implicit_api=True)

    def execute_async(self, batch_size=1, bindings=None, stream_handle=0, input_consumed=None):
        return self._run(batch_size, bindings, implicit_api=True)

    def execute_v2(self, bindings):
        return self._run(1, bindings, implicit_api=False)

    def execute_async_v2(self, bindings, stream_handle, input_consumed=None):
        return self._run(1, bindings, implicit_api=False)

    def set_tensor_address(self, name, memory):
        self._engine._binding(name)
        self._addresses[name] = int(memory)
        return True

    def get_tensor_address(self, name):
        return self._addresses.get(name, 0)

    def set_input_shape(self, name, shape):
        return tuple(shape) == tuple(self._engine._binding(name)["shape"])

    def execute_async_v3(self, stream_handle):
        names = [b["name"] for b in self._engine._bindings]
        missing = [name for name in names if name not in self._addresses]
        if missing:
            return self._fail("address of tensor {} was set (set_tensor_address)".format(
                missing[0]))
        return self._run(1, [self._addresses[name] for name in names], implicit_api=False)

    # -- inference -------------------------------------------------------------------
    def _fail(self, reason):
        log_all(self._engine._logger, messages.execution_error(context.get().version, reason))
        return False

    def _run(self, batch_size, bindings, implicit_api):
        header = self._engine._header
        if bindings is None or len(bindings) != len(header["bindings"]):
            return self._fail("bindings has {} entries, the engine has {} bindings".format(
                0 if bindings is None else len(bindings), len(header["bindings"])))
        if header["implicit_batch"] and not implicit_api:
            return self._fail("!mEngine.hasImplicitBatchDimension()")
        if not 1 <= batch_size <= header["max_batch_size"]:
            return self._fail("batchSize > 0 && batchSize <= mEngine.getMaxBatchSize()")
        sized = []
        for binding, address in zip(header["bindings"], bindings):
            nbytes = batch_size * _ITEMSIZE[binding["dtype"]]
            for size in binding["shape"]:
                nbytes *= size
            if not cudamem.is_device_range(int(address), nbytes):
                return self._fail("binding {} ({} bytes at 0x{:x}) is not device memory "
                                  "allocated with cudaMalloc".format(binding["name"], nbytes,
                                                                     int(address)))
            sized.append((binding, int(address), nbytes))
        inputs = b"".join(cudamem.read(addr, n) for b, addr, n in sized if b["is_input"])
        outputs = [(b, addr, n) for b, addr, n in sized if not b["is_input"]]
        for _binding, address, nbytes in outputs:
            cudamem.write(address, b"\0" * nbytes)
        detections = [item for item in outputs if item[0]["shape"][-1] == 7]
        counts = [item for item in outputs if item[0]["dtype"] == "int32"]
        if detections:
            self._write_detections(inputs, batch_size, detections[0],
                                   counts[0] if counts else None)
        efficient = [p for p in header["plugins"] if p["op"] == "EfficientNMS_TRT"]
        if efficient:
            self._write_efficient_nms(inputs, efficient[0], {
                binding["name"]: (address, binding) for binding, address, _n in outputs})
        device.sleep_in_steps(float(context.get().device["infer_ms"]) / 1000.0 *
                              device.slow_factor())
        return True

    def _write_efficient_nms(self, inputs, plugin, outputs):
        """num_detections, detection_boxes (ymin, xmin, ymax, xmax), _scores, _classes of an
        EfficientNMS_TRT engine (batch 1, explicit), derived from the input bytes."""
        names = ("num_detections", "detection_boxes", "detection_scores", "detection_classes")
        if not all(name in outputs for name in names):
            return
        keep = outputs["detection_boxes"][1]["shape"][-2]
        classes = plugin["input_shapes"][1][-1] if len(plugin["input_shapes"]) > 1 else 2
        background = int(plugin["attrs"].get("background_class", -1))
        labels = [c for c in range(classes) if c != background] or [0]
        rng = random.Random(hashlib.sha256(inputs).digest())
        count = rng.randint(0, keep)
        scores = sorted((rng.random() for _ in range(count)), reverse=True)
        boxes, picked = [], []
        for _ in scores:
            y0, x0 = rng.uniform(0.0, 0.9), rng.uniform(0.0, 0.9)
            boxes.append(struct.pack("<4f", y0, x0, rng.uniform(y0 + 0.01, 1.0),
                                     rng.uniform(x0 + 0.01, 1.0)))
            picked.append(rng.choice(labels))
        cudamem.write(outputs["num_detections"][0], struct.pack("<i", count))
        cudamem.write(outputs["detection_boxes"][0], b"".join(boxes))
        cudamem.write(outputs["detection_scores"][0], struct.pack("<{}f".format(count), *scores))
        cudamem.write(outputs["detection_classes"][0],
                      struct.pack("<{}i".format(count), *picked))

    def _write_detections(self, inputs, batch_size, detections, counts):
        binding, address, nbytes = detections
        keep_top_k = binding["shape"][-2]
        nms = [p for p in self._engine._header["plugins"] if p["op"] == "NMS_TRT"]
        num_classes = int(nms[0]["attrs"].get("numClasses", 2)) if nms else 2
        per_image = len(inputs) // batch_size if batch_size else 0
        for image in range(batch_size):
            seed = hashlib.sha256(inputs[image * per_image:(image + 1) * per_image]).digest()
            rng = random.Random(seed)
            count = rng.randint(0, keep_top_k)
            scores = sorted((rng.random() for _ in range(count)), reverse=True)
            rows = []
            for score in scores:
                x0, y0 = rng.uniform(0.0, 0.9), rng.uniform(0.0, 0.9)
                x1, y1 = rng.uniform(x0 + 0.01, 1.0), rng.uniform(y0 + 0.01, 1.0)
                label = float(rng.randrange(1, max(num_classes, 2)))
                rows.append(struct.pack("<7f", float(image), label, score, x0, y0, x1, y1))
            cudamem.write(address + image * keep_top_k * 7 * 4, b"".join(rows))
            if counts is not None:
                cudamem.write(counts[1] + image * 4, struct.pack("<i", count))
