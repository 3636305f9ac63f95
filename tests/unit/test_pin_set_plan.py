"""A JetPack without a pinned environment is refused in the plan (controller/pin_sets.py), from
the one pin-set table (roles/jetson_env/vars/main.yml), with the release and the fix; and the
plan's choice reaches the role in the round work (controller/device_work.py environment()), the
same the role chose in Jinja before the plan did."""

import re
from pathlib import Path

import pytest
import yaml
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar

from builder.errors import UserError
from builder.trt.adapter import BuildOptions
from builder.trt.build import check_options_for_engine_path
from controller import pin_sets
from controller.device_work import environment
from tests.unit.test_engine_plan import catalog, devices, make  # noqa: F401 (the fixture)

REPO = Path(__file__).resolve().parents[2]
TABLE = pin_sets.PinSetTable.load()
XAVIER_JP44 = "jetson-agx-xavier_l4t32.4.4_trt7.1.3"
NANO_JP46 = "jetson-nano_l4t32.7.1_trt8.2.1"
ORIN_JP6 = "jetson-agx-orin_l4t36.4.3_trt10.3.0"
XAVIER_JP5 = "jetson-agx-xavier_l4t35.4.1_trt8.5.2"
THOR_JP7 = "jetson-agx-thor_l4t38.2.0_trt10.13.3"


def test_the_table_is_the_roles_vars_file():
    data = yaml.safe_load((REPO / "roles/jetson_env/vars/main.yml").read_text())
    assert set(TABLE.names) == set(data["jetson_env_pin_sets"])
    assert TABLE.by_l4t["uff"] == data["jetson_env_pin_set_by_l4t"]
    assert TABLE.by_l4t["onnx"] == data["jetson_env_onnx_pin_set_by_l4t"]


def test_a_jetpack_without_a_pin_set_is_refused_in_the_plan(catalog, tmp_path):  # noqa: F811
    plan = make(devices({"xavier-1": XAVIER_JP44, "nano-1": NANO_JP46, "orin-1": ORIN_JP6}),
                catalog, tmp_path, named_pin_sets={})
    refused = plan["hosts"]["xavier-1"]["models"]["m1"]["refused"]
    assert refused.startswith("host xavier-1: no pinned UFF environment for L4T 32.4.4 "
                              "(JetPack 4.4.1): jetson_env_pin_set_by_l4t has pin sets for "
                              "L4T 32.6, 32.7, 35.1")
    assert "Upgrade the device to JetPack 4.6 (L4T 32.6) or later, or add a pin set made " \
           "for L4T 32.4 to roles/jetson_env/vars/main.yml and name it in " \
           "jetson_env_pin_set (host_vars/xavier-1.yml)" in refused
    # The others have theirs; the refused host builds nothing, so nothing is installed on it.
    assert plan["hosts"]["nano-1"]["models"]["m1"]["refused"] is None
    assert plan["hosts"]["orin-1"]["models"]["m1"]["refused"] is None
    assert plan["pending"] == 4


def test_a_pin_set_the_inventory_names_is_taken_and_must_exist(catalog, tmp_path):  # noqa: F811
    hosts = devices({"xavier-1": XAVIER_JP44, "xavier-2": XAVIER_JP44})
    plan = make(hosts, catalog, tmp_path, named_pin_sets={
        "xavier-1": {"uff": "jetpack46-cp36"}, "xavier-2": {"uff": "jetpack44-cp36"}})
    assert plan["hosts"]["xavier-1"]["models"]["m1"]["refused"] is None
    refused = plan["hosts"]["xavier-2"]["models"]["m1"]["refused"]
    assert refused.startswith("host xavier-2: jetson_env_pin_set is 'jetpack44-cp36', which is "
                              "no pin set of roles/jetson_env/vars/main.yml. Set it in "
                              "host_vars/xavier-2.yml or group_vars/<group>.yml to one of ")
    assert "jetpack46-cp36" in refused


def unreadable(*_):
    raise AssertionError("the pin-set table was read")


def test_a_device_that_builds_nothing_needs_no_pin_set(catalog, tmp_path,  # noqa: F811
                                                        monkeypatch):
    """The engine is on the device already (collect only): no environment is installed."""
    work = {"xavier-1": {}}
    first = make(devices({"xavier-1": XAVIER_JP44}, work=work), catalog, tmp_path,
                 named_pin_sets={})
    keys = {m: e["build_key"] for m, e in first["hosts"]["xavier-1"]["models"].items()}
    work = {"xavier-1": {m: {"graphs": {}, "engines": {"TRT_{}.bin".format(m): 5},
                             "build_key": key} for m, key in keys.items()}}
    # Nothing to build: the table is not even read (a no-op rerun pays nothing for it).
    pin_sets.the_table.cache_clear()
    monkeypatch.setattr(pin_sets.PinSetTable, "load", unreadable)
    plan = make(devices({"xavier-1": XAVIER_JP44}, work=work), catalog, tmp_path,
                named_pin_sets={})
    pin_sets.the_table.cache_clear()
    entries = plan["hosts"]["xavier-1"]["models"].values()
    assert [e["refused"] for e in entries] == [None, None]
    assert all(e["on_device"] for e in entries)


@pytest.mark.parametrize("l4t", ["32.1", "32.2.1", "32.3.1", "32.4.4", "32.5.1"])
def test_the_advised_jetpack_has_a_pin_set(l4t):
    """Following the advice works: the JetPack it names is a release the table serves."""
    problem = pin_sets.pin_set_problem(TABLE, "x", "uff", l4t=l4t, jetpack=None)
    assert "Upgrade the device to JetPack 4.6 (L4T 32.6) or later" in problem
    assert pin_sets.pin_set_problem(TABLE, "x", "uff", l4t="32.6.1", jetpack="4.6") is None


def test_a_release_newer_than_the_table_is_told_to_add_a_pin_set():
    problem = pin_sets.pin_set_problem(TABLE, "thor-1", "onnx", l4t="40.1.0", jetpack=None)
    assert "Upgrade" not in problem
    assert problem.endswith("(JetPack unknown): jetson_env_onnx_pin_set_by_l4t has pin sets "
                            "for L4T 35.1, 35.2, 35.3, 35.4, 35.5, 35.6, 36.2, 36.3, 36.4, "
                            "36.5, 38.2, 38.4, 39.2 only. Add a pin set made for L4T 40.1 to "
                            "roles/jetson_env/vars/main.yml and name it in "
                            "jetson_env_onnx_pin_set (host_vars/thor-1.yml)")


def test_the_builder_refuses_a_batch_on_the_onnx_path_with_its_own_flag():
    with pytest.raises(UserError, match=r"^--max-batch 2: the ONNX path .* use --max-batch 1$"):
        check_options_for_engine_path(BuildOptions("fp16", 256, 2, None), "onnx")
    check_options_for_engine_path(BuildOptions("fp16", 256, 2, None), "uff")


# ------------------------------------------ the round work carries the plan's choice to the role

# What roles/jetson_env/tasks/main.yml chose in Jinja before the plan chose (a device's
# platform, its round's engine paths, the inventory's jetson_env_pin_set and
# jetson_env_onnx_pin_set) -> the pin set it installed. The round work
# (controller/device_work.py environment(), from the plan's HostPlan.pin_sets) carries the same.
BEFORE = [
    (NANO_JP46, ["uff"], "", "", "jetpack46-cp36"),
    (XAVIER_JP5, ["uff"], "", "", "jetpack5-cp38"),
    (XAVIER_JP5, ["onnx"], "", "", "jetpack5-onnx-cp38"),
    (XAVIER_JP5, ["onnx", "uff"], "", "", "jetpack5-cp38"),  # mixed: the TensorFlow set
    (ORIN_JP6, ["onnx"], "", "", "jetpack6-onnx-cp310"),
    (ORIN_JP6, ["onnx"], "", "simulated-onnx-cp311", "simulated-onnx-cp311"),
    (NANO_JP46, ["uff"], "simulated-cp311", "", "simulated-cp311"),
    (XAVIER_JP5, ["onnx", "uff"], "simulated-cp311", "simulated-onnx-cp311",
     "simulated-cp311"),
    (XAVIER_JP5, ["onnx"], "simulated-cp311", "simulated-onnx-cp311", "simulated-onnx-cp311"),
    (THOR_JP7, ["onnx"], "", "", "jetpack7-onnx-cp312"),
]


@pytest.mark.parametrize("case", BEFORE)
def test_the_round_work_carries_the_pin_set_the_role_chose_before(catalog, tmp_path,  # noqa: F811
                                                                   case):
    platform, paths, named_uff, named_onnx, installed = case
    named = {path: name for path, name in (("uff", named_uff), ("onnx", named_onnx)) if name}
    plan = make(devices({"dev-1": platform}), catalog, tmp_path, named_pin_sets={"dev-1": named})
    device = {"tensorrt_full": "8.5.2.2-1+cuda11.4", "python": "3.8.10"}
    env = environment("/data/tb", plan["hosts"]["dev-1"]["pin_sets"], paths, device=device,
                      swap_mib=plan["hosts"]["dev-1"]["swap_mib"])
    assert env == {"root_dir": "/data/tb", "venv": "/data/tb/venv",
                   "python": "/data/tb/venv/bin/python", "pin_set": installed,
                   "uff": "uff" in paths,
                   "marker": {"pin_set": installed, "pins_sha256": TABLE.pins_sha256[installed],
                              "tensorrt": "8.5.2.2-1+cuda11.4", "python": "3.8.10",
                              "swap_mib": "0"}}
    assert installed in TABLE.names


def test_the_markers_pins_digest_is_the_one_devices_already_hold():
    """The role wrote each marker's pins_sha256 with Jinja before the plan made the marker:
    the controller's digest must be the same text, or every device would install again."""
    sets = yaml.safe_load(pin_sets.PIN_SETS_FILE.read_text())["jetson_env_pin_sets"]
    for name, pin_set in sets.items():
        templar = Templar(loader=DataLoader(), variables={"pins": pin_set["pins"]})
        by_jinja = templar.template("{{ pins | ansible.builtin.to_json(sort_keys=true) "
                                    "| ansible.builtin.hash('sha256') }}")
        assert TABLE.pins_sha256[name] == by_jinja, name


@pytest.mark.parametrize("memory_mib, swap_mib, below_mib, expected", [
    (3964, 4096, 6144, 4096),    # a Nano with swap asked for
    (7850, 4096, 6144, 0),       # a TX2 or Xavier NX with 8 GB: none
    (None, 4096, 6144, 4096),    # memory unknown: counted as less
    (3964, 0, 6144, 0),          # swap left alone
    (7850, 2048, 16384, 2048),   # a higher threshold
])
def test_the_plan_gives_the_swap_file_only_below_the_threshold(memory_mib, swap_mib, below_mib,
                                                               expected):
    assert pin_sets.swap_mib_for(memory_mib, swap_mib, below_mib) == expected


def test_the_marker_has_the_keys_the_facts_are_checked_for():
    marker = pin_sets.env_marker(TABLE, "jetpack46-cp36", tensorrt_full="8.2.1.8-1+cuda10.2",
                                 python="3.6.9", swap_mib=4096)
    assert tuple(marker) == pin_sets.ENV_MARKER_KEYS and marker["swap_mib"] == "4096"


def test_the_role_chooses_nothing_and_spells_no_path():
    """The pin set, the TensorRT generation's packages and the builder's paths come from
    jetson_env_work; the role's tasks name no table, release, generation or directory."""
    tasks = "".join(path.read_text() for path in (REPO / "roles/jetson_env/tasks").glob("*.yml"))
    for text in (r"_by_l4t", r"jetson_env_pin_set\b", r"jetson_env_onnx_pin_set", r"l4t",
                 r"trt1\d", r"tensorrt_generation", r"tensorrt_has_uff", r"jetson_env_root_dir",
                 r"/venv", r"/opt/"):
        assert not re.search(text, tasks), text
