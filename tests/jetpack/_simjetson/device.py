"""The simulated device: description (device.json), current fault, timing helpers."""

import json
import os
import time

DEVICE_ENV = "SIMJETSON_DEVICE"
FAULT_ENV = "SIMJETSON_FAULT"
SLOW_FACTOR_ENV = "SIMJETSON_SLOW_FACTOR"
DEFAULT_DEVICE_FILE = "/etc/simjetson/device.json"
DEFAULT_FAULT_FILE = "/etc/simjetson/fault"
FAULTS = ("ok", "slow", "oom", "disk-full", "drop-mid-build", "unreachable", "hang",
          "freeze-mid-build")
REQUIRED_KEYS = (
    "name", "profile", "module", "soc", "compute_capability", "memory_mib", "dla_cores",
    "l4t", "tensorrt_version", "build_seconds", "infer_ms",
)
DEFAULT_SLOW_FACTOR = 10.0


class DeviceDescriptionError(RuntimeError):
    """device.json is missing or malformed (a test-setup error, not a TensorRT failure)."""


def device_file():
    return os.environ.get(DEVICE_ENV) or DEFAULT_DEVICE_FILE


def fault_file():
    return os.environ.get(FAULT_ENV) or DEFAULT_FAULT_FILE


def load_device():
    """Read and validate the device description; every problem names the file and key."""
    path = device_file()
    try:
        with open(path) as handle:
            data = json.load(handle)
    except FileNotFoundError:
        raise DeviceDescriptionError(
            "{}: not found. Simulated JetPack libraries need a device description; "
            "set {} to a device.json or run inside a simulated device.".format(path, DEVICE_ENV)
        ) from None
    except ValueError as exc:
        raise DeviceDescriptionError("{}: not valid JSON ({})".format(path, exc)) from None
    if not isinstance(data, dict):
        raise DeviceDescriptionError("{}: top level must be a JSON object".format(path))
    missing = [key for key in REQUIRED_KEYS if key not in data]
    if missing:
        raise DeviceDescriptionError(
            "{}: missing key(s) {}; required: {}".format(path, ", ".join(missing),
                                                         ", ".join(REQUIRED_KEYS))
        )
    for key in ("memory_mib", "dla_cores"):
        if not isinstance(data[key], int) or data[key] < 0:
            raise DeviceDescriptionError(
                "{}: key {!r} must be a non-negative integer, got {!r}".format(path, key, data[key])
            )
    for key in ("build_seconds", "infer_ms"):
        if not isinstance(data[key], (int, float)) or data[key] < 0:
            raise DeviceDescriptionError(
                "{}: key {!r} must be a non-negative number, got {!r}".format(path, key, data[key])
            )
    return data


def current_fault():
    """The fault word, read fresh on every call (the fleet flips it while builds run)."""
    path = fault_file()
    try:
        with open(path) as handle:
            word = handle.read().strip() or "ok"
    except FileNotFoundError:
        return "ok"
    if word not in FAULTS:
        raise DeviceDescriptionError(
            "{}: unknown fault {!r}; expected one of {}".format(path, word, ", ".join(FAULTS))
        )
    return word


def slow_factor():
    """How much slower things get under the slow fault (SIMJETSON_SLOW_FACTOR, default 10)."""
    if current_fault() != "slow":
        return 1.0
    raw = os.environ.get(SLOW_FACTOR_ENV)
    if not raw:
        return DEFAULT_SLOW_FACTOR
    try:
        return float(raw)
    except ValueError:
        raise DeviceDescriptionError(
            "{}={!r} is not a number".format(SLOW_FACTOR_ENV, raw)) from None


def sleep_in_steps(seconds, step=0.1):
    """Sleep in small steps so a SIGTERM/SIGKILL lands promptly, like a busy build would."""
    deadline = time.monotonic() + seconds
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return
        time.sleep(min(step, left))


def build_started_marker():
    """Where a drop-mid-build build announces itself (next to device.json)."""
    return os.path.join(os.path.dirname(os.path.abspath(device_file())), "build-started")


def builds_log():
    """Where every finished build leaves a line (next to device.json). The fleet benchmark
    counts builds from it: engine files count no better, since a push writes them too."""
    return os.path.join(os.path.dirname(os.path.abspath(device_file())), "builds.log")


def record_build():
    with open(builds_log(), "a") as handle:
        handle.write("SIMULATED build finished time={:.3f} pid={}\n".format(
            time.time(), os.getpid()))


def announce_build_start():
    path = build_started_marker()
    tmp = path + ".tmp"
    with open(tmp, "w") as handle:
        handle.write("SIMULATED build started\npid={}\ntime={:.3f}\n".format(
            os.getpid(), time.time()))
    os.replace(tmp, path)
