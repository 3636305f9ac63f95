"""Hardware and software profiles of the simulated Jetsons.

A profile is a module (the hardware: device tree, SoC, memory) combined with an L4T
release (the software: nv_tegra_release, dpkg versions of TensorRT / CUDA / cuDNN).
`--hosts` names them as `kind` (the module's default release), `kind@l4t` or `kind@l4t+trtN`.

Sources: docs/reference/jetson-platforms.md (module table, the R32.7.1 / R32.3.1 /
R35.4.1 release lines, the JetPack 4.6 dpkg versions, the L4T -> component table, the
Jetson Thor section). Values not in that reference (GCIDs and dates of other releases, exact
dpkg build numbers) follow the same formats and are plausible, not verified against a device.

JetPack 7: `thor` (7.1, L4T 38.4.0, TensorRT 10.13), `orin@39.2.1` and `thor@39.2.1` (7.2.1,
TensorRT 10.16) run Python 3.12 (device_python.py). TensorRT 11 (`orin@39.2.1+trt11`,
`thor@39.2.1+trt11`): TensorRT 11.4.1 supports JetPack 7.2.2 and later on AGX Orin and Thor,
installed from NVIDIA's SBSA packages (no JetPack-specific package), and the L4T release of
JetPack 7.2.2 is not known here (docs/reference/jetson-platforms.md). ASSUMED: such a device
runs L4T 39.2.1 (the newest L4T known, JetPack 7.2.1; its nv_tegra_release, CUDA 13.2 and
cuDNN 9.20 unchanged) with TensorRT 11.4.1.6 in place of 10.16: packages `tensorrt`,
`libnvinfer11`, `libnvinfer-plugin11`, `libnvonnxparsers11`, `libnvinfer-bin` and
`python3-libnvinfer`, version 11.4.1.6-1+cuda13.2 (the spelling of 10.x's packages with the
major bumped, the build number as the unit tests spell it: not seen on a Jetson). The
platform detection keys it by the TensorRT it finds (..._l4t39.2.1_trt11.4.1) and warns that
L4T 39.2.1's JetPack ships 10.16. A release's name (the text after `@`) is its L4T, with
`+trtN` where it has another TensorRT than its JetPack's.
"""

import re
from dataclasses import dataclass, field

DEFAULT_PORT = 2222


@dataclass(frozen=True)
class Module:
    kind: str                       # the --hosts name and the inventory group
    slug: str                       # platform detection's module name
    model: str                      # /sys/firmware/devicetree/base/model
    compatible: tuple               # most specific first
    soc: str
    compute_capability: str
    memory_mib: int
    dla_cores: int
    board: str                      # BOARD field of nv_tegra_release on R32/R35
    default_l4t: str
    l4t_majors: tuple               # the L4T majors NVIDIA released for this module
    build_seconds: float            # emulated engine build time (short for tests)
    infer_ms: float                 # emulated SSD-300 inference latency
    model_by_l4t_major: dict = field(default_factory=dict)  # the string changed on R35

    @property
    def group(self):
        """Ansible group names must not contain '-'."""
        return self.kind.replace("-", "_")


@dataclass(frozen=True)
class Release:
    l4t: str
    jetpack: str
    gcid: str
    date: str                       # exactly as printed, incl. the double space of %e
    tensorrt_version: str           # what tensorrt.__version__ reports
    tensorrt_deb: str               # version of the `tensorrt` meta package
    nvinfer_deb: str                # version of libnvinfer*, python3-libnvinfer, uff, gs
    cuda_version: str
    cuda_toolkit_deb: str
    cudart_deb: str
    cudnn_package: str
    cudnn_deb: str
    l4t_core_deb: str
    jetpack_deb: str = ""           # nvidia-jetpack meta package ("" = not shipped)
    board: str = ""                 # overrides Module.board (R36 prints "generic")
    has_uff: bool = True            # TensorRT 10 dropped UFF and graphsurgeon
    tensorrt_tag: str = ""          # "trt11": TensorRT installed apart from the JetPack's

    @property
    def name(self):
        """What `--hosts kind@NAME` says: the L4T release, +trtN when TensorRT is not the
        JetPack's (RELEASES is keyed by it)."""
        return "{}+{}".format(self.l4t, self.tensorrt_tag) if self.tensorrt_tag else self.l4t

    @property
    def major(self):
        return int(self.l4t.split(".")[0])

    @property
    def revision(self):
        return self.l4t.split(".", 1)[1]

    @property
    def nvinfer_major(self):
        return int(self.tensorrt_version.split(".")[0])

    @property
    def cuda_dashed(self):
        return self.cuda_version.replace(".", "-")

    @property
    def ssh_kex(self):
        """The key exchanges the device's sshd offers by default (its Ubuntu's OpenSSH)."""
        return SSH_KEX_BY_L4T_MAJOR[self.major]


# What the sshd of each L4T line's Ubuntu offers by default: R32 = 18.04 (OpenSSH 7.6p1), R35 =
# 20.04 (8.2p1), R36 = 22.04 (8.9p1), R38 / R39 (JetPack 7) = 24.04 (9.6p1, taken to offer what
# 22.04's does). The post-quantum sntrup761x25519 exchange became a default in OpenSSH 8.5, so
# R36 and later devices offer it. The simulated devices run the host's newer sshd,
# which would offer it to every device: its client side costs ~0.13 s of controller CPU per
# connection here against ~0.02 s for curve25519, which would skew the benchmark's per-device
# controller CPU away from what a real JetPack 4/5 fleet costs.
_CLASSIC_KEX = ("curve25519-sha256,curve25519-sha256@libssh.org,ecdh-sha2-nistp256,"
                "ecdh-sha2-nistp384,ecdh-sha2-nistp521,diffie-hellman-group-exchange-sha256,"
                "diffie-hellman-group16-sha512,diffie-hellman-group18-sha512,"
                "diffie-hellman-group14-sha256")
SSH_KEX_BY_L4T_MAJOR = {
    32: _CLASSIC_KEX + ",diffie-hellman-group14-sha1",
    35: _CLASSIC_KEX,
    36: "sntrup761x25519-sha512@openssh.com," + _CLASSIC_KEX,
}
SSH_KEX_BY_L4T_MAJOR[38] = SSH_KEX_BY_L4T_MAJOR[39] = SSH_KEX_BY_L4T_MAJOR[36]

MODULES = {m.kind: m for m in (
    Module("nano", "jetson-nano", "NVIDIA Jetson Nano Developer Kit",
           ("nvidia,p3449-0000-b00+p3448-0000-b00", "nvidia,jetson-nano", "nvidia,tegra210"),
           "tegra210", "5.3", 3964, 0, "t210ref", "32.7.1", (32,), 3.0, 40.0),
    Module("tx2", "jetson-tx2", "NVIDIA Jetson TX2 Developer Kit",
           ("nvidia,p2771-0000", "nvidia,tegra186"),
           "tegra186", "6.2", 7850, 0, "t186ref", "32.3.1", (32,), 2.0, 25.0),
    Module("xavier", "jetson-agx-xavier", "NVIDIA Jetson AGX Xavier Developer Kit",
           ("nvidia,p2972-0000", "nvidia,tegra194"),
           "tegra194", "7.2", 31011, 2, "t186ref", "32.4.4", (32, 35), 1.0, 9.0,
           # JetPack 5 device trees print a terse model string for the AGX Xavier.
           model_by_l4t_major={35: "Jetson-AGX"}),
    Module("xavier-nx", "jetson-xavier-nx", "NVIDIA Jetson Xavier NX Developer Kit",
           ("nvidia,p3509-0000+p3668-0001", "nvidia,tegra194"),
           "tegra194", "7.2", 7766, 2, "t186ref", "32.7.1", (32, 35), 2.0, 12.0),
    Module("orin", "jetson-agx-orin", "NVIDIA Jetson AGX Orin Developer Kit",
           ("nvidia,p3737-0000+p3701-0005", "nvidia,p3701-0005", "nvidia,tegra234"),
           "tegra234", "8.7", 30536, 2, "t186ref", "36.4.3", (36, 39), 1.0, 4.0),
    # Orin Nano 8 GB developer kit (module p3767-0005 on carrier p3768) and Orin NX 16 GB
    # (p3767-0000). JetPack 6.2 (L4T 36.4.3) added the "Super" power modes, and the device
    # tree model string of a board flashed for them ends in "Super"; SoC, compute
    # capability and DLA count do not change. Part numbers and model strings: reference
    # docs/reference/jetson-platforms.md. MemTotal values are plausible, not read from a
    # device (8 GB and 16 GB modules, less the carve-outs).
    Module("orin-nano", "jetson-orin-nano", "NVIDIA Jetson Orin Nano Developer Kit",
           ("nvidia,p3768-0000+p3767-0005", "nvidia,p3767-0005", "nvidia,tegra234"),
           "tegra234", "8.7", 7620, 0, "generic", "36.4.3", (36, 39), 1.5, 9.0),
    Module("orin-nano-super", "jetson-orin-nano",
           "NVIDIA Jetson Orin Nano Engineering Reference Developer Kit Super",
           ("nvidia,p3768-0000+p3767-0005", "nvidia,p3767-0005", "nvidia,tegra234"),
           "tegra234", "8.7", 7620, 0, "generic", "36.4.3", (36, 39), 1.2, 7.0),
    Module("orin-nx", "jetson-orin-nx", "NVIDIA Jetson Orin NX Engineering Reference Developer Kit",
           ("nvidia,p3768-0000+p3767-0000", "nvidia,p3767-0000", "nvidia,tegra234"),
           "tegra234", "8.7", 15656, 2, "generic", "36.4.3", (36, 39), 1.2, 6.0),
    # AGX Thor developer kit: a T5000 module (p3834-0008) on the p4071 carrier, model and
    # compatible as the reference's Jetson Thor section gives them. JetPack 7.0 / 7.1 (L4T 38)
    # are Thor only, 7.2 (L4T 39) adds Orin (the Orin kinds above run R36 and R39). MemTotal of
    # the 128 GB module is plausible, not read from a device; build and inference times are
    # emulated, a little faster than the AGX Orin's.
    Module("thor", "jetson-t5000", "NVIDIA Jetson AGX Thor Developer Kit",
           ("nvidia,p4071-0000+p3834-0008", "nvidia,p3834-0008", "nvidia,tegra264"),
           "tegra264", "11.0", 125517, 0, "generic", "38.4.0", (38, 39), 0.8, 3.0),
)}

RELEASES = {r.name: r for r in (
    Release("32.3.1", "4.3", "18186506", "Tue Dec 10 07:03:07 UTC 2019",
            "6.0.1.10", "6.0.1.10-1+cuda10.0", "6.0.1-1+cuda10.0",
            "10.0", "10.0.326-1", "10.0.326-1", "libcudnn7", "7.6.3.28-1+cuda10.0",
            "32.3.1-20191209225816"),
    Release("32.4.4", "4.4.1", "23942405", "Fri Oct 16 19:37:08 UTC 2020",
            "7.1.3.0", "7.1.3.0-1+cuda10.2", "7.1.3-1+cuda10.2",
            "10.2", "10.2.89-1", "10.2.89-1", "libcudnn8", "8.0.0.180-1+cuda10.2",
            "32.4.4-20201016123640", jetpack_deb="4.4.1-b50"),
    # 32.7.2+ ship TensorRT 8.2.1.9 (reference dpkg section); 32.7.1 shipped 8.2.1.8.
    Release("32.7.1", "4.6.1", "29818004", "Sat Feb 19 17:05:08 UTC 2022",
            "8.2.1.8", "8.2.1.8-1+cuda10.2", "8.2.1-1+cuda10.2",
            "10.2", "10.2.460-1", "10.2.300-1", "libcudnn8", "8.2.1.32-1+cuda10.2",
            "32.7.1-20220219090432", jetpack_deb="4.6.1-b110"),
    Release("35.4.1", "5.1.2", "33958178", "Tue Aug  1 19:57:35 UTC 2023",
            "8.5.2.2", "8.5.2.2-1+cuda11.4", "8.5.2-1+cuda11.4",
            "11.4", "11.4.19-1", "11.4.298-1", "libcudnn8", "8.6.0.166-1+cuda11.4",
            "35.4.1-20230801124926", jetpack_deb="5.1.2-b104"),
    Release("36.4.3", "6.2", "38968081", "Wed Jan  8 01:49:37 UTC 2025",
            "10.3.0", "10.3.0.30-1+cuda12.5", "10.3.0.30-1+cuda12.5",
            "12.6", "12.6.11-1", "12.6.68-1", "libcudnn9-cuda-12", "9.3.0.75-1",
            "36.4.3-20250107174145", jetpack_deb="6.2+b77", board="generic", has_uff=False),
    # JetPack 6.2.1 and 7.x: versions from the reference's L4T table (TensorRT, CUDA, cuDNN
    # and nvidia-l4t-core as the OE4T recipes name them). The nvidia-jetpack meta package
    # version of these releases is not known here: not listed.
    Release("36.4.4", "6.2.1", "41062509", "Mon Jun 16 16:07:13 UTC 2025",
            "10.3.0", "10.3.0.30-1+cuda12.5", "10.3.0.30-1+cuda12.5",
            "12.6", "12.6.11-1", "12.6.68-1", "libcudnn9-cuda-12", "9.3.0.75-1",
            "36.4.4-20250616085344", board="generic", has_uff=False),
    Release("38.4.0", "7.1", "43443517", "Wed Dec 31 00:15:19 UTC 2025",
            "10.13.3.9", "10.13.3.9-1+cuda13.0", "10.13.3.9-1+cuda13.0",
            "13.0", "13.0.0-1", "13.0.48-1", "libcudnn9-cuda-13", "9.12.0.46-1",
            "38.4.0-20251230160601", board="generic", has_uff=False),
    Release("39.2.1", "7.2.1", "46758480", "Fri Aug  7 05:54:22 AM UTC 2026",
            "10.16.2.10", "10.16.2.10-1+cuda13.2", "10.16.2.10-1+cuda13.2",
            "13.2", "13.2.1-1", "13.2.75-1", "libcudnn9-cuda-13", "9.20.0.46-1",
            "39.2.1-20260806224157", board="generic", has_uff=False),
    # TensorRT 11.4.1 on L4T 39.2.1 (ASSUMED for JetPack 7.2.2, whose L4T is not known: see
    # the module docstring); everything but TensorRT is 39.2.1's. The doubles' trt11
    # generation: strongly typed, ONNX only.
    Release("39.2.1", "7.2.1", "46758480", "Fri Aug  7 05:54:22 AM UTC 2026",
            "11.4.1.6", "11.4.1.6-1+cuda13.2", "11.4.1.6-1+cuda13.2",
            "13.2", "13.2.1-1", "13.2.75-1", "libcudnn9-cuda-13", "9.20.0.46-1",
            "39.2.1-20260806224157", board="generic", has_uff=False, tensorrt_tag="trt11"),
)}


class ProfileError(ValueError):
    """A --hosts / --build-seconds value that names no known profile."""


@dataclass(frozen=True)
class Profile:
    module: Module
    release: Release
    build_seconds: float
    infer_ms: float

    @property
    def name(self):
        return "{}@{}".format(self.module.kind, self.release.name)

    @property
    def model(self):
        return self.module.model_by_l4t_major.get(self.release.major, self.module.model)

    @property
    def board(self):
        return self.release.board or self.module.board


def profile(spec, build_seconds=None):
    """'nano', 'xavier@35.4.1' or 'orin@39.2.1+trt11' -> Profile (ProfileError says what
    exists)."""
    kind, _, l4t = spec.partition("@")
    module = MODULES.get(kind)
    if module is None:
        raise ProfileError("unknown device kind {!r} in {!r}; known kinds: {}".format(
            kind, spec, ", ".join(sorted(MODULES))))
    l4t = l4t or module.default_l4t
    release = RELEASES.get(l4t)
    if release is None:
        raise ProfileError("no simulated L4T release {!r} in {!r}; known releases: {}".format(
            l4t, spec, ", ".join(sorted(RELEASES))))
    if release.major not in module.l4t_majors:
        raise ProfileError("{!r}: NVIDIA never released L4T {} for {} (it runs R{})".format(
            spec, release.l4t, module.slug, "/R".join(str(m) for m in module.l4t_majors)))
    seconds = module.build_seconds if build_seconds is None else build_seconds
    return Profile(module, release, seconds, module.infer_ms)


_COUNT_ITEM = re.compile(r"^([a-z0-9-]+(?:@[0-9.]+(?:\+trt[0-9]+)?)?)=([0-9]+)$")


def parse_hosts(text):
    """'nano=2,xavier@35.4.1=1,orin@39.2.1+trt11=1' -> [('nano', 2), ('xavier@35.4.1', 1),
    ('orin@39.2.1+trt11', 1)], validated."""
    items = []
    for raw in text.split(","):
        item = raw.strip()
        match = _COUNT_ITEM.match(item)
        if not match or int(match.group(2)) < 1:
            raise ProfileError("--hosts item {!r} is not KIND[@L4T[+trtN]]=COUNT with COUNT "
                               ">= 1 (example: nano=2,xavier@35.4.1=1,orin@39.2.1+trt11=1)"
                               .format(item))
        profile(match.group(1))  # validates the name early
        items.append((match.group(1), int(match.group(2))))
    return items


def parse_build_seconds(text):
    """'nano=30,xavier@35.4.1=8,tx2-1=5' -> {key: seconds}; keys are kind, kind@l4t or host."""
    overrides = {}
    if not text:
        return overrides
    for raw in text.split(","):
        key, sep, value = raw.strip().partition("=")
        try:
            seconds = float(value)
        except ValueError:
            seconds = -1.0
        if not sep or not key or seconds < 0:
            raise ProfileError("--build-seconds item {!r} is not NAME=SECONDS with SECONDS >= 0 "
                               "(example: nano=30,xavier=8)".format(raw))
        overrides[key] = seconds
    return overrides


def plan_hosts(hosts_text, build_seconds_text=""):
    """[(host name, Profile)] in --hosts order; names are kind-N numbered per kind."""
    overrides = parse_build_seconds(build_seconds_text)
    counters = {}
    plan = []
    for spec, count in parse_hosts(hosts_text):
        kind = spec.partition("@")[0]
        base = profile(spec)
        for _ in range(count):
            counters[kind] = counters.get(kind, 0) + 1
            name = "{}-{}".format(kind, counters[kind])
            # Most specific override wins: host name, then kind@l4t, then kind.
            seconds = next((overrides[key] for key in (name, base.name, kind)
                            if key in overrides), None)
            plan.append((name, profile(spec, seconds)))
    unused = set(overrides) - {n for n, _ in plan} - {p.name for _, p in plan} \
        - {p.module.kind for _, p in plan}
    if unused:
        raise ProfileError("--build-seconds names {} which match no host, kind or kind@l4t "
                           "of this fleet".format(", ".join(sorted(unused))))
    return plan
