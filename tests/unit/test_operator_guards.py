"""Guard rails on the operator's inputs (issue 27, item 5), in the preflight
(controller/preflight.py, controller/guards.py): a store directory that is a system path or a
home directory, an allowed graph directory of the same kind, a YAML alias bomb in
engine_models and a control character in a model name are refused with the host, the file and
the key, for one host alone as with --limit, before anything is written; the deploy refuses an
install root that is a system path."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml

from builder.platform import detect
from builder.spec.catalog import SAFE_NAME
from controller import deploy_plan, guards, preflight, schema, trust
from tests.fleet.profiles import MODULES

REPO = Path(__file__).resolve().parents[2]
MODEL = "ssd_mobilenet_v2_coco"
BOMB = """\
a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]
engine_models: [*h, *h, *h, *h, *h, *h, *h, *h, *h]
"""


def one_model_site(tmp_path):
    """A catalog with one model (MODEL) and an empty inventory (group_vars, host_vars)."""
    catalog = tmp_path / "catalog" / "models.yml"
    catalog.parent.mkdir()
    (catalog.parent / "graph.pb").write_bytes(b"graph")
    catalog.write_text("version: 1\nmodels:\n  {}:\n    graph: graph.pb\n    num_classes: 91\n"
                       .format(MODEL))
    inventory = tmp_path / "inventory"
    (inventory / "host_vars").mkdir(parents=True)
    (inventory / "group_vars").mkdir()
    return {"catalog": catalog, "inventory": inventory, "tmp": tmp_path}


@pytest.fixture
def site(tmp_path):
    """A catalog with one model and an inventory whose host_vars a test writes."""
    return one_model_site(tmp_path)


def preflight_of(site, host_vars_text, hosts=("nano-1",)):
    """run_preflight for ``hosts`` (one host: what --limit leaves), nano-1's host_vars file
    written from ``host_vars_text``; hostvars as Ansible hands them over (plain values)."""
    path = site["inventory"] / "host_vars" / "nano-1.yml"
    path.write_text(host_vars_text)
    hostvars = {}
    for host in hosts:
        values = yaml.safe_load(path.read_text()) if host == "nano-1" else {}
        hostvars[host] = dict(values, group_names=["nano"])
    return preflight.run_preflight(str(site["catalog"]), list(hosts), hostvars,
                                   [str(site["inventory"])], None)


def the_problem(result, key):
    found = [p for p in result["problems"] if "key '{}'".format(key) in p]
    assert found, result["problems"]
    return found[0]


FILE = "host 'nano-1', file host_vars/nano-1.yml ({}/host_vars/nano-1.yml), key '{}'"


@pytest.mark.parametrize("store, why", [
    ("/", "/ is a system directory"),
    ("/etc", "/etc is a system directory"),
    ("/usr", "/usr is a system directory"),
    ("/bin", "/bin is a system directory"),
    ("/var", "/var is a system directory"),
    ("/var/lib", "/var/lib is a system directory"),
    ("/root", "/root is a system directory"),
    ("/etc/engines", "inside the system tree /etc"),
    ("/usr/lib/engines", "inside the system tree /usr"),
    ("/home/alice", "/home/alice is a home directory itself"),
    ("/var/../etc/", "/var/../etc/ (/etc) is a system directory"),
])
def test_a_system_store_directory_is_refused_for_one_host_with_file_and_key(site, store, why):
    result = preflight_of(site, "engine_store_dir: {}\n".format(store))
    problem = the_problem(result, "engine_store_dir")
    assert problem.startswith(FILE.format(site["inventory"], "engine_store_dir")), problem
    assert why in problem and "a directory of its own" in problem
    assert result["selections"] == {}


def test_the_home_directory_a_link_to_root_and_the_repository_are_refused(site, monkeypatch):
    home = site["tmp"] / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    assert "is a home directory itself" in the_problem(
        preflight_of(site, 'engine_store_dir: "~/"\n'), "engine_store_dir")
    (site["tmp"] / "to-root").symlink_to("/")
    assert "(resolves to /) is a system directory" in the_problem(
        preflight_of(site, "engine_store_dir: {}\n".format(site["tmp"] / "to-root")),
        "engine_store_dir")
    # The repository itself (its parent may be a system or home directory, e.g. a clone
    # under /tmp, refused for that first): a directory that holds it is tested below.
    assert "{} is the repository".format(REPO) in the_problem(
        preflight_of(site, "engine_store_dir: {}\n".format(REPO)), "engine_store_dir")
    assert "catalog is the catalog's directory" in the_problem(
        preflight_of(site, "engine_store_dir: {}\n".format(site["catalog"].parent)),
        "engine_store_dir")


def test_a_directory_that_holds_the_repository_is_refused():
    problem = guards.system_path_problem("/srv/work", homes=set(), resolve=False,
                                         holds={"the repository": "/srv/work/clone"})
    assert problem == "/srv/work is a directory that holds the repository (/srv/work/clone)"
    assert guards.system_path_problem("/srv/work/clone/artifacts/engines", homes=set(),
                                      resolve=False,
                                      holds={"the repository": "/srv/work/clone"}) is None


def test_a_store_of_its_own_passes(site, monkeypatch):
    monkeypatch.setattr(preflight, "graph_problems", lambda *args: ([], [], {}))
    for store in (site["tmp"] / "store", "/srv/engine-store", "/usr/local/share/engines"):
        result = preflight_of(site, "engine_store_dir: {}\nengine_models: [{}]\n".format(
            store, MODEL))
        assert result["problems"] == [], result["problems"]
        assert result["selections"]["nano-1"]["models"] == [MODEL]


def test_an_allowed_graph_directory_that_is_a_system_path_is_refused(site):
    problem = the_problem(preflight_of(site, "engine_graph_allowed_dirs: [/data/graphs, /]\n"),
                          "engine_graph_allowed_dirs")
    assert problem.startswith(FILE.format(site["inventory"], "engine_graph_allowed_dirs"))
    assert "/ is a system directory" in problem and "sent to every device" in problem


def test_a_yaml_alias_bomb_is_refused_quickly_and_never_expanded(site):
    started = time.monotonic()
    result = preflight_of(site, BOMB, hosts=("nano-1", "nano-2"))
    seconds = time.monotonic() - started
    problem = the_problem(result, "engine_models")
    assert problem.startswith(FILE.format(site["inventory"], "engine_models"))
    assert "expands to more than {} items when its YAML aliases are followed".format(
        guards.MAX_ITEMS) in problem and "billion laughs" in problem
    assert len(problem) < 1000 and "lol" not in problem
    assert seconds < 5, seconds
    assert all("nano-2" not in p for p in result["problems"])


def test_the_bomb_is_looked_at_raw_before_ansible_could_template_it():
    class Templating:
        """Stands in for Ansible's HostVarsVars: raw values in _vars, templated on get."""

        def __init__(self, raw):
            self._vars = raw

        def get(self, key, default=None):
            if key == "engine_models":
                raise AssertionError("engine_models was templated")
            return self._vars.get(key, default)

    raw = yaml.safe_load(BOMB)
    assert preflight.oversized_variables(preflight.raw_variables(Templating(raw))) == {
        "engine_models"}
    assert not guards.expanded_size_exceeds([MODEL] * 200)
    assert guards.expanded_size_exceeds(raw["engine_models"])


@pytest.mark.parametrize("name, shown", [
    (MODEL + "\n", "U+000A at position 22"),
    (MODEL + "\t", "U+0009 at position 22"),
    ("ssd\rmobilenet", "U+000D at position 4"),
    (MODEL + "\x7f", "U+007F at position 22"),
])
def test_a_control_character_in_a_model_name_is_refused_clearly(site, name, shown):
    result = preflight_of(site, yaml.safe_dump({"engine_models": [name]}))
    problem = the_problem(result, "engine_models")
    assert problem.startswith(FILE.format(site["inventory"], "engine_models"))
    assert "model name {!r} contains a control character ({})".format(name, shown) in problem
    assert "write the value on one line" in problem
    assert "not in the catalog" not in problem


def test_a_control_character_in_a_path_or_text_value_is_refused(site):
    problem = the_problem(preflight_of(site, 'engine_store_dir: "/srv/engines\\n"\n'),
                          "engine_store_dir")
    assert "contains a control character (U+000A at position 13)" in problem


def test_patterns_end_at_the_end_not_before_a_trailing_newline():
    assert not SAFE_NAME.match(MODEL + "\n")
    # One rule for a model name: the catalog's, which the controller's trust checks import.
    assert trust.MODEL_NAME is SAFE_NAME
    with pytest.raises(trust.Untrusted):
        trust.component("jetson-nano_l4t32.7.1_trt8.2.1\n", "platform_id", "host nano-1")
    assert schema.control_problem(schema.BY_NAME["engine_precision"], "fp16\n")


@pytest.mark.parametrize("root, refused", [
    ("/", True), ("/etc", True), ("/usr", True), ("/opt", True), ("/var", True),
    ("/home/nvidia", True), ("/root", True), ("/etc/trt-engines", True),
    ("/opt/trt-engines", False), ("/data/engines", False),
])
def test_the_deploy_refuses_an_install_root_that_is_a_system_path(root, refused):
    problems = deploy_plan.settings_problems("nano-1", {"engine_deploy_install_root": root})
    assert bool(problems) is refused, problems
    if refused:
        assert problems[0].startswith("host 'nano-1', key 'engine_deploy_install_root'")


def test_the_inventory_says_what_a_device_is_by_group_and_expected_platform(site):
    """Groups named like a kind and engine_expected_platform become the selection's claims;
    a value that is neither a kind nor a platform_id is refused with file and key."""
    result = preflight_of(site, "engine_models: [{}]\nengine_expected_platform: "
                                "jetson-nano_l4t32.7.1_trt8.2.1\n".format(MODEL))
    assert not [p for p in result["problems"] if "engine_expected_platform" in p]
    claims = result["selections"]["nano-1"]["expected_platforms"]
    assert claims[0] == ["nano", "its inventory group 'nano'"]
    assert claims[1][0] == "jetson-nano_l4t32.7.1_trt8.2.1"
    assert claims[1][1].startswith("engine_expected_platform in host_vars/nano-1.yml")
    wrong = preflight_of(site, "engine_models: [{}]\nengine_expected_platform: nanoo\n"
                         .format(MODEL))
    problem = the_problem(wrong, "engine_expected_platform")
    assert problem.startswith(FILE.format(site["inventory"], "engine_expected_platform"))
    assert "'nanoo' is neither a kind nor a platform_id" in problem and "orin_nx" in problem


def test_every_simulated_kind_is_a_kind_of_its_module():
    """The simulated fleet names its groups after its kinds: each must be known, and stand
    for the module its devices report (else every fleet run would be refused)."""
    for module in MODULES.values():
        kind = detect.inventory_kind(module.kind)
        assert kind and module.slug in detect.INVENTORY_KINDS[kind], module.kind
