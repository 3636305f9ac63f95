"""Check mode writes nothing on the controller (the fleet test: tests/integration/
test_check_mode.py): the deploy's plan only reads the store."""

from __future__ import annotations

import pytest

from controller import deploy_plan
from tests.unit.test_device_answer import answer, catalog, deploy_hostvars  # noqa: F401


@pytest.mark.parametrize("check_mode, written", [(True, []), (False, [".lock", "index.json"])])
def test_the_deploy_plan_in_check_mode_rebuilds_a_missing_index_in_memory_only(
        tmp_path, catalog, check_mode, written):  # noqa: F811 (the fixture imported above)
    store = tmp_path / "store"
    store.mkdir()  # a store whose index.json is missing: a real run rebuilds and writes it
    plan, lines = deploy_plan.make_deploy_plan(["nano-1"], deploy_hostvars(answer(), catalog),
                                               str(store), False, check_mode=check_mode)
    assert plan["hosts"]["nano-1"]["models"]["m"]["action"] == "refused", lines
    assert sorted(path.name for path in store.iterdir()) == written
