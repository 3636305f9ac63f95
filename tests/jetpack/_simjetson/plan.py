"""SIMULATED engine plans: a marker line, a JSON header line, a deterministic payload."""

import hashlib
import json

MAGIC = b"SIMULATED TensorRT engine plan"
FORMAT = "simjetson-plan/1"
_OVERHEAD = 64 * 1024  # kernels/tactics a real plan carries on top of the weights


def payload_size(weights_nbytes, precision):
    """FP16 halves and INT8 quarters the weights, like real plans of the same network."""
    divisor = {"fp32": 1, "fp16": 2, "int8": 4}[precision]
    return _OVERHEAD + weights_nbytes // divisor


def serialize(header):
    first = "{} | module={} | compute={} | tensorrt={}\n".format(
        MAGIC.decode(), header["module"], header["compute_capability"],
        header["tensorrt_version"]).encode()
    body = json.dumps(header, sort_keys=True).encode() + b"\n"
    size = payload_size(header["weights_nbytes"], header["precision"])
    block = b"".join(hashlib.sha256(body + bytes([i])).digest() for i in range(128))
    payload = block * (size // len(block)) + block[: size % len(block)]
    return first + body + payload


class NotAPlan(ValueError):
    pass


def parse_header(data):
    data = bytes(data)
    if not data.startswith(MAGIC):
        raise NotAPlan("missing SIMULATED plan marker")
    lines = data.split(b"\n", 2)
    if len(lines) < 3:
        raise NotAPlan("truncated plan")
    try:
        header = json.loads(lines[1].decode())
    except ValueError:
        raise NotAPlan("corrupt plan header") from None
    if header.get("format") != FORMAT:
        raise NotAPlan("unknown plan format")
    expected = payload_size(header["weights_nbytes"], header["precision"])
    if len(lines[2]) != expected:
        raise NotAPlan("plan payload is {} bytes, header says {}".format(len(lines[2]), expected))
    return header
