"""Detect which Jetson this is and which JetPack components it runs.

Self-contained on purpose (stdlib + UserError only): the Ansible facts module reuses this
file through module_utils. Everything is read below a root directory, so tests (and the
simulated fleet) lay out files instead of needing a Jetson.

Sources, parsed by structure because real devices print variants of every line:
- ``etc/nv_tegra_release`` (L4T release), falling back to the ``nvidia-l4t-core`` package;
- the device tree (``proc/device-tree`` or ``sys/firmware/devicetree/base``): ``model``
  and ``compatible`` give the module and the SoC;
- ``var/lib/dpkg/status``: TensorRT, CUDA, cuDNN versions;
- ``proc/meminfo``: RAM.
"""

import os
import platform as _pyplatform
import re

from ..errors import UserError

# ---------------------------------------------------------------- reference tables

# SoC -> CUDA compute capability of its GPU. Thor (tegra264) is 11.0 in CUDA 13, the only
# CUDA its JetPack 7 releases ship (CUDA 12.x called the same GPU sm_101).
COMPUTE_CAPABILITY = {
    "tegra210": "5.3",
    "tegra186": "6.2",
    "tegra194": "7.2",
    "tegra234": "8.7",
    "tegra264": "11.0",
}

# SoC -> how long one SSD-class engine (conversion, TensorRT build, verify) is expected to take
# on it, in seconds, as a generous bound. A TensorRT build of a detector takes minutes on a
# Jetson: about 9.5 min for one engine on an Orin 16GB (roboflow/inference#2703); the older
# the GPU, the longer. The controller's default build deadline is BUILD_DEADLINE_FACTOR times
# this per model (engine_build_deadline_s overrides it).
EXPECTED_BUILD_S = {
    "tegra210": 1200,
    "tegra186": 900,
    "tegra194": 720,
    "tegra234": 600,
    "tegra264": 480,
}
BUILD_DEADLINE_FACTOR = 3


def default_build_deadline_s(platform_id):
    """Seconds one model's build may take on this platform before it counts as hung."""
    soc = MODULES.get(module_of_platform_id(platform_id) or "", (None, 0))[0]
    return BUILD_DEADLINE_FACTOR * EXPECTED_BUILD_S.get(soc, max(EXPECTED_BUILD_S.values()))


# fp16 arithmetic at full speed (CUDA C++ Programming Guide, "Arithmetic Instructions",
# 16-bit add/multiply throughput): compute capability 5.3 and later, except 6.1 (a token
# rate). Every Jetson SoC above has it.
FAST_FP16_FROM = (5, 3)
SLOW_FP16 = ((6, 1),)


def has_fast_fp16(compute_capability):
    """True / False for a compute capability text ('5.3'), None when it cannot be read."""
    numbers = version_tuple(compute_capability or "")
    if len(numbers) < 2:
        return None
    return numbers[:2] >= FAST_FP16_FROM and numbers[:2] not in SLOW_FP16


# Module slug -> (SoC, DLA cores). Orin NX depends on the SKU (see ORIN_NX_DLA_BY_SKU).
# Thor: T5000 (also the module of the AGX Thor developer kit) and T4000 have different GPUs,
# so they are different platforms; THOR_SKU_UNKNOWN is a Thor whose module SKU the device
# tree does not give. No Thor has a DLA.
MODULES = {
    "jetson-tx1": ("tegra210", 0),
    "jetson-nano": ("tegra210", 0),
    "jetson-tx2": ("tegra186", 0),
    "jetson-tx2-nx": ("tegra186", 0),
    "jetson-agx-xavier": ("tegra194", 2),
    "jetson-xavier-nx": ("tegra194", 2),
    "jetson-agx-orin": ("tegra234", 2),
    "jetson-orin-nx": ("tegra234", None),
    "jetson-orin-nano": ("tegra234", 0),
    "jetson-t5000": ("tegra264", 0),
    "jetson-t4000": ("tegra264", 0),
    "jetson-agx-thor": ("tegra264", 0),
}
THOR_SKU_UNKNOWN = "jetson-agx-thor"
ORIN_NX_DLA_BY_SKU = {"0000": 2, "0001": 1}  # Orin NX 16GB: 2 DLA, Orin NX 8GB: 1 DLA

# Board ids in the device tree ``compatible`` strings (nvidia,pNNNN-SSSS[+pNNNN-SSSS]).
# Module (compute board) ids identify the module on their own.
MODULE_BOARDS = {
    "p2180": "jetson-tx1",
    "p3448": "jetson-nano",
    "p3310": "jetson-tx2",
    "p3489": "jetson-tx2",  # TX2i / TX2 4GB
    "p3636": "jetson-tx2-nx",
    "p2888": "jetson-agx-xavier",
    "p3668": "jetson-xavier-nx",
    "p3701": "jetson-agx-orin",
    "p3767": None,  # Orin NX or Orin Nano: decided by the SKU (MODULES_BY_SKU)
    "p3834": None,  # Thor T5000 or T4000: decided by the SKU (MODULES_BY_SKU)
}
# Module boards shared by modules with different GPUs: module by SKU. An SKU not listed
# leaves the module to the model string (and, for a Thor, to SOC_ONLY_MODULES).
MODULES_BY_SKU = {
    "p3767": {
        "0000": "jetson-orin-nx",
        "0001": "jetson-orin-nx",
        "0003": "jetson-orin-nano",
        "0004": "jetson-orin-nano",
        "0005": "jetson-orin-nano",
    },
    "p3834": {
        "0008": "jetson-t5000",
        "0000": "jetson-t4000",
    },
}
# Carrier / developer kit ids that were only ever sold with one module family. Carriers
# shared by several modules (p3449, p3509, p3768; p4071 and p3971, which carry T5000 and
# T4000 alike) identify nothing and are not listed.
CARRIER_BOARDS = {
    "p2371": "jetson-tx1",
    "p2771": "jetson-tx2",
    "p2972": "jetson-agx-xavier",
    "p2822": "jetson-agx-xavier",
    "p3737": "jetson-agx-orin",
}

# Words in a device tree model string (lower-cased, punctuation as spaces) -> module.
# Most specific first. "agx" alone is resolved with the SoC (R32 Xavier said "Jetson-AGX").
# "Thor" alone does not say which module (T4000 boards use the developer kit's carrier).
MODEL_WORDS = (
    (("t5000",), "jetson-t5000"),
    (("t4000",), "jetson-t4000"),
    (("thor",), THOR_SKU_UNKNOWN),
    (("orin", "nano"), "jetson-orin-nano"),
    (("orin", "nx"), "jetson-orin-nx"),
    (("orin",), "jetson-agx-orin"),
    (("xavier", "nx"), "jetson-xavier-nx"),
    (("xavier",), "jetson-agx-xavier"),
    (("tx2", "nx"), "jetson-tx2-nx"),
    (("tx2",), "jetson-tx2"),
    (("tx1",), "jetson-tx1"),
    (("nano",), "jetson-nano"),
)
# Inventory kinds (a group name, or engine_expected_platform) -> the modules a device of that
# kind may report. The controller refuses a device whose module is not of its groups' kinds
# (controller/device.py platform_disagreement): a device cannot claim another platform's
# engines. A kind names one GPU, so that one module cannot pass for another: Xavier NX and
# AGX Xavier differ in SMs, T4000 and T5000 in GPU. "thor" is the developer kit's module.
INVENTORY_KINDS = {
    "tx1": ("jetson-tx1",),
    "nano": ("jetson-nano",),
    "tx2": ("jetson-tx2",),
    "tx2_nx": ("jetson-tx2-nx",),
    "xavier": ("jetson-agx-xavier",),
    "agx_xavier": ("jetson-agx-xavier",),
    "xavier_nx": ("jetson-xavier-nx",),
    "orin": ("jetson-agx-orin",),
    "agx_orin": ("jetson-agx-orin",),
    "orin_nx": ("jetson-orin-nx",),
    "orin_nano": ("jetson-orin-nano",),
    "orin_nano_super": ("jetson-orin-nano",),
    "thor": ("jetson-t5000", "jetson-agx-thor"),
    "agx_thor": ("jetson-t5000", "jetson-agx-thor"),
    "t5000": ("jetson-t5000",),
    "t4000": ("jetson-t4000",),
}


def inventory_kind(name):
    """The kind an inventory group name stands for ('Orin-NX' -> 'orin_nx'), or None."""
    kind = str(name).lower().replace("-", "_")
    return kind if kind in INVENTORY_KINDS else None


AGX_BY_SOC = {"tegra194": "jetson-agx-xavier", "tegra234": "jetson-agx-orin",
              "tegra264": THOR_SKU_UNKNOWN}
# SoCs every module of which is known to be one family: a device tree that names nothing but
# the SoC still gives that family (every Thor so far is an AGX Thor module, board p3834).
SOC_ONLY_MODULES = {"tegra264": THOR_SKU_UNKNOWN}

# L4T -> (JetPack, TensorRT, CUDA, cuDNN), from docs/reference/jetson-platforms.md
# (all rows; each with its source there). TensorRT, CUDA and cuDNN are what that JetPack
# ships; a device may have another TensorRT installed (TensorRT 11.4.1 on JetPack 7.2.2 and
# later, from NVIDIA's SBSA packages): the platform_id names the installed one, and the
# difference is a warning, not an error. 38.x is Thor only; 39.x is Orin and Thor.
L4T_RELEASES = {
    "32.1": ("4.2", "5.0.6", "10.0", "7.3.1"),
    "32.2": ("4.2.1", "5.1.6", "10.0", "7.5.0"),
    "32.2.1": ("4.2.2", "5.1.6", "10.0", "7.5.0"),
    "32.3.1": ("4.3", "6.0.1", "10.0", "7.6.3"),
    "32.4.3": ("4.4", "7.1.3", "10.2", "8.0"),
    "32.4.4": ("4.4.1", "7.1.3", "10.2", "8.0"),
    "32.5.0": ("4.5", "7.1.3", "10.2", "8.0"),
    "32.5.1": ("4.5.1", "7.1.3", "10.2", "8.0"),
    "32.6.1": ("4.6", "8.0.1", "10.2", "8.2.1"),
    "32.7.1": ("4.6.1", "8.2.1", "10.2", "8.2.1"),
    "32.7.2": ("4.6.2", "8.2.1", "10.2", "8.2.1"),
    "32.7.3": ("4.6.3", "8.2.1", "10.2", "8.2.1"),
    "32.7.4": ("4.6.4", "8.2.1", "10.2", "8.2.1"),
    "32.7.5": ("4.6.5", "8.2.1", "10.2", "8.2.1"),
    "32.7.6": ("4.6.6", "8.2.1", "10.2", "8.2.1"),
    "35.1": ("5.0.2", "8.4.1", "11.4", "8.4.1"),
    "35.2.1": ("5.1", "8.5.2", "11.4", "8.6.0"),
    "35.3.1": ("5.1.1", "8.5.2", "11.4", "8.6.0"),
    "35.4.1": ("5.1.2", "8.5.2", "11.4", "8.6.0"),
    "35.5.0": ("5.1.3", "8.5.2", "11.4", "8.6.0"),
    "35.6.0": ("5.1.4", "8.5.2", "11.4", "8.6.0"),
    "35.6.1": ("5.1.5", "8.5.2", "11.4", "8.6.0"),
    "35.6.2": ("5.1.5", "8.5.2", "11.4", "8.6.0"),
    "35.6.4": ("5.1.6", "8.5.2", "11.4", "8.6.0"),
    "36.3": ("6.0", "8.6.2", "12.2", "8.9.4"),
    "36.4": ("6.1", "10.3", "12.6", "9.3"),
    "36.4.3": ("6.2", "10.3", "12.6", "9.3"),
    "36.4.4": ("6.2.1", "10.3", "12.6", "9.3"),
    "36.4.7": ("6.2.1", "10.3", "12.6", "9.3"),
    "36.5.0": ("6.2.2", "10.3", "12.6", "9.3"),
    "38.2.0": ("7.0", "10.13", "13.0", "9.12"),
    "38.2.1": ("7.0", "10.13", "13.0", "9.12"),
    "38.2.2": ("7.0", "10.13", "13.0", "9.12"),
    "38.4.0": ("7.1", "10.13", "13.0", "9.12"),
    "39.2.0": ("7.2", "10.16", "13.2", "9.20"),
    "39.2.1": ("7.2.1", "10.16", "13.2", "9.20"),
}

# TensorRT generations, the one table of TensorRT versions: (first version, first version
# after, generation name, API generation label (the builder's adapter, manifests), reason if
# unsupported). Up to 8.3 the engines come from UFF, from 8.4 from ONNX
# (builder/trt/enginepath.py); 10 has no UFF parser, ONNX only; 11 (11.4.1 on JetPack 7.2.2
# and later, AGX Orin and Thor) is ONNX only and strongly typed. Every version threshold of
# the tool is the start of one of them (the *_FROM names below).
TENSORRT_GENERATIONS = (
    ((5, 0), (7, 0), "trt5_6", "5/6", None),
    ((7, 0), (8, 0), "trt7", "7", None),
    ((8, 0), (8, 4), "trt8_0", "8.0-8.3", None),
    ((8, 4), (9, 0), "trt8_4", "8.4-8.6", None),
    ((10, 0), (11, 0), "trt10", "10", None),
    ((11, 0), (12, 0), "trt11", "11", None),
)


def generation_from(name):
    """(major, minor) of the first TensorRT version of generation ``name``."""
    return next(first for first, _after, known, _label, _reason in TENSORRT_GENERATIONS
                if known == name)


# FlattenConcat's axis and ignoreBatch fields (builder/graph/surgery.py).
FLATTEN_CONCAT_FIELDS_FROM = generation_from("trt7")
# ITimingCache (the builder's --timing-cache, controller/device_work.py).
TIMING_CACHE_FROM = generation_from("trt8_0")
# The ONNX path: the EfficientNMS_TRT plugin; UFF's NMS is unreliable before it
# (builder/trt/enginepath.py).
ONNX_FROM = generation_from("trt8_4")
ONNX_FROM_TEXT = "{}.{}".format(*ONNX_FROM)  # for messages: "TensorRT >= 8.4"
# TensorRT 10 has no UFF parser.
UFF_UNTIL = generation_from("trt10")
# From TensorRT 11 every network is strongly typed: an engine computes in the types of its
# ONNX's tensors and no builder flag sets a precision, so an fp16 engine needs an fp16 ONNX
# (builder/onnx/fp16.py makes it on the controller).
STRONGLY_TYPED_FROM = generation_from("trt11")

DEVICE_TREE_DIRS = ("proc/device-tree", "sys/firmware/devicetree/base")
NV_TEGRA_RELEASE = "etc/nv_tegra_release"
DPKG_STATUS = "var/lib/dpkg/status"
MEMINFO = "proc/meminfo"
INSTALLED = "install ok installed"


# ---------------------------------------------------------------- small parsers

def version_tuple(text):
    """The tool's one version parser: '32.7.1' -> (32, 7, 1), '8.6.2.3-1+cuda' ->
    (8, 6, 2, 3); stops at the first non-numeric part, () when there is no number."""
    numbers = []
    for part in str(text).strip().split("."):
        match = re.match(r"\d+", part)
        if not match:
            break
        numbers.append(int(match.group()))
        if match.group() != part:
            break
    return tuple(numbers)


def _l4t_key(text):
    """Version tuple without trailing zeros, so that '36.4' and '36.4.0' compare equal."""
    numbers = list(version_tuple(text))
    while len(numbers) > 2 and numbers[-1] == 0:
        numbers.pop()
    return tuple(numbers)


_L4T_BY_KEY = {_l4t_key(release): release for release in L4T_RELEASES}


def parse_nv_tegra_release(text):
    """L4T version ('32.7.1') from the text of /etc/nv_tegra_release, or None.

    Looks for the line '# R<major> (release), REVISION: <minor.patch>, ...' by its fields,
    not by its exact spelling; other lines (R32 files list library checksums) are ignored.
    """
    for line in text.splitlines():
        fields = [field.strip() for field in line.lstrip("#").split(",")]
        major = re.match(r"^R(\d+)\b", fields[0]) if fields else None
        if not major:
            continue
        for field in fields[1:]:
            key, _sep, value = field.partition(":")
            if key.strip().upper() == "REVISION":
                revision = re.match(r"^\d+(\.\d+)*", value.strip())
                if revision:
                    return "{}.{}".format(major.group(1), revision.group())
    return None


# The dpkg packages the facts read (TensorRT, CUDA, cuDNN, L4T), by name prefix. A Jetson's
# status file lists 2000 and more packages in 2 to 3 MB; parsing only these stanzas keeps the
# facts module, which runs on every device on every run, from spending most of its time on
# the others (10 ms per run for the 700 of a simulated device's file on x86: bench/README.md).
JETPACK_PACKAGE_PREFIXES = ("tensorrt", "libnvinfer", "python3-libnvinfer", "cuda-",
                            "libcudnn", "nvidia-l4t-")
_STANZA_BREAK = re.compile(r"\n\s*\n")
_PACKAGE_FIELD = re.compile(r"^package:[ \t]*(\S+)", re.MULTILINE | re.IGNORECASE)


def parse_dpkg_status(text, prefixes=None):
    """Installed packages from a dpkg status file: {package: version}; only the packages
    whose name starts with one of ``prefixes`` (a tuple) when given.

    Stanzas are separated by blank lines; only 'install ok installed' counts (removed
    packages keep a stanza with 'deinstall ok config-files').
    """
    packages = {}
    for stanza in _STANZA_BREAK.split(text):
        name = _PACKAGE_FIELD.search(stanza)
        if name is None or (prefixes and not name.group(1).startswith(prefixes)):
            continue  # the regular expressions look in C; the lines below are Python's work
        fields = {}
        for line in stanza.splitlines():
            if not line or line[0] in " \t":
                continue  # continuation of a multi-line field (Description, Conffiles)
            key, sep, value = line.partition(":")
            if sep:
                fields[key.strip().lower()] = value.strip()
        if "package" in fields and fields.get("status") == INSTALLED and "version" in fields:
            packages[fields["package"]] = fields["version"]
    return packages


def upstream_version(debian_version):
    """'1:8.2.1.9-1+cuda10.2' -> '8.2.1.9' (drop epoch and Debian revision)."""
    version = debian_version.split(":", 1)[-1]
    return version.rsplit("-", 1)[0] if "-" in version else version


def version_prefix(version, count):
    """'8.6.2.3' -> '8.6.2' (count 3): the first numbers of a version, None without one."""
    numbers = version_tuple(version)
    return ".".join(str(n) for n in numbers[:count]) if numbers else None


def _read_bytes(path):
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except (FileNotFoundError, NotADirectoryError):
        return None


def _read_text(path):
    data = _read_bytes(path)
    return None if data is None else data.decode("utf-8", "replace")


# ---------------------------------------------------------------- device tree

def read_device_tree(root):
    """(model, [compatible entries], directory used) from the first device tree dir found.

    Values are NUL-terminated / NUL-separated. On a real system /proc/device-tree is an
    absolute symlink into /sys; below another root it may dangle, hence both places.
    """
    for relative in DEVICE_TREE_DIRS:
        directory = os.path.join(root, relative)
        model = _read_bytes(os.path.join(directory, "model"))
        compatible = _read_bytes(os.path.join(directory, "compatible"))
        if model is None and compatible is None:
            continue
        model_text = _nul_strings(model)[0] if model and _nul_strings(model) else None
        return model_text, _nul_strings(compatible or b""), "/" + relative
    return None, [], None


def _nul_strings(data):
    return [item.decode("utf-8", "replace").strip() for item in data.split(b"\0")
            if item.strip()]


def soc_from_compatible(compatible):
    for entry in compatible:
        match = re.match(r"^nvidia\s*,\s*(tegra\d+)\s*$", entry, re.IGNORECASE)
        if match:
            return match.group(1).lower()
    return None


def module_from_compatible(compatible):
    """(module slug or None, SKU of the module board or None)."""
    carrier = None
    for entry in compatible:
        vendor, _sep, boards = entry.partition(",")
        if vendor.strip().lower() != "nvidia":
            continue
        for board in boards.split("+"):
            match = re.match(r"^\s*(p\d{4})(?:-(\d{4}))?", board.strip().lower())
            if not match:
                continue
            board_id, sku = match.group(1), match.group(2)
            if board_id in MODULES_BY_SKU:
                if sku in MODULES_BY_SKU[board_id]:
                    return MODULES_BY_SKU[board_id][sku], sku
                continue
            if board_id in MODULE_BOARDS:
                return MODULE_BOARDS[board_id], sku
            if carrier is None and board_id in CARRIER_BOARDS:
                carrier = CARRIER_BOARDS[board_id]
        name = re.match(r"^\s*jetson-([a-z0-9-]+)\s*$", boards.lower())
        if carrier is None and name and "jetson-" + name.group(1) in MODULES:
            carrier = "jetson-" + name.group(1)
    return carrier, None


def module_from_model(model, soc):
    if not model:
        return None
    words = set(re.sub(r"[^a-z0-9]+", " ", model.lower()).split())
    for needed, module in MODEL_WORDS:
        if all(word in words for word in needed):
            return module
    if "agx" in words:
        return AGX_BY_SOC.get(soc)
    return None


# ---------------------------------------------------------------- dpkg components

def tensorrt_from_dpkg(packages):
    """Full Debian version of TensorRT: the 'tensorrt' package, else libnvinfer<N>."""
    if "tensorrt" in packages:
        return packages["tensorrt"]
    candidates = sorted(
        (int(match.group(1)), name) for name, match in
        ((name, re.match(r"^libnvinfer(\d+)$", name)) for name in packages) if match
    )
    if candidates:
        return packages[candidates[-1][1]]
    for name in ("python3-libnvinfer", "libnvinfer-bin"):
        if name in packages:
            return packages[name]
    return None


def cuda_from_dpkg(packages):
    """'10.2' from cuda-toolkit-10-2 / cuda-cudart-10-2 (the highest when several)."""
    found = []
    for name, version in packages.items():
        match = re.match(r"^cuda-(?:toolkit|cudart)-(\d+)-(\d+)$", name)
        if match:
            found.append((int(match.group(1)), int(match.group(2))))
        elif name in ("cuda-toolkit", "cuda-cudart"):
            numbers = version_tuple(upstream_version(version))
            if len(numbers) >= 2:
                found.append(numbers[:2])
    return "{}.{}".format(*max(found)) if found else None


def cudnn_from_dpkg(packages):
    """'8.2.1' from libcudnn8 / libcudnn9-cuda-12 (runtime packages, not -dev / -samples)."""
    found = []
    for name, version in packages.items():
        if re.match(r"^libcudnn\d+(-cuda-\d+)?$", name):
            found.append(version_tuple(upstream_version(version)))
    best = max(found) if found else None
    return ".".join(str(n) for n in best[:3]) if best else None


def l4t_from_dpkg(packages):
    """'32.7.4' from nvidia-l4t-core '32.7.4-20230608212426'."""
    version = packages.get("nvidia-l4t-core")
    return version_prefix(upstream_version(version), 3) if version else None


def memory_mib(root):
    text = _read_text(os.path.join(root, MEMINFO))
    match = re.search(r"^MemTotal:\s*(\d+)\s*kB", text or "", re.MULTILINE)
    return int(match.group(1)) // 1024 if match else None


# ---------------------------------------------------------------- the facts

def _safe_id_part(text):
    return re.sub(r"[^a-z0-9._-]+", "-", str(text).lower()).strip("-") or "unknown"


def make_platform_id(module, l4t, tensorrt):
    """The portability key: engines are only reused between equal platform_ids.

    module: GPU model and SM count (Xavier AGX and NX share compute 7.2 but not SMs).
    L4T: the GPU driver ships with L4T. TensorRT: plans are tied to the exact version.
    CUDA and cuDNN are left out: each L4T release fixes them, and the TensorRT build
    pins the CUDA it was built for, so adding them would split the cache without
    separating engines that are incompatible.
    """
    return "{}_l4t{}_trt{}".format(
        _safe_id_part(module),
        _safe_id_part(l4t) if l4t else "unknown",
        _safe_id_part(tensorrt) if tensorrt else "none",
    )


# The form make_platform_id gives: module slug, then _l4t..., then _trt....
PLATFORM_ID_RE = re.compile(r"^(?P<module>[a-z0-9._-]+?)_l4t(?P<l4t>[a-z0-9._-]+)"
                            r"_trt(?P<tensorrt>[0-9]+(?:\.[0-9]+)*)\Z")


def module_of_platform_id(platform_id):
    """The module slug a platform_id starts with, or None when it is not of that form."""
    found = PLATFORM_ID_RE.match(str(platform_id))
    return found.group("module") if found else None


def tensorrt_of_platform_id(platform_id):
    """The TensorRT version a platform_id names (make_platform_id's last part), or None when
    it is not one make_platform_id makes with a TensorRT."""
    found = PLATFORM_ID_RE.match(str(platform_id))
    return found.group("tensorrt") if found else None


def detect_platform(root="/"):
    """Facts about the Jetson whose filesystem is at ``root`` (a dict, JSON-able).

    Raises UserError when nothing says this is a Jetson. A Jetson without TensorRT is
    not an error: ``tensorrt`` is None and ``warnings`` says so.
    """
    warnings = []
    release_text = _read_text(os.path.join(root, NV_TEGRA_RELEASE))
    model, compatible, tree_dir = read_device_tree(root)
    soc = soc_from_compatible(compatible)
    if release_text is None and soc is None:
        raise UserError(
            "not a Jetson: found no /etc/nv_tegra_release and no device tree 'compatible' "
            "entry 'nvidia,tegraNNN' (looked in {} below {}). Run this on an NVIDIA Jetson "
            "with L4T / JetPack installed".format(
                ", ".join("/" + d for d in (NV_TEGRA_RELEASE,) + DEVICE_TREE_DIRS), root))

    packages = parse_dpkg_status(_read_text(os.path.join(root, DPKG_STATUS)) or "",
                                 JETPACK_PACKAGE_PREFIXES)
    l4t = _detect_l4t(release_text, packages, warnings)
    module, sku = module_from_compatible(compatible)
    if module is None:
        module = module_from_model(model, soc)
    module = _check_module(module, soc, (model, compatible, tree_dir), warnings)
    if soc is None and module is not None:
        soc = MODULES[module][0]
    jetpack, expected = _jetpack_for(l4t, warnings)

    tensorrt_full = tensorrt_from_dpkg(packages)
    tensorrt = version_prefix(upstream_version(tensorrt_full), 3) if tensorrt_full else None
    if tensorrt is None:
        warnings.append("TensorRT not found in the dpkg database (no 'tensorrt' or "
                        "'libnvinfer<N>' package installed): install JetPack's TensorRT "
                        "(apt install nvidia-jetpack or tensorrt)")
    cuda = cuda_from_dpkg(packages)
    cudnn = cudnn_from_dpkg(packages)
    if expected is not None:
        _compare_with_table(l4t, expected, (tensorrt, cuda, cudnn), warnings)

    return {
        "module": module,
        "model": model,
        "soc": soc,
        "compute_capability": COMPUTE_CAPABILITY.get(soc),
        "l4t": l4t,
        "jetpack": jetpack,
        "tensorrt": tensorrt,
        "tensorrt_full": tensorrt_full,
        "cuda": cuda,
        "cudnn": cudnn,
        "python": _pyplatform.python_version(),
        "platform_id": make_platform_id(module or "unknown-" + (soc or "tegra"), l4t, tensorrt),
        "dla_cores": _dla_cores(module, sku),
        "memory_mib": memory_mib(root),
        "warnings": warnings,
    }


def _detect_l4t(release_text, packages, warnings):
    from_file = parse_nv_tegra_release(release_text) if release_text is not None else None
    from_dpkg = l4t_from_dpkg(packages)
    if release_text is not None and from_file is None:
        warnings.append("/etc/nv_tegra_release has no '# R<major> (release), REVISION: <x.y>' "
                        "line; {}".format("using nvidia-l4t-core " + from_dpkg if from_dpkg
                                          else "L4T release unknown"))
    if from_file and from_dpkg and _l4t_key(from_file) != _l4t_key(from_dpkg):
        warnings.append("/etc/nv_tegra_release says L4T {} but the nvidia-l4t-core package is "
                        "{}; using {} (a partial upgrade? reboot or finish the apt upgrade)"
                        .format(from_file, from_dpkg, from_file))
    l4t = from_file or from_dpkg
    if l4t is None:
        warnings.append("L4T release unknown: no usable /etc/nv_tegra_release and no "
                        "nvidia-l4t-core package")
    return l4t


def _check_module(module, soc, device_tree, warnings):
    """The module if the device tree's SoC agrees with it; ``device_tree`` is for messages.

    A SoC of one module family only (SOC_ONLY_MODULES: Thor) gives that family when nothing
    else names the module, so that such a device is never keyed as an unknown module.
    """
    model, compatible, tree_dir = device_tree
    if module is None and soc in SOC_ONLY_MODULES:
        module = SOC_ONLY_MODULES[soc]
    if module is None:
        warnings.append("Jetson module not recognised from the device tree (model {!r}, "
                        "compatible {!r} in {}); engines built here are keyed by SoC only"
                        .format(model, compatible, tree_dir))
        return None
    if soc is not None and MODULES[module][0] != soc:
        warnings.append("device tree names a {} (SoC {}) but its SoC entry is {}; trusting "
                        "the SoC entry, module unknown".format(module, MODULES[module][0], soc))
        return None
    if module == THOR_SKU_UNKNOWN:
        warnings.append("Jetson Thor module not recognised from the device tree (model {!r}, "
                        "compatible {!r} in {}): board p3834-0008 is a T5000, p3834-0000 a "
                        "T4000, with different GPUs; engines built here are keyed as {}, "
                        "shared only with Thors whose module is unknown too"
                        .format(model, compatible, tree_dir, module))
    return module


def _jetpack_for(l4t, warnings):
    """(JetPack or None, (tensorrt, cuda, cudnn) expected for that L4T or None)."""
    if l4t is None:
        return None, None
    release = _L4T_BY_KEY.get(_l4t_key(l4t))
    if release is not None:
        row = L4T_RELEASES[release]
        return row[0], row[1:]
    # Not guessed: a later point release of a series may start a new JetPack (36.4.4 is
    # 6.2.1, 36.5.0 6.2.2). The warning names what the table knows around it.
    series = sorted((r for r in L4T_RELEASES if _l4t_key(r)[:2] == _l4t_key(l4t)[:2]),
                    key=version_tuple)
    newest = max(L4T_RELEASES, key=version_tuple)
    if series:
        known = " (known {} releases: {})".format(".".join(l4t.split(".")[:2]), ", ".join(
            "{} = JetPack {}".format(r, L4T_RELEASES[r][0]) for r in series))
    elif version_tuple(l4t) > version_tuple(newest):
        known = (" (newer than every release the table knows, the newest being L4T {} = "
                 "JetPack {}); module, TensorRT, CUDA and cuDNN are read from the device as "
                 "usual".format(newest, L4T_RELEASES[newest][0]))
    else:
        known = ""
    warnings.append("L4T {} is not in the JetPack table; JetPack unknown{}".format(l4t, known))
    return None, None


def _compare_with_table(l4t, expected, installed, warnings):
    """Warn where (tensorrt, cuda, cudnn) installed differ from what the L4T row ships."""
    names = ("TensorRT", "CUDA", "cuDNN")
    for name, want, have in zip(names, expected, installed):
        if have is None:
            continue
        want_numbers = version_tuple(want)
        if version_tuple(have)[:len(want_numbers)] != want_numbers:
            warnings.append("{} {} installed, JetPack for L4T {} ships {}".format(
                name, have, l4t, want))


def _dla_cores(module, sku):
    if module is None:
        return None
    if module == "jetson-orin-nx":
        return ORIN_NX_DLA_BY_SKU.get(sku)
    return MODULES[module][1]


def tensorrt_generation(version):
    """(generation name, reason it is unsupported or None) for a TensorRT version string.

    Versions are compared as numbers: '10.3' is newer than '8.6' (string comparison of
    trt.__version__ gets this wrong). Unknown versions give (None, reason).
    """
    numbers = version_tuple(version or "")
    if not numbers:
        return None, "TensorRT is not installed"
    key = (numbers + (0,))[:2]
    for first, after, name, _label, reason in TENSORRT_GENERATIONS:
        if first <= key < after:
            return name, reason
    return None, "TensorRT {} is not a generation this builder knows (5.x to 8.6, 10.x and " \
                 "11.x)".format(version)


def api_generation(version):
    """The API generation label of a parsed version (for manifests and messages): the label
    of the latest generation it is not older than."""
    labels = [label for first, _after, _name, label, _reason in TENSORRT_GENERATIONS
              if tuple(version[:2]) >= first]
    return labels[-1] if labels else TENSORRT_GENERATIONS[0][3]


def strongly_typed(version):
    """True when TensorRT ``version`` (text) builds only strongly typed networks."""
    numbers = version_tuple(version or "")
    return bool(numbers) and (numbers + (0,))[:2] >= STRONGLY_TYPED_FROM


def supported(facts):
    """(True, generation) when the builder can build engines on this platform,
    else (False, reason)."""
    generation, reason = tensorrt_generation(facts.get("tensorrt"))
    if reason is not None:
        return False, reason
    return True, generation
