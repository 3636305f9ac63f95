"""ITimingCache of the doubles follows NvInfer.h's rules (docs/reference/tensorrt-python-api.yaml,
ITimingCache.combine / IBuilderConfig.set_timing_cache 'rules'): combine only caches of the
same TensorRT version, another device's only with ignore_mismatch, conflicting entries keep
this cache's own; no timing cache before 8.0. Never a faster build: the doubles record."""

import base64
import json

import pytest
from jetpack_harness import XAVIER, last_json

SERIALIZE_EMPTY = r"""
import base64, json, tensorrt as trt
config = trt.Builder(trt.Logger(trt.Logger.WARNING)).create_builder_config()
blob = bytes(config.create_timing_cache(b"").serialize())
print(json.dumps(base64.b64encode(blob).decode()))
"""

COMBINE = r"""
import base64, json, sys, tensorrt as trt
given = json.loads(sys.stdin.read())
config = trt.Builder(trt.Logger(trt.Logger.WARNING)).create_builder_config()

def cache(name):
    return config.create_timing_cache(base64.b64decode(given[name]))

def entries(timing_cache):
    return json.loads(bytes(timing_cache.serialize()).split(b"\n", 1)[1])

own = cache("own")
verdict = {
    "same_platform": own.combine(cache("same_platform"), False),
    "other_device": own.combine(cache("other_device"), False),
    "other_device_ignoring_mismatch": own.combine(cache("other_device"), True),
    "other_tensorrt_ignoring_mismatch": own.combine(cache("other_tensorrt"), True),
    "set_other_device": config.set_timing_cache(cache("other_device"), False),
    "set_other_device_ignoring_mismatch": config.set_timing_cache(cache("other_device"), True),
    "set_own": config.set_timing_cache(own, False),
    "damaged": config.create_timing_cache(b"\x00 not a cache") is None,
}
verdict["entries"] = entries(own)
print(json.dumps(verdict))
"""


def serialized(gen, version, **device):
    return last_json(gen.run(SERIALIZE_EMPTY, version, **device))


def with_entries(blob_b64, entries):
    """A serialized cache of the doubles' format with ``entries`` (its header kept)."""
    header = base64.b64decode(blob_b64).split(b"\n", 1)[0]
    return base64.b64encode(header + b"\n" + json.dumps(entries).encode()).decode()


def test_combine_and_set_follow_the_header_rules(gen):
    nano = serialized(gen, "8.2.1.8")
    caches = {"own": with_entries(nano, {"conv1": "own", "conv2": "own"}),
              "same_platform": with_entries(nano, {"conv2": "theirs", "conv3": "theirs"}),
              "other_device": with_entries(serialized(
                  gen, "8.2.1.8", **{k: XAVIER[k] for k in ("module", "compute_capability")}),
                  {"conv4": "xavier"}),
              "other_tensorrt": with_entries(serialized(gen, "8.5.2.2"), {"conv5": "trt85"})}
    verdict = last_json(gen.run(COMBINE, "8.2.1.8", input=json.dumps(caches)))
    assert verdict["same_platform"] is True
    assert verdict["other_device"] is False
    assert verdict["other_device_ignoring_mismatch"] is True
    assert verdict["other_tensorrt_ignoring_mismatch"] is False  # the exact same version only
    assert verdict["set_other_device"] is False
    assert verdict["set_other_device_ignoring_mismatch"] is True
    assert verdict["set_own"] is True and verdict["damaged"] is True
    assert verdict["entries"] == {"conv1": "own", "conv2": "own", "conv3": "theirs",
                                  "conv4": "xavier"}


@pytest.mark.parametrize("version", ["5.1.6", "6.0.1", "7.1.3"])
def test_no_timing_cache_before_8(gen, version):
    probe = r"""
import json, tensorrt as trt
builder = trt.Builder(trt.Logger(trt.Logger.WARNING))
config = builder.create_builder_config() if hasattr(builder, "create_builder_config") else None
print(json.dumps({"create": hasattr(config, "create_timing_cache"),
                  "class": hasattr(trt, "ITimingCache")}))
"""
    assert last_json(gen.run(probe, version)) == {"create": False, "class": False}

