"""The device's Ed25519 verifier and statement check (module_utils/trt_signature.py) against
RFC 8032's test vectors and signatures made by ``cryptography`` on the controller; also under
the Python 3.6 that JetPack 4 ships (a pyenv build), with nothing but the standard library."""

import hashlib
import json
import os
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from controller import signing
from module_utils import trt_signature
from module_utils.trt_signature import SignatureProblem, ed25519_verify
from tests.fleet.device_python import find_build

REPO = Path(__file__).resolve().parents[2]
# RFC 8032 section 7.1, TEST 1, 2 and 3: (secret key, public key, message, signature).
RFC8032_VECTORS = [
    ("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
     "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
     "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39"
     "701cf9b46bd25bf5f0595bbe24655141438e7a100b"),
    ("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
     "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
     "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f36"
     "13d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"),
    ("c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
     "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025", "af82",
     "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f7"
     "60984dc6594a7c15e9716ed28dc027beceea1ec40a"),
]
GROUP_ORDER = 2 ** 252 + 27742317777372353535851937790883648493


def raw_public(private):
    return private.public_key().public_bytes(serialization.Encoding.Raw,
                                             serialization.PublicFormat.Raw)


@pytest.mark.parametrize("secret, public, message, signature", RFC8032_VECTORS)
def test_rfc8032_vectors_verify_and_agree_with_cryptography(secret, public, message, signature):
    private = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(secret))
    assert raw_public(private).hex() == public
    assert private.sign(bytes.fromhex(message)).hex() == signature
    assert ed25519_verify(bytes.fromhex(public), bytes.fromhex(message), bytes.fromhex(signature))


def test_signatures_made_by_cryptography_verify_and_any_change_is_refused():
    for size in (0, 1, 63, 64, 1000):
        private = Ed25519PrivateKey.generate()
        public = raw_public(private)
        message = os.urandom(size)
        signature = private.sign(message)
        assert ed25519_verify(public, message, signature)
        for position in (0, 31, 32, 63):  # R and S
            changed = bytearray(signature)
            changed[position] ^= 0x01
            assert not ed25519_verify(public, message, bytes(changed))
        assert not ed25519_verify(public, message + b"\0", signature)
        assert not ed25519_verify(raw_public(Ed25519PrivateKey.generate()), message, signature)
        flipped = bytearray(public)
        flipped[5] ^= 0x10
        assert not ed25519_verify(bytes(flipped), message, signature)


def test_malleable_and_malformed_signatures_are_refused():
    secret, public, message, signature = (bytes.fromhex(part) if part else b""
                                          for part in RFC8032_VECTORS[1])
    # S + L is the same point equation, but RFC 8032 requires S < L.
    s_value = int.from_bytes(signature[32:], "little") + GROUP_ORDER
    assert s_value < 2 ** 256
    assert not ed25519_verify(public, message, signature[:32] + s_value.to_bytes(32, "little"))
    # A y >= p is not a canonical point encoding.
    not_canonical = (2 ** 255 - 19 + 1).to_bytes(32, "little")
    assert not ed25519_verify(not_canonical, message, signature)
    assert not ed25519_verify(public, message, not_canonical + signature[32:])
    assert not ed25519_verify(public[:31], message, signature)
    assert not ed25519_verify(public, message, signature[:63])


@pytest.fixture
def signed(tmp_path):
    signer = signing.load_signer(tmp_path / "keys" / "key")
    payload = {"model": "ssd", "platform_id": "jetson-nano_l4t32.7.1_trt8.2.1",
               "variant": "fp16-ws256", "build_key": "b" * 64, "engine_file": "TRT_ssd.bin",
               "engine_sha256": hashlib.sha256(b"engine").hexdigest(), "engine_size": 6,
               "builder_version": "0.1.0", "verify": {"ok": True, "fps": 12.5}}
    keyring = trt_signature.parse_keyring(
        json.loads(signing.keyring_path(signer.key_path).read_text()), "trusted-keys.json")
    return signer, signer.sign(payload), keyring, payload


def check(document, keyring, today="2030-01-01", **expected):
    return trt_signature.check_statement(document, keyring, today, expected, "statement.json")


def test_a_statement_is_checked_for_key_signature_and_every_expected_field(signed):
    signer, document, keyring, payload = signed
    assert check(document, keyring, engine_sha256=payload["engine_sha256"],
                 platform_id=payload["platform_id"]) == dict(payload, format=1)
    with pytest.raises(SignatureProblem, match="vouches for platform_id "
                       "'jetson-nano_l4t32.7.1_trt8.2.1', this engine has 'jetson-tx2'") as error:
        check(document, keyring, platform_id="jetson-tx2")
    assert error.value.kind == trt_signature.MISMATCH
    altered = dict(document, payload=document["payload"].replace('"fps":12.5', '"fps":99.0'))
    with pytest.raises(SignatureProblem, match="does not verify: the statement was altered"):
        check(altered, keyring)
    with pytest.raises(SignatureProblem, match="is missing") as error:
        check(None, keyring)
    assert error.value.kind == trt_signature.MISSING
    with pytest.raises(SignatureProblem, match="is not a statement of format 1"):
        check(dict(document, signature="zz"), keyring)


def test_a_foreign_key_or_a_retired_one_past_its_day_is_refused(signed, tmp_path):
    signer, document, keyring, payload = signed
    other = signing.load_signer(tmp_path / "other" / "key")
    with pytest.raises(SignatureProblem, match="signed by key {}, which is not trusted here "
                       r"\(trusted: {}\)".format(other.key_id, signer.key_id)) as error:
        check(other.sign(payload), keyring)
    assert error.value.kind == trt_signature.UNKNOWN_KEY
    retired = {signer.key_id: (signer.public, "2031-06-30")}
    assert check(document, retired, today="2031-06-30")["model"] == "ssd"
    with pytest.raises(SignatureProblem, match="retired key .* accepted until 2031-06-30 "
                       r"\(today is 2031-07-01\)") as error:
        check(document, retired, today="2031-07-01")
    assert error.value.kind == trt_signature.EXPIRED


def test_a_keyring_whose_key_id_does_not_fit_its_key_is_refused(signed):
    signer, _, _, _ = signed
    other = raw_public(Ed25519PrivateKey.generate())
    with pytest.raises(SignatureProblem, match="its public_key has another id"):
        trt_signature.parse_keyring({"format": 1, "keys": {signer.key_id: {
            "public_key": other.hex(), "accepted_until": None}}}, "trusted-keys.json")


def test_the_verifier_runs_on_the_python_of_jetpack_4(signed, tmp_path):
    """Python 3.6, standard library only (python -I -S: no site-packages)."""
    build = find_build("3.6")
    if build is None:
        pytest.skip("no pyenv build of Python 3.6 here (tests/fleet/README.md)")
    signer, document, keyring, payload = signed
    public_hex = signer.public.hex()
    script = (
        "import json, sys; sys.path.insert(0, {repo!r}); "
        "from module_utils import trt_signature as t; "
        "doc = json.loads({doc!r}); "
        "ring = {{{kid!r}: (bytes.fromhex({pub!r}), None)}}; "
        "print(t.check_statement(doc, ring, '2030-01-01', {{'model': 'ssd'}}, 'x')['variant']); "
        "bad = dict(doc, payload=doc['payload'].replace('ssd', 'ssx')); "
        "print(t.ed25519_verify(bytes.fromhex({pub!r}), bad['payload'].encode(), "
        "bytes.fromhex(doc['signature'])))").format(
            repo=str(REPO), doc=json.dumps(document), kid=signer.key_id, pub=public_hex)
    result = subprocess.run([str(build / "bin" / "python3.6"), "-I", "-S", "-c", script],
                            capture_output=True, text=True, check=False, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["fp16-ws256", "False"]
