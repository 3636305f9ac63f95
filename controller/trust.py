"""The trust boundary: values from devices and paths from catalogs are checked, never cleaned.

A device (or a downloaded model bundle) may be compromised or broken. Everything that becomes
part of a controller path goes through ``component`` (a strict pattern, refused otherwise)
and every path the controller writes goes through ``confined`` (resolved, must stay inside
its root). Nothing here strips or rewrites a value: a bad one is refused with what was sent.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

from builder.spec.catalog import SAFE_NAME

# Every pattern ends with \Z, never $: "$" also matches before a trailing newline, so
# "jetson-nano\n" would pass a "$" pattern and become a directory name with a newline.
# platform_id (jetson-nano_l4t32.7.1_trt8.2.1), variant (fp16-ws256), host names.
PATH_COMPONENT = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._+-]{0,127}\Z")
# Catalog model names: letters, digits, _ - . and not starting with - or . (an option, or a
# hidden / parent directory): the catalog's own rule, which the builder applies on devices too.
MODEL_NAME = SAFE_NAME
SHA256 = re.compile(r"^[0-9a-f]{64}\Z")
# A version a device reports (TensorRT 8.2.1.8, L4T 32.7.1, Python 3.6.9).
VERSION = re.compile(r"^[0-9]{1,4}(\.[0-9A-Za-z]{1,8}){0,4}\Z")
# Installed engine versions on a device (module_utils/trt_deploy.py VERSION_RE).
DEPLOY_VERSION = re.compile(r"^[0-9a-f]{12}-[0-9a-f]{12}\Z")


class Untrusted(Exception):
    """A value or path that must not be used; the message says what was sent and why."""


def component(value: object, what: str, source: str,
              pattern: re.Pattern[str] = PATH_COMPONENT) -> str:
    """``value`` if it is a safe single path component, else Untrusted.

    ``what``: the field ("platform_id"); ``source``: who sent it ("host nano-1").
    """
    if not isinstance(value, str) or not pattern.match(value) or value in (".", ".."):
        raise Untrusted("{} sent {} {!r}: refused, it is not a plain name (allowed: letters, "
                        "digits, '_', '-', '.', '+', not starting with '.' or '-', at most 128 "
                        "characters)".format(source, what, shown(value)))
    return value


def control_characters(value: str) -> list[str]:
    """The control characters of ``value`` (newline, tab, NUL, DEL, C1...), as 'U+000A at
    position 21' (positions from 1), for messages that must show what is invisible."""
    return ["U+{:04X} at position {}".format(ord(char), index + 1)
            for index, char in enumerate(value)
            if ord(char) < 0x20 or 0x7F <= ord(char) < 0xA0 or char in "\u2028\u2029"]


def text(value: object, what: str, source: str, max_length: int = 256,
         nullable: bool = True) -> str | None:
    """A device's free text (module name, a reason): a string without control characters,
    at most ``max_length`` characters, else Untrusted."""
    if value is None and nullable:
        return None
    if not isinstance(value, str) or len(value) > max_length or control_characters(value):
        raise Untrusted("{} sent {} {!r}: refused, not a line of at most {} printable "
                        "characters".format(source, what, shown(value), max_length))
    return value


def version(value: object, what: str, source: str) -> str | None:
    """A version a device reports ('8.2.1.8'), or None; Untrusted otherwise."""
    if value is None:
        return None
    if not isinstance(value, str) or not VERSION.match(value):
        raise Untrusted("{} sent {} {!r}: refused, not a version like 8.2.1".format(
            source, what, shown(value)))
    return value


def device_path(value: object, what: str, source: str) -> str:
    """An absolute path on a device (its builder directory), which the controller puts into
    the device's command lines: absolute, normalized (no '..' or '.' component), printable,
    at most 1024 characters; Untrusted otherwise."""
    if (not isinstance(value, str) or not value.startswith("/") or len(value) > 1024
            or control_characters(value) or any(
                part in (".", "..") for part in value.split("/"))):
        raise Untrusted("{} sent {} {!r}: refused, not an absolute path without '..' and "
                        "control characters".format(source, what, shown(value)))
    return value


def shown(value: object, limit: int = 120) -> object:
    """``value`` for a message: a long text cut, anything else by type when it is large."""
    if isinstance(value, str):
        return value if len(value) <= limit else value[:limit] + "..."
    if isinstance(value, (dict, list, tuple)):
        return "<{} of {} items>".format(type(value).__name__, len(value))
    return value


def sha256_text(value: object, what: str, source: str) -> str:
    if not isinstance(value, str) or not SHA256.match(value):
        raise Untrusted("{} sent {} {!r}: refused, it is not a sha256 hex digest".format(
            source, what, shown(value)))
    return value


def confined(root: Path | str, *parts: str) -> Path:
    """root/parts... resolved; Untrusted unless it stays inside the resolved root.

    Symlinks anywhere below the root are followed before the check, so a link that points out
    of the root is caught as well as a '..' component.
    """
    base = Path(os.path.realpath(str(root)))
    target = Path(os.path.realpath(str(base.joinpath(*parts))))
    if target != base and base not in target.parents:
        raise Untrusted("path {} resolves to {}, outside {}: refused".format(
            base.joinpath(*parts), target, base))
    return target


def inside_any(path: Path | str, roots: list[Path]) -> bool:
    real = Path(os.path.realpath(str(path)))
    return any(real == root or root in real.parents
               for root in (Path(os.path.realpath(str(r))) for r in roots))


def regular_file_of_bounded_size(path: Path, max_bytes: int, what: str,
                                 limit: str = "engine_fetch_max_mib") -> int:
    """The size of ``path``: Untrusted if it is a symlink, not a regular file or too large
    (``limit``: what sets ``max_bytes``, named in the message)."""
    info = os.lstat(str(path))
    if stat.S_ISLNK(info.st_mode):
        raise Untrusted("{} {} is a symbolic link: refused".format(what, path))
    if not stat.S_ISREG(info.st_mode):
        raise Untrusted("{} {} is not a regular file: refused".format(what, path))
    if info.st_size > max_bytes:
        raise Untrusted("{} {} has {} bytes, above the limit of {} ({}): refused".format(
            what, path, info.st_size, max_bytes, limit))
    return info.st_size
