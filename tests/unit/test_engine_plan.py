"""The controller's plan (controller/plan.py): per-host selections, build keys, ranks, rounds,
and the summary made from it: pure functions on hand-made facts, no Ansible run."""

import os
from pathlib import Path

import pytest

from builder.commands.check import catalog_report
from builder.platform import detect
from builder.platform.detect import L4T_RELEASES
from controller import plan as planning
from controller import report, runlock, summary
from controller.device import device_platform, platform_disagreement
from controller.selection import EngineOptions, HostSelection
from controller.store import EngineStore
from controller.trust import Untrusted
from tests.unit.store_helpers import file_entry

NANO = "jetson-nano_l4t32.7.1_trt8.2.1"
TX2 = "jetson-tx2_l4t32.3.1_trt6.0.1"
XAVIER = "jetson-agx-xavier_l4t32.4.4_trt7.1.3"
FP16 = EngineOptions("fp16", 512, 1, None)


def work(**models):
    """A device's round work as controller/plan.py round_work gives it (lists of models)."""
    return dict({"build": [], "collect": [], "remove": [], "confirm": [], "prepare": []},
                **models)


@pytest.fixture
def catalog(tmp_path):
    """Two models as the preflight exports them (specs with defaults and a graph sha256)."""
    text = "version: 1\nmodels:\n" + "".join(
        "  {0}:\n    graph: {0}.pb\n    num_classes: 91\n    min_size: 0.2\n"
        "    max_size: 0.95\n".format(name) for name in ("m1", "m2"))
    (tmp_path / "models.yml").write_text(text)
    for name in ("m1", "m2"):
        with open(str(tmp_path / (name + ".pb")), "wb") as graph:
            graph.truncate(40 << 20)  # a 40 MiB graph (sparse: only its size matters here)
    report = catalog_report(str(tmp_path / "models.yml"), check_graphs=False)
    return {name: dict(spec, sha256=name[-1] * 64) for name, spec in report["models"].items()}


def l4t_of(platform_id):
    """'jetson-nano_l4t32.7.1_trt8.2.1' -> '32.7.1', as jetson_facts sends it beside the id."""
    return str(platform_id).partition("_l4t")[2].partition("_")[0] or None


def devices(platforms, dla_cores=0, work=None, free_mib=None, *, compute_capability="8.7"):
    return {host: device_platform(host, {
        "jetson": {"platform_id": platform, "module": "jetson-x",
                   "tensorrt": str(platform).rpartition("_trt")[2] or None,
                   "l4t": l4t_of(platform),
                   "jetpack": (L4T_RELEASES.get(l4t_of(platform)) or [None])[0],
                   "compute_capability": compute_capability,
                   "dla_cores": dla_cores, "memory_mib": 8000},
        "jetson_state": {"models": (work or {}).get(host, {}), "free_mib": free_mib,
                         "root_dir": "/opt/trt-builder"}},
        {"m1": "TRT_m1.bin", "m2": "TRT_m2.bin"}) for host, platform in platforms.items()}


def selections(hosts, options=FP16, scope="platform", models=("m1", "m2"), **per_host):
    chosen = {host: HostSelection(host, tuple(models), options, scope) for host in hosts}
    chosen.update(per_host)
    return chosen


# What the simulated fleet's inventory names for every device (tests/fleet/inventory.py): the
# plan takes them over the table by L4T release, which test_pin_set_plan.py checks on its own.
NAMED_PIN_SETS = {"uff": "simulated-cp36", "onnx": "simulated-onnx-cp38"}


def make(hosts, catalog, store, **kwargs):
    named = kwargs.pop("named_pin_sets", {host: NAMED_PIN_SETS for host in hosts})
    return planning.make_plan(kwargs.pop("chosen", None) or selections(hosts), hosts, catalog,
                              EngineStore(store), check_mode=kwargs.pop("check_mode", False),
                              named_pin_sets=named)


def test_platform_scope_ranks_one_builder_per_build_key(catalog, tmp_path):
    hosts = devices({"nano-1": NANO, "nano-2": NANO, "nano-3": NANO, "tx2-1": TX2})
    plan = make(hosts, catalog, tmp_path / "store")
    assert plan["rounds"] == 3 and plan["pending"] == 8
    ranks = {host: plan["hosts"][host]["models"]["m1"]["rank"] for host in hosts}
    assert ranks == {"nano-1": 0, "nano-2": 1, "nano-3": 2, "tx2-1": 0}
    works = planning.round_works(plan, 0, EngineStore(tmp_path / "store"), {})
    # The platform's two builds go to two of its devices; the lone TX2 builds both. The
    # devices next in line (round 1: verify what round 0 built, or build it if that failed)
    # ready their environment and builder in round 0, nano-3 with nothing else to do.
    assert works == {"nano-1": work(build=["m1"]), "nano-2": work(build=["m2"], prepare=["m1"]),
                     "nano-3": work(prepare=["m2"]), "tx2-1": work(build=["m1", "m2"])}
    # A Nano engine built and confirmed: the next device in line has nothing to ready.
    for model, builder, confirmer in (("m1", "nano-1", "nano-2"), ("m2", "nano-2", "nano-3")):
        file_entry(tmp_path / "store", plan["hosts"][builder], model, host=builder)
        file_entry(tmp_path / "store", plan["hosts"][builder], model, host=confirmer)
    rerun = make(hosts, catalog, tmp_path / "store")
    assert planning.round_works(rerun, 0, EngineStore(tmp_path / "store"), {}) == {
        "tx2-1": work(build=["m1", "m2"])}


def test_per_host_options_give_their_own_build_keys_and_variants(catalog, tmp_path):
    """The shipped sample: one Xavier fp32 in device scope, its group fp16 with DLA 0."""
    hosts = devices({"xavier-agx-01": XAVIER, "xavier-agx-02": XAVIER, "xavier-agx-03": XAVIER},
                    dla_cores=2)
    group = EngineOptions("fp16", 2048, 1, 0)
    own = HostSelection("xavier-agx-02", ("m1",), EngineOptions("fp32", 2048, 1, None),
                        "device")
    chosen = selections(hosts, options=group, models=("m1",), **{"xavier-agx-02": own})
    plan = make(hosts, catalog, tmp_path / "store", chosen=chosen)

    entries = {host: plan["hosts"][host]["models"]["m1"] for host in hosts}
    assert entries["xavier-agx-01"]["build_key"] == entries["xavier-agx-03"]["build_key"]
    assert entries["xavier-agx-02"]["build_key"] != entries["xavier-agx-01"]["build_key"]
    assert entries["xavier-agx-01"]["variant"] == "fp16-dla0-ws2048"
    assert entries["xavier-agx-02"]["variant"] == "fp32-ws2048"
    assert [entries[h]["rank"] for h in sorted(hosts)] == [0, 0, 1]
    works = planning.round_works(plan, 0, EngineStore(tmp_path / "store"), {})
    assert works == {"xavier-agx-01": work(build=["m1"]), "xavier-agx-02": work(build=["m1"]),
                     "xavier-agx-03": work(prepare=["m1"])}  # verifies 01's in round 1


def test_a_rerun_with_verified_engines_has_nothing_pending(catalog, tmp_path):
    hosts = devices({"nano-1": NANO, "nano-2": NANO})
    store = tmp_path / "store"
    plan = make(hosts, catalog, store)
    for model in ("m1", "m2"):
        file_entry(store, plan["hosts"]["nano-1"], model)
    # Built and verified on nano-1 only: nano-2 verifies them before they are shared.
    unconfirmed = make(hosts, catalog, store)
    assert unconfirmed["pending"] == 2
    assert planning.action_of(unconfirmed["hosts"]["nano-2"]["models"]["m1"], "platform") \
        .startswith("verify the stored engine (second device of its platform")
    for model in ("m1", "m2"):  # what nano-2 sends back after its verify: the same engine
        file_entry(store, plan["hosts"]["nano-1"], model, host="nano-2")
    assert EngineStore(store).lookup(plan["hosts"]["nano-1"]["models"]["m1"]["build_key"]) \
        .confirmed_by == ("nano-2",)
    rerun = make(hosts, catalog, store)
    assert rerun["pending"] == 0
    rows = summary.summary_rows(rerun, None, lambda key: True)
    assert {row["status"] for row in rows} == {"cached"}
    # device scope: in the store is not enough, the engine must also be on the device
    device = selections(hosts, scope="device")
    assert make(hosts, catalog, store, chosen=device)["pending"] == 4


def test_a_corrupt_stored_engine_is_quarantined_and_rebuilt(catalog, tmp_path):
    hosts = devices({"nano-1": NANO})
    store = tmp_path / "store"
    plan = make(hosts, catalog, store)
    engine = file_entry(store, plan["hosts"]["nano-1"], "m1")
    data = bytearray(engine.read_bytes())
    data[-1] ^= 0xFF
    engine.write_bytes(bytes(data))

    checked = make(hosts, catalog, store, check_mode=True)  # reads only
    assert "sha256" in checked["hosts"]["nano-1"]["models"]["m1"]["store_problem"]
    assert engine.exists()
    rerun = make(hosts, catalog, store)
    entry = rerun["hosts"]["nano-1"]["models"]["m1"]
    assert not entry["cached"] and "moved to" in entry["store_problem"]
    assert not engine.exists()
    (quarantined,) = (store / ".quarantine").iterdir()
    assert "sha256" in (quarantined / "REASON.txt").read_text()
    assert "store entry corrupt" in planning.action_of(entry, "platform")


def test_a_failed_build_goes_to_the_next_device_unless_the_input_was_wrong(catalog, tmp_path):
    hosts = devices({"nano-1": NANO, "nano-2": NANO})
    store = EngineStore(tmp_path / "store")
    plan = make(hosts, catalog, tmp_path / "store")
    key = plan["hosts"]["nano-2"]["models"]["m2"]["build_key"]
    assert plan["hosts"]["nano-2"]["models"]["m2"]["rank"] == 0  # builds spread: m1 on nano-1
    file_entry(tmp_path / "store", plan["hosts"]["nano-1"], "m1")
    failed = {"nano-2": {"m2": {"build_key": key, "kind": "tensorrt", "status": "failed"}}}
    # nano-1 takes over m2; nano-2 verifies the m1 that nano-1 filed before it is shared.
    assert planning.round_works(plan, 1, store, failed) == {
        "nano-1": work(build=["m2"]), "nano-2": work(collect=["m1"], confirm=["m1"])}
    failed["nano-2"]["m2"]["kind"] = "user"
    assert set(planning.round_works(plan, 1, store, failed)) == {"nano-2"}


def test_options_a_device_cannot_honour_are_refused_in_the_plan(catalog, tmp_path):
    hosts = devices({"nano-1": NANO})
    dla = HostSelection("nano-1", ("m1",), EngineOptions("fp16", 256, 1, 0), "platform",
                        {"engine_dla_core": "host_vars/nano-1.yml"})
    plan = make(hosts, catalog, tmp_path, chosen={"nano-1": dla})
    refused = plan["hosts"]["nano-1"]["models"]["m1"]["refused"]
    assert refused.startswith("file host_vars/nano-1.yml: engine_dla_core 0: jetson-x has no DLA")
    assert plan["pending"] == 0
    big = HostSelection("nano-1", ("m1",), EngineOptions("fp16", 9000, 1, None), "platform")
    refused = make(hosts, catalog, tmp_path, chosen={"nano-1": big})["hosts"]["nano-1"][
        "models"]["m1"]["refused"]
    assert "engine_workspace_mib 9000 is not below the device's memory (8000 MiB" in refused


ORIN_JP6 = "jetson-agx-orin_l4t36.4.3_trt10.3.0"
BATCH_4 = EngineOptions("fp16", 512, 4, None)


def test_a_max_batch_above_1_on_the_onnx_path_is_refused_in_the_plan(catalog, tmp_path):
    """Refused before the install, with the file, the value and the fix; the builder on the
    device (builder/trt/build.py check_options_for_engine_path) would say the same later."""
    chosen = {"orin-1": HostSelection("orin-1", ("m1", "m2"), BATCH_4, "platform",
                                      {"engine_max_batch": "group_vars/orin.yml"}),
              "nano-1": HostSelection("nano-1", ("m1",), BATCH_4, "platform")}
    plan = make(devices({"orin-1": ORIN_JP6, "nano-1": NANO}), catalog, tmp_path,
                chosen=chosen)
    refused = plan["hosts"]["orin-1"]["models"]["m1"]["refused"]
    assert refused == ("file group_vars/orin.yml: engine_max_batch 4: the ONNX path builds the "
                       "exported file's batch of 1 (explicit batch); use engine_max_batch 1")
    assert plan["hosts"]["orin-1"]["models"]["m2"]["refused"] == refused
    # UFF (TensorRT 8.2) builds an implicit batch: the Nano keeps its batch of 4.
    assert plan["hosts"]["nano-1"]["models"]["m1"]["refused"] is None
    assert plan["pending"] == 1 and plan["exports"] == {}


def test_a_run_the_plan_finishes_fails_on_a_refused_model_and_releases_the_lock(catalog,
                                                                                tmp_path):
    """Nothing pending: the plan step finishes the run (plugins/action/engine_plan.py)."""
    store = tmp_path / "store"
    plan = make(devices({"orin-1": ORIN_JP6}), catalog, store,
                chosen={"orin-1": HostSelection("orin-1", ("m1", "m2"), BATCH_4, "platform")})
    assert plan["pending"] == 0
    # The run's ansible-playbook process holds the lock: the parent of the step's worker.
    assert runlock.acquire(store, os.getppid(), "ansible-playbook build_engines.yml", 0,
                           say=print)
    finished = report.finish_run(plan, {}, ["orin-1"], {"orin-1"}, str(store),
                                 check_mode=False)
    assert finished["failed"] is True
    assert [(row["model"], row["status"]) for row in finished["summary_rows"]] == [
        ("m1", "failed"), ("m2", "failed")]
    assert "orin-1/m1, orin-1/m2" in finished["msg"]
    assert not (store / runlock.RUN_LOCK_NAME).exists()


def test_the_work_dir_engine_counts_by_the_build_key_the_device_reports(catalog, tmp_path):
    """jetson_facts sends each work dir's manifest build key, not the manifest."""
    work = {"nano-1": {"m1": {"graphs": {}, "engines": {"TRT_m1.bin": 5}, "build_key": "k1"},
                       "m2": {"graphs": {}, "engines": {"TRT_m2.bin": 5},
                              "build_key": {"not": "a key"}}}}
    device = devices({"nano-1": NANO}, work=work)["nano-1"]
    assert device.work["m1"]["engine_build_key"] == "k1"
    assert device.work["m2"]["engine_build_key"] is None


def test_work_of_models_no_longer_selected_is_removed(catalog, tmp_path):
    work = {"nano-1": {"old_model": {"graphs": {"old.pb": "a" * 64}, "engines": {}}}}
    plan = make(devices({"nano-1": NANO}, work=work), catalog, tmp_path)
    assert plan["hosts"]["nano-1"]["stale_work"] == ["old_model"]
    assert planning.round_works(plan, 0, EngineStore(tmp_path), {})["nano-1"]["remove"] == [
        "old_model"]


@pytest.mark.parametrize("platform_id", ["../../etc", "/abs", "a/b", "-rf", "", None, "x" * 200])
def test_a_device_that_lies_about_its_platform_is_refused(platform_id):
    with pytest.raises(Untrusted, match="host nano-1 sent platform_id"):
        devices({"nano-1": platform_id})


def test_a_device_work_dir_named_like_a_path_is_refused():
    with pytest.raises(Untrusted, match="work directory"):
        devices({"nano-1": NANO}, work={"nano-1": {"../escape": {}}})


def test_a_device_without_the_disk_for_its_builds_is_refused_before_any_push(catalog, tmp_path):
    # No environment yet: ~1024 MiB for it, then 64 + 3 x 40 MiB per model.
    plan = make(devices({"nano-1": NANO}, free_mib=1200), catalog, tmp_path)
    refused = plan["hosts"]["nano-1"]["models"]["m1"]["refused"]
    assert refused == (
        "device nano-1: /opt/trt-builder has 1200 MiB free, about 1392 MiB are needed (the "
        "pinned environment, 2 model(s) to build). Free space on the device, "
        "or set jetson_facts_root_dir (group_vars or host_vars; jetson_env_root_dir too, to the "
        "same, where the inventory sets that older name) to a directory on a larger disk")
    assert plan["pending"] == 0
    assert make(devices({"nano-1": NANO}, free_mib=1400), catalog, tmp_path)["pending"] == 2


def test_tensorrt_8_4_and_later_build_from_an_onnx_export_made_once(catalog, tmp_path):
    orin = "jetson-agx-orin_l4t36.4.3_trt10.3.0"
    plan = make(devices({"nano-1": NANO, "orin-1": orin, "orin-2": orin}), catalog, tmp_path)
    paths = {host: plan["hosts"][host]["models"]["m1"]["engine_path"] for host in plan["hosts"]}
    assert paths == {"nano-1": "uff", "orin-1": "onnx", "orin-2": "onnx"}
    keys = {plan["hosts"][h]["models"]["m1"]["export_key"] for h in ("orin-1", "orin-2")}
    assert len(keys) == 1 and plan["hosts"]["nano-1"]["models"]["m1"]["export_key"] is None
    assert sorted((e["model"], e["precision"]) for e in plan["exports"].values()) == [
        ("m1", "fp32"), ("m2", "fp32")]
    (m1_key,) = keys
    refused = planning.refuse_export(plan, m1_key, "the export failed")
    assert refused["hosts"]["orin-1"]["models"]["m1"]["refused"] == "the export failed"
    assert refused["hosts"]["nano-1"]["models"]["m1"]["refused"] is None
    assert [e["model"] for e in refused["exports"].values()] == ["m2"]


def test_strongly_typed_tensorrt_gets_an_fp16_onnx_for_fp16_engines(catalog, tmp_path):
    trt10 = "jetson-agx-orin_l4t39.2.1_trt10.16.2"
    trt11 = "jetson-agx-orin_l4t39.2.2_trt11.4.1"
    plan = make(devices({"orin-1": trt10, "orin-2": trt11}), catalog, tmp_path)
    entries = {host: plan["hosts"][host]["models"]["m1"] for host in ("orin-1", "orin-2")}
    assert entries["orin-1"]["onnx_precision"] == "fp32"  # fp16 by the builder flag
    assert entries["orin-2"]["onnx_precision"] == "fp16"  # fp16 from the ONNX's types
    assert entries["orin-1"]["export_key"] != entries["orin-2"]["export_key"]
    assert sorted((e["model"], e["precision"]) for e in plan["exports"].values()) == [
        ("m1", "fp16"), ("m1", "fp32"), ("m2", "fp16"), ("m2", "fp32")]
    assert entries["orin-1"]["refused"] is None and entries["orin-2"]["refused"] is None


@pytest.mark.parametrize("compute,tensorrt,refused", [
    ("6.1", "10.16.2", "has no fast fp16"),  # a GPU with a token fp16 rate: never
    (None, "11.4.1", "cannot be promised"),  # unknown GPU, nothing on the device checks it
    (None, "10.16.2", None),                 # unknown GPU: TensorRT 10's own check decides
])
def test_fp16_on_a_gpu_without_fast_fp16_is_refused_in_the_plan(catalog, tmp_path, compute,
                                                                tensorrt, refused):
    plan = make(devices({"x-1": "jetson-x_l4t39.2.1_trt" + tensorrt},
                        compute_capability=compute), catalog, tmp_path)
    reason = plan["hosts"]["x-1"]["models"]["m1"]["refused"]
    if refused is None:
        assert reason is None
    else:
        assert "engine_precision fp16" in reason and refused in reason, reason
        assert "Use engine_precision fp32" in reason


def test_a_forced_engine_path_the_platform_cannot_build_is_refused(catalog, tmp_path):
    forced = {name: dict(spec, engine_path="uff") for name, spec in catalog.items()}
    plan = make(devices({"orin-1": "jetson-agx-orin_l4t36.4.3_trt10.3.0"}), forced, tmp_path)
    refused = plan["hosts"]["orin-1"]["models"]["m1"]["refused"]
    assert "key 'engine_path': uff cannot be built here: TensorRT 10.3.0 has no UFF" in refused


def test_builds_spread_over_a_platforms_devices_longest_first(catalog, tmp_path):
    with open(str(tmp_path / "m2.pb"), "wb") as graph:
        graph.truncate(80 << 20)  # m2: the larger graph, the longer build
    hosts = devices({"nano-{}".format(i): NANO for i in range(1, 7)})
    plan = make(hosts, catalog, tmp_path / "store")
    first = {model: next(h for h in sorted(hosts) if plan["hosts"][h]["models"][model]["rank"]
                         == 0) for model in ("m1", "m2")}
    assert first == {"m2": "nano-1", "m1": "nano-2"}
    # A failure hands the build to the next device of the platform.
    store = EngineStore(tmp_path / "store")
    key = plan["hosts"]["nano-1"]["models"]["m2"]["build_key"]
    failed = {"nano-1": {"m2": {"build_key": key, "kind": "tensorrt", "status": "failed"}}}
    round_1 = planning.round_works(plan, 1, store, failed)
    assert [h for h, w in round_1.items() if "m2" in w["build"]] == ["nano-2"]


def test_the_variant_says_where_the_precision_comes_from(catalog, tmp_path):
    plan = make(devices({"orin-1": "jetson-agx-orin_l4t39.2.1_trt10.16.2",
                         "orin-2": "jetson-agx-orin_l4t39.2.2_trt11.4.1"}), catalog, tmp_path)
    variants = {host: plan["hosts"][host]["models"]["m1"]["variant"] for host in plan["hosts"]}
    # The builder flag on TensorRT 10; the ONNX's tensor types on the strongly typed 11.
    assert variants == {"orin-1": "fp16-ws512", "orin-2": "fp16-typed-ws512"}


def claims(host, *expected):
    """A selection whose inventory says what the device is: (kind or platform_id, where)."""
    return HostSelection(host, ("m1", "m2"), FP16, "platform", expected_platforms=expected)


def test_a_device_of_another_kind_than_its_group_is_refused_naming_both(catalog, tmp_path):
    """A compromised (or swapped) Nano that reports the TX2's platform must not build or file
    the TX2's shared engine: its group says nano."""
    hosts = devices({"nano-1": TX2, "tx2-1": TX2})
    chosen = selections(hosts, **{"nano-1": claims("nano-1", ("nano", "its inventory group "
                                                                      "'nano'")),
                                  "tx2-1": claims("tx2-1", ("tx2", "its inventory group 'tx2'"))})
    plan = make(hosts, catalog, tmp_path / "store", chosen=chosen)
    for entry in plan["hosts"]["nano-1"]["models"].values():
        assert entry["refused"].startswith(
            "host nano-1: the inventory says it is a nano (its inventory group 'nano': module "
            "jetson-nano), but the device reports platform {}".format(TX2)), entry["refused"]
        assert "put the host in the inventory group of its kind" in entry["refused"]
    assert not any(e["refused"] for e in plan["hosts"]["tx2-1"]["models"].values())
    works = planning.round_works(plan, 0, EngineStore(tmp_path / "store"), {})
    assert set(works) == {"tx2-1"} and works["tx2-1"]["build"] == ["m1", "m2"]


def test_an_expected_platform_id_pins_the_release_too(catalog, tmp_path):
    """engine_expected_platform may name the whole platform_id: a device of the right module
    that claims another JetPack is refused."""
    pinned = "jetson-tx2_l4t32.7.1_trt8.2.1"
    hosts = devices({"tx2-1": TX2, "tx2-2": pinned})
    where = "engine_expected_platform in host_vars/tx2-{}.yml"
    chosen = selections(hosts, **{
        "tx2-1": claims("tx2-1", ("tx2", "its inventory group 'tx2'"),
                        (pinned, where.format(1))),
        "tx2-2": claims("tx2-2", ("tx2", "its inventory group 'tx2'"),
                        (pinned, where.format(2)))})
    plan = make(hosts, catalog, tmp_path / "store", chosen=chosen)
    refused = plan["hosts"]["tx2-1"]["models"]["m1"]["refused"]
    assert "says it is platform {} (engine_expected_platform in host_vars/tx2-1.yml)".format(
        pinned) in refused and "reports platform {}".format(TX2) in refused
    assert plan["hosts"]["tx2-2"]["models"]["m1"]["refused"] is None


def test_a_host_whose_inventory_names_no_kind_is_taken_at_its_word(catalog, tmp_path):
    plan = make(devices({"lab-1": XAVIER}), catalog, tmp_path / "store")
    assert plan["hosts"]["lab-1"]["models"]["m1"]["refused"] is None


def test_a_platform_id_not_of_the_form_fails_every_kind():
    """The module is read from the platform_id (the store's key), never from a field the
    device could set apart from it."""
    lying = devices({"nano-1": "jetson-nano-but-not_trt8.2.1"})["nano-1"]
    refused = platform_disagreement(claims("nano-1", ("nano", "its inventory group 'nano'")),
                                    lying)
    assert refused and "reports platform jetson-nano-but-not_trt8.2.1" in refused
    assert detect.module_of_platform_id(NANO) == "jetson-nano"
    assert detect.module_of_platform_id("jetson-nano_l4t32.7.1_trt8.2.1\n") is None


def test_a_hung_device_gets_no_more_work_and_its_builds_go_to_the_next(catalog, tmp_path):
    hosts = devices({"nano-1": NANO, "nano-2": NANO, "tx2-1": TX2})
    plan = make(hosts, catalog, tmp_path / "store")
    # 3 Nano x 1200 s expected, TX2 900 s (builder/platform/detect.py EXPECTED_BUILD_S).
    assert plan["hosts"]["nano-1"]["build_deadline_s"] == 3600
    assert plan["hosts"]["tx2-1"]["build_deadline_s"] == 2700
    store = EngineStore(tmp_path / "store")
    first = planning.round_works(plan, 0, store, {})
    assert first["nano-1"]["build"] == ["m1"] and first["nano-2"]["build"] == ["m2"]
    hung = {"nano-1": {"m1": {"kind": "deadline", "build_key": "x"}}}
    second = planning.round_works(plan, 1, store, hung)
    # nano-2 takes over m1; nano-1, the fallback of m2, is left out.
    assert second == {"nano-2": work(build=["m1"])}


def test_the_inventory_deadline_replaces_the_platforms(catalog, tmp_path):
    own = HostSelection("nano-1", ("m1",), FP16, "platform", build_deadline_s=90)
    plan = make(devices({"nano-1": NANO}), catalog, tmp_path / "store",
                chosen={"nano-1": own})
    assert plan["hosts"]["nano-1"]["build_deadline_s"] == 90


def test_a_stored_engine_a_second_device_refutes_is_quarantined(catalog, tmp_path):
    """nano-1 builds and files m1; nano-2's failed verify of it moves it to the quarantine,
    naming both, so that the next device builds its own; its builder's own failure does not."""
    hosts = devices({"nano-1": NANO, "nano-2": NANO})
    store_dir = tmp_path / "store"
    plan = make(hosts, catalog, store_dir)
    file_entry(store_dir, plan["hosts"]["nano-1"], "m1")
    key = plan["hosts"]["nano-1"]["models"]["m1"]["build_key"]
    store = EngineStore(store_dir)
    failed = {"m1": {"build_key": key, "status": "failed", "kind": "verify",
                     "reason": "verify: the engine does not deserialize"}}
    assert planning.refute_confirmations(store, "nano-1", ["m1"], failed) == {}  # its builder
    (where,) = planning.refute_confirmations(store, "nano-2", ["m1"], failed).values()
    assert "built on nano-1, refused by nano-2" in (Path(where) / "REASON.txt").read_text()
    assert EngineStore(store_dir).lookup(key) is None
