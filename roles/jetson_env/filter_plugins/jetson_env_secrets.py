"""Filters that keep package index credentials out of what Ansible prints.

    {{ url | jetson_env_mask_url }}           https://user:token@host/simple -> https://***@host/simple
    {{ text | jetson_env_mask_text(url) }}    every credential of ``url`` (raw or %-encoded) and
                                              every user:password@ of any URL in ``text`` -> ***
"""

import re
from urllib.parse import quote, unquote, urlsplit

MASK = "***"
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)[^/\s@]+@")


def mask_url(url):
    """The URL with its user info (user, password or token) replaced by ***."""
    return _USERINFO.sub(lambda m: m.group("scheme") + MASK + "@", str(url or ""))


def _secrets_of(url):
    parts = urlsplit(str(url or ""))
    secrets = set()
    # A user name is masked from 6 characters on (shorter ones, "pip", "ci", are ordinary
    # words); a password or token always, from 3.
    for value, shortest in ((parts.username, 6), (parts.password, 3)):
        if value and len(value) >= shortest:
            secrets |= {value, unquote(value), quote(unquote(value), safe="")}
    return sorted(secrets, key=len, reverse=True)


def mask_text(text, url=""):
    """``text`` with every user info of a URL and every credential of ``url`` masked."""
    masked = mask_url(text)
    for secret in _secrets_of(url):
        masked = masked.replace(secret, MASK)
    return masked


class FilterModule:
    def filters(self):
        return {"jetson_env_mask_url": mask_url, "jetson_env_mask_text": mask_text}
