"""roles/jetson_env/filter_plugins/jetson_env_secrets.py: credentials never reach the output."""

import pytest

from tests.unit.plugin_files import load

secrets = load("roles/jetson_env/filter_plugins/jetson_env_secrets.py", "jetson_env_secrets")


@pytest.mark.parametrize("url, shown", [
    ("https://ci:s3cr3t-T0ken@pypi.example.com/simple",
     "https://***@pypi.example.com/simple"),
    ("https://gho_abcdefgh123@pypi.example.com/simple/",
     "https://***@pypi.example.com/simple/"),
    ("http://10.0.0.5:8080/simple", "http://10.0.0.5:8080/simple"),
    ("", ""),
])
def test_mask_url_hides_user_info_only(url, shown):
    assert secrets.mask_url(url) == shown


def test_mask_text_hides_the_token_anywhere_also_percent_encoded():
    url = "https://builder:p%40ss-w0rd!@pypi.example.com/simple"
    text = ("Looking in indexes: https://builder:p%40ss-w0rd!@pypi.example.com/simple\n"
            "ERROR: 401 for user builder with p@ss-w0rd! at other://x:y@z/\n"
            "retrying with p%40ss-w0rd!")
    masked = secrets.mask_text(text, url)
    assert "p@ss-w0rd!" not in masked and "p%40ss-w0rd!" not in masked
    assert "x:y@" not in masked
    assert masked.splitlines()[0] == "Looking in indexes: https://***@pypi.example.com/simple"
    assert "retrying with ***" in masked
    # a short user name is an ordinary word, not masked outside URLs
    assert secrets.mask_text("for user ci", "https://ci@h/") == "for user ci"


def test_filters_are_registered_under_their_role_names():
    names = secrets.FilterModule().filters()
    assert set(names) == {"jetson_env_mask_url", "jetson_env_mask_text"}
