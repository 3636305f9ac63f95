"""The guard trt-engine-path (module_utils/trt_engine_guard.py), installed as the deploy installs
it and run as an app runs it: on JetPack 4's Python 3.6 (a pyenv build; the host's Python when
there is none), with the builder's platform detection reading a laid-out Jetson root."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from controller import signing
from tests.fleet.device_python import find_build
from tests.unit.guard_files import install_guard, signed_entry, stage_by_hand
from tests.unit.platform_roots import lay_out

NANO = "jetson-nano_l4t32.7.1_trt8.2.1"
XAVIER_4 = "jetson-agx-xavier_l4t32.4.4_trt7.1.3"
XAVIER_5 = "jetson-agx-xavier_l4t35.4.1_trt8.5.2"
BUILD_36 = find_build("3.6")
PYTHON = BUILD_36 / "bin" / "python3.6" if BUILD_36 else Path(sys.executable)


@pytest.fixture
def device(tmp_path):
    """An install root with the guard, a Xavier on JetPack 4 (its system root laid out), and
    engines of ``ssd`` staged for its platform and for JetPack 5's, signed by the controller."""
    root = tmp_path / "opt" / "trt-engines"
    guard = install_guard(root, PYTHON)
    # Importing TensorRT would end the guard with exit 99: it must not.
    (root / "bin" / "lib" / "tensorrt").mkdir()
    (root / "bin" / "lib" / "tensorrt" / "__init__.py").write_text("raise SystemExit(99)\n")
    key = tmp_path / "controller" / "engine-signing.key"
    entries = {platform: signed_entry(tmp_path / "store", key, "ssd", platform)
               for platform in (XAVIER_4, XAVIER_5)}
    staged = {platform: stage_by_hand(root, entry, key) for platform, entry in entries.items()}
    system = lay_out(tmp_path / "sysroot", "xavier-32.4.4")

    def run(*args, system_root=system):
        result = subprocess.run([str(guard), *args, "--system-root", str(system_root)],
                                capture_output=True, text=True, check=False, timeout=60)
        return result
    return {"root": root, "run": run, "staged": staged, "key": key, "tmp": tmp_path,
            "entries": entries}


def test_the_engine_of_this_platform_is_printed_and_json_is_one_record(device):
    result = device["run"]("ssd")
    assert result.returncode == 0, result.stderr
    assert result.stdout == str(device["staged"][XAVIER_4] / "TRT_ssd.bin") + "\n"
    record = json.loads(device["run"]("ssd", "--json").stdout)
    assert record == {
        "status": "ok", "exit": 0, "model": "ssd", "platform_id": XAVIER_4,
        "variant": "fp16-ws512", "variants": ["fp16-ws512"], "staged": [XAVIER_4, XAVIER_5],
        "path": str(device["staged"][XAVIER_4] / "TRT_ssd.bin"),
        "engine_sha256": device["entries"][XAVIER_4].engine_sha256,
        "build_key": device["entries"][XAVIER_4].build_key,
        "verify": {"ok": True, "fps": 20.0, "median_ms": 50.0, "verified_utc": None}}


def test_after_a_jetpack_upgrade_the_staged_engine_of_the_new_platform_is_chosen(device):
    upgraded = lay_out(device["tmp"] / "upgraded", "xavier-35.4.1")
    result = device["run"]("ssd", system_root=upgraded)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(device["staged"][XAVIER_5] / "TRT_ssd.bin")


def test_no_staged_engine_fits_exit_3_names_this_platform_and_the_staged_ones(device):
    nano = lay_out(device["tmp"] / "nano", "nano-32.7.1")
    result = device["run"]("ssd", system_root=nano)
    assert result.returncode == 3
    assert result.stdout == ""
    assert "no staged engine of ssd fits this device: it is {}, the staged ones are for {}, " \
        "{}".format(NANO, XAVIER_4, XAVIER_5) in result.stderr
    record = json.loads(device["run"]("ssd", "--json", system_root=nano).stdout)
    assert record["status"] == "none_fits" and record["exit"] == 3
    assert record["platform_id"] == NANO and record["staged"] == [XAVIER_4, XAVIER_5]
    missing = device["run"]("other")
    assert missing.returncode == 3 and "no engine of other is staged" in missing.stderr


def test_an_altered_engine_exits_4(device):
    engine = device["staged"][XAVIER_4] / "TRT_ssd.bin"
    engine.write_bytes(engine.read_bytes() + b"\0")
    result = device["run"]("ssd")
    assert result.returncode == 4 and result.stdout == ""
    assert "{} has sha256".format(engine) in result.stderr
    assert "the engine was altered or damaged and is refused" in result.stderr


def test_an_altered_statement_or_a_foreign_key_exits_4(device):
    statement = device["staged"][XAVIER_4] / "statement.json"
    document = json.loads(statement.read_text())
    statement.write_text(json.dumps(dict(document, payload=document["payload"].replace(
        '"ok":true', '"ok":false'))))
    result = device["run"]("ssd")
    assert result.returncode == 4 and "does not verify: the statement was altered" \
        in result.stderr
    other = signing.load_signer(device["tmp"] / "attacker" / "key")
    manifest = json.loads((device["staged"][XAVIER_4] / "manifest.json").read_text())
    statement.write_text(json.dumps(other.sign(signing.statement_payload(manifest,
                                                                         "fp16-ws512"))))
    result = device["run"]("ssd", "--json")
    assert result.returncode == 4
    record = json.loads(result.stdout)
    assert record["status"] == "unverified"
    assert "signed by key {}, which is not trusted here".format(other.key_id) in \
        record["message"]


def test_an_engine_staged_under_another_platform_is_refused(device):
    """A JetPack 5 engine copied into the JetPack 4 directory: its statement says so."""
    target = device["staged"][XAVIER_4]
    for name in ("TRT_ssd.bin", "manifest.json", "statement.json"):
        shutil.copyfile(str(device["staged"][XAVIER_5] / name), str(target / name))
    result = device["run"]("ssd")
    assert result.returncode == 4
    assert "it vouches for platform_id '{}', this engine has '{}'".format(
        XAVIER_5, XAVIER_4) in result.stderr


def test_without_the_keyring_nothing_verifies(device):
    (device["root"] / "bin" / "keys" / "trusted-keys.json").unlink()
    result = device["run"]("ssd")
    assert result.returncode == 4 and "trusted-keys.json" in result.stderr


def test_several_variants_need_variant(device):
    stage_by_hand(device["root"], device["entries"][XAVIER_4], device["key"],
                  variant="fp32-ws512")
    result = device["run"]("ssd")
    assert result.returncode == 2
    assert "2 variants of ssd are staged for {}: fp16-ws512, fp32-ws512; pass --variant" \
        .format(XAVIER_4) in result.stderr
    chosen = device["run"]("ssd", "--variant", "fp16-ws512")
    assert chosen.returncode == 0, chosen.stderr
    # The copy under another variant's name carries a statement for fp16-ws512: refused.
    wrong = device["run"]("ssd", "--variant", "fp32-ws512")
    assert wrong.returncode == 4 and "vouches for variant 'fp16-ws512'" in wrong.stderr
    absent = device["run"]("ssd", "--variant", "int8-ws1")
    assert absent.returncode == 3 and "staged variants: fp16-ws512, fp32-ws512" in absent.stderr


def test_a_linked_engine_is_not_followed(device, tmp_path):
    engine = device["staged"][XAVIER_4] / "TRT_ssd.bin"
    outside = tmp_path / "outside.bin"
    shutil.copyfile(str(engine), str(outside))
    engine.unlink()
    engine.symlink_to(outside)
    result = device["run"]("ssd")
    assert result.returncode == 4 and "is a symbolic link" in result.stderr


def test_the_guard_runs_on_python_3_6():
    if BUILD_36 is None:
        pytest.skip("no pyenv build of Python 3.6 here: the guard tests ran on {}".format(
            sys.executable))
    assert PYTHON.name == "python3.6"
