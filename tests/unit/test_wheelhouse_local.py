"""tools/wheelhouse.py: local pins (`add FILE` for NVIDIA's TensorFlow) and what the role gets."""

import hashlib
import json

import pytest
import yaml

from tests.unit.plugin_files import REPO, load

wheelhouse = load("tools/wheelhouse.py", "wheelhouse_tool")
PINS = REPO / "roles" / "jetson_env" / "vars" / "main.yml"
NV_JP46 = "tensorflow-1.15.5+nv22.1-cp36-cp36m-linux_aarch64.whl"


@pytest.fixture
def paths(tmp_path):
    return {"dest": tmp_path / "wheelhouse", "local": tmp_path / "cfg" / "local-pins.yml"}


def downloaded(tmp_path, name, payload=b"wheel bytes as downloaded from NVIDIA\n"):
    """A file under the name the user downloaded (add reads its name and hashes its bytes)."""
    path = tmp_path / "Downloads" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(payload)
    return path


def run(argv, capsys):
    code = wheelhouse.main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_a_set_with_tensorflow_not_added_is_refused_with_the_way_to_add_it(paths, capsys):
    code, _, err = run(["--pin-set", "jetpack46-cp36", "--dest", paths["dest"],
                        "--local-pins", paths["local"], "--requirements-only"], capsys)
    assert code == 2
    assert "needs wheels no registry serves: tensorflow 1.15.5+nv22.1 (from " \
           "https://developer.download.nvidia.com/compute/redist/jp/v461/tensorflow/)" in err
    assert "tools/wheelhouse.py add FILE" in err and str(paths["local"]) in err


def test_add_records_the_files_sha256_and_the_run_uses_it(paths, tmp_path, capsys):
    wheel = downloaded(tmp_path, NV_JP46)
    code, out, err = run(["add", wheel, "--dest", paths["dest"], "--local-pins",
                          paths["local"]], capsys)
    assert code == 0, err
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    assert "sha256 {} recorded in {} for pin set(s) jetpack46-cp36".format(
        digest, paths["local"]) in out
    assert (paths["dest"] / "jetpack46-cp36" / NV_JP46).read_bytes() == wheel.read_bytes()
    recorded = yaml.safe_load(paths["local"].read_text())
    assert recorded == {"jetpack46-cp36": {"tensorflow": {
        "version": "1.15.5+nv22.1", "sha256": digest, "file": NV_JP46}}}
    code, out, err = run(["--pin-set", "jetpack46-cp36", "--dest", paths["dest"],
                          "--local-pins", paths["local"], "--requirements-only", "--json"],
                         capsys)
    assert code == 0, err
    result = json.loads(out)
    assert result["local_missing"] == [] and result["local_pins"] == ["tensorflow"]
    requirements = (paths["dest"] / "jetpack46-cp36" / "requirements.txt").read_text()
    assert "tensorflow==1.15.5+nv22.1 --hash=sha256:{}\n".format(digest) in requirements
    assert "termcolor==1.1.0 --hash=sha256:1d6d69ce" in requirements  # its sdist, built by pip
    no_local = (paths["dest"] / "jetpack46-cp36" / "requirements-no-local.txt").read_text()
    assert "tensorflow==" not in no_local and "numpy==1.19.4" in no_local


@pytest.mark.parametrize("name, reasons", [
    ("tensorflow-1.15.5+nv22.1-cp38-cp38-linux_aarch64.whl",
     ["jetpack46-cp36: python cp38 (wants cp36), abi cp38 (wants cp36m)",
      "jetpack5-cp38: version 1.15.5+nv22.1 (wants 1.15.5+nv23.03)"]),
    ("tensorflow-1.15.5+nv22.1-cp36-cp36m-linux_x86_64.whl",
     ["jetpack46-cp36: platform linux_x86_64 (wants aarch64: the Jetson's)"]),
    ("tensorflow-2.11.0+nv23.01-cp38-cp38-linux_aarch64.whl",
     ["jetpack5-cp38: version 2.11.0+nv23.01 (wants 1.15.5+nv23.03)"]),
])
def test_a_wheel_that_fits_no_pin_set_is_refused_and_nothing_recorded(
        paths, tmp_path, capsys, name, reasons):
    code, _, err = run(["add", downloaded(tmp_path, name), "--dest", paths["dest"],
                        "--local-pins", paths["local"]], capsys)
    assert code == 2
    assert err.startswith("error: {} fits no pin set".format(name))
    for reason in reasons:
        assert reason in err
    assert not paths["local"].exists() and not paths["dest"].exists()


def test_not_a_wheel_name(paths, tmp_path, capsys):
    code, _, err = run(["add", downloaded(tmp_path, "tensorflow.whl"), "--local-pins",
                        paths["local"]], capsys)
    assert code == 2 and "not a wheel file name" in err


def test_allow_missing_local_leaves_it_out_and_reports_it(paths, capsys):
    code, out, err = run(["--pin-set", "jetpack5-cp38", "--dest", paths["dest"], "--local-pins",
                          paths["local"], "--requirements-only", "--allow-missing-local",
                          "--json"], capsys)
    assert code == 0, err
    result = json.loads(out)
    assert result["local_missing"] == [{
        "name": "tensorflow", "version": "1.15.5+nv23.03",
        "download": "https://developer.download.nvidia.com/compute/redist/jp/v512/tensorflow/"}]
    requirements = (paths["dest"] / "jetpack5-cp38" / "requirements.txt").read_text()
    assert "tensorflow==" not in requirements and "h5py==3.8.0 --hash=sha256:" in requirements


def test_the_simulated_set_has_no_local_pin(paths, capsys):
    code, out, err = run(["--pin-set", "simulated-cp311", "--dest", paths["dest"],
                          "--local-pins", paths["local"], "--requirements-only", "--json"],
                         capsys)
    assert code == 0, err
    assert json.loads(out)["local_pins"] == []



@pytest.mark.parametrize("name, pip", [("jetpack46-cp36", "21.3.1"), ("jetpack5-cp38", "23.3.2")])
def test_the_real_sets_install_their_pinned_pip_first(paths, capsys, name, pip):
    code, out, err = run(["--pin-set", name, "--dest", paths["dest"], "--local-pins",
                          paths["local"], "--requirements-only", "--allow-missing-local",
                          "--json"], capsys)
    assert code == 0, err
    assert json.loads(out)["bootstrap"] == ["pip"]
    house = paths["dest"] / name
    bootstrap = (house / "requirements-bootstrap.txt").read_text().splitlines()[1:]
    assert len(bootstrap) == 1 and bootstrap[0].startswith("pip=={} --hash=sha256:".format(pip))
    assert "\npip==" not in (house / "requirements.txt").read_text()
