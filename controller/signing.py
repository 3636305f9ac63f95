"""The controller's signing key and the statements it signs for stored engines.

    <engine_signing_key>                   the Ed25519 private key (PKCS#8 PEM), mode 0600,
                                           created on first use; never sent anywhere
    <its directory>/trusted-keys.json      the public keys the fleet accepts (the current key,
                                           and retired ones with their last accepted day);
                                           the deploy pushes this file, nothing else

The statement format and the device's verifier are module_utils/trt_signature.py's; here,
``cryptography`` signs and verifies. Rotation (``python3 -m controller signing rotate``): a
new key becomes the current one, the old one stays in trusted-keys.json with an
``accepted_until`` day; ``store repair`` re-signs every entry with the current key, and the
next deploy pushes the new statements and keyring.
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from builder import __version__ as BUILDER_VERSION
from builder import atomic
from module_utils import trt_signature
from module_utils.trt_deploy import KEYRING_FILE
from module_utils.trt_signature import KEYRING_FORMAT, STATEMENT_FORMAT, SignatureProblem

KEY_FIX = ("run: chmod 600 {path} (it must be readable by its owner only), or point "
           "engine_signing_key (group_vars/all.yml) at another file")


class SigningError(Exception):
    """The signing key or the keyring cannot be used; the message says which file and what
    to do."""


def today_utc() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")


def keyring_path(key_path: Path) -> Path:
    return Path(key_path).parent / KEYRING_FILE


def _raw_public(private: Ed25519PrivateKey) -> bytes:
    return private.public_key().public_bytes(serialization.Encoding.Raw,
                                             serialization.PublicFormat.Raw)


def cryptography_verify(public: bytes, message: bytes, signature: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(signature, message)
    except InvalidSignature:
        return False
    return True


def read_keyring(path: Path) -> dict[str, tuple[bytes, str | None]]:
    """{key_id: (public key, accepted_until)}; {} when the file does not exist."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as error:
        raise SigningError("{} is unreadable ({}): restore it from a backup, or remove it and "
                           "run python3 -m controller store repair (every entry is then "
                           "re-signed by the current key)".format(path, error)) from error
    try:
        keys: dict[str, tuple[bytes, str | None]] = trt_signature.parse_keyring(data, str(path))
    except SignatureProblem as error:
        raise SigningError(str(error)) from error
    return keys


def write_keyring(path: Path, keys: dict[str, tuple[bytes, str | None]]) -> None:
    document = {"format": KEYRING_FORMAT, "keys": {
        key_id: {"public_key": public.hex(), "accepted_until": until}
        for key_id, (public, until) in sorted(keys.items())}}
    atomic.write_json(str(path), document, prefix=".{}.tmp-".format(path.name), mode=0o644)


def _load_private(path: Path) -> Ed25519PrivateKey:
    try:
        info = os.lstat(str(path))
    except FileNotFoundError:
        raise
    if not stat.S_ISREG(info.st_mode):
        raise SigningError("the signing key {} is not a regular file (a link?): {}".format(
            path, KEY_FIX.format(path=path)))
    if info.st_mode & 0o077:
        raise SigningError("the signing key {} has mode {:o}, others may read it: {}".format(
            path, stat.S_IMODE(info.st_mode), KEY_FIX.format(path=path)))
    try:
        loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as error:
        raise SigningError("the signing key {} cannot be read ({}): restore it, or move it "
                           "away to create a new one and rotate (README, Signed engines)"
                           .format(path, error)) from error
    if not isinstance(loaded, Ed25519PrivateKey):
        raise SigningError("the signing key {} is not an Ed25519 key".format(path))
    return loaded


def _create_private(path: Path) -> Ed25519PrivateKey | None:
    """A new key written at ``path`` (0600, in a 0700 directory), or None when another process
    created it first."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    try:
        fd = os.open(str(path), os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except OSError as error:
        if error.errno == errno.EEXIST:
            return None
        raise
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
        handle.flush()
        os.fsync(handle.fileno())
    return private


@dataclass(frozen=True)
class Signer:
    key_path: Path
    key_id: str
    private: Ed25519PrivateKey

    @property
    def public(self) -> bytes:
        return _raw_public(self.private)

    def sign(self, payload: dict[str, Any]) -> dict[str, Any]:
        """The statement document of ``payload`` (trt_signature's format)."""
        text = trt_signature.canonical_json(dict(payload, format=STATEMENT_FORMAT))
        return {"format": STATEMENT_FORMAT, "key_id": self.key_id, "payload": text,
                "signature": self.private.sign(text.encode("utf-8")).hex()}


def load_signer(key_path: Path | str, *, create: bool = True) -> Signer:
    """The current signing key (created on first use when ``create``), listed in the keyring
    beside it as accepted without an end."""
    path = Path(os.path.abspath(str(key_path)))
    try:
        private = _load_private(path)
    except FileNotFoundError:
        if not create:
            raise SigningError("there is no signing key at {}: a build run creates it (or set "
                               "engine_signing_key to the key you have)".format(path)) from None
        private = _create_private(path) or _load_private(path)
    signer = Signer(path, trt_signature.key_id_of(_raw_public(private)), private)
    keys = read_keyring(keyring_path(path))
    if keys.get(signer.key_id) != (signer.public, None):
        keys[signer.key_id] = (signer.public, None)
        write_keyring(keyring_path(path), keys)
    return signer


def rotate(key_path: Path | str, accept_old_until: str) -> tuple[str, str]:
    """Replace the current key by a new one; the old one stays accepted through
    ``accept_old_until`` (YYYY-MM-DD). Returns (old key id, new key id)."""
    if not trt_signature.DATE_RE.match(accept_old_until):
        raise SigningError("--accept-old-until {!r} is not a date YYYY-MM-DD".format(
            accept_old_until))
    old = load_signer(key_path, create=False)
    keys = read_keyring(keyring_path(old.key_path))
    keys[old.key_id] = (old.public, accept_old_until)
    write_keyring(keyring_path(old.key_path), keys)
    # The old private key is not kept: nothing may sign with it any more.
    retired = old.key_path.with_name(".{}.retired-{}".format(old.key_path.name, old.key_id))
    os.rename(str(old.key_path), str(retired))
    try:
        new = load_signer(old.key_path)
    except BaseException:
        os.rename(str(retired), str(old.key_path))
        raise
    with contextlib.suppress(FileNotFoundError):
        retired.unlink()
    return old.key_id, new.key_id


def statement_payload(manifest: dict[str, Any], variant: str) -> dict[str, Any]:
    """What the controller vouches for, from a stored engine's manifest."""
    verify = manifest.get("verify") or {}
    return {"model": manifest["model"], "platform_id": manifest["platform_id"],
            "variant": variant, "build_key": manifest["build_key"],
            "engine_file": manifest["engine_file"], "engine_sha256": manifest["engine_sha256"],
            "engine_size": int(manifest["engine_size"]),
            "builder_version": manifest.get("builder_version") or BUILDER_VERSION,
            "verify": {key: verify.get(key) for key in ("ok", "fps", "median_ms",
                                                         "verified_utc")}}


def expected_fields(manifest: dict[str, Any], variant: str) -> dict[str, Any]:
    """The payload fields a statement must carry to vouch for this manifest's engine."""
    payload = statement_payload(manifest, variant)
    return {key: payload[key] for key in ("model", "platform_id", "variant", "build_key",
                                          "engine_file", "engine_sha256", "engine_size")}


def check_statement_file(path: Path, keyring: dict[str, tuple[bytes, str | None]],
                         expected: dict[str, Any], today: str | None = None) -> dict[str, Any]:
    """The payload of the statement at ``path``; SignatureProblem when it does not vouch for
    ``expected`` with a key of ``keyring``."""
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        document = None
    except (OSError, ValueError):
        document = "unreadable"
    payload: dict[str, Any] = trt_signature.check_statement(
        document, keyring, today or today_utc(), expected, str(path),
        verify=cryptography_verify)
    return payload
