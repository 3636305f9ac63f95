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

# platform_id (jetson-nano_l4t32.7.1_trt8.2.1), variant (fp16-ws256), host names.
PATH_COMPONENT = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._+-]{0,127}$")
# Catalog model names: letters, digits, _ - . and not starting with - or . (an option, or a
# hidden / parent directory).
MODEL_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
SHA256 = re.compile(r"^[0-9a-f]{64}$")


class Untrusted(Exception):
    """A value or path that must not be used; the message says what was sent and why."""


def component(value: object, what: str, source: str, pattern: re.Pattern = PATH_COMPONENT) -> str:
    """``value`` if it is a safe single path component, else Untrusted.

    ``what``: the field ("platform_id"); ``source``: who sent it ("host nano-1").
    """
    if not isinstance(value, str) or not pattern.match(value) or value in (".", ".."):
        raise Untrusted("{} sent {} {!r}: refused, it is not a plain name (allowed: letters, "
                        "digits, '_', '-', '.', '+', not starting with '.' or '-', at most 128 "
                        "characters)".format(source, what, value))
    return value


def sha256_text(value: object, what: str, source: str) -> str:
    if not isinstance(value, str) or not SHA256.match(value):
        raise Untrusted("{} sent {} {!r}: refused, it is not a sha256 hex digest".format(
            source, what, value))
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
