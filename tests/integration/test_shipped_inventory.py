"""The shipped sample inventory (inventory/jetsons: hosts, group_vars, host_vars) planned and
run on a simulated fleet whose devices take its host names.

Only the connection settings are the fleet's (loopback addresses, the fleet's key and
known_hosts, root login); every group_vars and host_vars file is the shipped one, including
host_vars/xavier-agx-02.yml (FP32, GPU, device scope, inside an FP16 DLA group) and the thor
group (a Thor on JetPack 7.1 and its Python 3.12, group_vars/thor.yml). Two values
are overridden on the simulated fleet, with the reason: the catalog (the sample names
models/models.yml, whose graphs a user brings) and the Nanos' 4 GiB swap file (swapon would
act on the kernel of the machine that hosts the fleet).
"""

import shutil

import pytest
import yaml

from tests.integration.conftest import FLEET_VARS, PYTHON_BIN, REPO, EngineBuildRunner

pytestmark = pytest.mark.fleet
SHIPPED = REPO / "inventory" / "jetsons"
FLEET = "nano=3,tx2=1,xavier=2,orin=1,thor=1"   # thor: JetPack 7.1, Python 3.12
MODEL = "ssd_mobilenet_v2_coco"
# The fleet's connection settings each shipped host gets (everything else is the sample's).
CONNECTION_KEYS = ("ansible_host", "ansible_port", "ansible_ssh_private_key_file",
                   "ansible_ssh_common_args", "ansible_python_interpreter")
PIN_SET_KEYS = ("jetson_env_pin_set", "jetson_env_onnx_pin_set")


def shipped_inventory_on(fleet, directory):
    """inventory/jetsons with its hosts mapped onto the fleet's devices, group by group."""
    shipped = yaml.safe_load((SHIPPED / "hosts.yml").read_text())
    simulated = yaml.safe_load(fleet.inventory.read_text())["all"]["children"]
    fleet_vars = yaml.safe_load((FLEET_VARS / "group_vars" / "all.yml").read_text())
    for group, body in shipped["all"]["children"].items():
        devices = list(simulated[group]["hosts"].values())
        for host_vars in body["hosts"].values():
            device = devices.pop(0)
            host_vars.update({key: device[key] for key in CONNECTION_KEYS})
            # The simulated pin sets of the device's Python: its own (on its JetPack's
            # Python) or the fleet's defaults (on the host's Python).
            host_vars.update({key: device.get(key, fleet_vars[key]) for key in PIN_SET_KEYS})
            # The simulated devices log in as root: no sudo in their namespace.
            host_vars.update(ansible_user="root", ansible_become=False)
    shutil.copytree(SHIPPED / "group_vars", directory / "group_vars")
    shutil.copytree(SHIPPED / "host_vars", directory / "host_vars")
    (directory / "hosts.yml").write_text("---\n" + yaml.safe_dump(shipped, sort_keys=False))
    return directory


class ShippedRunner(EngineBuildRunner):
    """build_engines.yml with the shipped inventory instead of the tests' fleet_vars."""

    def __init__(self, inventory_dir, home, **kwargs):
        super().__init__(**kwargs)
        self.inventory_dir = inventory_dir
        self.home = home

    def command(self, *args, extra_vars=None):
        variables = {"engine_catalog": str(self.catalog), "engine_store_dir": str(self.store),
                     "jetson_env_swap_mib": 0}
        variables.update(extra_vars or {})
        return [str(PYTHON_BIN / "ansible-playbook"), str(REPO / "build_engines.yml"),
                "-i", str(self.inventory_dir), "-e", yaml.safe_dump(variables,
                                                                    default_flow_style=True),
                *args]

    def environment(self):
        env = super().environment()
        env["HOME"] = str(self.home)  # paramiko (nano-field-07) reads ~/.ssh/known_hosts
        return env


@pytest.fixture(scope="module")
def shipped(module_sim_fleet, engine_runner_factory, tmp_path_factory):
    fleet = module_sim_fleet(FLEET)
    plain = engine_runner_factory(fleet, [MODEL])
    inventory = shipped_inventory_on(fleet, tmp_path_factory.mktemp("inventory"))
    home = tmp_path_factory.mktemp("home")
    (home / ".ssh").mkdir()
    shutil.copy(fleet.known_hosts, home / ".ssh" / "known_hosts")
    return ShippedRunner(inventory, home, fleet=fleet, catalog=plain.catalog, store=plain.store,
                         models=[MODEL], log_dir=plain.log_dir)


def variants(run):
    return {r["host"]: (r["variant"], r["status"]) for r in run.summary()}


def test_the_shipped_inventory_plans_per_host(shipped):
    run = shipped.run("--check")
    assert "Preflight OK: 8 host(s)" in run.output, run.describe()
    found = variants(run)
    assert found["xavier-agx-01"] == ("fp16-dla0-ws2048", "would build")
    assert found["xavier-agx-02"] == ("fp32-ws2048", "would build")
    # The first Nano by name builds (it is the one behind paramiko), the others fall back.
    assert found["nano-field-07"] == ("fp16-ws256", "would build")
    assert found["nano-lab-01"][1] == found["nano-lab-02"][1] == "fallback"
    assert found["tx2-dock-01"] == ("fp16-ws512", "would build")
    assert found["orin-agx-01"] == ("fp16-ws4096", "would build")  # from ONNX (TensorRT 10)
    assert found["thor-agx-01"] == ("fp16-ws8192", "would build")  # group_vars/thor.yml
    assert not shipped.store.exists()


def test_the_shipped_inventory_builds_stores_and_reruns_to_a_no_op(shipped):
    run = shipped.run()
    builds = run.builds()
    assert builds == sorted([("nano-field-07", MODEL), ("orin-agx-01", MODEL),
                             ("thor-agx-01", MODEL), ("tx2-dock-01", MODEL),
                             ("xavier-agx-01", MODEL), ("xavier-agx-02", MODEL)]), run.describe()
    assert run.returncode == 0, run.describe()
    found = variants(run)
    assert found["xavier-agx-02"] == ("fp32-ws2048", "built")
    assert found["xavier-agx-01"] == ("fp16-dla0-ws2048", "built")
    assert found["nano-lab-01"] == found["nano-lab-02"] == ("fp16-ws256", "shared")
    assert found["thor-agx-01"] == ("fp16-ws8192", "built")
    thor = next(p for p in shipped.store.iterdir() if p.name.startswith("jetson-t5000_l4t38"))
    assert [p.name for p in (thor / MODEL).iterdir()] == ["fp16-ws8192"]
    xavier = next(p for p in shipped.store.iterdir() if p.name.startswith("jetson-agx-xavier"))
    assert sorted(p.name for p in (xavier / MODEL).iterdir()) == ["fp16-dla0-ws2048",
                                                                  "fp32-ws2048"]

    rerun = shipped.run()
    assert rerun.builds() == [], rerun.describe()
    recap = rerun.recap()
    assert all(counts["changed"] == 0 for counts in recap.values()), recap
    # The play's first host also runs the run_once controller steps; every other device ran
    # the facts module and nothing else.
    busy = [host for host, counts in recap.items() if counts["ok"] > 1]
    assert busy == ["nano-lab-01"], recap  # the first host of inventory/jetsons/hosts.yml
    assert all(counts["ok"] == 1 for host, counts in recap.items() if host not in busy)
    assert {status for _, status in variants(rerun).values()} == {"cached"}
    assert rerun.returncode == 0, rerun.describe()
