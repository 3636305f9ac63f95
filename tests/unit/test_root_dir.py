"""The builder's directory on a device is one fact: one default (controller/schema.py), read
by the facts step from jetson_facts_root_dir or, unset, jetson_env_root_dir; every later step
takes the directory the device reported. Two different values are refused in the preflight."""

import ast

import yaml

from controller import schema
from controller.selection import HostChecker

from .plugin_files import REPO, load

FACTS_ACTION = load("plugins/action/jetson_facts.py", "jetson_facts_action")


def module_constants(path):
    """The module-level text constants of a device module (it imports what only a device run
    bundles: read, not imported)."""
    tree = ast.parse((REPO / path).read_text())
    return {node.targets[0].id: node.value.value for node in tree.body
            if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)
            and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)}


def test_the_modules_own_default_is_the_one_home():
    """library/jetson_facts.py runs alone on the device: its copy must equal the default, and
    so must its documentation (library/jetson_facts.yml, beside it)."""
    constants = module_constants("library/jetson_facts.py")
    assert constants["ROOT_DIR"] == schema.BUILDER_ROOT_DIR
    docs = yaml.safe_load((REPO / "library" / "jetson_facts.yml").read_text())
    assert docs["DOCUMENTATION"]["options"]["root_dir"]["default"] == schema.BUILDER_ROOT_DIR
    assert yaml.safe_load(docs["EXAMPLES"])[0]["jetson_facts"]["root_dir"] == \
        schema.BUILDER_ROOT_DIR


def test_both_names_default_to_the_one_home():
    for name in schema.ROOT_DIR_VARIABLES:
        assert schema.BY_NAME[name].default == schema.BUILDER_ROOT_DIR
    assert FACTS_ACTION.FROM_HOST["root_dir"] == schema.ROOT_DIR_VARIABLES
    assert FACTS_ACTION.DEFAULTS["root_dir"] == schema.BUILDER_ROOT_DIR


def test_the_facts_name_wins_and_the_older_one_is_read_when_it_is_unset():
    assert schema.builder_root_dir({}) is None
    assert schema.builder_root_dir({"jetson_facts_root_dir": "", "jetson_env_root_dir": ""}) \
        is None
    assert schema.builder_root_dir({"jetson_env_root_dir": "/data/tb"}) == "/data/tb"
    assert schema.builder_root_dir({"jetson_facts_root_dir": "/data/tb",
                                    "jetson_env_root_dir": "/data/tb"}) == "/data/tb"
    assert schema.builder_root_dir({"jetson_facts_root_dir": "/data/tb",
                                    "jetson_env_root_dir": ""}) == "/data/tb"


def check(**values):
    defaults = {variable.name: None if variable.type == "path" else variable.default
                for variable in schema.USER_VARIABLES}
    checker = HostChecker("nano-1", dict(defaults, **values),
                          lambda key: "group_vars/all.yml" if key == "jetson_facts_root_dir"
                          else "host_vars/nano-1.yml", None, "models/models.yml")
    checker.check()
    return checker.problems


def test_two_different_directories_are_refused_with_both_names_the_host_and_the_fix():
    assert check(jetson_facts_root_dir="/data/tb", jetson_env_root_dir="/srv/tb") == [
        "host 'nano-1', file host_vars/nano-1.yml, key 'jetson_env_root_dir': it is "
        "'/srv/tb', but jetson_facts_root_dir is '/data/tb' (in group_vars/all.yml): both "
        "name the builder's directory on the device. Set only jetson_facts_root_dir (remove "
        "jetson_env_root_dir), or give both the same directory."]


def test_one_name_or_two_equal_values_pass():
    assert check(jetson_facts_root_dir="/data/tb") == []
    assert check(jetson_env_root_dir="/data/tb") == []
    assert check(jetson_facts_root_dir="/data/tb", jetson_env_root_dir="/data/tb") == []
