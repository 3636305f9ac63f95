"""Credentials never reach a message (controller/secrets.py): the jetson_env role's filters,
and the preflight's problems about a secret variable (jetson_env_pip_index_url)."""

import pytest
import yaml

from controller import schema, secrets
from tests.unit.plugin_files import load
from tests.unit.test_operator_guards import FILE, preflight_of, site, the_problem  # noqa: F401

filters = load("roles/jetson_env/filter_plugins/jetson_env_secrets.py", "jetson_env_secrets")
KEY = "jetson_env_pip_index_url"
PASSWORD = "s3cr3t-T0ken"
URL = "https://builder:{}@pypi.example.com/simple".format(PASSWORD)


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
    # text that is no URL at all is left as it is
    assert secrets.mask_text("no index", "https://[broken") == "no index"


def test_filters_are_the_controllers_under_their_role_names():
    names = filters.FilterModule().filters()
    assert names == {"jetson_env_mask_url": secrets.mask_url,
                     "jetson_env_mask_text": secrets.mask_text}


def test_the_index_url_is_the_secret_variable():
    assert [variable.name for variable in schema.USER_VARIABLES if variable.secret] == [KEY]


def test_a_refused_index_url_is_named_with_its_credentials_masked(site):  # noqa: F811
    """The preflight refuses a URL with a trailing newline: the message says which host, file,
    key and character, and shows the URL, but not its user name or password."""
    result = preflight_of(site, yaml.safe_dump({KEY: URL + "\n"}))
    problem = the_problem(result, KEY)
    assert problem.startswith(FILE.format(site["inventory"], KEY))
    assert ("the value 'https://***@pypi.example.com/simple\\n' contains a control character "
            "(U+000A at position {})".format(len(URL) + 1)) in problem
    everything = repr(result)
    assert PASSWORD not in everything and "builder:" not in everything


@pytest.mark.parametrize("value, shown", [
    ([URL], "a list (not shown"),
    ({"url": URL}, "a mapping (not shown"),
    ("builder:" + PASSWORD + "\t", "a text of 21 character(s) that is not a URL (not shown"),
    (12345, "a value of type int (not shown)"),
])
def test_a_secret_that_is_not_a_url_is_never_shown(site, value, shown):  # noqa: F811
    problem = the_problem(preflight_of(site, yaml.safe_dump({KEY: value})), KEY)
    assert shown in problem
    assert PASSWORD not in problem and "12345" not in problem


def test_the_doctor_masks_every_url_and_logs_no_inventory_listing(tmp_path, capsys, monkeypatch):
    """Ansible quotes the line of a vars file that does not parse: the doctor's line shows it
    masked. The inventory listing it reads (every host variable) goes to no log file."""
    doctor = load("tools/doctor.py", "doctor_for_secrets")
    inventory = tmp_path / "inventory"
    (inventory / "group_vars").mkdir(parents=True)
    (inventory / "hosts.yml").write_text(yaml.safe_dump(
        {"all": {"hosts": {"nano-1": {"ansible_connection": "local"}}}}))
    log = tmp_path / "ansible.log"
    monkeypatch.setenv("ANSIBLE_LOG_PATH", str(log))
    (inventory / "group_vars" / "all.yml").write_text(
        "{}: {}\n  broken: [\n".format(KEY, URL))
    assert doctor.load_inventory(doctor.Report(), [str(inventory)]) is None
    shown = capsys.readouterr().out
    assert "{}: https://***@pypi.example.com/simple".format(KEY) in shown, shown
    assert PASSWORD not in shown and "builder:" not in shown
    (inventory / "group_vars" / "all.yml").write_text(yaml.safe_dump({KEY: URL}))
    hosts = doctor.load_inventory(doctor.Report(), [str(inventory)])
    assert hosts["nano-1"][KEY] == URL  # read, not shown, not logged
    assert capsys.readouterr().out == "" and not log.exists()
