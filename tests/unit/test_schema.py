"""controller/schema.py is the one home of the user variables and of the deploy's: the
README's tables are generated from it, roles/engine_deploy's argument_specs and the deploy
playbook's defaults are its own, and they must stay in step."""

import re
from pathlib import Path

import pytest
import yaml

from controller import schema

REPO = Path(__file__).resolve().parents[2]
README_TABLE = r"<!-- {0}-variables:[^>]*-->\n(.*?)<!-- /{0}-variables -->"


@pytest.mark.parametrize("table", sorted(schema.TABLES))
def test_the_readme_tables_are_the_generated_ones(table):
    found = re.search(README_TABLE.format(table), (REPO / "README.md").read_text(), re.S)
    assert found, "README.md lost its {}-variables markers".format(table)
    assert found.group(1) == schema.readme_table(schema.TABLES[table]), (
        "regenerate the README table: python3 -m controller schema --readme --table " + table)


def test_the_deploy_roles_options_are_the_schemas():
    specs = yaml.safe_load((REPO / "roles/engine_deploy/meta/argument_specs.yml").read_text())
    options = specs["argument_specs"]["main"]["options"]
    assert list(options) == [v.name for v in schema.DEPLOY_VARIABLES]
    for variable in schema.DEPLOY_VARIABLES:
        option = options[variable.name]
        assert option["type"] == variable.type, variable.name
        assert option.get("default") == variable.default, variable.name
        assert " ".join(option["description"].split()) == variable.doc, variable.name


def test_no_role_and_no_playbook_spells_a_deploy_default():
    """The deploy's defaults live in controller/schema.py alone: the role has no defaults file,
    and nothing in the deploy's YAML falls back to a value with ``default(``."""
    assert not (REPO / "roles/engine_deploy/defaults").exists()
    texts = [REPO / "playbooks/deploy_engines.yml"] + sorted(
        (REPO / "roles/engine_deploy").rglob("*.yml"))
    names = [v.name for v in schema.DEPLOY_VARIABLES + schema.ROLLOUT_VARIABLES]
    for path in texts:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            for name in names:
                assert not re.search(re.escape(name) + r"\s*\|\s*default\(", line), (
                    "{}:{} spells the default of {}".format(path, number, name))


@pytest.mark.parametrize("values, serial, max_fail", [
    ({}, [1, "100%"], 0),                                           # one canary, then the rest
    ({"engine_deploy_canary": 0.1}, ["10%", "100%"], 0),            # a fraction of the fleet
    ({"engine_deploy_canary": 0.25, "engine_deploy_batch": 4}, ["25%", 4], 0),
    ({"engine_deploy_canary": "5%"}, ["5%", "100%"], 0),
    ({"engine_deploy_canary": 0, "engine_deploy_batch": "50%"}, ["50%"], 0),  # no canary
    ({"engine_deploy_canary": "2", "engine_deploy_max_fail_percentage": "30"}, ["2", "100%"], 30),
])
def test_the_rollout_batches(values, serial, max_fail):
    assert schema.rollout(values) == {"serial": serial, "max_fail_percentage": max_fail,
                                      "problem": ""}


@pytest.mark.parametrize("values", [{"engine_deploy_canary": "x"},
                                    {"engine_deploy_batch": 0},
                                    {"engine_deploy_max_fail_percentage": 101}])
def test_a_wrong_rollout_setting_is_named_with_the_fix(values):
    planned = schema.rollout(values)
    name, value = next(iter(values.items()))
    assert "{} is {}".format(name, value) in planned["problem"]
    assert "-e engine_deploy_canary=1" in planned["problem"]


def test_every_variable_the_inventory_sets_is_in_the_schema():
    names = set()
    for path in (REPO / "inventory" / "jetsons").rglob("*.yml"):
        if path.parent.name in ("group_vars", "host_vars"):
            names |= set(yaml.safe_load(path.read_text()) or {})
    user = {name for name in names if name.startswith("engine_")}
    assert user <= set(schema.BY_NAME), user - set(schema.BY_NAME)


@pytest.mark.parametrize("name, value, problem", [
    ("engine_precision", "int8", "'int8' is not one of fp16, fp32"),
    ("engine_workspace_mib", 8, "8 is below the minimum 16"),
    ("engine_workspace_mib", True, "True is not a whole number"),
    ("engine_dla_core", 2, "2 is above the maximum 1"),
    ("engine_models", "ssd", "'ssd' is not a list of names"),
    ("engine_build_scope", None, "it is empty (null)"),
])
def test_values_out_of_range_are_named(name, value, problem):
    assert schema.problem_with(schema.BY_NAME[name], value) == problem


def test_values_in_range_pass():
    for variable in schema.USER_VARIABLES:
        assert schema.problem_with(variable, variable.default) is None, variable.name


def test_max_fail_percentage_is_read_after_the_batch_became_its_host_list():
    """The record step of a batch reads it when engine_deploy_batch is the batch's hosts."""
    planned = schema.rollout({"engine_deploy_batch": ["nano-1", "nano-2"],
                              "engine_deploy_max_fail_percentage": 25})
    assert planned["max_fail_percentage"] == 25
