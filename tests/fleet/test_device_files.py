"""Unit tests of the fleet's profiles and identity files (no root, no sshd)."""

import json
import re

import pytest

from fleet import device_files, device_python, inventory, jetpack_link, profiles


def test_release_lines_keep_the_real_format():
    nano = device_files.nv_tegra_release(profiles.profile("nano"))
    assert nano.splitlines()[0] == (
        "# R32 (release), REVISION: 7.1, GCID: 29818004, BOARD: t210ref, EABI: aarch64, "
        "DATE: Sat Feb 19 17:05:08 UTC 2022")
    # R32 files continue with sha1 lines of libraries.
    assert re.match(r"^[0-9a-f]{40} \*/usr/lib/aarch64-linux-gnu/tegra/", nano.splitlines()[1])
    xavier = device_files.nv_tegra_release(profiles.profile("xavier@35.4.1"))
    assert "DATE: Tue Aug  1 19:57:35 UTC 2023" in xavier.splitlines()[0]  # two spaces
    assert "BOARD: t186ref" in xavier
    orin = device_files.nv_tegra_release(profiles.profile("orin"))
    assert orin.startswith("# R36 (release), REVISION: 4.3,")
    assert "BOARD: generic" in orin.splitlines()[0]


def test_device_tree_strings_are_nul_terminated_and_separated():
    nano = profiles.profile("nano")
    assert device_files.devicetree_model(nano) == b"NVIDIA Jetson Nano Developer Kit\0"
    assert device_files.devicetree_compatible(nano).split(b"\0") == [
        b"nvidia,p3449-0000-b00+p3448-0000-b00", b"nvidia,jetson-nano", b"nvidia,tegra210", b""]
    assert device_files.devicetree_model(profiles.profile("xavier@35.4.1")) == b"Jetson-AGX\0"


def test_dpkg_status_replaces_host_entries_and_adds_jetpack():
    host = ("Package: python3\nStatus: install ok installed\nVersion: 3.11.2-1\n\n"
            "Package: tensorrt\nStatus: install ok installed\nVersion: 0.0-host\n")
    text = device_files.dpkg_status(profiles.profile("nano"), host, "arm64")
    stanzas = {s.split("\n", 1)[0][len("Package: "):]: s for s in text.strip().split("\n\n")}
    assert "Version: 3.11.2-1" in stanzas["python3"]
    assert "Version: 8.2.1.8-1+cuda10.2" in stanzas["tensorrt"]
    assert "0.0-host" not in text
    assert "Version: 8.2.1-1+cuda10.2" in stanzas["uff-converter-tf"]
    assert "Version: 8.2.1.32-1+cuda10.2" in stanzas["libcudnn8"]
    orin = device_files.dpkg_status(profiles.profile("orin"), "", "arm64")
    assert "uff-converter-tf" not in orin and "graphsurgeon-tf" not in orin
    assert "Package: libnvinfer10\n" in orin


def test_device_json_has_every_key_the_doubles_require():
    data = json.loads(device_files.device_json("tx2-1", profiles.profile("tx2")))
    assert data["tensorrt_version"] == "6.0.1.10"
    assert data["compute_capability"] == "6.2"
    for key in ("name", "profile", "module", "soc", "compute_capability", "memory_mib",
                "dla_cores", "l4t", "tensorrt_version", "build_seconds", "infer_ms"):
        assert key in data


def test_hosts_are_numbered_per_kind_and_overrides_apply():
    plan = profiles.plan_hosts("nano=2,xavier=1,xavier@35.4.1=1", "nano=30,xavier@35.4.1=8")
    assert [name for name, _ in plan] == ["nano-1", "nano-2", "xavier-1", "xavier-2"]
    assert [p.build_seconds for _, p in plan] == [30.0, 30.0, 1.0, 8.0]
    assert plan[3][1].release.tensorrt_version == "8.5.2.2"


@pytest.mark.parametrize("hosts, message", [
    ("jetson=1", "unknown device kind 'jetson'"),
    ("nano@35.4.1=1", "never released L4T 35.4.1"),
    ("xavier@31.0=1", "no simulated L4T release"),
    ("nano", "is not KIND[@L4T[+trtN]]=COUNT"),
    ("nano=0", "is not KIND[@L4T[+trtN]]=COUNT"),
])
def test_bad_hosts_are_named(hosts, message):
    with pytest.raises(profiles.ProfileError, match=re.escape(message)):
        profiles.plan_hosts(hosts)


def test_build_seconds_for_a_kind_not_in_the_fleet_is_an_error():
    with pytest.raises(profiles.ProfileError, match="orin"):
        profiles.plan_hosts("nano=1", "orin=5")


def test_inventory_keeps_host_key_checking_on():
    hosts = [{"name": "nano-1", "group": "nano", "address": "127.0.0.9", "port": 2222}]
    text = inventory.inventory_text("/f", hosts, "/f/id_ed25519", "/f/known_hosts")
    assert "StrictHostKeyChecking=yes" in text
    assert "UserKnownHostsFile=/f/known_hosts" in text
    assert 'ansible_host: "127.0.0.9"' in text
    assert "StrictHostKeyChecking=no" not in text


@pytest.mark.parametrize(("kind", "module", "dla"), [
    ("orin", "jetson-agx-orin", 2), ("orin-nano", "jetson-orin-nano", 0),
    ("orin-nano-super", "jetson-orin-nano", 0), ("orin-nx", "jetson-orin-nx", 2),
])
def test_orin_profiles_are_detected_as_their_module(tmp_path, kind, module, dla):
    """The identity files a simulated Orin gets are read back by the real detection."""
    from builder.platform.detect import detect_platform  # noqa: PLC0415

    chosen = profiles.profile(kind)
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "nv_tegra_release").write_text(device_files.nv_tegra_release(chosen))
    tree = tmp_path / "sys" / "firmware" / "devicetree" / "base"
    tree.mkdir(parents=True)
    (tree / "model").write_bytes(device_files.devicetree_model(chosen))
    (tree / "compatible").write_bytes(device_files.devicetree_compatible(chosen))
    dpkg = tmp_path / "var" / "lib" / "dpkg"
    dpkg.mkdir(parents=True)
    (dpkg / "status").write_text(device_files.dpkg_status(chosen, "", "arm64"))
    facts = detect_platform(str(tmp_path))
    assert (facts["module"], facts["dla_cores"], facts["compute_capability"]) == (
        module, dla, "8.7")
    assert (facts["l4t"], facts["jetpack"], facts["tensorrt"]) == ("36.4.3", "6.2", "10.3.0")
    assert facts["cuda"] == "12.6"
    assert facts["platform_id"] == "{}_l4t36.4.3_trt10.3.0".format(module)
    if kind.endswith("-super"):
        assert chosen.model.endswith("Super")


@pytest.mark.parametrize(("spec", "platform_id", "jetpack", "warnings"), [
    ("orin@39.2.1", "jetson-agx-orin_l4t39.2.1_trt10.16.2", "7.2.1", []),
    ("thor", "jetson-t5000_l4t38.4.0_trt10.13.3", "7.1", []),
    ("thor@39.2.1", "jetson-t5000_l4t39.2.1_trt10.16.2", "7.2.1", []),
    # TensorRT 11.4.1 from NVIDIA's SBSA packages on L4T 39.2.1 (assumed for JetPack 7.2.2).
    ("orin@39.2.1+trt11", "jetson-agx-orin_l4t39.2.1_trt11.4.1", "7.2.1",
     ["TensorRT 11.4.1 installed, JetPack for L4T 39.2.1 ships 10.16"]),
])
def test_jetpack7_profiles_are_detected_as_their_platform(tmp_path, spec, platform_id, jetpack,
                                                          warnings):
    """JetPack 7 devices (Python 3.12) and TensorRT 11, read back by the real detection."""
    from builder.platform.detect import detect_platform  # noqa: PLC0415

    chosen = profiles.profile(spec)
    assert chosen.name == (spec if "@" in spec else "thor@38.4.0")
    assert device_python.wanted(chosen.release) == "3.12"
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "nv_tegra_release").write_text(device_files.nv_tegra_release(chosen))
    tree = tmp_path / "sys" / "firmware" / "devicetree" / "base"
    tree.mkdir(parents=True)
    (tree / "model").write_bytes(device_files.devicetree_model(chosen))
    (tree / "compatible").write_bytes(device_files.devicetree_compatible(chosen))
    dpkg = tmp_path / "var" / "lib" / "dpkg"
    dpkg.mkdir(parents=True)
    status = device_files.dpkg_status(chosen, "", "arm64")
    (dpkg / "status").write_text(status)
    facts = detect_platform(str(tmp_path))
    assert (facts["platform_id"], facts["jetpack"], facts["warnings"]) == (
        platform_id, jetpack, warnings)
    assert "uff-converter-tf" not in status
    assert "Package: libnvinfer{}\n".format(chosen.release.nvinfer_major) in status
    generation = "trt11" if spec.endswith("+trt11") else "trt10"
    assert json.loads(device_files.device_json("x-1", chosen))["profile"] == chosen.name
    assert jetpack_link.Jetpack(tmp_path / "cache").generation(
        chosen.release.tensorrt_version) == generation


def test_a_tensorrt_tag_is_part_of_the_hosts_syntax():
    plan = profiles.plan_hosts("orin@39.2.1=1,thor=1,orin@39.2.1+trt11=1",
                               "orin@39.2.1+trt11=2")
    assert [(name, p.name, p.build_seconds) for name, p in plan] == [
        ("orin-1", "orin@39.2.1", 1.0), ("thor-1", "thor@38.4.0", 0.8),
        ("orin-2", "orin@39.2.1+trt11", 2.0)]
    with pytest.raises(profiles.ProfileError, match=re.escape("no simulated L4T release "
                                                              "'39.2.1+trt12'")):
        profiles.plan_hosts("orin@39.2.1+trt12=1")
    with pytest.raises(profiles.ProfileError, match="never released L4T 39.2.1 for jetson-nano"):
        profiles.plan_hosts("nano@39.2.1+trt11=1")
