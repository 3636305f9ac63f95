"""The README's commands, run as written on a fresh clone under /tmp (as far as they run
without a real fleet): `make sample`, the builder's check and inspect, `make demo`, the
by-hand run it prints (simfleet up, ansible-playbook, simfleet down), `make doctor`.

The clone shares two things with this checkout so the test costs minutes, not a download:
its `.venv` is the venv running the tests (a symlink; `make` sees it up to date) and its
wheelhouse starts as hard links of this checkout's `.cache/wheelhouse` when there is one.
"""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text()

pytestmark = [
    pytest.mark.fleet,
    pytest.mark.skipif(os.geteuid() != 0, reason="make demo needs root (simulated fleet)"),
    pytest.mark.skipif(not (REPO / ".git").exists(), reason="needs a git checkout to clone"),
]


def readme_command(command):
    """`command` as an indented README line (a trailing `# comment` aside)."""
    for line in README.splitlines():
        if line.startswith("    ") and line.split("  #")[0].strip() == command:
            return command
    raise AssertionError("not a README command (any more?): {}".format(command))


@pytest.fixture(scope="module")
def clone(tmp_path_factory):
    root = Path("/tmp") / tmp_path_factory.mktemp("readme").name
    root.mkdir(exist_ok=True)
    target = root / "clone"
    subprocess.run(["git", "clone", "--quiet", str(REPO), str(target)], check=True)
    (target / ".venv").symlink_to(Path(sys.prefix))   # the venv running the tests
    # A fresh clone's files are newer than the venv's stamp: date the requirements back so
    # `make` reuses the venv instead of re-installing into it.
    for path in (target / "requirements").iterdir():
        os.utime(path, (0, 0))
    # every simulated pin set: the demo's devices run their JetPack's Python (simulated-cp36)
    # or, where this machine lacks that build, the host's (simulated-cp311)
    for wheels in (REPO / ".cache" / "wheelhouse").glob("simulated-*"):
        seeded = target / ".cache" / "wheelhouse" / wheels.name
        seeded.mkdir(parents=True)
        for wheel in wheels.glob("*.whl"):
            os.link(wheel, seeded / wheel.name)
    yield target
    subprocess.run([sys.executable, "tests/fleet/simfleet.py", "down", "--dir", ".fleet/demo"],
                   cwd=target, capture_output=True, check=False)
    shutil.rmtree(root, ignore_errors=True)


def sh(clone, command, timeout=900):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ENGINE_TEST_", "PYTEST"))}
    return subprocess.run(command, shell=True, cwd=clone, capture_output=True, text=True,
                          timeout=timeout, check=False, env=env)


@pytest.fixture
def readme_outputs():
    """The README's by-hand commands write to /tmp/inspect and /tmp/onnx, as written: each is
    removed afterwards unless it was there before (a user's own)."""
    outputs = [Path("/tmp/inspect"), Path("/tmp/onnx")]
    there_before = [path for path in outputs if path.exists()]
    yield
    for path in outputs:
        if path not in there_before:
            shutil.rmtree(path, ignore_errors=True)


def test_sample_check_and_inspect(clone, readme_outputs):
    made = sh(clone, readme_command("make sample"))
    assert made.returncode == 0, made.stdout + made.stderr
    assert (clone / "models/sample/ssd_mobilenet_v2_coco/frozen_inference_graph.pb").is_file()
    assert "WARNING:tensorflow" not in made.stderr and "deprecated" not in made.stderr
    check = sh(clone, readme_command(".venv/bin/python -m builder check --catalog "
                                     "models/sample.yml"))
    assert check.returncode == 0, check.stderr
    assert check.stdout.startswith("OK ssd_mobilenet_v2_coco: ")
    shutil.rmtree("/tmp/inspect/ssd_mobilenet_v2_coco.pbtxt", ignore_errors=True)
    inspect = sh(clone, readme_command(
        ".venv/bin/python -m builder inspect ssd_mobilenet_v2_coco --catalog models/sample.yml "
        "--out /tmp/inspect"))
    assert inspect.returncode == 0, inspect.stderr
    assert "input_order           [1, 0, 2]" in inspect.stdout
    assert Path("/tmp/inspect/ssd_mobilenet_v2_coco.pbtxt").is_file()
    assert "cpu_feature_guard" not in inspect.stderr and "oneDNN" not in inspect.stderr
    # The ONNX export of the ONNX path, by hand (build_engines.yml does it for TensorRT >= 8.4).
    shutil.rmtree("/tmp/onnx", ignore_errors=True)
    onnx = sh(clone, readme_command(
        ".venv/bin/python -m builder onnx ssd_mobilenet_v2_coco --catalog models/sample.yml "
        "--out /tmp/onnx"))
    assert onnx.returncode == 0, onnx.stdout[-2000:] + onnx.stderr[-2000:]
    assert Path("/tmp/onnx/ssd_mobilenet_v2_coco.onnx").is_file()
    assert "detections vs TensorFlow's Postprocessor" in onnx.stdout
    # The user's own catalog has no graph in a fresh clone: the message says what to do.
    own = sh(clone, readme_command(".venv/bin/python -m builder check --catalog "
                                   "models/models.yml"))
    assert own.returncode == 2 and "Put the file there or fix the path" in own.stderr


def test_make_demo_then_the_by_hand_commands_it_prints(clone):
    demo = sh(clone, readme_command("make demo"))
    assert demo.returncode == 0, demo.stdout[-4000:] + demo.stderr[-2000:]
    assert "no fleet to stop there" not in demo.stdout + demo.stderr
    assert "ENGINE SUMMARY" in demo.stdout and " failed  " not in demo.stdout
    printed = demo.stdout.split("Run it again by hand, from the clone:\n", 1)[1].splitlines()
    by_hand = [line.strip() for line in printed[:3]]
    assert [readme_command(line) for line in by_hand] == by_hand
    assert "Catalog:               models/sample.yml" in demo.stdout
    up, playbook, down = by_hand
    for command in (up, playbook, down):
        result = sh(clone, command)
        assert result.returncode == 0, command + "\n" + result.stdout[-3000:] + result.stderr
        if command is playbook:
            summary = result.stdout.split("ENGINE SUMMARY", 1)[1]
            rows = [line for line in summary.splitlines() if "ssd_mobilenet_v2_coco" in line]
            assert len(rows) == 3 and all(re.search(r"\b(cached|shared)\b", r) for r in rows)
    # The store the demo filled, checked with the README's store tool.
    checked = sh(clone, readme_command(".venv/bin/python -m controller store check "
                                       "artifacts/engines"))
    assert checked.returncode == 0 and checked.stdout.strip().endswith("healthy"), (
        checked.stdout + checked.stderr)


def test_make_doctor_on_the_sample_inventory_names_every_unknown_host(clone):
    result = sh(clone, readme_command("make doctor"))
    assert result.returncode != 0
    for host in ("nano-lab-01", "tx2-dock-01", "xavier-agx-01", "orin-agx-01"):
        (line,) = [entry for entry in result.stdout.splitlines()
                   if entry.startswith(host + ":")]
        assert "ssh-keyscan -p 22" in line
    assert "problem(s) that would stop a run" in result.stdout
