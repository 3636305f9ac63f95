"""Load an engine, run it on an image, time it and check that its output makes sense.

Standard library only (no numpy on some devices): images are PPM/PGM read by hand
(other formats through Pillow when it is installed), tensors are ``array`` objects.
The SSD engine's outputs, by engine path: UFF (NMS_TRT) gives detections [1, keepTopK, 7]
(image_id, label, confidence, xmin, ymin, xmax, ymax, normalized) and an int32 keep count;
ONNX (EfficientNMS_TRT) gives num_detections int32 [1, 1], detection_boxes [1, K, 4]
(ymin, xmin, ymax, xmax), detection_scores [1, K] and detection_classes int32 [1, K]. Both
are read into the NMS_TRT row layout and checked the same way.
"""

import array
import math
import os
import struct
import time

from ..errors import UserError
from ..manifest import utc_now
from ..verify.cuda_runtime import DeviceBuffers

DETECTION_FIELDS = 7
# Float slack when checking normalized coordinates and confidences.
TOLERANCE = 1e-4
SHOWN_DETECTIONS = 5


# -- images -------------------------------------------------------------------------

def _netpbm_tokens(data, count):
    """The first ``count`` header tokens of a PPM/PGM and the offset after them."""
    tokens = []
    position = 0
    while len(tokens) < count:
        while position < len(data) and data[position:position + 1].isspace():
            position += 1
        if data[position:position + 1] == b"#":
            while position < len(data) and data[position:position + 1] not in (b"\n", b"\r"):
                position += 1
            continue
        start = position
        while position < len(data) and not data[position:position + 1].isspace():
            position += 1
        if start == position:
            break
        tokens.append(data[start:position])
    return tokens, position + 1  # one whitespace byte ends the header


def read_netpbm(path):
    """(width, height, channels, samples 0..1 row-major interleaved) of a binary PPM/PGM."""
    with open(path, "rb") as handle:
        data = handle.read()
    channels = {b"P6": 3, b"P5": 1}.get(data[:2])
    if channels is None:
        raise ValueError("not a binary PPM (P6) or PGM (P5)")
    tokens, offset = _netpbm_tokens(data, 4)
    try:
        width, height, maxval = (int(token) for token in tokens[1:4])
    except ValueError:
        raise ValueError("bad PPM/PGM header {!r}".format(b" ".join(tokens))) from None
    if width < 1 or height < 1 or not 0 < maxval < 65536:
        raise ValueError("bad PPM/PGM size {}x{} or maxval {}".format(width, height, maxval))
    count = width * height * channels
    if maxval < 256:
        samples = array.array("B", data[offset:offset + count])
    else:
        samples = array.array("H", data[offset:offset + 2 * count])
        if array.array("H", [1]).tobytes()[0] == 1:  # little-endian host; file is big-endian
            samples.byteswap()
    if len(samples) != count:
        raise ValueError("truncated: {} of {} samples".format(len(samples), count))
    return width, height, channels, [value / float(maxval) for value in samples]


def _read_with_pillow(path):
    try:
        from PIL import Image  # noqa: PLC0415 (optional)
    except ImportError:
        return None
    with Image.open(path) as image:
        rgb = image.convert("RGB")
        width, height = rgb.size
        return width, height, 3, [value / 255.0 for value in rgb.tobytes()]


def load_image(path):
    """(width, height, channels, samples 0..1); UserError naming the file when unreadable."""
    try:
        return read_netpbm(path)
    except OSError as error:
        raise UserError("--image {}: cannot read it ({})".format(
            path, error.strerror)) from error
    except ValueError as netpbm_problem:
        loaded = _read_with_pillow(path)
        if loaded is None:
            raise UserError(
                "--image {}: {}. Give a binary PPM/PGM (e.g. convert photo.jpg photo.ppm) or "
                "install Pillow for other formats".format(path, netpbm_problem)) from None
        return loaded


def synthetic_image(width, height):
    """A deterministic RGB test pattern (gradients and a bright square) in 0..1."""
    samples = []
    for y in range(height):
        for x in range(width):
            inside = width // 3 <= x < 2 * width // 3 and height // 3 <= y < 2 * height // 3
            samples.extend((1.0, 1.0, 1.0) if inside else
                           (x / float(width), y / float(height), 0.5))
    return width, height, 3, samples


def to_chw_input(image, channels, height, width):
    """Nearest-neighbour resize to (channels, height, width), RGB, scaled to [-1, 1]."""
    source_width, source_height, source_channels, samples = image
    column_offsets = [min(source_width - 1, x * source_width // width) * source_channels
                      for x in range(width)]
    planes = [array.array("f") for _ in range(channels)]
    for y in range(height):
        row = min(source_height - 1, y * source_height // height) * source_width * source_channels
        for c, plane in enumerate(planes):
            start = row + min(c, source_channels - 1)  # gray images feed every channel
            plane.extend([samples[start + offset] * 2.0 - 1.0 for offset in column_offsets])
    chw = planes[0]
    for plane in planes[1:]:
        chw.extend(plane)
    return chw


# -- output checks ------------------------------------------------------------------

EFFICIENT_NMS_OUTPUTS = ("num_detections", "detection_boxes", "detection_scores",
                         "detection_classes")


class NmsOutputs(object):
    """The NMS outputs of an engine: ``tensors`` to read, ``keep_top_k``, and ``rows()``
    turning the read bytes into NMS_TRT rows (flat floats) and the keep count."""

    def __init__(self, kind, tensors, keep_top_k):
        self.kind = kind
        self.tensors = tensors
        self.keep_top_k = keep_top_k

    def rows(self, raw):
        """(values, keep count) from {tensor name: bytes}."""
        if self.kind == "NMS_TRT":
            detections, count = self.tensors
            values = _floats(raw[detections.name], detections.dtype_name)
            return values, array.array("i", raw[count.name])[0]
        count_t, boxes_t, scores_t, classes_t = self.tensors
        count = array.array("i", raw[count_t.name])[0]
        boxes = _floats(raw[boxes_t.name], boxes_t.dtype_name)
        scores = _floats(raw[scores_t.name], scores_t.dtype_name)
        classes = array.array("i", raw[classes_t.name])
        values = array.array("f")
        for index in range(self.keep_top_k):
            ymin, xmin, ymax, xmax = boxes[index * 4:(index + 1) * 4]
            values.extend([0.0, float(classes[index]), scores[index], xmin, ymin, xmax, ymax])
        return values, count


def _floats(raw, dtype_name):
    return array.array("f", raw) if dtype_name == "FLOAT" else _half_to_float(raw)


def find_outputs(tensors):
    """The engine's NmsOutputs (NMS_TRT or EfficientNMS_TRT layout)."""
    outputs = [tensor for tensor in tensors if not tensor.is_input]
    by_name = dict((tensor.name, tensor) for tensor in outputs)
    if all(name in by_name for name in EFFICIENT_NMS_OUTPUTS):
        found = [by_name[name] for name in EFFICIENT_NMS_OUTPUTS]
        if [t.dtype_name for t in found][::3] == ["INT32", "INT32"] and \
                found[1].shape and found[1].shape[-1] == 4:
            return NmsOutputs("EfficientNMS_TRT", found, int(found[1].shape[-2]))
    detections = [t for t in outputs if t.dtype_name in ("FLOAT", "HALF")
                  and t.shape and t.shape[-1] == DETECTION_FIELDS]
    counts = [t for t in outputs if t.dtype_name == "INT32"]
    if len(detections) != 1 or len(counts) != 1:
        raise UserError(
            "the engine's outputs {} are not those of an SSD NMS engine (NMS_TRT: one float "
            "output [..., keepTopK, 7] and one int32 keep count; EfficientNMS_TRT: {}); "
            "verify only checks SSD engines".format(
                ", ".join("{}{}:{}".format(t.name, list(t.shape), t.dtype_name)
                          for t in outputs), ", ".join(EFFICIENT_NMS_OUTPUTS)))
    return NmsOutputs("NMS_TRT", [detections[0], counts[0]], int(detections[0].shape[-2]))


def check_detections(values, keep_count, keep_top_k):
    """Problems (strings) with NMS output ``values`` (flat floats); [] when sane."""
    problems = []
    rows = len(values) // DETECTION_FIELDS
    if not 0 <= keep_count <= min(keep_top_k, rows):
        problems.append("keep count {} outside 0..{} (keepTopK {})".format(
            keep_count, min(keep_top_k, rows), keep_top_k))
        return problems
    for index in range(keep_count):
        row = values[index * DETECTION_FIELDS:(index + 1) * DETECTION_FIELDS]
        _image_id, _label, confidence, xmin, ymin, xmax, ymax = row
        where = "detection {}".format(index)
        if not all(math.isfinite(value) for value in row):
            problems.append("{}: non-finite value in {}".format(where, list(row)))
            continue
        if not -TOLERANCE <= confidence <= 1 + TOLERANCE:
            problems.append("{}: confidence {} outside [0, 1]".format(where, confidence))
        coords = (xmin, ymin, xmax, ymax)
        if not all(-TOLERANCE <= value <= 1 + TOLERANCE for value in coords):
            problems.append("{}: box {} not normalized to [0, 1]".format(where, list(coords)))
        if xmin > xmax + TOLERANCE or ymin > ymax + TOLERANCE:
            problems.append("{}: box {} has min > max".format(where, list(coords)))
    return problems


def summarize_detections(values, keep_count):
    shown = []
    for index in range(min(keep_count, SHOWN_DETECTIONS)):
        row = values[index * DETECTION_FIELDS:(index + 1) * DETECTION_FIELDS]
        shown.append({"label": int(row[1]), "confidence": round(row[2], 4),
                      "box": [round(value, 4) for value in row[3:7]]})
    return shown


# -- the run ------------------------------------------------------------------------

def median(values):
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2.0


def verify_engine(engine_path, adapter, cuda, *, image_path=None, runs=10, keep_top_k=None,
                  progress=None):
    """Deserialize, run ``runs`` timed times (after one warm-up), check the output.

    Returns the result dict (``ok``, ``problems``, latency figures, detections).
    Raises TensorRTFailure / CudaError when TensorRT or CUDA refuse.
    """
    if runs < 1:
        raise UserError("--runs must be at least 1, not {}".format(runs))
    with open(engine_path, "rb") as handle:
        plan = handle.read()
    engine = adapter.deserialize(plan)
    tensors = adapter.tensors(engine)
    inputs = [tensor for tensor in tensors if tensor.is_input]
    if len(inputs) != 1 or len(inputs[0].shape) < 3 or inputs[0].dtype_name != "FLOAT":
        raise UserError("the engine's inputs {} are not one float CHW image; verify only "
                        "checks SSD engines".format([(t.name, t.shape) for t in inputs]))
    channels, height, width = (int(dim) for dim in inputs[0].shape[-3:])
    nms = find_outputs(tensors)
    if keep_top_k is None:
        keep_top_k = nms.keep_top_k

    image = load_image(image_path) if image_path else synthetic_image(width, height)
    chw = to_chw_input(image, channels, height, width)
    if progress:
        progress("running {} {} times on {} ({}x{}x{} input)".format(
            os.path.basename(engine_path), runs, image_path or "a synthetic pattern",
            channels, height, width))

    context = adapter.create_context(engine)
    stream = cuda.stream_create()
    latencies = []
    try:
        with DeviceBuffers(cuda, [tensor.nbytes for tensor in tensors]) as pointers:
            by_name = dict((tensor.name, pointer) for tensor, pointer in zip(tensors, pointers))
            for run_index in range(runs + 1):
                started = time.perf_counter()
                cuda.to_device(by_name[inputs[0].name], chw)
                adapter.execute(engine, context, tensors, pointers, stream)
                cuda.stream_synchronize(stream)
                raw = dict((tensor.name, cuda.from_device(by_name[tensor.name], tensor.nbytes))
                           for tensor in nms.tensors)
                if run_index:  # the first run warms up (lazy allocations, clocks)
                    latencies.append((time.perf_counter() - started) * 1000.0)
    finally:
        cuda.stream_destroy(stream)

    values, keep_count = nms.rows(raw)
    problems = check_detections(values, keep_count, keep_top_k)
    median_ms = median(latencies)
    return {
        "ok": not problems,
        "problems": problems,
        "engine": os.path.abspath(engine_path),
        "image": os.path.abspath(image_path) if image_path else "synthetic",
        "runs": runs,
        "median_ms": round(median_ms, 3),
        "min_ms": round(min(latencies), 3),
        "max_ms": round(max(latencies), 3),
        "fps": round(1000.0 / median_ms, 2) if median_ms > 0 else None,
        "keep_count": keep_count,
        "keep_top_k": keep_top_k,
        "nms_outputs": nms.kind,
        # What an execution context takes on the device (device_memory_size_v2 from 10.1).
        "device_memory_bytes": adapter.device_memory_bytes(engine),
        "detections": summarize_detections(values, keep_count) if not problems else [],
        "tensorrt_version": adapter.version_text,
        "cuda_runtime": cuda.runtime_version(),
        "verified_utc": utc_now(),
    }


def _half_to_float(raw):
    return array.array("f", struct.unpack("={}e".format(len(raw) // 2), raw))
