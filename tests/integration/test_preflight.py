"""The preflight (playbooks/tasks/preflight.yml): bad input stops the run on the controller,
names host/file/key/fix, and no device is touched (checked over real SSH on the simulated fleet
afterwards)."""

from __future__ import annotations

import pytest
import yaml

from controller.runlock import RUN_LOCK_NAME
from tests.integration.conftest import run_lock_renewers
from tests.integration.envside import (
    REPO,
    TEST_PLAYBOOKS,
    copy_fleet_vars,
    fleet,
    make_catalog,
    playbook,
)

pytestmark = pytest.mark.fleet
PRODUCT_PLAYBOOK = REPO / "build_engines.yml"


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    catalog = make_catalog(tmp_path_factory.mktemp("graphs"))
    with fleet(tmp_path_factory.mktemp("fleet"), "nano=2,xavier=1") as running:
        running.catalog = catalog
        yield running


def edit_yaml(path, **values):
    data = yaml.safe_load(path.read_text()) if path.exists() else {}
    data.update(values)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("---\n" + yaml.safe_dump(data))


def run_preflight(sim, fleet_vars, catalog=None, playbook_path=None, store=None):
    env = {"ENGINE_TEST_CATALOG": str(catalog or sim.catalog)}
    if store is not None:
        env["ENGINE_TEST_STORE"] = str(store)
    return playbook(playbook_path or TEST_PLAYBOOKS / "env_roles.yml",
                    [sim.inventory, fleet_vars], env=env)


def assert_no_device_touched(sim):
    for host in sim.hosts:
        assert not sim.exists(host, "/opt/trt-builder"), host
        assert not sim.exists(host, "/root/.ansible"), host  # no module ever ran there


def test_good_input_passes_and_exports_the_catalog(sim, tmp_path):
    fleet_vars = copy_fleet_vars(tmp_path / "vars")
    result = playbook(TEST_PLAYBOOKS / "preflight_only.yml", [sim.inventory, fleet_vars],
                      env={"ENGINE_TEST_CATALOG": str(sim.catalog)})
    assert result.rc == 0, result.out[-3000:]
    assert "Preflight OK: 3 host(s), models ssd_mobilenet_v2_coco" in result.out
    assert_no_device_touched(sim)


def test_unknown_model_in_group_vars(sim, tmp_path):
    fleet_vars = copy_fleet_vars(tmp_path / "vars")
    edit_yaml(fleet_vars / "group_vars" / "nano.yml",
              engine_models=["ssd_mobilenet_v2_coco", "ssd_mobilenet_v2_cocoo"])
    result = run_preflight(sim, fleet_vars)
    assert result.rc != 0
    for host in ("nano-1", "nano-2"):
        assert (f"host '{host}', file group_vars/nano.yml ({fleet_vars}/group_vars/nano.yml), "
                "key 'engine_models': model 'ssd_mobilenet_v2_cocoo' is not in the catalog"
                ) in result.out
    assert "Did you mean 'ssd_mobilenet_v2_coco'?" in result.out
    assert "host 'xavier-1'" not in result.out
    assert_no_device_touched(sim)


def test_bad_precision_in_host_vars(sim, tmp_path):
    fleet_vars = copy_fleet_vars(tmp_path / "vars")
    edit_yaml(fleet_vars / "host_vars" / "xavier-1.yml", engine_precision="fp8",
              engine_workspace_mib=True)
    store = tmp_path / "store"
    result = run_preflight(sim, fleet_vars, store=store)
    assert result.rc != 0
    # The run lock's renewer, started while the inputs were checked, ended with them: no lock
    # was taken and no renewer is left (controller/runlock.py Renewer).
    assert run_lock_renewers(store) == [] and not (store / RUN_LOCK_NAME).exists()
    assert ("host 'xavier-1', file host_vars/xavier-1.yml "
            f"({fleet_vars}/host_vars/xavier-1.yml), key 'engine_precision': 'fp8' is not one of "
            "fp16, fp32. Use one of: fp16, fp32.") in result.out
    # bool is not an int, and both problems come in one message
    assert "key 'engine_workspace_mib': True is not a whole number" in result.out
    assert "Preflight found 2 problem(s), nothing was changed" in result.out
    assert_no_device_touched(sim)


def test_bad_catalog(sim, tmp_path):
    catalog_dir = tmp_path / "catalog"
    catalog_dir.mkdir()
    good = yaml.safe_load(sim.catalog.read_text())
    spec = dict(good["models"]["ssd_mobilenet_v2_coco"])
    spec["graph"] = str(sim.catalog.parent / spec["graph"])
    spec["num_clases"] = 91  # misspelt key
    spec["min_size"] = 0.99  # not below max_size
    catalog = catalog_dir / "models.yml"
    catalog.write_text(yaml.safe_dump({"version": 1, "models": {"ssd_mobilenet_v2_coco": spec}}))
    result = run_preflight(sim, copy_fleet_vars(tmp_path / "vars"), catalog=catalog)
    assert result.rc != 0
    assert f"{catalog}" in result.out
    assert "model 'ssd_mobilenet_v2_coco'" in result.out
    assert "num_clases" in result.out and "num_classes" in result.out  # with the suggestion
    assert "min_size" in result.out
    assert_no_device_touched(sim)


@pytest.mark.skipif(not (REPO / "playbooks" / "build_engines.yml").exists(),
                    reason="playbooks/build_engines.yml (the main play) is not there yet")
def test_the_product_command_stops_at_preflight(sim, tmp_path):
    fleet_vars = copy_fleet_vars(tmp_path / "vars")
    edit_yaml(fleet_vars / "group_vars" / "all.yml", engine_build_scope="everywhere")
    result = run_preflight(sim, fleet_vars, playbook_path=PRODUCT_PLAYBOOK)
    assert result.rc != 0
    assert ("file group_vars/all.yml" in result.out
            and "key 'engine_build_scope': 'everywhere' is not one of platform, device"
            in result.out)
    assert_no_device_touched(sim)


def test_a_retired_variable_stops_the_run_and_says_what_to_do_instead(sim, tmp_path):
    fleet_vars = copy_fleet_vars(tmp_path / "vars")
    edit_yaml(fleet_vars / "group_vars" / "all.yml", engine_deploy_after_build=True)
    result = run_preflight(sim, fleet_vars, playbook_path=PRODUCT_PLAYBOOK)
    assert result.rc != 0
    for host in sim.hosts:
        assert (f"host '{host}', file group_vars/all.yml ({fleet_vars}/group_vars/all.yml), "
                "key 'engine_deploy_after_build': this variable was retired. To deploy what a "
                "build run built, name both playbooks in one command: ansible-playbook "
                "build_engines.yml deploy_engines.yml") in result.out
    assert_no_device_touched(sim)


def catalog_with(tmp_path, sim, **changes):
    """A copy of the fleet's catalog in its own directory, one model, with ``changes``."""
    catalog_dir = tmp_path / "catalog"
    catalog_dir.mkdir(exist_ok=True)
    good = yaml.safe_load(sim.catalog.read_text())
    spec = dict(good["models"]["ssd_mobilenet_v2_coco"])
    graph = sim.catalog.parent / spec["graph"]
    (catalog_dir / "frozen.pb").write_bytes(graph.read_bytes())
    spec["graph"] = "frozen.pb"
    spec.pop("sha256", None)
    name = changes.pop("name", "ssd_mobilenet_v2_coco")
    spec.update(changes)
    catalog = catalog_dir / "models.yml"
    catalog.write_text(yaml.safe_dump({"version": 1, "models": {name: spec}}))
    return catalog


def test_a_graph_that_links_out_of_the_catalog_directory_is_refused(sim, tmp_path):
    secret = tmp_path / "secret.pb"
    secret.write_bytes(b"controller secret")
    secret.chmod(0o600)
    catalog = catalog_with(tmp_path, sim)
    (catalog.parent / "frozen.pb").unlink()
    (catalog.parent / "frozen.pb").symlink_to(secret)
    result = run_preflight(sim, copy_fleet_vars(tmp_path / "vars"), catalog=catalog)
    assert result.rc != 0
    assert "key 'graph'" in result.out and "resolves to {}".format(secret) in result.out
    assert "engine_graph_allowed_dirs" in result.out
    assert_no_device_touched(sim)

    # The fix the message gives, followed: the directory allowed explicitly.
    fleet_vars = copy_fleet_vars(tmp_path / "allowed")
    edit_yaml(fleet_vars / "group_vars" / "all.yml", engine_graph_allowed_dirs=[str(tmp_path)])
    allowed = playbook(TEST_PLAYBOOKS / "preflight_only.yml", [sim.inventory, fleet_vars],
                       env={"ENGINE_TEST_CATALOG": str(catalog)})
    assert "resolves to" not in allowed.out  # the path check passed (the graph check follows)


def test_a_wrong_num_classes_stops_the_run_before_any_device(sim, tmp_path):
    catalog = catalog_with(tmp_path, sim, num_classes=90)
    result = run_preflight(sim, copy_fleet_vars(tmp_path / "vars"), catalog=catalog)
    assert result.rc != 0
    line = next(n for n, text in enumerate(catalog.read_text().splitlines(), 1)
                if text.strip().startswith("num_classes:"))
    assert "{}:{}: model 'ssd_mobilenet_v2_coco': num_classes is 90 in the catalog but 91".format(
        catalog, line) in result.out
    assert "Change it in the catalog to 91 (or write 'auto')" in result.out
    assert_no_device_touched(sim)


def test_a_model_named_like_an_option_is_refused(sim, tmp_path):
    catalog = catalog_with(tmp_path, sim, name="--help")
    fleet_vars = copy_fleet_vars(tmp_path / "vars")
    edit_yaml(fleet_vars / "group_vars" / "all.yml", engine_models=["--help"])
    result = run_preflight(sim, fleet_vars, catalog=catalog)
    assert result.rc != 0
    assert "must not start with '.' or '-'" in result.out
    assert_no_device_touched(sim)
