"""The real pin sets (roles/jetson_env/vars/main.yml) against PyPI: every pinned wheel exists
for the set's platform and Python, and its sha256 is that of the file PyPI serves.

Needs PyPI (CI reaches it); skips with the reason where it is not reachable. Downloads go to
.cache/pin-check/ (git-ignored) and are reused by the next run.
"""

import hashlib
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
PINS = REPO / "roles" / "jetson_env" / "vars" / "main.yml"
CACHE = REPO / ".cache" / "pin-check"
PYPI = "https://pypi.org/simple"
PIN_SETS = yaml.safe_load(PINS.read_text())["jetson_env_pin_sets"]
REAL = sorted(name for name, pin_set in PIN_SETS.items()
              if any("aarch64" in p for p in pin_set["pip_download"]["platforms"]))


@pytest.fixture(scope="module")
def pypi():
    try:
        urllib.request.urlopen(PYPI + "/pip/", timeout=15).close()
    except (urllib.error.URLError, OSError) as error:
        pytest.skip("PyPI is not reachable from here ({}): the pin check needs it".format(error))


def _pip(*args):
    # --isolated: no pip.conf, no PIP_* variables (no local mirror, no constraints): PyPI only.
    return subprocess.run([sys.executable, "-m", "pip", "--isolated", "download",
                           "--disable-pip-version-check", "--index-url", PYPI, "--no-deps",
                           "--require-hashes", *args], capture_output=True, text=True,
                          check=False, timeout=900)


def _sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_real_pin_sets_are_the_jetpack_families_of_each_engine_path():
    assert REAL == ["jetpack46-cp36", "jetpack5-cp38", "jetpack5-onnx-cp38",
                    "jetpack6-onnx-cp310", "jetpack7-onnx-cp312"]
    for name in ("jetpack5-onnx-cp38", "jetpack6-onnx-cp310",
                 "jetpack7-onnx-cp312"):  # ONNX path: no TensorFlow
        assert not [p for p in PIN_SETS[name]["pins"] if p["name"].startswith("tensorflow")]
    for name in ("jetpack46-cp36", "jetpack5-cp38"):
        tensorflow = [p for p in PIN_SETS[name]["pins"] if p["name"] == "tensorflow"]
        assert len(tensorflow) == 1 and tensorflow[0]["local"] is True, name
        assert tensorflow[0]["download"].startswith("https://developer.download.nvidia.com/")


# The Python of each L4T major's JetPack (docs/reference/jetson-platforms.md, L4T table).
PYTHON_BY_L4T_MAJOR = {35: "3.8", 36: "3.10", 38: "3.12", 39: "3.12"}


def test_every_onnx_release_chooses_a_real_pin_set_of_its_python():
    """roles/jetson_env picks the ONNX set by L4T major.minor: every release of the detection's
    table from JetPack 5 on (TensorRT 8.4+, JetPack 7's L4T 38 and 39 included) has one, for
    the Python that JetPack ships, with aarch64 wheels."""
    from builder.platform.detect import L4T_RELEASES, version_tuple  # noqa: PLC0415

    by_l4t = yaml.safe_load(PINS.read_text())["jetson_env_onnx_pin_set_by_l4t"]
    for l4t in L4T_RELEASES:
        major = version_tuple(l4t)[0]
        if major < 35:
            continue
        name = by_l4t[".".join(l4t.split(".")[:2])]
        assert name in REAL, (l4t, name)
        assert PIN_SETS[name]["python"] == PYTHON_BY_L4T_MAJOR[major], (l4t, name)
    assert {by_l4t[line] for line in ("38.2", "38.4", "39.2")} == {"jetpack7-onnx-cp312"}


@pytest.mark.parametrize("name", REAL)
def test_every_pypi_pin_is_the_file_pypi_serves(pypi, name, tmp_path):
    pin_set = PIN_SETS[name]
    target = pin_set["pip_download"]
    wheels = [p for p in pin_set["pins"] if not p.get("local") and not p.get("sdist_sha256")]
    sdists = [p for p in pin_set["pins"] if p.get("sdist_sha256")]
    assert wheels, name
    dest = CACHE / name
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("".join("{}=={} {}\n".format(p["name"], p["version"], " ".join(
        "--hash=sha256:" + h for h in p["sha256"])) for p in wheels))
    platform_args = [arg for platform in target["platforms"] for arg in ("--platform", platform)]
    result = _pip("--only-binary=:all:", "--python-version", pin_set["python"],
                  "--implementation", target["implementation"], "--abi", target["abi"],
                  *platform_args, "--dest", str(dest), "-r", str(requirements))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    by_hash = {_sha256(path): path.name for path in dest.glob("*.whl")}
    for pin in wheels:
        assert any(h in by_hash for h in pin["sha256"]), (name, pin["name"])
    if sdists:
        requirements.write_text("".join("{}=={} {}\n".format(p["name"], p["version"], " ".join(
            "--hash=sha256:" + h for h in p["sdist_sha256"])) for p in sdists))
        result = _pip("--no-binary=:all:", "--dest", str(dest / "sdist"), "-r",
                      str(requirements))
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


@pytest.mark.parametrize("name", REAL)
def test_no_pin_is_left_without_a_real_hash(name):
    for pin in PIN_SETS[name]["pins"]:
        if pin.get("local"):
            assert "sha256" not in pin, (name, pin["name"])   # it lives in the local pin file
            continue
        hashes = pin.get("sdist_sha256") or pin.get("sha256")
        assert hashes and all(len(h) == 64 and int(h, 16) >= 0 for h in hashes), pin
