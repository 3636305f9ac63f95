"""Lay out the files a Jetson's platform detection reads, below a test directory.

One profile per platform in docs/reference/jetson-platforms.md, with the file contents
real devices print (nv_tegra_release lines, NUL-separated device tree strings, dpkg
status stanzas). ``lay_out`` takes variants so tests can bend one thing at a time.
"""

import os

NANO_RELEASE = ("# R32 (release), REVISION: 7.1, GCID: 29818004, BOARD: t210ref, "
                "EABI: aarch64, DATE: Sat Feb 19 17:05:08 UTC 2022")
TX2_RELEASE = ("# R32 (release), REVISION: 3.1, GCID: 18186506, BOARD: t186ref, "
               "EABI: aarch64, DATE: Tue Dec 10 07:03:07 UTC 2019")
XAVIER_R32_RELEASE = ("# R32 (release), REVISION: 4.4, GCID: 23942405, BOARD: t186ref, "
                      "EABI: aarch64, DATE: Fri Oct 16 19:37:08 UTC 2020")
XAVIER_R35_RELEASE = ("# R35 (release), REVISION: 4.1, GCID: 33958178, BOARD: t186ref, "
                      "EABI: aarch64, DATE: Tue Aug  1 19:57:35 UTC 2023")
XAVIER_NX_RELEASE = ("# R35 (release), REVISION: 3.1, GCID: 32827747, BOARD: t186ref, "
                     "EABI: aarch64, DATE: Sun Mar 19 15:19:21 UTC 2023")
ORIN_R36_RELEASE = ("# R36 (release), REVISION: 4.3, GCID: 38968081, BOARD: generic, "
                    "EABI: aarch64, DATE: Wed Jan  8 01:49:37 UTC 2025")
ORIN_NANO_RELEASE = ("# R36 (release), REVISION: 3.0, GCID: 36191598, BOARD: generic, "
                     "EABI: aarch64, DATE: Mon May  6 17:34:21 UTC 2024")
ORIN_R36_4_4_RELEASE = ("# R36 (release), REVISION: 4.4, GCID: 41062509, BOARD: generic, "
                        "EABI: aarch64, DATE: Mon Jun 16 16:07:13 UTC 2025")
# JetPack 7 (Ubuntu 24.04): 38.2.0 as rbonghi/jetson_stats#711 shows it for an AGX Thor
# developer kit; the others in the same format (GCIDs and dates as public device logs print
# them, not re-checked on a board here). R38/R39 files go on like R36 ones.
THOR_R38_2_0_RELEASE = ("# R38 (release), REVISION: 2.0, GCID: 41844464, BOARD: generic, "
                        "EABI: aarch64, DATE: Fri Aug 22 00:55:42 UTC 2025")
THOR_R38_4_0_RELEASE = ("# R38 (release), REVISION: 4.0, GCID: 43443517, BOARD: generic, "
                        "EABI: aarch64, DATE: Wed Dec 31 00:15:19 UTC 2025")
R39_2_1_RELEASE = ("# R39 (release), REVISION: 2.1, GCID: 46758480, BOARD: generic, "
                   "EABI: aarch64, DATE: Fri Aug  7 05:54:22 AM UTC 2026")
R36_TAIL = ("# KERNEL_VARIANT: oot\nTARGET_USERSPACE_LIB_DIR=nvidia\n"
            "TARGET_USERSPACE_LIB_DIR_PATH=usr/lib/aarch64-linux-gnu/nvidia\n")
# Device tree of the AGX Thor developer kit (T5000 module p3834-0008 on carrier p4071), as
# rbonghi/jetson_stats#711 (L4T 38.2.0) and NVIDIA/jetson-gpio#135 (L4T 38.4) print it.
THOR_DEVKIT_MODEL = "NVIDIA Jetson AGX Thor Developer Kit"
THOR_DEVKIT_COMPATIBLE = ["nvidia,p4071-0000+p3834-0008", "nvidia,p3834-0008",
                          "nvidia,tegra264"]

# R32 files continue with checksums of libraries; detection must skip them.
R32_SHA_LINES = (
    "INSTALL_TYPE=\n"
    "02e3a5a8c4d7b4a6e1fc33a24ec8f1ad5a2d4e56 */usr/lib/aarch64-linux-gnu/tegra/libcuda.so.1.1\n"
    "b8b2d7e13f1b1c38f0e4c4a0f5e7c3c4a5c0b1e2 */usr/lib/aarch64-linux-gnu/tegra/libnvbuf_utils.so\n"
)


def _packages(l4t_core, tensorrt, nvinfer, cudnn, cuda):
    """dpkg packages of a JetPack: each argument after l4t_core is (package, version)."""
    packages = {"nvidia-l4t-core": l4t_core, "tensorrt": tensorrt}
    packages.update(dict([nvinfer, cudnn, cuda]))
    packages["python3-libnvinfer"] = nvinfer[1]
    return packages


PROFILES = {
    "nano-32.7.1": {
        "release": NANO_RELEASE + "\n" + R32_SHA_LINES,
        "model": "NVIDIA Jetson Nano Developer Kit",
        "compatible": ["nvidia,p3449-0000-b00+p3448-0000-b00", "nvidia,jetson-nano",
                       "nvidia,tegra210"],
        "packages": dict(
            _packages("32.7.1-20220219090432", "8.2.1.9-1+cuda10.2",
                      ("libnvinfer8", "8.2.1-1+cuda10.2"), ("libcudnn8", "8.2.1.32-1+cuda10.2"),
                      ("cuda-toolkit-10-2", "10.2.460-1")),
            **{"uff-converter-tf": "8.2.1-1+cuda10.2", "graphsurgeon-tf": "8.2.1-1+cuda10.2"}),
        "mem_kib": 4050880,
        "expect": {"module": "jetson-nano", "soc": "tegra210", "compute_capability": "5.3",
                   "l4t": "32.7.1", "jetpack": "4.6.1", "tensorrt": "8.2.1",
                   "tensorrt_full": "8.2.1.9-1+cuda10.2", "cuda": "10.2", "cudnn": "8.2.1",
                   "dla_cores": 0, "memory_mib": 3955,
                   "platform_id": "jetson-nano_l4t32.7.1_trt8.2.1"},
    },
    "tx2-32.3.1": {
        "release": TX2_RELEASE + "\n" + R32_SHA_LINES,
        "model": "NVIDIA Jetson TX2 Developer Kit",
        "compatible": ["nvidia,p2771-0000", "nvidia,tegra186"],
        "packages": _packages("32.3.1-20191209225816", "6.0.1.10-1+cuda10.0",
                              ("libnvinfer6", "6.0.1-1+cuda10.0"),
                              ("libcudnn7", "7.6.3.28-1+cuda10.0"),
                              ("cuda-toolkit-10-0", "10.0.326-1")),
        "mem_kib": 8038960,
        "expect": {"module": "jetson-tx2", "soc": "tegra186", "compute_capability": "6.2",
                   "l4t": "32.3.1", "jetpack": "4.3", "tensorrt": "6.0.1", "cuda": "10.0",
                   "cudnn": "7.6.3", "dla_cores": 0,
                   "platform_id": "jetson-tx2_l4t32.3.1_trt6.0.1"},
    },
    "xavier-32.4.4": {
        "release": XAVIER_R32_RELEASE + "\n" + R32_SHA_LINES,
        # Early R32 Xavier device trees said only "Jetson-AGX".
        "model": "Jetson-AGX",
        "compatible": ["nvidia,p2972-0000", "nvidia,tegra194"],
        "packages": _packages("32.4.4-20201016123640", "7.1.3.0-1+cuda10.2",
                              ("libnvinfer7", "7.1.3-1+cuda10.2"),
                              ("libcudnn8", "8.0.0.180-1+cuda10.2"),
                              ("cuda-toolkit-10-2", "10.2.89-1")),
        "mem_kib": 32692948,
        "expect": {"module": "jetson-agx-xavier", "soc": "tegra194", "compute_capability": "7.2",
                   "l4t": "32.4.4", "jetpack": "4.4.1", "tensorrt": "7.1.3", "cuda": "10.2",
                   "cudnn": "8.0.0", "dla_cores": 2,
                   "platform_id": "jetson-agx-xavier_l4t32.4.4_trt7.1.3"},
    },
    "xavier-35.4.1": {
        "release": XAVIER_R35_RELEASE + "\n",
        "model": "Jetson AGX Xavier Developer Kit",
        "compatible": ["nvidia,p2972-0000", "nvidia,tegra194"],
        "packages": _packages("35.4.1-20230801124926", "8.5.2.2-1+cuda11.4",
                              ("libnvinfer8", "8.5.2-1+cuda11.4"),
                              ("libcudnn8", "8.6.0.166-1+cuda11.4"),
                              ("cuda-toolkit-11-4", "11.4.19-1")),
        "mem_kib": 31928488,
        "expect": {"module": "jetson-agx-xavier", "soc": "tegra194", "l4t": "35.4.1",
                   "jetpack": "5.1.2", "tensorrt": "8.5.2", "cuda": "11.4", "cudnn": "8.6.0",
                   "dla_cores": 2, "platform_id": "jetson-agx-xavier_l4t35.4.1_trt8.5.2"},
    },
    "xavier-nx-35.3.1": {
        "release": XAVIER_NX_RELEASE + "\n",
        "model": "NVIDIA Jetson Xavier NX Developer Kit",
        "compatible": ["nvidia,p3509-0000+p3668-0001", "nvidia,tegra194"],
        "packages": _packages("35.3.1-20230319081403", "8.5.2.2-1+cuda11.4",
                              ("libnvinfer8", "8.5.2-1+cuda11.4"),
                              ("libcudnn8", "8.6.0.166-1+cuda11.4"),
                              ("cuda-toolkit-11-4", "11.4.19-1")),
        "mem_kib": 7772840,
        "expect": {"module": "jetson-xavier-nx", "soc": "tegra194", "compute_capability": "7.2",
                   "l4t": "35.3.1", "jetpack": "5.1.1", "tensorrt": "8.5.2", "dla_cores": 2,
                   "platform_id": "jetson-xavier-nx_l4t35.3.1_trt8.5.2"},
    },
    "agx-orin-36.4.3": {
        "release": ORIN_R36_RELEASE + "\n",
        "model": "NVIDIA Jetson AGX Orin Developer Kit",
        "compatible": ["nvidia,p3737-0000+p3701-0005", "nvidia,p3701-0005", "nvidia,tegra234"],
        "packages": {
            "nvidia-l4t-core": "36.4.3-20250107174145",
            "tensorrt": "10.3.0.30-1+cuda12.5",
            "libnvinfer10": "10.3.0.30-1+cuda12.5",
            "libcudnn9-cuda-12": "9.3.0.75-1",
            "libcudnn9-dev-cuda-12": "9.3.0.75-1",
            "cuda-toolkit-12-6": "12.6.11-1",
            "cuda-toolkit-12-config-common": "12.6.77-1",
        },
        "mem_kib": 64335836,
        "expect": {"module": "jetson-agx-orin", "soc": "tegra234", "compute_capability": "8.7",
                   "l4t": "36.4.3", "jetpack": "6.2", "tensorrt": "10.3.0", "cuda": "12.6",
                   "cudnn": "9.3.0", "dla_cores": 2,
                   "platform_id": "jetson-agx-orin_l4t36.4.3_trt10.3.0"},
    },
    "agx-orin-36.4.4": {
        "release": ORIN_R36_4_4_RELEASE + "\n" + R36_TAIL,
        "model": "NVIDIA Jetson AGX Orin Developer Kit",
        "compatible": ["nvidia,p3737-0000+p3701-0005", "nvidia,p3701-0005", "nvidia,tegra234"],
        "packages": {
            "nvidia-l4t-core": "36.4.4-20250616085344",
            "tensorrt": "10.3.0.30-1+cuda12.5",
            "libnvinfer10": "10.3.0.30-1+cuda12.5",
            "libcudnn9-cuda-12": "9.3.0.75-1",
            "cuda-toolkit-12-6": "12.6.11-1",
        },
        "mem_kib": 64335836,
        "expect": {"module": "jetson-agx-orin", "soc": "tegra234", "compute_capability": "8.7",
                   "l4t": "36.4.4", "jetpack": "6.2.1", "tensorrt": "10.3.0", "cuda": "12.6",
                   "cudnn": "9.3.0", "dla_cores": 2,
                   "platform_id": "jetson-agx-orin_l4t36.4.4_trt10.3.0"},
    },
    # JetPack 7.2 brought Orin to L4T 39 (Ubuntu 24.04, CUDA 13.2, TensorRT 10.16).
    "agx-orin-39.2.1": {
        "release": R39_2_1_RELEASE + "\n" + R36_TAIL,
        "model": "NVIDIA Jetson AGX Orin Developer Kit",
        "compatible": ["nvidia,p3737-0000+p3701-0005", "nvidia,p3701-0005", "nvidia,tegra234"],
        "packages": {
            "nvidia-l4t-core": "39.2.1-20260806224157",
            "tensorrt": "10.16.2.10-1+cuda13.2",
            "libnvinfer10": "10.16.2.10-1+cuda13.2",
            "libcudnn9-cuda-13": "9.20.0.46-1",
            "cuda-toolkit-13-2": "13.2.1-1",
        },
        "mem_kib": 64335836,
        "expect": {"module": "jetson-agx-orin", "soc": "tegra234", "compute_capability": "8.7",
                   "l4t": "39.2.1", "jetpack": "7.2.1", "tensorrt": "10.16.2",
                   "tensorrt_full": "10.16.2.10-1+cuda13.2", "cuda": "13.2", "cudnn": "9.20.0",
                   "dla_cores": 2, "platform_id": "jetson-agx-orin_l4t39.2.1_trt10.16.2"},
    },
    # Jetson Thor: tegra264, compute capability 11.0 (CUDA 13), no DLA.
    "thor-38.4.0": {
        "release": THOR_R38_4_0_RELEASE + "\n" + R36_TAIL,
        "model": THOR_DEVKIT_MODEL,
        "compatible": THOR_DEVKIT_COMPATIBLE,
        "packages": {
            "nvidia-l4t-core": "38.4.0-20251230160601",
            "tensorrt": "10.13.3.9-1+cuda13.0",
            "libnvinfer10": "10.13.3.9-1+cuda13.0",
            "libcudnn9-cuda-13": "9.12.0.46-1",
            "cuda-toolkit-13-0": "13.0.0-1",
        },
        "mem_kib": 128530000,
        "expect": {"module": "jetson-t5000", "soc": "tegra264", "compute_capability": "11.0",
                   "l4t": "38.4.0", "jetpack": "7.1", "tensorrt": "10.13.3", "cuda": "13.0",
                   "cudnn": "9.12.0", "dla_cores": 0,
                   "platform_id": "jetson-t5000_l4t38.4.0_trt10.13.3"},
    },
    "thor-39.2.1": {
        "release": R39_2_1_RELEASE + "\n" + R36_TAIL,
        "model": THOR_DEVKIT_MODEL,
        "compatible": THOR_DEVKIT_COMPATIBLE,
        "packages": {
            "nvidia-l4t-core": "39.2.1-20260806224157",
            "tensorrt": "10.16.2.10-1+cuda13.2",
            "libnvinfer10": "10.16.2.10-1+cuda13.2",
            "libcudnn9-cuda-13": "9.20.0.46-1",
            "cuda-toolkit-13-2": "13.2.1-1",
        },
        "mem_kib": 128530000,
        "expect": {"module": "jetson-t5000", "soc": "tegra264", "compute_capability": "11.0",
                   "l4t": "39.2.1", "jetpack": "7.2.1", "tensorrt": "10.16.2", "cuda": "13.2",
                   "cudnn": "9.20.0", "dla_cores": 0,
                   "platform_id": "jetson-t5000_l4t39.2.1_trt10.16.2"},
    },
    "orin-nano-36.3": {
        "release": ORIN_NANO_RELEASE + "\n",
        "model": "NVIDIA Jetson Orin Nano Developer Kit",
        "compatible": ["nvidia,p3768-0000+p3767-0005", "nvidia,p3767-0005", "nvidia,tegra234"],
        "packages": {
            "nvidia-l4t-core": "36.3.0-20240506102626",
            "tensorrt": "8.6.2.3-1+cuda12.2",
            "libnvinfer8": "8.6.2.3-1+cuda12.2",
            "libcudnn8": "8.9.4.25-1+cuda12.2",
            "cuda-toolkit-12-2": "12.2.12-1",
        },
        "mem_kib": 7802312,
        "expect": {"module": "jetson-orin-nano", "soc": "tegra234", "compute_capability": "8.7",
                   "l4t": "36.3.0", "jetpack": "6.0", "tensorrt": "8.6.2", "cuda": "12.2",
                   "cudnn": "8.9.4", "dla_cores": 0,
                   "platform_id": "jetson-orin-nano_l4t36.3.0_trt8.6.2"},
    },
}


def dpkg_status_text(packages, extra_stanzas=()):
    """A dpkg status file in the real format (multi-line Description, other fields)."""
    stanzas = []
    for name, version in sorted(packages.items()):
        stanzas.append(
            "Package: {name}\n"
            "Status: install ok installed\n"
            "Priority: optional\n"
            "Section: libs\n"
            "Installed-Size: 1024\n"
            "Maintainer: NVIDIA Corporation\n"
            "Architecture: arm64\n"
            "Version: {version}\n"
            "Description: {name} (test root)\n"
            " Multi-line description; this line starts with a space.\n"
            " .\n"
            " Version: 0.0.0-not-a-field\n".format(name=name, version=version)
        )
    stanzas.extend(extra_stanzas)
    return "\n".join(stanzas)


def _write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    mode = "wb" if isinstance(data, bytes) else "w"
    with open(path, mode) as handle:
        handle.write(data)


def lay_out(root, profile, *, release=True, device_tree="proc", model=True, compatible=True,
            packages=None, extra_stanzas=(), meminfo=True):
    """Write ``profile``'s files below ``root``; returns ``root``.

    release: True (profile's text), None (no file) or replacement text.
    device_tree: "proc" (proc/device-tree), "sys" (sys/firmware/devicetree/base) or None.
    model / compatible: True (profile's), None (no file) or replacement (str / list).
    packages: replacement {package: version} for the dpkg database, or None (profile's).
    """
    spec = PROFILES[profile]
    root = str(root)
    if release is not None:
        _write(os.path.join(root, "etc/nv_tegra_release"),
               spec["release"] if release is True else release)
    if device_tree is not None:
        directory = os.path.join(root, {"proc": "proc/device-tree",
                                        "sys": "sys/firmware/devicetree/base"}[device_tree])
        if model is not None:
            text = spec["model"] if model is True else model
            _write(os.path.join(directory, "model"), text.encode() + b"\0")
        if compatible is not None:
            entries = spec["compatible"] if compatible is True else compatible
            _write(os.path.join(directory, "compatible"),
                   b"".join(entry.encode() + b"\0" for entry in entries))
    _write(os.path.join(root, "var/lib/dpkg/status"),
           dpkg_status_text(spec["packages"] if packages is None else packages, extra_stanzas))
    if meminfo:
        _write(os.path.join(root, "proc/meminfo"),
               "MemTotal:       {} kB\nMemFree:          812345 kB\n".format(spec["mem_kib"]))
    return root
