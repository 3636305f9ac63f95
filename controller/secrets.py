"""Credentials never reach a message: the one place that masks them.

A package index URL (``jetson_env_pip_index_url``, a secret variable of controller/schema.py)
may carry credentials, ``https://user:token@host/simple``. Every message that could hold such
a value goes through here: the preflight's problems, the doctor's lines, the jetson_env role's
pip failure (its filter plugin). What stays readable is the rest of the URL:
``https://***@host/simple``.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote, unquote, urlsplit

MASK = "***"
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)[^/\s@]+@")
# A URL at the start of a text: scheme://, then anything up to the end.
_URL = re.compile(r"\A[A-Za-z][A-Za-z0-9+.-]*://")


def mask_url(url: object) -> str:
    """The text with the user info (user, password or token) of every URL in it replaced by
    ***: https://user:token@host/simple -> https://***@host/simple."""
    return _USERINFO.sub(lambda m: m.group("scheme") + MASK + "@", str(url or ""))


def _credentials_of(url: object) -> list[str]:
    try:
        parts = urlsplit(str(url or ""))
        username, password = parts.username, parts.password
    except ValueError:  # not a URL (an unclosed [ in the host): nothing to take apart
        return []
    found: set[str] = set()
    # A user name is masked from 6 characters on (shorter ones, "pip", "ci", are ordinary
    # words); a password or token always, from 3.
    for value, shortest in ((username, 6), (password, 3)):
        if value and len(value) >= shortest:
            found |= {value, unquote(value), quote(unquote(value), safe="")}
    return sorted(found, key=len, reverse=True)


def mask_text(text: object, url: object = "") -> str:
    """``text`` with every user info of a URL and every credential of ``url`` (raw or
    %-encoded) masked: for a tool's output that may repeat them outside a URL."""
    masked = mask_url(text)
    for credential in _credentials_of(url):
        masked = masked.replace(credential, MASK)
    return masked


def shown_secret(value: Any) -> str:
    """How a message may show the value of a secret variable: a URL with its user info
    masked (and, like repr, with control characters escaped); anything else only by its kind
    and size, since all of it may be the credential."""
    if isinstance(value, str):
        if _URL.match(value):
            return repr(mask_text(value, value))
        return "a text of {} character(s) that is not a URL (not shown: it may be a " \
            "credential)".format(len(value))
    if isinstance(value, dict):
        return "a mapping (not shown: it may hold a credential)"
    if isinstance(value, (list, tuple)):
        return "a list (not shown: it may hold a credential)"
    return "a value of type {} (not shown)".format(type(value).__name__)
