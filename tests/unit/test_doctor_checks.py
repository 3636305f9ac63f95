"""tools/doctor.py's per-host verdicts from a probe's output (the fleet test plants the rest)."""

import pytest

from tests.unit.plugin_files import load

doctor = load("tools/doctor.py", "doctor_tool")

GOOD = ("python=3.6.9\ntegra=# R32 (release), REVISION: 7.1, GCID: 1, BOARD: t210ref, "
        "EABI: aarch64, DATE: x\nl4tcore=32.7.1-20220219\n"
        "tensorrt=ii |libnvinfer8|8.2.1-1+cuda10.2;ii |tensorrt|8.2.1.8-1+cuda10.2;\n"
        "disk=/opt /dev/mmcblk0p1 30000000 10000000 20000000 34% /\n")
# A Jetson AGX Thor on JetPack 7.1 (Ubuntu 24.04: Python 3.12.3, TensorRT 10.13).
THOR = ("python=3.12.3\ntegra=# R38 (release), REVISION: 4.0, GCID: 43443517, BOARD: generic, "
        "EABI: aarch64, DATE: x\nl4tcore=38.4.0-20251230160601\n"
        "tensorrt=ii |libnvinfer10|10.13.3.9-1+cuda13.0;ii |tensorrt|10.13.3.9-1+cuda13.0;\n"
        "disk=/opt /dev/nvme0n1p1 900000000 100000000 800000000 12% /\n")


def verdict(stdout, capsys, **hostvars):
    report = doctor.Report()
    summary = doctor.check_probe(report, "nano-1", hostvars, {"rc": 0, "stdout": stdout}, 2048)
    return summary, capsys.readouterr().out.splitlines()


def test_jetpack4_device_is_ready(capsys):
    summary, lines = verdict(GOOD, capsys)
    assert lines == []
    assert summary == ("Python 3.6.9, L4T 32.7.1 = JetPack 4.6.1, TensorRT 8.2.1, 19531 MiB "
                       "free on /opt")


def test_a_jetpack_without_a_pin_set_is_a_problem_unless_the_inventory_names_one(capsys):
    jetpack44 = GOOD.replace("REVISION: 7.1", "REVISION: 4.4").replace(
        "l4tcore=32.7.1", "l4tcore=32.4.4").replace("8.2.1", "7.1.3")
    summary, lines = verdict(jetpack44, capsys)
    assert summary is None
    assert lines == ["nano-1: no pinned UFF environment for L4T 32.4.4 (JetPack 4.4.1): "
                     "jetson_env_pin_set_by_l4t has pin sets for L4T 32.6, 32.7, 35.1, 35.2, "
                     "35.3, 35.4, 35.5, 35.6 only. Upgrade the device to JetPack 4.6 (L4T 32.6) "
                     "or later, or add a pin set made for L4T 32.4 to "
                     "roles/jetson_env/vars/main.yml and name it in jetson_env_pin_set "
                     "(host_vars/nano-1.yml)"]
    summary, lines = verdict(jetpack44, capsys, jetson_env_pin_set="jetpack46-cp36")
    assert lines == [] and summary.startswith("Python 3.6.9, L4T 32.4.4 = JetPack 4.4.1")


def test_jetpack7_thor_is_ready(capsys):
    summary, lines = verdict(THOR, capsys)
    assert lines == []
    assert summary == ("Python 3.12.3, L4T 38.4.0 = JetPack 7.1, TensorRT 10.13.3, 781250 MiB "
                       "free on /opt")


def test_tensorrt_11_on_jetpack_7_2_is_named_with_what_the_jetpack_ships(capsys):
    """TensorRT 11.4.1 from NVIDIA's SBSA packages (JetPack 7.2.2 and later) on L4T 39.2.1."""
    text = THOR.replace("R38 (release), REVISION: 4.0", "R39 (release), REVISION: 2.1").replace(
        "38.4.0-20251230160601", "39.2.1-20260806224157")
    text = text.replace("10.13.3.9-1+cuda13.0", "11.4.1.6-1+cuda13.2").replace(
        "libnvinfer10", "libnvinfer11")
    summary, lines = verdict(text, capsys)
    assert lines == []
    assert ("L4T 39.2.1 = JetPack 7.2.1, TensorRT 11.4.1 (strongly typed; JetPack 7.2.1 ships "
            "10.16)") in summary


@pytest.mark.parametrize("tensorrt, expected", [
    ("", "nano-1: no TensorRT: dpkg lists no installed 'tensorrt' or 'libnvinfer<N>' package "
         "(L4T 32.7.1)"),
    ("rc |tensorrt|8.2.1.8-1+cuda10.2;", "nano-1: no TensorRT"),   # removed, config left
    ("ii |tensorrt|12.0.0.1-1+cuda13.2;", "nano-1: TensorRT 12.0.0 (JetPack 4.6.1 ships 8.2.1): "
                                          "the builder cannot build there (TensorRT 12.0.0 is "
                                          "not a generation"),
])
def test_a_tensorrt_the_builder_cannot_use_stops_the_host(capsys, tensorrt, expected):
    text = GOOD.replace("tensorrt=ii |libnvinfer8|8.2.1-1+cuda10.2;ii |tensorrt|"
                        "8.2.1.8-1+cuda10.2;", "tensorrt=" + tensorrt)
    summary, lines = verdict(text, capsys)
    assert summary is None
    assert len(lines) == 1 and lines[0].startswith(expected), lines


@pytest.mark.parametrize("python, expected", [
    ("3.13.0", "Python 3.13.0 at python3: ansible-core 2.16 manages 2.7 and 3.5 - 3.12 only"),
    ("3.4.10", "Python 3.4.10 at python3: ansible-core 2.16 manages 2.7 and 3.5 - 3.12 only"),
    ("3.5.10", "Python 3.5.10 at python3: Ansible can manage it, but the builder needs 3.6"),
    ("2.7.18", "Python 2.7.18 at python3: Ansible can manage it, but the builder needs 3.6"),
])
def test_pythons_outside_what_ansible_and_the_builder_run(capsys, python, expected):
    summary, lines = verdict(GOOD.replace("python=3.6.9", "python=" + python), capsys)
    assert summary is None
    assert len(lines) == 1 and lines[0].startswith("nano-1: " + expected), lines


@pytest.mark.parametrize("python", ["3.8.10", "3.10.12", "3.12.3"])
def test_pythons_of_jetpack_5_6_7_are_accepted(capsys, python):
    summary, lines = verdict(GOOD.replace("python=3.6.9", "python=" + python), capsys)
    assert lines == [] and summary.startswith("Python " + python)


def test_l4t_from_the_package_when_the_release_file_is_gone(capsys):
    text = "\n".join(line for line in GOOD.splitlines() if not line.startswith("tegra="))
    summary, lines = verdict(text.replace("32.7.1-2022", "35.4.1-2023"), capsys)
    assert lines == [] and "L4T 35.4.1 = JetPack 5.1.2" in summary


def test_a_newer_release_is_not_a_problem(capsys):
    summary, lines = verdict(GOOD.replace("REVISION: 7.1", "REVISION: 9.9"), capsys,
                             jetson_env_pin_set="jetpack46-cp36")
    assert lines == [] and "L4T 32.9.9 = JetPack unknown (newer than this tool's table)" in summary


def test_ansible_core_other_than_2_16_is_refused(monkeypatch, capsys):
    import ansible.release  # noqa: PLC0415

    monkeypatch.setattr(ansible.release, "__version__", "2.17.1")
    report = doctor.Report()
    doctor.check_ansible(report)
    (line,) = capsys.readouterr().out.splitlines()
    assert line.startswith("controller: refused: ansible-core 2.17.1 is installed; the "
                           "playbooks need ansible-core<2.17,>=2.16 (controller.txt: 2.17 and "
                           "later cannot manage the Python 3.6 of JetPack 4)")
    assert "-m pip install -r {}/requirements/controller.txt".format(doctor.REPO_ROOT) in line
    monkeypatch.setattr(ansible.release, "__version__", "2.16.14")
    doctor.check_ansible(report)
    assert capsys.readouterr().out == "" and report.problems == 1
