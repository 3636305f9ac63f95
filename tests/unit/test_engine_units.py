"""Unit tests of the engine-side pieces that need no TensorRT: versions, log parsing,
manifest publishing, timing-cache locking, CUDA runtime error handling, verify helpers."""

import array
import hashlib
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from builder import manifest
from builder.errors import UserError
from builder.platform.detect import api_generation
from builder.trt import log as trt_log
from builder.trt.adapter import (
    BuildOptions,
    TrtAdapter,
    network_precision,
    parse_version,
    strongly_typed_only,
)
from builder.trt.build import (
    DEFAULT_PLUGIN_LIBRARY,
    TimingCacheFile,
    check_options_for_platform,
)
from builder.verify import run as verify
from builder.verify.cuda_runtime import CudaRuntime, DeviceBuffers, find_libcudart

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "jetpack"))
import layout  # noqa: E402  (tests/jetpack is not a package)

# -- versions -----------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("5.1.6", (5, 1, 6, 0)),
    ("7.1.3.0", (7, 1, 3, 0)),
    ("8.2.1.8", (8, 2, 1, 8)),
    ("8.6.1", (8, 6, 1, 0)),
    ("10.3.0", (10, 3, 0, 0)),
    ("8", (8, 0, 0, 0)),
])
def test_parse_version_numbers(text, expected):
    assert parse_version(text) == expected


def test_version_10_is_newer_than_7_unlike_string_compare():
    newer, older = "10.3.0", "7.1.3"
    assert newer < older  # the trap of comparing version strings
    assert parse_version(newer) > parse_version(older)
    assert api_generation(parse_version("10.3.0")) == "10"


@pytest.mark.parametrize("text, generation", [
    ("5.1.6", "5/6"), ("6.0.1", "5/6"), ("7.1.3", "7"), ("8.0.1.6", "8.0-8.3"),
    ("8.2.1.8", "8.0-8.3"), ("8.4.1", "8.4-8.6"), ("8.5.2.2", "8.4-8.6"), ("8.6.2", "8.4-8.6"),
    ("10.3.0", "10"), ("10.16.2", "10"), ("11.4.1", "11"),
])
def test_api_generation(text, generation):
    assert api_generation(parse_version(text)) == generation


# -- TensorRT 11: strongly typed (fakes of the bindings: only the attributes read) ----------

class _Flags(object):
    GPU_FALLBACK = 3


class _WeakFlags(_Flags):
    FP16 = 0


@pytest.mark.parametrize(("bindings", "strong"), [
    (SimpleNamespace(BuilderFlag=_Flags), True),       # 11: no precision flags
    (SimpleNamespace(BuilderFlag=_WeakFlags), False),  # 6 to 10
    (SimpleNamespace(), False),                        # 5: no BuilderFlag, fp16_mode
])
def test_strongly_typed_is_detected_by_the_missing_flags(bindings, strong):
    assert strongly_typed_only(bindings) is strong


class _Engine10(object):
    """device_memory_size warns from 10.1: never touched when v2 is there."""
    device_memory_size_v2 = 4096

    @property
    def device_memory_size(self):
        raise AssertionError("device_memory_size read where device_memory_size_v2 exists")


def _adapter(version):
    adapter = TrtAdapter.__new__(TrtAdapter)  # no bindings needed for these methods
    adapter.version_text, adapter.version = version, parse_version(version)
    return adapter


@pytest.mark.parametrize(("engine", "expected"), [
    (_Engine10(), 4096), (SimpleNamespace(device_memory_size=1024), 1024),
    (SimpleNamespace(), None),
])
def test_device_memory_through_the_api_there_is(engine, expected):
    assert _adapter("10.3.0").device_memory_bytes(engine) == expected


def test_fp16_asked_of_an_fp32_onnx_on_a_strongly_typed_tensorrt_is_refused():
    with pytest.raises(UserError) as caught:
        _adapter("11.4.1").check_onnx_precision("fp32", BuildOptions("fp16"), "/w/m.onnx")
    assert str(caught.value).startswith(
        "TensorRT 11.4.1 is strongly typed: fp16 needs an fp16 ONNX (float16 tensors), and "
        "/w/m.onnx has none (an fp32 export), so the engine would be fp32.")
    with pytest.raises(UserError, match="fp32 needs an fp32 ONNX"):
        _adapter("11.4.1").check_onnx_precision("fp16", BuildOptions("fp32"), "/w/m.onnx")
    _adapter("11.4.1").check_onnx_precision("fp16", BuildOptions("fp16"), "/w/m.onnx")


def _tensor(dtype):
    return SimpleNamespace(dtype="DataType." + dtype)


def _network(*layer_types):
    layers = [SimpleNamespace(num_outputs=1, get_output=lambda i, t=t: _tensor(t))
              for t in layer_types]
    return SimpleNamespace(num_inputs=1, get_input=lambda i: _tensor("FLOAT"),
                           num_layers=len(layers), get_layer=lambda i: layers[i])


def test_network_precision_reads_the_tensor_types():
    assert network_precision(_network("FLOAT", "INT32")) == "fp32"
    assert network_precision(_network("FLOAT", "HALF", "FLOAT")) == "fp16"  # mixed


def test_unparsable_version_is_a_user_error():
    with pytest.raises(UserError, match="##TENSORRT_PYTHON_VERSION##"):
        parse_version("##TENSORRT_PYTHON_VERSION##")


# -- log lines ------------------------------------------------------------------------

@pytest.mark.parametrize("line, severity, message", [
    ("[TensorRT] ERROR: INVALID_CONFIG: The engine plan file is generated on an incompatible "
     "device, expecting compute 7.2 got compute 5.3, please rebuild.", "ERROR",
     "INVALID_CONFIG: The engine plan file is generated on an incompatible device, expecting "
     "compute 7.2 got compute 5.3, please rebuild."),
    ("[TensorRT] INTERNAL ERROR: Assertion failed", "INTERNAL_ERROR", "Assertion failed"),
    ("[TensorRT] WARNING: Half2 support requested", "WARNING", "Half2 support requested"),
    ("[05/02/2022-15:17:45] [TRT] [E] 6: The engine plan file is not compatible",
     "ERROR", "6: The engine plan file is not compatible"),
    ("[05/02/2022-15:17:45] [TRT] [F] fatal", "INTERNAL_ERROR", "fatal"),
    ("[05/02/2022-15:17:45] [TRT] [I] [MemUsageChange] Init CUDA", "INFO",
     "[MemUsageChange] Init CUDA"),
    ("UFFParser: Validator error: concat_box_loc", trt_log.UNTAGGED,
     "UFFParser: Validator error: concat_box_loc"),
])
def test_parse_line(line, severity, message):
    record = trt_log.parse_line(line + "\n")
    assert (record.severity, record.message) == (severity, message)


def test_fd_capture_collects_c_level_and_python_writes(capfd):
    captured = []
    with trt_log._captured_fds(captured):
        os.write(2, b"[TensorRT] ERROR: written on fd 2\n")
        os.write(1, b"[TensorRT] WARNING: written on fd 1\n")
        sys.stderr.write("[TensorRT] INFO: through sys.stderr\n")
    text = "".join(captured)
    assert "written on fd 2" in text
    assert "written on fd 1" in text
    assert "through sys.stderr" in text
    out, err = capfd.readouterr()
    assert "written on fd" not in out + err  # nothing leaked past the capture


# -- manifest publishing --------------------------------------------------------------

def _facts(**extra):
    facts = {"model": "m", "graph_sha256": "0" * 64}
    facts.update(extra)
    return facts


def test_publish_engine_writes_engine_then_manifest(tmp_path):
    plan = b"engine bytes"
    data = manifest.new_manifest("TRT_m.bin", plan, _facts())
    manifest.publish_engine(str(tmp_path), "TRT_m.bin", plan, data)
    assert (tmp_path / "TRT_m.bin").read_bytes() == plan
    written = json.loads((tmp_path / "manifest.json").read_text())
    assert written["engine_sha256"] == hashlib.sha256(plan).hexdigest()
    assert written["engine_size"] == len(plan)
    assert written["created_utc"].endswith("Z")
    assert sorted(os.listdir(tmp_path)) == ["TRT_m.bin", "manifest.json"]


def test_published_files_follow_the_umask(tmp_path):
    previous = os.umask(0o022)
    try:
        manifest.publish_engine(str(tmp_path), "TRT_m.bin", b"plan",
                                manifest.new_manifest("TRT_m.bin", b"plan", _facts()))
    finally:
        os.umask(previous)
    for name in ("TRT_m.bin", "manifest.json"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o644, name


def test_killed_before_rename_keeps_previous_engine_and_manifest(tmp_path, monkeypatch):
    manifest.publish_engine(str(tmp_path), "TRT_m.bin", b"old",
                            manifest.new_manifest("TRT_m.bin", b"old", _facts()))

    def killed(*_args):
        raise KeyboardInterrupt  # stands for a kill while the new engine is staged

    monkeypatch.setattr(manifest.os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        manifest.publish_engine(str(tmp_path), "TRT_m.bin", b"new",
                                manifest.new_manifest("TRT_m.bin", b"new", _facts()))
    monkeypatch.undo()
    assert (tmp_path / "TRT_m.bin").read_bytes() == b"old"
    assert not [name for name in os.listdir(tmp_path) if name.startswith(".")]


def test_killed_before_manifest_leaves_no_manifest_for_the_new_engine(tmp_path, monkeypatch):
    manifest.publish_engine(str(tmp_path), "TRT_m.bin", b"old",
                            manifest.new_manifest("TRT_m.bin", b"old", _facts()))

    def killed(*_args):
        raise KeyboardInterrupt

    monkeypatch.setattr(manifest.atomic, "write_json", killed)
    with pytest.raises(KeyboardInterrupt):
        manifest.publish_engine(str(tmp_path), "TRT_m.bin", b"new",
                                manifest.new_manifest("TRT_m.bin", b"new", _facts()))
    # The old manifest described the old engine: it must be gone, not left lying.
    assert (tmp_path / "TRT_m.bin").read_bytes() == b"new"
    assert not (tmp_path / "manifest.json").exists()


def test_facts_cannot_override_engine_fields():
    with pytest.raises(ValueError, match="engine_sha256"):
        manifest.new_manifest("TRT_m.bin", b"x", {"engine_sha256": "forged"})


def test_record_verify_updates_manifest(tmp_path):
    manifest.publish_engine(str(tmp_path), "TRT_m.bin", b"plan",
                            manifest.new_manifest("TRT_m.bin", b"plan", _facts()))
    path = manifest.record_verify(str(tmp_path / "TRT_m.bin"), {"ok": True, "fps": 12.5})
    assert json.loads(Path(path).read_text())["verify"] == {"ok": True, "fps": 12.5}


def test_record_verify_refuses_a_manifest_of_other_bytes(tmp_path):
    manifest.publish_engine(str(tmp_path), "TRT_m.bin", b"plan",
                            manifest.new_manifest("TRT_m.bin", b"plan", _facts()))
    (tmp_path / "TRT_m.bin").write_bytes(b"replaced")
    with pytest.raises(UserError, match="does not match"):
        manifest.record_verify(str(tmp_path / "TRT_m.bin"), {"ok": True})
    assert "verify" not in json.loads((tmp_path / "manifest.json").read_text())


def test_record_verify_without_manifest_is_a_no_op(tmp_path):
    (tmp_path / "TRT_m.bin").write_bytes(b"plan")
    assert manifest.record_verify(str(tmp_path / "TRT_m.bin"), {"ok": True}) is None
    assert os.listdir(tmp_path) == ["TRT_m.bin"]


def test_require_free_space_names_directory_and_sizes(tmp_path):
    with pytest.raises(UserError) as caught:
        manifest.require_free_space(str(tmp_path), 1 << 60, "TRT_m.bin")
    message = str(caught.value)
    assert str(tmp_path) in message and "MiB free" in message and "--out" in message
    assert manifest.require_free_space(str(tmp_path), 1, "x") > 0


# -- platform checks -----------------------------------------------------------------

def test_dla_refused_on_a_device_without_dla():
    facts = {"module": "jetson-nano", "dla_cores": 0, "memory_mib": 3964}
    with pytest.raises(UserError, match="jetson-nano has no DLA"):
        check_options_for_platform(BuildOptions(dla_core=0), facts)


def test_dla_core_number_checked_against_the_device():
    facts = {"module": "jetson-agx-xavier", "dla_cores": 2, "memory_mib": 31002}
    check_options_for_platform(BuildOptions(dla_core=1), facts)
    with pytest.raises(UserError, match="numbered 0 to 1"):
        check_options_for_platform(BuildOptions(dla_core=2), facts)


def test_workspace_beyond_memory_refused():
    facts = {"module": "jetson-nano", "dla_cores": 0, "memory_mib": 3964}
    with pytest.raises(UserError, match="--workspace-mib 4096 .*3964 MiB"):
        check_options_for_platform(BuildOptions(workspace_mib=4096), facts)


@pytest.mark.parametrize("kwargs, text", [
    ({"precision": "int8"}, "--precision"),
    ({"workspace_mib": 0}, "--workspace-mib"),
    ({"max_batch": 0}, "--max-batch"),
    ({"dla_core": -1}, "--dla-core"),
])
def test_bad_build_options(kwargs, text):
    with pytest.raises(UserError, match=text):
        BuildOptions(**kwargs)


def test_default_plugin_library_is_where_simulated_devices_have_it():
    assert DEFAULT_PLUGIN_LIBRARY == layout.FLATTENCONCAT_DEVICE_PATH


# -- timing cache file ---------------------------------------------------------------

def test_timing_cache_updates_do_not_lose_each_other(tmp_path):
    cache = TimingCacheFile(str(tmp_path / "timing.cache"))
    assert cache.read() == b""

    def merge_slowly(tag):
        def merge(existing):
            time.sleep(0.05)  # widen the read-modify-write window
            return existing + tag
        return merge

    threads = [threading.Thread(target=cache.update, args=(merge_slowly(bytes([65 + i])),))
               for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(cache.read()) == sorted(b"ABCD")


def test_timing_cache_in_missing_directory(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        TimingCacheFile(str(tmp_path / "nope" / "timing.cache"))


# -- CUDA runtime over the SIMULATED libcudart ----------------------------------------

@pytest.fixture(scope="module")
def cudart(tmp_path_factory):
    return layout.build_cudart(tmp_path_factory.mktemp("cudart"), "10.2")


def test_cuda_roundtrip_and_version(cudart, tmp_path, monkeypatch):
    device = tmp_path / "device.json"
    device.write_text(json.dumps({"memory_mib": 64}))
    monkeypatch.setenv("SIMJETSON_DEVICE", str(device))
    cuda = CudaRuntime(str(cudart))
    assert cuda.runtime_version() == "10.2"
    data = array.array("f", [1.5, -2.0, 3.25])
    with DeviceBuffers(cuda, [len(data) * 4]) as (pointer,):
        cuda.to_device(pointer, data)
        assert array.array("f", cuda.from_device(pointer, len(data) * 4)) == data
    stream = cuda.stream_create()
    cuda.stream_synchronize(stream)
    cuda.stream_destroy(stream)


def test_cuda_errors_carry_code_and_text(cudart, tmp_path):
    script = (
        "import sys\n"
        "from builder.verify.cuda_runtime import CudaRuntime, CudaError\n"
        "cuda = CudaRuntime(sys.argv[1])\n"
        "try:\n"
        "    cuda.malloc(256 * 1024 * 1024)\n"
        "except CudaError as error:\n"
        "    print('malloc:', error)\n"
        "try:\n"
        "    cuda.free(12345)\n"
        "except CudaError as error:\n"
        "    print('free:', error)\n"
    )
    device = tmp_path / "device.json"
    device.write_text(json.dumps({"memory_mib": 128}))
    env = dict(os.environ, SIMJETSON_DEVICE=str(device), PYTHONPATH=str(REPO))
    result = subprocess.run([sys.executable, "-c", script, str(cudart)], env=env,
                            capture_output=True, text=True, check=True)
    assert "malloc: cudaMalloc(268435456 bytes) failed: cudaError 2 (out of memory)" \
        in result.stdout
    assert "free: cudaFree failed: cudaError 17 (invalid device pointer)" in result.stdout


def test_missing_cudart_path_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="--cudart"):
        find_libcudart(str(tmp_path / "libcudart.so"))


def test_device_buffers_freed_after_a_failed_allocation(cudart, tmp_path):
    script = (
        "import sys\n"
        "from builder.verify.cuda_runtime import CudaRuntime, CudaError, DeviceBuffers\n"
        "cuda = CudaRuntime(sys.argv[1])\n"
        "try:\n"
        "    with DeviceBuffers(cuda, [60 << 20, 60 << 20]):\n"
        "        pass\n"
        "except CudaError as error:\n"
        "    print('failed:', error)\n"
        "with DeviceBuffers(cuda, [60 << 20]):\n"
        "    print('first buffer was released')\n"
    )
    device = tmp_path / "device.json"
    device.write_text(json.dumps({"memory_mib": 100}))
    env = dict(os.environ, SIMJETSON_DEVICE=str(device), PYTHONPATH=str(REPO))
    result = subprocess.run([sys.executable, "-c", script, str(cudart)], env=env,
                            capture_output=True, text=True, check=True)
    assert "failed: cudaMalloc" in result.stdout
    assert "first buffer was released" in result.stdout


# -- verify helpers ------------------------------------------------------------------

def test_read_ppm_with_comment_and_chw_scaling(tmp_path):
    path = tmp_path / "img.ppm"
    pixels = bytes([255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255])
    path.write_bytes(b"P6\n# a comment\n2 2\n255\n" + pixels)
    width, height, channels, samples = verify.read_netpbm(str(path))
    assert (width, height, channels) == (2, 2, 3)
    chw = verify.to_chw_input((width, height, channels, samples), 3, 2, 2)
    assert list(chw[0:4]) == [1.0, -1.0, -1.0, 1.0]  # red plane
    assert list(chw[8:12]) == [-1.0, -1.0, 1.0, 1.0]  # blue plane


def test_read_pgm_16_bit(tmp_path):
    path = tmp_path / "img.pgm"
    path.write_bytes(b"P5 1 2 65535\n" + bytes([0xFF, 0xFF, 0x00, 0x00]))
    _w, _h, channels, samples = verify.read_netpbm(str(path))
    assert channels == 1 and samples == [1.0, 0.0]


def test_unreadable_image_is_a_user_error(tmp_path):
    path = tmp_path / "img.jpg"
    path.write_bytes(b"\xff\xd8 not really a jpeg")
    with pytest.raises(UserError, match="img.jpg"):
        verify.load_image(str(path))


def test_synthetic_image_resized_into_range():
    chw = verify.to_chw_input(verify.synthetic_image(30, 20), 3, 300, 300)
    assert len(chw) == 3 * 300 * 300
    assert min(chw) >= -1.0 and max(chw) <= 1.0


def _row(label=1, confidence=0.9, box=(0.1, 0.2, 0.5, 0.6)):
    return [0.0, float(label), confidence] + list(box)


def test_sane_detections_pass():
    values = _row() + _row(2, 0.5) + [0.0] * 7
    assert verify.check_detections(values, 2, 3) == []


@pytest.mark.parametrize("values, keep, keep_top_k, problem", [
    (_row() * 2, 3, 2, "keep count 3 outside 0..2"),
    (_row(confidence=1.7), 1, 1, "confidence 1.7"),
    (_row(confidence=float("nan")), 1, 1, "non-finite"),
    (_row(box=(0.1, 0.2, 1.5, 0.6)), 1, 1, "not normalized"),
    (_row(box=(0.6, 0.2, 0.5, 0.6)), 1, 1, "min > max"),
])
def test_insane_detections_are_named(values, keep, keep_top_k, problem):
    problems = verify.check_detections(values, keep, keep_top_k)
    assert problems and problem in problems[0]


def test_median():
    assert verify.median([3.0, 1.0, 2.0]) == 2.0
    assert verify.median([4.0, 1.0, 2.0, 3.0]) == 2.5
