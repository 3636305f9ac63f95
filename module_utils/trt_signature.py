# -*- coding: utf-8 -*-
"""Signed engine statements: their format, and an Ed25519 verifier for the devices.

Python 3.6 syntax and the standard library only: this runs on JetPack 4 devices (in the
engine_deploy module, shipped by Ansible as ``ansible.module_utils.trt_signature``, and in the
guard ``<root>/bin/trt-engine-path``, which the deploy installs with this file). The controller
signs with ``cryptography`` (controller/signing.py) and imports the format from here, so both
sides agree on it.

Why a verifier of our own (docs/internals.md, "Signed engines"): Ubuntu 18.04's OpenSSL 1.1.1
command line cannot verify a raw Ed25519 signature (``pkeyutl -rawin`` came with OpenSSL 3.0),
and ``cryptography`` on the device would be a compiled wheel to pin, push and install for
each Python. Verifying one signature per engine needs only RFC 8032 section 5.1.7, a few
dozen lines of integer arithmetic (about 10 ms in CPython); nothing here is secret, so
constant time does not matter.

A statement (``statement.json`` next to the manifest: module_utils/trt_deploy.py STATEMENT):

    {"format": 1, "key_id": "<16 hex>", "signature": "<128 hex>",
     "payload": "<canonical JSON of STATEMENT_FIELDS and the format>"}

The signature covers the payload's UTF-8 bytes exactly as stored (no re-serialization).
A keyring (``trusted-keys.json``, trt_deploy.KEYRING_FILE; public keys only, never a private key):

    {"format": 1, "keys": {"<key_id>": {"public_key": "<64 hex>",
                                        "accepted_until": null | "YYYY-MM-DD"}}}

A key with ``accepted_until`` is a retired one (rotation): statements it signed are accepted
through that UTC day, refused after it.
"""

from __future__ import absolute_import, division, print_function

import hashlib
import json
import re

STATEMENT_FORMAT = 1
KEYRING_FORMAT = 1
# What the controller vouches for, per stored engine.
STATEMENT_FIELDS = ("model", "platform_id", "variant", "build_key", "engine_file",
                    "engine_sha256", "engine_size", "builder_version", "verify")
KEY_ID_RE = re.compile(r"^[0-9a-f]{16}\Z")
DATE_RE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}\Z")
_HEX64 = re.compile(r"^[0-9a-f]{64}\Z")
_HEX128 = re.compile(r"^[0-9a-f]{128}\Z")

# Problem kinds (SignatureProblem.kind): `store repair` re-signs only "missing" and "expired"
# (a key of our own keyring past its date); every other kind is quarantined.
MISSING, MALFORMED, UNKNOWN_KEY, EXPIRED, BAD_SIGNATURE, MISMATCH = (
    "missing", "malformed", "unknown_key", "expired", "bad_signature", "mismatch")


class SignatureProblem(Exception):
    """A statement that does not vouch for the engine at hand; ``kind`` is one of the kinds
    above, the message says which file, what is wrong and what to do."""

    def __init__(self, kind, message):
        super(SignatureProblem, self).__init__(message)
        self.kind = kind


# ------------------------------------------------------------------ Ed25519 (RFC 8032 5.1)

_P = 2 ** 255 - 19
_L = 2 ** 252 + 27742317777372353535851937790883648493
_D = -121665 * pow(121666, _P - 2, _P) % _P
_SQRT_M1 = pow(2, (_P - 1) // 4, _P)


def _inverse(value):
    return pow(value, _P - 2, _P)


def _recover_x(y, sign):
    """x of the point with this y and x's low bit ``sign`` (5.1.3 steps 2-4), or None."""
    if y >= _P:
        return None
    x2 = (y * y - 1) * _inverse(_D * y * y + 1) % _P
    if x2 == 0:
        return None if sign else 0
    x = pow(x2, (_P + 3) // 8, _P)
    if (x * x - x2) % _P != 0:
        x = x * _SQRT_M1 % _P
    if (x * x - x2) % _P != 0:
        return None
    if x & 1 != sign:
        x = _P - x
    return x


def _decode_point(data):
    """Extended coordinates (X, Y, Z, T) of a 32-byte encoded point, or None."""
    if len(data) != 32:
        return None
    number = int.from_bytes(data, "little")
    y = number & ((1 << 255) - 1)
    x = _recover_x(y, number >> 255)
    if x is None:
        return None
    return (x, y, 1, x * y % _P)


def _add(one, two):
    """Point addition in extended coordinates (5.1.4); complete, so it also doubles."""
    x1, y1, z1, t1 = one
    x2, y2, z2, t2 = two
    a = (y1 - x1) * (y2 - x2) % _P
    b = (y1 + x1) * (y2 + x2) % _P
    c = 2 * t1 * t2 * _D % _P
    d = 2 * z1 * z2 % _P
    e, f, g, h = b - a, d - c, d + c, b + a
    return (e * f % _P, g * h % _P, f * g % _P, e * h % _P)


def _multiply(scalar, point):
    result = (0, 1, 1, 0)  # the neutral element
    while scalar:
        if scalar & 1:
            result = _add(result, point)
        point = _add(point, point)
        scalar >>= 1
    return result


def _same_point(one, two):
    x1, y1, z1, _ = one
    x2, y2, z2, _ = two
    return (x1 * z2 - x2 * z1) % _P == 0 and (y1 * z2 - y2 * z1) % _P == 0


_BASE_Y = 4 * _inverse(5) % _P
_BASE = (_recover_x(_BASE_Y, 0), _BASE_Y, 1, _recover_x(_BASE_Y, 0) * _BASE_Y % _P)


def ed25519_verify(public_key, message, signature):
    """True when ``signature`` (64 bytes) is ``public_key``'s (32 bytes) Ed25519 signature of
    ``message`` (bytes): [S]B = R + [k]A (RFC 8032 5.1.7, the cofactorless check that OpenSSL
    and ``cryptography`` make). S must be below L (no malleable signatures)."""
    if len(public_key) != 32 or len(signature) != 64:
        return False
    point_a = _decode_point(bytes(public_key))
    point_r = _decode_point(bytes(signature[:32]))
    scalar_s = int.from_bytes(bytes(signature[32:]), "little")
    if point_a is None or point_r is None or scalar_s >= _L:
        return False
    digest = hashlib.sha512(bytes(signature[:32]) + bytes(public_key) + bytes(message)).digest()
    k = int.from_bytes(digest, "little") % _L
    return _same_point(_multiply(scalar_s, _BASE), _add(point_r, _multiply(k, point_a)))


# ------------------------------------------------------------------ statements and keyrings

def canonical_json(data):
    """The one serialization that is signed: sorted keys, no spaces, ASCII."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def key_id_of(public_key):
    """A key's name: the first 16 hex digits of the sha256 of its 32 raw bytes."""
    return hashlib.sha256(bytes(public_key)).hexdigest()[:16]


def parse_keyring(data, where):
    """{key_id: (public key bytes, accepted_until or None)} of a keyring document;
    SignatureProblem (malformed) naming ``where`` when it is not one."""
    def bad(text):
        return SignatureProblem(MALFORMED, "{}: {}; it is written by the controller "
                                "(controller/signing.py): deploy again".format(where, text))
    if not isinstance(data, dict) or data.get("format") != KEYRING_FORMAT or \
            not isinstance(data.get("keys"), dict):
        raise bad("not a keyring of format {}".format(KEYRING_FORMAT))
    keys = {}
    for key_id, item in sorted(data["keys"].items()):
        if not KEY_ID_RE.match(str(key_id)) or not isinstance(item, dict):
            raise bad("key {!r} is not a key id with its entry".format(key_id))
        public = item.get("public_key")
        until = item.get("accepted_until")
        if not isinstance(public, str) or not _HEX64.match(public):
            raise bad("key {}: public_key is not 64 hex digits".format(key_id))
        if key_id_of(bytes.fromhex(public)) != key_id:
            raise bad("key {}: its public_key has another id ({})".format(
                key_id, key_id_of(bytes.fromhex(public))))
        if until is not None and not (isinstance(until, str) and DATE_RE.match(until)):
            raise bad("key {}: accepted_until {!r} is not a date YYYY-MM-DD".format(
                key_id, until))
        keys[key_id] = (bytes.fromhex(public), until)
    return keys


def check_statement(document, keyring, today, expected, where, *, verify=ed25519_verify):
    """The payload (a dict) of a statement document that a key of ``keyring`` (parse_keyring)
    accepted on ``today`` (YYYY-MM-DD, UTC) signed and whose fields equal ``expected``
    ({field: value}); SignatureProblem otherwise. ``where``: the statement's path, for the
    messages. ``verify(public, message, signature)``: the controller passes cryptography's."""
    if document is None:
        raise SignatureProblem(MISSING, "{} is missing".format(where))
    if not isinstance(document, dict) or document.get("format") != STATEMENT_FORMAT or \
            not isinstance(document.get("payload"), str) or \
            not KEY_ID_RE.match(str(document.get("key_id"))) or \
            not _HEX128.match(str(document.get("signature"))):
        raise SignatureProblem(MALFORMED, "{} is not a statement of format {} (payload, "
                               "key_id, signature)".format(where, STATEMENT_FORMAT))
    key_id = document["key_id"]
    if key_id not in keyring:
        raise SignatureProblem(UNKNOWN_KEY, "{} is signed by key {}, which is not trusted "
                               "here (trusted: {})".format(where, key_id,
                                                           ", ".join(sorted(keyring)) or "none"))
    public, until = keyring[key_id]
    if until is not None and today > until:
        raise SignatureProblem(EXPIRED, "{} is signed by the retired key {}, accepted until "
                               "{} (today is {})".format(where, key_id, until, today))
    payload_text = document["payload"]
    if not verify(public, payload_text.encode("utf-8"), bytes.fromhex(document["signature"])):
        raise SignatureProblem(BAD_SIGNATURE, "{}: the signature of key {} does not verify: "
                               "the statement was altered".format(where, key_id))
    try:
        payload = json.loads(payload_text)
    except ValueError:
        payload = None
    if not isinstance(payload, dict) or payload.get("format") != STATEMENT_FORMAT:
        raise SignatureProblem(MALFORMED, "{}: its signed payload is not a statement of "
                               "format {}".format(where, STATEMENT_FORMAT))
    for field in sorted(expected):
        if payload.get(field) != expected[field]:
            raise SignatureProblem(MISMATCH, "{}: it vouches for {} {!r}, this engine has "
                                   "{!r}".format(where, field, payload.get(field),
                                                 expected[field]))
    return payload
