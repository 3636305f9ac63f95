"""Platform detection on laid-out roots: every reference profile and the variants real
devices print."""

import json
import os
import platform as pyplatform
import re

import pytest

from builder import cli
from builder.errors import UserError
from builder.platform.detect import (
    JETPACK_PACKAGE_PREFIXES,
    L4T_RELEASES,
    detect_platform,
    parse_dpkg_status,
    parse_nv_tegra_release,
    supported,
    tensorrt_generation,
)
from builder.trt.adapter import BuildOptions
from builder.trt.build import check_options_for_platform
from tests.unit.platform_roots import PROFILES, THOR_R38_2_0_RELEASE, lay_out


@pytest.fixture
def own_subcommands(monkeypatch):
    """Only the subcommands under test (a sibling that is not written yet must not fail
    these tests; test_catalog.py runs the full CLI in a subprocess)."""
    monkeypatch.setattr(cli, "SUBCOMMANDS", (("check", "commands.check"),
                                             ("platform", "commands.platform")))


# ------------------------------------------------------------------ every profile


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_profile(tmp_path, profile):
    facts = detect_platform(lay_out(tmp_path, profile))
    expected = PROFILES[profile]["expect"]
    assert {key: facts[key] for key in expected} == expected
    assert facts["model"] == PROFILES[profile]["model"]
    assert facts["python"] == pyplatform.python_version()
    assert facts["warnings"] == []
    assert re.match(r"^[a-z0-9._-]+$", facts["platform_id"])
    assert json.loads(json.dumps(facts)) == facts


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_profile_with_sys_firmware_device_tree(tmp_path, profile):
    facts = detect_platform(lay_out(tmp_path, profile, device_tree="sys"))
    assert facts["platform_id"] == PROFILES[profile]["expect"]["platform_id"]


def test_proc_device_tree_symlink_that_points_outside_the_root(tmp_path):
    root = lay_out(tmp_path, "nano-32.7.1", device_tree="sys")
    os.makedirs(os.path.join(root, "proc"), exist_ok=True)
    # As on a real system: an absolute link, which dangles below a test root.
    os.symlink("/sys/firmware/devicetree/base-does-not-exist",
               os.path.join(root, "proc/device-tree"))
    assert detect_platform(root)["module"] == "jetson-nano"


def test_supported_per_profile(tmp_path):
    expected = {"nano-32.7.1": "trt8_0", "tx2-32.3.1": "trt5_6", "xavier-32.4.4": "trt7",
                "xavier-35.4.1": "trt8_4", "xavier-nx-35.3.1": "trt8_4",
                "orin-nano-36.3": "trt8_4", "agx-orin-36.4.3": "trt10",
                "agx-orin-36.4.4": "trt10", "agx-orin-39.2.1": "trt10", "thor-38.4.0": "trt10",
                "thor-39.2.1": "trt10"}
    assert sorted(expected) == sorted(PROFILES)
    for profile, generation in expected.items():
        root = tmp_path / profile
        assert supported(detect_platform(lay_out(root, profile))) == (True, generation)


# ------------------------------------------------------------------ nv_tegra_release variants


@pytest.mark.parametrize(("text", "l4t"), [
    ("# R32 (release), REVISION: 7.1, GCID: 1, BOARD: t210ref, EABI: aarch64, DATE: x\n",
     "32.7.1"),
    ("#R32 (release),REVISION:7.1,GCID:1\n", "32.7.1"),
    ("#   R35  (release) ,  REVISION:   4.1 ,  BOARD: t186ref , DATE: Tue Aug  1 19:57:35\n",
     "35.4.1"),
    ("\n\nsome banner line\n# R36 (release), REVISION: 4.0, BOARD: generic\nabc */usr/lib\n",
     "36.4.0"),
    ("# R32 (release), BOARD: weird, REVISION: 5.0, DATE: x\n", "32.5.0"),
    ("# R32 (release), revision: 6.1\n", "32.6.1"),
    ("# R32 (release), REVISION: 1.0\n", "32.1.0"),
    ("# R32 (release)\n", None),
    ("garbage\n", None),
    ("", None),
])
def test_parse_nv_tegra_release(text, l4t):
    assert parse_nv_tegra_release(text) == l4t


def test_two_space_date_and_extra_lines(tmp_path):
    release = ("\n# R32 (release), REVISION: 7.1, GCID: 29818004, BOARD: t210ref, "
               "EABI: aarch64, DATE: Sat Feb  5 17:05:08 UTC 2022\nINSTALL_TYPE=\n"
               "deadbeef */usr/lib/aarch64-linux-gnu/tegra/libcuda.so.1.1\n")
    facts = detect_platform(lay_out(tmp_path, "nano-32.7.1", release=release))
    assert (facts["l4t"], facts["jetpack"]) == ("32.7.1", "4.6.1")


def test_r36_revision_x_0_matches_the_table_row(tmp_path):
    packages = dict(PROFILES["agx-orin-36.4.3"]["packages"],
                    **{"nvidia-l4t-core": "36.4.0-20240912212859"})
    facts = detect_platform(lay_out(
        tmp_path, "agx-orin-36.4.3", packages=packages,
        release="# R36 (release), REVISION: 4.0, GCID: 1, BOARD: generic, EABI: aarch64\n"))
    assert (facts["l4t"], facts["jetpack"]) == ("36.4.0", "6.1")
    assert facts["warnings"] == []


def test_missing_release_file_falls_back_to_dpkg(tmp_path):
    packages = dict(PROFILES["nano-32.7.1"]["packages"],
                    **{"nvidia-l4t-core": "32.7.4-20230608212426"})
    facts = detect_platform(lay_out(tmp_path, "nano-32.7.1", release=None, packages=packages))
    assert facts["l4t"] == "32.7.4"
    assert facts["jetpack"] == "4.6.4"
    assert facts["platform_id"] == "jetson-nano_l4t32.7.4_trt8.2.1"
    assert facts["warnings"] == []


def test_unparseable_release_file_falls_back_to_dpkg_with_warning(tmp_path):
    facts = detect_platform(lay_out(tmp_path, "nano-32.7.1", release="corrupted\n"))
    assert facts["l4t"] == "32.7.1"
    assert any("using nvidia-l4t-core 32.7.1" in w for w in facts["warnings"])


def test_release_file_and_dpkg_disagree(tmp_path):
    packages = dict(PROFILES["nano-32.7.1"]["packages"],
                    **{"nvidia-l4t-core": "32.7.4-20230608212426"})
    facts = detect_platform(lay_out(tmp_path, "nano-32.7.1", packages=packages))
    assert facts["l4t"] == "32.7.1"
    assert any("nvidia-l4t-core package is 32.7.4" in w for w in facts["warnings"])


def test_no_l4t_anywhere(tmp_path):
    packages = dict(PROFILES["nano-32.7.1"]["packages"])
    del packages["nvidia-l4t-core"]
    facts = detect_platform(lay_out(tmp_path, "nano-32.7.1", release=None, packages=packages))
    assert facts["l4t"] is None and facts["jetpack"] is None
    assert facts["module"] == "jetson-nano"
    assert facts["platform_id"] == "jetson-nano_l4tunknown_trt8.2.1"
    assert any("L4T release unknown" in w for w in facts["warnings"])


@pytest.mark.parametrize(("revision", "l4t", "known"), [
    ("7.7", "32.7.7", "32.7.1 = JetPack 4.6.1, 32.7.2 = JetPack 4.6.2"),
    # A later 36.4.x / 36.5.x is not given the JetPack of its neighbours (36.4.4 started
    # 6.2.1, 36.5.0 6.2.2): the warning lists them instead.
    ("4.9", "36.4.9", "known 36.4 releases: 36.4 = JetPack 6.1, 36.4.3 = JetPack 6.2, "
                      "36.4.4 = JetPack 6.2.1, 36.4.7 = JetPack 6.2.1"),
    ("5.2", "36.5.2", "known 36.5 releases: 36.5.0 = JetPack 6.2.2"),
    ("2.2", "39.2.2", "known 39.2 releases: 39.2.0 = JetPack 7.2, 39.2.1 = JetPack 7.2.1"),
])
def test_unknown_point_release_is_not_an_error(tmp_path, revision, l4t, known):
    major = l4t.split(".")[0]
    release = "# R{} (release), REVISION: {}, BOARD: generic\n".format(major, revision)
    packages = dict(PROFILES["nano-32.7.1"]["packages"])
    del packages["nvidia-l4t-core"]
    facts = detect_platform(lay_out(tmp_path, "nano-32.7.1", release=release,
                                    packages=packages))
    assert facts["l4t"] == l4t
    assert facts["jetpack"] is None
    assert facts["platform_id"] == "jetson-nano_l4t{}_trt8.2.1".format(l4t)
    [warning] = facts["warnings"]
    assert "L4T {} is not in the JetPack table; JetPack unknown".format(l4t) in warning
    assert known in warning


@pytest.mark.parametrize(("release", "l4t_core", "l4t", "jetpack"), [
    ("# R40 (release), REVISION: 1.0, GCID: 1, BOARD: generic, EABI: aarch64\n",
     "40.1.0-20270101000000", "40.1.0", None),
    (None, "40.1.0-20270101000000", "40.1.0", None),   # no release file: nvidia-l4t-core
])
def test_unknown_future_release_is_detected_from_its_packages(tmp_path, release, l4t_core, l4t,
                                                              jetpack):
    """L4T 40 is in no table: module, SoC, TensorRT, CUDA and cuDNN still come from the device,
    and the one warning says that the JetPack is unknown (and why)."""
    packages = {"nvidia-l4t-core": l4t_core, "tensorrt": "11.4.1.6-1+cuda13.4",
                "libnvinfer11": "11.4.1.6-1+cuda13.4", "libcudnn9-cuda-13": "9.24.0.10-1",
                "cuda-toolkit-13-4": "13.4.0-1"}
    facts = detect_platform(lay_out(tmp_path, "thor-39.2.1", release=release,
                                    packages=packages))
    assert (facts["l4t"], facts["jetpack"]) == (l4t, jetpack)
    assert (facts["module"], facts["soc"], facts["compute_capability"], facts["dla_cores"]) == (
        "jetson-t5000", "tegra264", "11.0", 0)
    assert (facts["tensorrt"], facts["cuda"], facts["cudnn"]) == ("11.4.1", "13.4", "9.24.0")
    assert facts["platform_id"] == "jetson-t5000_l4t40.1.0_trt11.4.1"
    [warning] = facts["warnings"]
    assert warning.startswith("L4T 40.1.0 is not in the JetPack table; JetPack unknown (newer "
                              "than every release the table knows, the newest being L4T "
                              "39.2.1 = JetPack 7.2.1)")


def test_every_table_row_resolves(tmp_path):
    for l4t, (jetpack, _trt, _cuda, _cudnn) in L4T_RELEASES.items():
        major, revision = l4t.split(".", 1)
        root = tmp_path / l4t
        lay_out(root, "nano-32.7.1", packages={},
                release="# R{} (release), REVISION: {}\n".format(major, revision))
        facts = detect_platform(str(root))
        assert (facts["l4t"], facts["jetpack"]) == (l4t, jetpack)


# ------------------------------------------------------------------ device tree variants


@pytest.mark.parametrize(("compatible", "model", "module", "dla"), [
    (["nvidia,p3768-0000+p3767-0000", "nvidia,p3767-0000", "nvidia,tegra234"],
     "NVIDIA Jetson Orin NX Engineering Reference Developer Kit", "jetson-orin-nx", 2),
    (["nvidia,p3768-0000+p3767-0001", "nvidia,tegra234"], "x", "jetson-orin-nx", 1),
    (["nvidia,p3768-0000+p3767-0003", "nvidia,tegra234"], "x", "jetson-orin-nano", 0),
    (["nvidia,p3768-0000+p3767-0004", "nvidia,tegra234"], "x", "jetson-orin-nano", 0),
    (["nvidia,p3509-0000+p3636-0001", "nvidia,tegra186"], "x", "jetson-tx2-nx", 0),
    (["nvidia,p3449-0000-b00+p3668-0000-b00", "nvidia,tegra194"], "x", "jetson-xavier-nx", 2),
    (["nvidia,p2888-0001", "nvidia,tegra194"], "x", "jetson-agx-xavier", 2),
    (["NVIDIA,P3448-0002", "nvidia,Tegra210"], "x", "jetson-nano", 0),
    (["nvidia,p2371-2180", "nvidia,tegra210"], "x", "jetson-tx1", 0),
    # Model string fallbacks (compatible without board ids), case and spacing tolerant.
    (["nvidia,tegra194"], "NVIDIA  jetson-XAVIER   nx Developer Kit", "jetson-xavier-nx", 2),
    (["nvidia,tegra194"], "Jetson-AGX", "jetson-agx-xavier", 2),
    (["nvidia,tegra234"], "Jetson-AGX", "jetson-agx-orin", 2),
    (["nvidia,tegra234"], "NVIDIA Orin Nano Developer Kit", "jetson-orin-nano", 0),
    (["nvidia,tegra186"], "quill TX2", "jetson-tx2", 0),
    (["nvidia,jetson-nano", "nvidia,tegra210"], "custom carrier", "jetson-nano", 0),
    # p3767 with an unknown SKU: fall back to the model string.
    (["nvidia,p3768-0000+p3767-0009", "nvidia,tegra234"], "Jetson Orin NX", "jetson-orin-nx",
     None),
])
def test_module_identification(tmp_path, compatible, model, module, dla):
    facts = detect_platform(lay_out(tmp_path, "orin-nano-36.3", compatible=compatible,
                                    model=model, packages={}))
    assert (facts["module"], facts["dla_cores"]) == (module, dla)
    assert facts["platform_id"].startswith(module + "_")


def test_soc_from_module_when_compatible_has_no_tegra_entry(tmp_path):
    facts = detect_platform(lay_out(tmp_path, "tx2-32.3.1", compatible=["nvidia,p2771-0000"]))
    assert (facts["module"], facts["soc"], facts["compute_capability"]) == (
        "jetson-tx2", "tegra186", "6.2")


def test_unrecognised_module_is_keyed_by_soc(tmp_path):
    facts = detect_platform(lay_out(tmp_path, "xavier-35.4.1",
                                    compatible=["acme,robot-7", "nvidia,tegra194"],
                                    model="ACME Robot Controller"))
    assert facts["module"] is None and facts["dla_cores"] is None
    assert facts["soc"] == "tegra194" and facts["compute_capability"] == "7.2"
    assert facts["platform_id"] == "unknown-tegra194_l4t35.4.1_trt8.5.2"
    assert any("module not recognised" in w for w in facts["warnings"])


def test_module_contradicting_the_soc_is_not_trusted(tmp_path):
    facts = detect_platform(lay_out(tmp_path, "xavier-35.4.1",
                                    compatible=["nvidia,p3448-0000", "nvidia,tegra194"]))
    assert facts["module"] is None
    assert any("jetson-nano (SoC tegra210) but its SoC entry is tegra194" in w
               for w in facts["warnings"])


def test_release_file_without_device_tree(tmp_path):
    facts = detect_platform(lay_out(tmp_path, "nano-32.7.1", device_tree=None))
    assert facts["module"] is None and facts["soc"] is None
    assert facts["l4t"] == "32.7.1"
    assert facts["platform_id"] == "unknown-tegra_l4t32.7.1_trt8.2.1"
    assert any("not recognised" in w for w in facts["warnings"])


# ------------------------------------------------------------------ Jetson Thor and JetPack 7


def _jetpack7_packages(l4t_core, tensorrt, cuda, cudnn):
    """dpkg packages of a JetPack 7 device; ``tensorrt`` is the full Debian version."""
    packages = {"tensorrt": tensorrt, "libcudnn9-cuda-13": cudnn,
                "cuda-toolkit-" + "-".join(cuda.split(".")[:2]): cuda}
    packages["libnvinfer" + tensorrt.split(".")[0]] = tensorrt
    packages["python3-libnvinfer"] = tensorrt
    if l4t_core:
        packages["nvidia-l4t-core"] = l4t_core
    return packages


def test_thor_on_jetpack_7_0(tmp_path):
    """The AGX Thor developer kit on L4T 38.2.0 (release line, model and compatible as
    rbonghi/jetson_stats#711 prints them): a T5000, SoC tegra264, compute 11.0, no DLA."""
    packages = _jetpack7_packages(None, "10.13.3.9-1+cuda13.0", "13.0.0-1", "9.12.0.46-1")
    facts = detect_platform(lay_out(tmp_path, "thor-38.4.0", release=THOR_R38_2_0_RELEASE + "\n",
                                    packages=packages))
    assert {key: facts[key] for key in ("module", "soc", "compute_capability", "l4t", "jetpack",
                                        "tensorrt", "cuda", "cudnn", "dla_cores")} == {
        "module": "jetson-t5000", "soc": "tegra264", "compute_capability": "11.0",
        "l4t": "38.2.0", "jetpack": "7.0", "tensorrt": "10.13.3", "cuda": "13.0",
        "cudnn": "9.12.0", "dla_cores": 0}
    assert facts["platform_id"] == "jetson-t5000_l4t38.2.0_trt10.13.3"
    assert facts["warnings"] == []


@pytest.mark.parametrize(("revision", "jetpack"), [("2", "7.0"), ("2.1", "7.0"), ("2.2", "7.0"),
                                                   ("4", "7.1"), ("4.0", "7.1")])
def test_thor_releases_of_l4t_38(tmp_path, revision, jetpack):
    release = "# R38 (release), REVISION: {}, BOARD: generic, EABI: aarch64\n".format(revision)
    facts = detect_platform(lay_out(tmp_path, "thor-38.4.0", release=release,
                                    packages=_jetpack7_packages(None, "10.13.3.9-1+cuda13.0",
                                                                "13.0.0-1", "9.12.0.46-1")))
    assert facts["jetpack"] == jetpack
    assert facts["warnings"] == []


def test_thor_on_jetpack_7_2_with_tensorrt_11(tmp_path):
    """TensorRT 11.4.1 (NVIDIA's SBSA packages, supported from JetPack 7.2.2 on) installed
    on L4T 39.2.1: the platform_id names the TensorRT installed, and the difference from what
    the JetPack ships (10.16) is a warning, not an error."""
    packages = _jetpack7_packages("39.2.1-20260806224157", "11.4.1.6-1+cuda13.2", "13.2.1-1",
                                  "9.20.0.46-1")
    facts = detect_platform(lay_out(tmp_path, "thor-39.2.1", packages=packages))
    assert {key: facts[key] for key in ("module", "soc", "compute_capability", "l4t", "jetpack",
                                        "tensorrt", "cuda", "dla_cores")} == {
        "module": "jetson-t5000", "soc": "tegra264", "compute_capability": "11.0",
        "l4t": "39.2.1", "jetpack": "7.2.1", "tensorrt": "11.4.1", "cuda": "13.2",
        "dla_cores": 0}
    assert facts["platform_id"] == "jetson-t5000_l4t39.2.1_trt11.4.1"
    assert facts["warnings"] == ["TensorRT 11.4.1 installed, JetPack for L4T 39.2.1 ships 10.16"]


def test_tensorrt_11_is_a_supported_generation(tmp_path):
    """TensorRT 11 is built for (ONNX only, strongly typed): supported, generation trt11."""
    packages = _jetpack7_packages("39.2.1-20260806224157", "11.4.1.6-1+cuda13.2", "13.2.1-1",
                                  "9.20.0.46-1")
    facts = detect_platform(lay_out(tmp_path, "thor-39.2.1", packages=packages))
    assert supported(facts) == (True, "trt11")


def test_thor_on_a_later_7_2_point_release_with_tensorrt_11(tmp_path):
    """A 39.2 release the table does not have yet (JetPack 7.2.2 is the first that TensorRT
    11.4.1 supports): detected from its packages, JetPack unknown, the known 39.2 releases
    named."""
    packages = _jetpack7_packages("39.2.2-20261001000000", "11.4.1.6-1+cuda13.2", "13.2.1-1",
                                  "9.20.0.46-1")
    facts = detect_platform(lay_out(
        tmp_path, "thor-39.2.1", packages=packages,
        release="# R39 (release), REVISION: 2.2, GCID: 1, BOARD: generic, EABI: aarch64\n"))
    assert (facts["module"], facts["l4t"], facts["jetpack"], facts["tensorrt"]) == (
        "jetson-t5000", "39.2.2", None, "11.4.1")
    assert facts["platform_id"] == "jetson-t5000_l4t39.2.2_trt11.4.1"
    [warning] = facts["warnings"]
    assert warning == ("L4T 39.2.2 is not in the JetPack table; JetPack unknown (known 39.2 "
                       "releases: 39.2.0 = JetPack 7.2, 39.2.1 = JetPack 7.2.1)")


@pytest.mark.parametrize(("compatible", "model", "module"), [
    (["nvidia,p4071-0000+p3834-0008", "nvidia,p3834-0008", "nvidia,tegra264"],
     "NVIDIA Jetson AGX Thor Developer Kit", "jetson-t5000"),
    # NVIDIA/jetson-gpio lists p3834-0008 also on the p3971 reference carriers.
    (["nvidia,p3971-0080+p3834-0008", "nvidia,tegra264"], "x", "jetson-t5000"),
    # T4000 (p3834-0000) in the developer kit's carrier: compatible assumed by analogy with
    # the device tree file name tegra264-p4071-0000+p3834-0000 (see the reference).
    (["nvidia,p4071-0000+p3834-0000", "nvidia,p3834-0000", "nvidia,tegra264"], "x",
     "jetson-t4000"),
    (["nvidia,tegra264"], "NVIDIA Jetson T4000 custom carrier", "jetson-t4000"),
    (["nvidia,tegra264"], "Jetson T5000 robot", "jetson-t5000"),
])
def test_thor_modules(tmp_path, compatible, model, module):
    facts = detect_platform(lay_out(tmp_path, "thor-39.2.1", compatible=compatible,
                                    model=model))
    assert (facts["module"], facts["soc"], facts["compute_capability"], facts["dla_cores"]) == (
        module, "tegra264", "11.0", 0)
    assert facts["platform_id"] == module + "_l4t39.2.1_trt10.16.2"
    assert facts["warnings"] == []


@pytest.mark.parametrize(("compatible", "model"), [
    # A p3834 SKU the table does not know (NVIDIA/jetson-gpio lists a p3834-0005).
    (["nvidia,p3971-0050+p3834-0005", "nvidia,tegra264"], "NVIDIA Jetson AGX Thor Developer Kit"),
    (["nvidia,tegra264"], "NVIDIA Jetson AGX Thor Developer Kit"),
    (["nvidia,tegra264"], "Jetson-AGX"),
    (["acme,robot-7", "nvidia,tegra264"], "ACME Robot Controller"),   # only the SoC says Thor
    (["acme,robot-7", "nvidia,tegra264"], None),
])
def test_a_thor_is_never_keyed_unknown(tmp_path, compatible, model):
    facts = detect_platform(lay_out(tmp_path, "thor-39.2.1", compatible=compatible,
                                    model=model))
    assert (facts["module"], facts["soc"], facts["compute_capability"], facts["dla_cores"]) == (
        "jetson-agx-thor", "tegra264", "11.0", 0)
    assert facts["platform_id"] == "jetson-agx-thor_l4t39.2.1_trt10.16.2"
    [warning] = facts["warnings"]
    assert warning.startswith("Jetson Thor module not recognised from the device tree")
    assert "board p3834-0008 is a T5000, p3834-0000 a T4000" in warning


def test_thor_board_with_another_soc_entry_is_not_trusted(tmp_path):
    facts = detect_platform(lay_out(tmp_path, "agx-orin-39.2.1",
                                    compatible=["nvidia,p3834-0008", "nvidia,tegra234"]))
    assert facts["module"] is None and facts["soc"] == "tegra234"
    assert any("jetson-t5000 (SoC tegra264) but its SoC entry is tegra234" in w
               for w in facts["warnings"])


def test_dla_is_refused_on_thor(tmp_path):
    facts = detect_platform(lay_out(tmp_path, "thor-39.2.1"))
    with pytest.raises(UserError, match="jetson-t5000 has no DLA"):
        check_options_for_platform(BuildOptions(dla_core=0), facts)


# ------------------------------------------------------------------ not a Jetson


def test_empty_root_is_not_a_jetson(tmp_path):
    with pytest.raises(UserError) as caught:
        detect_platform(str(tmp_path))
    message = str(caught.value)
    assert message.startswith("not a Jetson")
    assert "/etc/nv_tegra_release" in message and "nvidia,tegraNNN" in message
    assert "/sys/firmware/devicetree/base" in message and str(tmp_path) in message


def test_other_arm_board_is_not_a_jetson(tmp_path):
    directory = tmp_path / "proc" / "device-tree"
    directory.mkdir(parents=True)
    (directory / "model").write_bytes(b"Raspberry Pi 4 Model B Rev 1.4\0")
    (directory / "compatible").write_bytes(b"raspberrypi,4-model-b\0brcm,bcm2711\0")
    with pytest.raises(UserError, match="not a Jetson"):
        detect_platform(str(tmp_path))


# ------------------------------------------------------------------ dpkg


def test_missing_tensorrt_is_a_warning(tmp_path):
    packages = {k: v for k, v in PROFILES["nano-32.7.1"]["packages"].items()
                if "nvinfer" not in k and k != "tensorrt"}
    facts = detect_platform(lay_out(tmp_path, "nano-32.7.1", packages=packages))
    assert facts["tensorrt"] is None and facts["tensorrt_full"] is None
    assert facts["platform_id"] == "jetson-nano_l4t32.7.1_trtnone"
    assert any("TensorRT not found" in w for w in facts["warnings"])
    assert supported(facts) == (False, "TensorRT is not installed")


def test_removed_packages_do_not_count(tmp_path):
    packages = {k: v for k, v in PROFILES["nano-32.7.1"]["packages"].items()
                if k != "tensorrt"}
    removed = ("Package: tensorrt\nStatus: deinstall ok config-files\n"
               "Version: 7.1.3.0-1+cuda10.2\n")
    facts = detect_platform(lay_out(tmp_path, "nano-32.7.1", packages=packages,
                                    extra_stanzas=[removed]))
    assert facts["tensorrt"] == "8.2.1"  # from libnvinfer8, not the removed meta package
    assert facts["tensorrt_full"] == "8.2.1-1+cuda10.2"


def test_versions_that_differ_from_the_table_warn(tmp_path):
    packages = dict(PROFILES["nano-32.7.1"]["packages"], tensorrt="8.2.3.0-1+cuda10.2")
    facts = detect_platform(lay_out(tmp_path, "nano-32.7.1", packages=packages))
    assert facts["tensorrt"] == "8.2.3"
    assert facts["platform_id"] == "jetson-nano_l4t32.7.1_trt8.2.3"
    assert facts["warnings"] == ["TensorRT 8.2.3 installed, JetPack for L4T 32.7.1 ships 8.2.1"]


def test_parse_dpkg_status_real_format():
    text = (
        "Package: libcudnn8\nStatus: install ok installed\nPriority: optional\n"
        "Version: 8.2.1.32-1+cuda10.2\nDescription: cuDNN runtime\n libraries\n"
        " Version: 1.0-not-a-field\n\n"
        "Package: cuda-toolkit-10-2\nStatus: install ok installed\nVersion: 10.2.460-1\n\n"
        "Package: oldpkg\nStatus: deinstall ok config-files\nVersion: 1.0\n\n"
        "Package: halfway\nStatus: install ok half-configured\nVersion: 2.0\n"
    )
    assert parse_dpkg_status(text) == {"libcudnn8": "8.2.1.32-1+cuda10.2",
                                       "cuda-toolkit-10-2": "10.2.460-1"}


def test_cuda_from_cudart_package_name(tmp_path):
    packages = {"tensorrt": "8.2.1.9-1+cuda10.2", "cuda-cudart-10-2": "10.2.300-1",
                "libcudnn8-dev": "8.2.1.32-1+cuda10.2"}
    facts = detect_platform(lay_out(tmp_path, "nano-32.7.1", packages=packages))
    assert facts["cuda"] == "10.2"
    assert facts["cudnn"] is None  # only the -dev package: the runtime is what counts


def test_memory(tmp_path):
    assert detect_platform(lay_out(tmp_path, "tx2-32.3.1"))["memory_mib"] == 7850
    other = tmp_path / "nomem"
    assert detect_platform(lay_out(other, "tx2-32.3.1", meminfo=False))["memory_mib"] is None


# ------------------------------------------------------------------ TensorRT generations


@pytest.mark.parametrize(("version", "generation", "unsupported"), [
    ("5.0.6", "trt5_6", False), ("6.0.1", "trt5_6", False), ("7.1.3", "trt7", False),
    ("8.0.1", "trt8_0", False), ("8.2.1", "trt8_0", False), ("8.4.1", "trt8_4", False),
    ("8.6.2", "trt8_4", False), ("10.3.0", "trt10", False), ("10", "trt10", False),
    ("10.16.2", "trt10", False), ("11.4.1", "trt11", False), ("11.0.0.114", "trt11", False),
    ("9.0.0", None, True), ("4.1.2", None, True), (None, None, True), ("12.0.1", None, True),
])
def test_tensorrt_generation(version, generation, unsupported):
    name, reason = tensorrt_generation(version)
    assert name == generation
    assert (reason is not None) == unsupported


# ------------------------------------------------------------------ `platform` command


def test_platform_command_json(tmp_path, capsys, own_subcommands):
    root = lay_out(tmp_path, "xavier-35.4.1")
    assert cli.main(["platform", "--root", root, "--json"]) == 0
    facts = json.loads(capsys.readouterr().out)["result"]
    assert facts["platform_id"] == "jetson-agx-xavier_l4t35.4.1_trt8.5.2"
    assert facts["builder_supported"] is True and facts["tensorrt_generation"] == "trt8_4"
    assert facts["engine_path"] == "onnx"  # TensorRT 8.5 on JetPack 5


def test_platform_command_text_and_warnings(tmp_path, capsys, own_subcommands):
    root = lay_out(tmp_path, "agx-orin-36.4.3",
                   release="# R36 (release), REVISION: 4.9, BOARD: generic\n")
    assert cli.main(["platform", "--root", root]) == 0
    captured = capsys.readouterr()
    assert re.search(r"^platform_id\s+jetson-agx-orin_l4t36.4.9_trt10.3.0$", captured.out,
                     re.MULTILINE)
    assert re.search(r"^jetpack\s+-$", captured.out, re.MULTILINE)
    assert "supported (trt10, engine path onnx unless" in captured.out
    assert "warning: L4T 36.4.9 is not in the JetPack table" in captured.err


def test_platform_command_not_a_jetson_exits_2(tmp_path, capsys, own_subcommands):
    assert cli.main(["platform", "--root", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: not a Jetson")
    assert "Traceback" not in err


def test_parse_dpkg_status_with_prefixes_keeps_only_those_packages():
    text = (
        "Package: libc6\nStatus: install ok installed\nVersion: 2.27-3ubuntu1\n\n"
        "Status: install ok installed\nPackage: libnvinfer8\nVersion: 8.2.1-1+cuda10.2\n\n"
        "Package: nvidia-l4t-core\nStatus: install ok installed\nVersion: 32.7.1-20220219\n"
    )
    assert parse_dpkg_status(text, ("libnvinfer", "nvidia-l4t-")) == {
        "libnvinfer8": "8.2.1-1+cuda10.2", "nvidia-l4t-core": "32.7.1-20220219"}
    assert parse_dpkg_status(text)["libc6"] == "2.27-3ubuntu1"


def test_every_package_the_detection_reads_is_among_the_parsed_prefixes():
    # detect_platform parses only JETPACK_PACKAGE_PREFIXES: a name read below and not
    # covered there would silently never be found.
    read = ("tensorrt", "libnvinfer8", "libnvinfer10", "python3-libnvinfer", "libnvinfer-bin",
            "cuda-toolkit-10-2", "cuda-cudart-12-6", "cuda-toolkit", "cuda-cudart",
            "libcudnn8", "libcudnn9-cuda-12", "nvidia-l4t-core")
    assert [name for name in read if not name.startswith(JETPACK_PACKAGE_PREFIXES)] == []
