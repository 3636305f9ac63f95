"""The controller-side plan and build rounds (plugins/filter/engine_plan.py), and the run
summary reading each host once: pure functions on hand-made facts, no Ansible run."""

import json

import pytest

from builder.commands.check import catalog_report
from tests.unit.plugin_files import load

plan_filters = load("plugins/filter/engine_plan.py", "engine_plan")
summary = load("plugins/filter/engine_report.py", "engine_report_under_test")

NANO = "jetson-nano_l4t32.7.1_trt8.2.1"
TX2 = "jetson-tx2_l4t32.3.1_trt6.0.1"
OPTIONS = {"precision": "fp16", "workspace_mib": 512, "max_batch": 1, "dla_core": None}


@pytest.fixture
def catalog(tmp_path):
    """Two models as the preflight exports them (specs with defaults and a graph sha256)."""
    text = "version: 1\nmodels:\n" + "".join(
        "  {0}:\n    graph: {0}.pb\n    num_classes: 91\n    min_size: 0.2\n"
        "    max_size: 0.95\n".format(name) for name in ("m1", "m2"))
    (tmp_path / "models.yml").write_text(text)
    report = catalog_report(str(tmp_path / "models.yml"), check_graphs=False)
    return {name: dict(spec, sha256=name[-1] * 64) for name, spec in report["models"].items()}


class HostVars(dict):
    """hostvars as a filter sees it; counts how often each host's variables are computed."""

    def __init__(self, hosts):
        super().__init__(hosts)
        self.reads = {}

    def __getitem__(self, host):
        self.reads[host] = self.reads.get(host, 0) + 1
        return super().__getitem__(host)


def fleet(platforms, supported=True):
    """hostvars of hosts named by platform: {"nano-1": NANO, ...} -> facts like jetson_facts'."""
    return HostVars({
        host: {"ansible_facts": {
            "jetson": {"platform_id": platform, "supported": supported,
                       "support_reason": None if supported else "TensorRT 10 has no UFF"},
            "jetson_state": {"models": {}}}}
        for host, platform in platforms.items()})


def plan_for(hostvars, catalog, store, scope="platform", models=("m1", "m2")):
    selections = {host: dict(OPTIONS, models=list(models)) for host in hostvars}
    requests = plan_filters.engine_plan_requests(selections, hostvars, sorted(hostvars))
    return plan_filters.engine_plan(requests, catalog, str(store), scope)


def file_in_store(store, plan, host, model):
    entry = plan["hosts"][host]["models"][model]
    target = store / plan["hosts"][host]["platform_id"] / model
    target.mkdir(parents=True)
    (target / "manifest.json").write_text(json.dumps({"build_key": entry["build_key"]}))


def test_requests_skip_hosts_without_facts_and_carry_the_selection(catalog):
    hostvars = fleet({"nano-1": NANO})
    hostvars["nano-2"] = {}  # failed before its facts
    selections = {host: dict(OPTIONS, models=["m1"]) for host in hostvars}
    requests = plan_filters.engine_plan_requests(selections, hostvars, ["nano-1", "nano-2"])
    assert requests == [{"host": "nano-1", "platform_id": NANO, "models": ["m1"],
                         "options": OPTIONS, "device_models": {}, "unsupported": ""}]


def test_platform_scope_ranks_one_builder_per_platform(catalog, tmp_path):
    hostvars = fleet({"nano-1": NANO, "nano-2": NANO, "nano-3": NANO, "tx2-1": TX2})
    plan = plan_for(hostvars, catalog, tmp_path)
    assert plan["rounds"] == 3
    assert plan["pending"] == 8
    ranks = {host: plan["hosts"][host]["models"]["m1"]["rank"] for host in hostvars}
    assert ranks == {"nano-1": 0, "nano-2": 1, "nano-3": 2, "tx2-1": 0}

    works = plan_filters.engine_round_works(plan, "0", hostvars, sorted(hostvars))
    assert works == {"nano-1": {"build": ["m1", "m2"], "collect": []},
                     "tx2-1": {"build": ["m1", "m2"], "collect": []}}


def test_a_failed_build_goes_to_the_next_device_unless_the_input_was_wrong(catalog, tmp_path):
    hostvars = fleet({"nano-1": NANO, "nano-2": NANO, "tx2-1": TX2, "tx2-2": TX2})
    plan = plan_for(hostvars, catalog, tmp_path)
    for model in ("m1", "m2"):
        file_in_store(tmp_path, plan, "tx2-1", model)
    file_in_store(tmp_path, plan, "nano-1", "m1")
    # nano-1: m2 failed in TensorRT (rc 1): worth another device; a user error (rc 2) is not.
    hostvars["nano-1"]["engine_build_outcomes"] = {"m2": {"platform_id": NANO, "rc": 1}}
    assert plan_filters.engine_round_works(plan, 1, hostvars, sorted(hostvars)) == {
        "nano-2": {"build": ["m2"], "collect": []}}
    hostvars["nano-1"]["engine_build_outcomes"]["m2"]["rc"] = 2
    assert plan_filters.engine_round_works(plan, 1, hostvars, sorted(hostvars)) == {}


def test_rounds_read_each_host_once(catalog, tmp_path):
    hostvars = fleet({"nano-{}".format(i): NANO for i in range(1, 9)})
    plan = plan_for(hostvars, catalog, tmp_path)
    hostvars.reads.clear()
    plan_filters.engine_round_works(plan, 1, hostvars, sorted(hostvars))
    assert hostvars.reads == {host: 1 for host in hostvars}


def test_a_rerun_with_everything_in_store_has_nothing_pending(catalog, tmp_path):
    hostvars = fleet({"nano-1": NANO, "nano-2": NANO})
    plan = plan_for(hostvars, catalog, tmp_path)
    for model in ("m1", "m2"):
        file_in_store(tmp_path, plan, "nano-1", model)
    rerun = plan_for(hostvars, catalog, tmp_path)
    assert rerun["pending"] == 0
    # device scope: in the store is not enough, the engine must also be on the device
    assert plan_for(hostvars, catalog, tmp_path, scope="device")["pending"] == 4

    # Nothing ran: the summary needs no host's variables.
    hostvars.reads.clear()
    rows = summary.engine_summary_rows(rerun, hostvars, sorted(hostvars), sorted(hostvars))
    assert {row["status"] for row in rows} == {"cached"}
    assert hostvars.reads == {}


def test_unsupported_platforms_are_never_pending(catalog, tmp_path):
    plan = plan_for(fleet({"orin-1": "jetson-agx-orin_l4t36.4.3_trt10.3.0"}, supported=False),
                    catalog, tmp_path)
    assert plan["pending"] == 0
    assert plan["hosts"]["orin-1"]["models"]["m1"]["unsupported"] == "TensorRT 10 has no UFF"
