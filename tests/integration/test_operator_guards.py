"""The guard rails of the preflight (issue 27, item 5) through the real ansible-playbook, on a
local inventory (the preflight runs on the controller only: no simulated fleet needed): a store
directory that is a system path, a YAML alias bomb in engine_models and a model name with a
trailing newline stop build_engines.yml and deploy_engines.yml at the preflight, with the
host, the file and the key, also with --limit on one host, quickly, and nothing is written."""

from __future__ import annotations

import os
import subprocess
import time

import pytest
import yaml

from tests.integration.envside import REPO, tool

from ..unit.test_operator_guards import BOMB, MODEL, one_model_site


@pytest.fixture
def site(tmp_path):
    """The unit tests' one-model site, with two local Nanos and a store of its own."""
    site = one_model_site(tmp_path)
    (site["inventory"] / "hosts.yml").write_text(yaml.safe_dump({"all": {"children": {"nano": {
        "hosts": {"nano-1": {"ansible_connection": "local"},
                  "nano-2": {"ansible_connection": "local"}}}}}}))
    store = tmp_path / "store"
    (site["inventory"] / "group_vars" / "all.yml").write_text(yaml.safe_dump({
        "engine_catalog": str(site["catalog"]), "engine_store_dir": str(store),
        "engine_models": [MODEL], "engine_store_wait_s": 0}))
    return dict(site, store=store)


def run(site, playbook, *args, timeout=120):
    command = [tool("ansible-playbook"), str(REPO / playbook), "-i", str(site["inventory"]),
               *args]
    environment = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
                       ANSIBLE_FORCE_COLOR="0", ANSIBLE_NOCOLOR="1")
    started = time.monotonic()
    done = subprocess.run(command, cwd=str(REPO), env=environment, capture_output=True,
                          text=True, timeout=timeout, check=False)
    return done.returncode, " ".join((done.stdout + done.stderr).split()), \
        time.monotonic() - started


def host_vars(site, host, text):
    (site["inventory"] / "host_vars" / "{}.yml".format(host)).write_text(text)


def where(site, key, host="nano-1", part="host_vars", name=None):
    """How a problem names the host, its file and the key."""
    name = name or host
    return "host '{}', file {}/{}.yml ({}/{}/{}.yml), key '{}'".format(
        host, part, name, site["inventory"], part, name, key)


@pytest.mark.parametrize("playbook", ["build_engines.yml", "deploy_engines.yml"])
def test_a_system_store_directory_stops_a_limited_run_at_the_preflight(site, playbook):
    host_vars(site, "nano-1", "engine_store_dir: /\n")
    code, output, seconds = run(site, playbook, "--limit", "nano-1")
    print("{} refused in {:.1f} s".format(playbook, seconds))
    assert code != 0
    assert "{}: / is a system directory".format(where(site, "engine_store_dir")) in output, \
        output[-3000:]
    assert not site["store"].exists() and not (site["tmp"] / ".run-lock").exists()


def test_a_yaml_alias_bomb_stops_the_run_quickly(site):
    (site["inventory"] / "group_vars" / "nano.yml").write_text(BOMB)
    for playbook in ("build_engines.yml", "deploy_engines.yml"):
        code, output, seconds = run(site, playbook, timeout=60)
        print("{}: alias bomb refused in {:.1f} s".format(playbook, seconds))
        assert code != 0 and seconds < 30
        for host in ("nano-1", "nano-2"):
            assert "{}: the value expands to more than 10000 items".format(where(
                site, "engine_models", host, "group_vars", "nano")) in output, output[-3000:]
        assert "lol, lol" not in output
    assert not site["store"].exists()


def test_a_model_name_with_a_trailing_newline_is_refused(site):
    host_vars(site, "nano-2", yaml.safe_dump({"engine_models": [MODEL + "\n"]}))
    code, output, _ = run(site, "build_engines.yml", "--limit", "nano-2")
    assert code != 0
    assert ("{}: model name '{}\\n' contains a control character (U+000A at position 22)"
            .format(where(site, "engine_models", "nano-2"), MODEL)) in output, output[-3000:]
    assert not site["store"].exists()
