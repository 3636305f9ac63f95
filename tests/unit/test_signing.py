"""The controller's signing key and the statements of stored engines (controller/signing.py,
controller/store.py): created on first use, checked by `store check`, re-signed or quarantined
by `store repair`, and rotated."""

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from controller import signing
from controller.store import EngineStore
from module_utils import trt_signature
from tests.unit.store_helpers import staged

REPO = Path(__file__).resolve().parents[2]
PLATFORM = "jetson-nano_l4t32.7.1_trt8.2.1"
VARIANT = "fp16-ws512"


def file_engine(store, model="ssd", build_key="a" * 64, payload=None):
    staging = store.staging_dir("nano-1") / model
    staged(staging, model, PLATFORM, build_key, payload=payload)
    store.file_engine(staging, platform_id=PLATFORM, model=model, variant=VARIANT,
                      build_key=build_key, built_on="nano-1", max_bytes=1 << 20)
    shutil.rmtree(str(store.root / ".staging"))  # as the filing does
    return store.lookup(build_key)


@pytest.fixture
def signed_store(tmp_path):
    key = tmp_path / "keys" / "engine-signing.key"
    store = EngineStore(tmp_path / "store", signing_key=key)
    entry = file_engine(store)
    return store, entry, key


def statement_of(entry):
    return json.loads((entry.dir / "statement.json").read_text())


def test_the_key_is_made_on_first_use_readable_by_its_owner_only(signed_store):
    store, entry, key = signed_store
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE(key.parent.stat().st_mode) == 0o700
    keyring = json.loads(signing.keyring_path(key).read_text())
    signer = signing.load_signer(key)
    assert list(keyring["keys"]) == [signer.key_id]
    assert keyring["keys"][signer.key_id] == {"public_key": signer.public.hex(),
                                              "accepted_until": None}
    assert "PRIVATE" not in signing.keyring_path(key).read_text()
    # Loading again gives the same key, it is not replaced.
    assert signing.load_signer(key).key_id == signer.key_id


def test_a_key_others_can_read_is_refused_with_the_fix(signed_store):
    _, _, key = signed_store
    os.chmod(str(key), 0o644)
    with pytest.raises(signing.SigningError, match=r"mode 644.*chmod 600 .*engine-signing.key"):
        signing.load_signer(key)


def test_a_filed_engine_carries_a_statement_of_what_was_built_and_verified(signed_store):
    store, entry, key = signed_store
    document = statement_of(entry)
    payload = json.loads(document["payload"])
    assert payload == {
        "format": 1, "model": "ssd", "platform_id": PLATFORM, "variant": VARIANT,
        "build_key": "a" * 64, "engine_file": "TRT_ssd.bin",
        "engine_sha256": entry.engine_sha256, "engine_size": entry.engine_size,
        "builder_version": payload["builder_version"],
        "verify": {"ok": True, "fps": 20.0, "median_ms": 50.0, "verified_utc": None}}
    assert document["key_id"] == signing.load_signer(key).key_id
    # The device's verifier accepts what cryptography signed.
    keyring = trt_signature.parse_keyring(json.loads(signing.keyring_path(key).read_text()),
                                          "keyring")
    assert trt_signature.check_statement(document, keyring, "2030-01-01",
                                         {"engine_sha256": entry.engine_sha256},
                                         "statement.json") == payload
    assert store.check() == []


def run_tool(*args):
    return subprocess.run([sys.executable, "-m", "controller", *args], cwd=str(REPO), check=False,
                          capture_output=True, text=True, timeout=60)


def test_store_check_names_an_altered_statement_and_repair_quarantines_it(signed_store):
    store, entry, key = signed_store
    document = statement_of(entry)
    document["payload"] = document["payload"].replace(PLATFORM, "jetson-xavier_l4t35.4.1_trt8.5.2")
    (entry.dir / "statement.json").write_text(json.dumps(document))
    checked = run_tool("store", "check", str(store.root), "--signing-key", str(key))
    assert checked.returncode == 1
    assert "{}/ssd/{}: statement: ".format(PLATFORM, VARIANT) in checked.stdout
    assert "does not verify: the statement was altered" in checked.stdout
    repaired = run_tool("store", "repair", str(store.root), "--signing-key", str(key))
    assert repaired.returncode == 0, repaired.stderr
    assert "quarantined {}/ssd/{}: its statement does not vouch".format(PLATFORM, VARIANT) \
        in repaired.stdout
    assert not entry.dir.exists()
    assert run_tool("store", "check", str(store.root), "--signing-key", str(key)).returncode == 0


def test_an_entry_signed_by_another_key_is_refused_and_quarantined(signed_store, tmp_path):
    store, entry, key = signed_store
    other = signing.load_signer(tmp_path / "other" / "key")
    manifest = json.loads(entry.manifest_path.read_text())
    forged = other.sign(signing.statement_payload(manifest, VARIANT))
    (entry.dir / "statement.json").write_text(json.dumps(forged))
    problem = store.statement_problem(store.lookup(entry.build_key))
    assert problem.kind == trt_signature.UNKNOWN_KEY
    assert "signed by key {}, which is not trusted here".format(other.key_id) in str(problem)
    done = store.repair()
    assert any(line.startswith("quarantined {}/ssd/{}".format(PLATFORM, VARIANT))
               for line in done), done
    assert store.lookup(entry.build_key) is None


def test_a_missing_statement_is_re_signed_only_when_the_engine_matches(signed_store):
    store, entry, key = signed_store
    (entry.dir / "statement.json").unlink()
    other = file_engine(store, model="ssd2", build_key="b" * 64)
    (other.dir / "statement.json").unlink()
    other.engine_path.write_bytes(b"SIMULATED but altered")
    assert any("ssd/{}: statement: ".format(VARIANT) in line and "is missing" in line
               for line in store.check())
    done = store.repair()
    assert "re-signed {}/ssd/{} with key".format(PLATFORM, VARIANT) in "\n".join(done)
    assert any(line.startswith("quarantined {}/ssd2/".format(PLATFORM)) for line in done)
    assert not any("re-signed {}/ssd2".format(PLATFORM) in line for line in done)
    assert store.check() == []


def test_rotation_keeps_the_old_key_until_its_day_then_repair_re_signs(signed_store):
    store, entry, key = signed_store
    old_id = statement_of(entry)["key_id"]
    rotated = run_tool("signing", "rotate", "--signing-key", str(key),
                       "--accept-old-until", "2031-06-30")
    assert rotated.returncode == 0, rotated.stderr
    new_id = signing.load_signer(key).key_id
    assert new_id != old_id and "stays accepted through 2031-06-30" in rotated.stdout
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert sorted(p.name for p in key.parent.iterdir()) == ["engine-signing.key",
                                                             "trusted-keys.json"]
    keyring = signing.read_keyring(signing.keyring_path(key))
    assert keyring[old_id][1] == "2031-06-30" and keyring[new_id][1] is None
    entry = store.lookup(entry.build_key)
    # Accepted through its day, refused the day after.
    assert store.statement_problem(entry, today="2031-06-30") is None
    late = store.statement_problem(entry, today="2031-07-01")
    assert late.kind == trt_signature.EXPIRED and "accepted until 2031-06-30" in str(late)
    done = store.repair()
    assert "re-signed {}/ssd/{} with key {} (signed by the retired key {})".format(
        PLATFORM, VARIANT, new_id, old_id) in done
    assert statement_of(entry)["key_id"] == new_id
    assert store.statement_problem(entry, today="2040-01-01") is None
    shown = run_tool("signing", "show", "--signing-key", str(key))
    assert "accepts {} through 2031-06-30".format(old_id) in shown.stdout
    assert "accepts {} (current)".format(new_id) in shown.stdout


def test_rotate_needs_an_existing_key_and_a_date(tmp_path):
    key = tmp_path / "k" / "engine-signing.key"
    missing = run_tool("signing", "rotate", "--signing-key", str(key),
                       "--accept-old-until", "2031-01-01")
    assert missing.returncode == 2 and "there is no signing key at" in missing.stderr
    signing.load_signer(key)
    bad = run_tool("signing", "rotate", "--signing-key", str(key), "--accept-old-until", "soon")
    assert bad.returncode == 2 and "is not a date YYYY-MM-DD" in bad.stderr


def test_check_without_the_keyring_says_which_key_to_give(tmp_path):
    store = EngineStore(tmp_path / "store")
    file_engine(store)
    checked = run_tool("store", "check", str(store.root), "--signing-key",
                       str(tmp_path / "nowhere" / "key"))
    assert checked.returncode == 1
    assert "statements not checked: there is no keyring" in checked.stdout


def test_repair_with_a_wrong_key_touches_no_statement(signed_store, tmp_path):
    store, entry, key = signed_store
    wrong = EngineStore(store.root, signing_key=tmp_path / "typo" / "engine-signing.key")
    done = wrong.repair()
    assert any(line.startswith("statements not repaired: there is no keyring") and
               "signed by key(s) {}".format(signing.load_signer(key).key_id) in line
               for line in done), done
    assert not any(line.startswith("quarantined") for line in done), done
    assert not (tmp_path / "typo").exists(), "no key is created by repair"
    assert store.check() == []
    checked = run_tool("store", "check", str(store.root), "--signing-key", str(tmp_path / "x"))
    assert "store repair {} --signing-key {}".format(store.root, tmp_path / "x") in \
        checked.stdout


def test_repair_of_a_store_signed_by_no_key_creates_the_key_and_signs(tmp_path):
    store = EngineStore(tmp_path / "store")
    file_engine(store)  # filed before signing existed
    key = tmp_path / "keys" / "engine-signing.key"
    checked = run_tool("store", "check", str(store.root), "--signing-key", str(key))
    assert "no entry is signed yet: store repair creates the key" in checked.stdout
    repaired = run_tool("store", "repair", str(store.root), "--signing-key", str(key))
    assert "created the signing key {}".format(key) in repaired.stdout, repaired.stdout
    assert "re-signed {}/ssd/{}".format(PLATFORM, VARIANT) in repaired.stdout
    assert run_tool("store", "check", str(store.root), "--signing-key", str(key)).returncode == 0
