"""controller/schema.py is the one home of the user variables: the README's table is
generated from it and must stay in step."""

import re
from pathlib import Path

import pytest
import yaml

from controller import schema

REPO = Path(__file__).resolve().parents[2]
README_TABLE = re.compile(r"<!-- user-variables:[^>]*-->\n(.*?)<!-- /user-variables -->", re.S)


def test_the_readme_table_is_the_generated_one():
    found = README_TABLE.search((REPO / "README.md").read_text())
    assert found, "README.md lost its user-variables markers"
    assert found.group(1) == schema.readme_table(), (
        "regenerate the README table: python3 -m controller schema --readme")


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
