"""Contents of the identity files of a simulated Jetson, in the formats real ones use."""

import hashlib
import json

# Libraries whose sha1 an R32 nv_tegra_release lists after its first line.
_R32_TEGRA_LIBS = ("libcuda.so.1.1", "libnvbufsurface.so.1.0.0", "libnvdc.so",
                   "libnvmm.so", "libnvos.so", "libnvrm_gpu.so", "libnvrm.so")


def nv_tegra_release(profile):
    """/etc/nv_tegra_release: the release line, then what that L4T major appends."""
    release = profile.release
    lines = ["# R{} (release), REVISION: {}, GCID: {}, BOARD: {}, EABI: aarch64, DATE: {}".format(
        release.major, release.revision, release.gcid, profile.board, release.date)]
    if release.major == 32:
        for lib in _R32_TEGRA_LIBS:
            digest = hashlib.sha1("{} {}".format(release.l4t, lib).encode()).hexdigest()
            lines.append("{} */usr/lib/aarch64-linux-gnu/tegra/{}".format(digest, lib))
    else:
        if release.major >= 36:
            lines.append("# KERNEL_VARIANT: oot")
        lines += ["TARGET_USERSPACE_LIB_DIR=nvidia",
                  "TARGET_USERSPACE_LIB_DIR_PATH=usr/lib/aarch64-linux-gnu/nvidia"]
    return "\n".join(lines) + "\n"


def devicetree_model(profile):
    """NUL-terminated, like every device-tree string property."""
    return profile.model.encode() + b"\0"


def devicetree_compatible(profile):
    """NUL-separated (and NUL-terminated), most specific first."""
    return b"".join(item.encode() + b"\0" for item in profile.module.compatible)


def _stanza(package, version, section, description, *, architecture, maintainer):
    return ("Package: {}\nStatus: install ok installed\nPriority: optional\nSection: {}\n"
            "Installed-Size: 1024\nMaintainer: {}\nArchitecture: {}\nVersion: {}\n"
            "Description: {}\n SIMULATED entry of the simulated Jetson fleet (tests/fleet).\n"
            ).format(package, section, maintainer, architecture, version, description)


def jetpack_packages(profile):
    """[(package, version, section, description)] that the release's JetPack installs."""
    release = profile.release
    trt = release.nvinfer_major
    deb = release.nvinfer_deb
    packages = [("nvidia-l4t-core", release.l4t_core_deb, "misc", "NVIDIA Core Package")]
    if release.jetpack_deb:
        packages.append(("nvidia-jetpack", release.jetpack_deb, "metapackages",
                         "NVIDIA Jetpack Meta Package"))
    packages += [
        ("tensorrt", release.tensorrt_deb, "devel", "Meta package for TensorRT"),
        ("libnvinfer{}".format(trt), deb, "libs", "TensorRT runtime libraries"),
        ("libnvinfer-plugin{}".format(trt), deb, "libs", "TensorRT plugin libraries"),
        ("libnvonnxparsers{}".format(trt), deb, "libs", "TensorRT ONNX libraries"),
        ("libnvinfer-bin", deb, "libs", "TensorRT binaries"),
        ("python3-libnvinfer", deb, "python", "Python 3 bindings for TensorRT"),
    ]
    if release.has_uff:
        packages += [
            ("libnvparsers{}".format(trt), deb, "libs", "TensorRT parsers libraries"),
            ("uff-converter-tf", deb, "devel", "UFF converter for TensorRT package"),
            ("graphsurgeon-tf", deb, "devel", "GraphSurgeon for TensorRT package"),
        ]
    packages += [
        (release.cudnn_package, release.cudnn_deb, "multiverse/libs", "cuDNN runtime libraries"),
        ("cuda-toolkit-{}".format(release.cuda_dashed), release.cuda_toolkit_deb, "devel",
         "CUDA Toolkit {} meta-package".format(release.cuda_version)),
        ("cuda-cudart-{}".format(release.cuda_dashed), release.cudart_deb, "devel",
         "CUDA Runtime native Libraries"),
    ]
    return packages


def dpkg_status(profile, host_status_text, architecture):
    """The host's dpkg database (so python3, openssh-server... stay listed) + JetPack's."""
    ours = jetpack_packages(profile)
    names = {package for package, _, _, _ in ours}
    kept = [stanza for stanza in host_status_text.split("\n\n")
            if stanza.strip() and _stanza_package(stanza) not in names]
    added = [_stanza(package, version, section, description, architecture=architecture,
                     maintainer="NVIDIA Corporation"
                     if package in ("nvidia-l4t-core", "nvidia-jetpack")
                     else "cudatools <cudatools@nvidia.com>").rstrip("\n")
             for package, version, section, description in ours]
    return "\n\n".join(stanza.strip("\n") for stanza in kept + added) + "\n"


def _stanza_package(stanza):
    for line in stanza.splitlines():
        if line.startswith("Package:"):
            return line.split(":", 1)[1].strip()
    return None


def device_json(name, profile):
    """/etc/simjetson/device.json, read by the JetPack doubles (see docs/internals.md)."""
    release = profile.release
    return json.dumps({
        "name": name,
        "profile": profile.name,
        "module": profile.module.slug,
        "model": profile.model,
        "soc": profile.module.soc,
        "compute_capability": profile.module.compute_capability,
        "memory_mib": profile.module.memory_mib,
        "dla_cores": profile.module.dla_cores,
        "l4t": release.l4t,
        "jetpack": release.jetpack,
        "tensorrt_version": release.tensorrt_version,
        "cuda_version": release.cuda_version,
        "build_seconds": profile.build_seconds,
        "infer_ms": profile.infer_ms,
    }, indent=2) + "\n"


def sshd_config(name, address, port, log_level="INFO", kex=None):
    """A complete sshd_config for the device (it replaces the host's inside the device).

    log_level VERBOSE makes sshd log every session it starts and the bytes of every
    connection (bench/ counts remote executions and traffic per device from it). kex: the
    key exchanges the device's own OpenSSH offers (profiles.Release.ssh_kex), None for the
    host sshd's defaults.
    """
    return """# SIMULATED Jetson {name}: sshd of the simulated fleet (tests/fleet/device_files.py)
ListenAddress {address}:{port}
HostKey /etc/ssh/ssh_host_ed25519_key
PidFile /run/sshd.pid
AuthorizedKeysFile /etc/ssh/simjetson_authorized_keys
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
UseDNS no
PrintMotd no
PrintLastLog no
X11Forwarding no
# Ansible forks and ControlPersist multiplexing open many sessions at once.
MaxStartups 256
MaxSessions 256
AcceptEnv LANG LC_*
Subsystem sftp internal-sftp
LogLevel {log_level}
""".format(name=name, address=address, port=port, log_level=log_level) + (
        "KexAlgorithms {}\n".format(kex) if kex else "")
