"""Unit tests of deploy_engines.yml's pieces without a device: the device-side layout helpers
(module_utils/trt_deploy.py, trt_deploy_write.py), the engine_deploy module's checks and its
install / rollback on a real directory tree, the controller's plan (store lookup by build
key, corrupt entries, platform changes) and the outcome record (deployments.json under the
store lock)."""

import hashlib
import json
import os
import sys
import threading
from pathlib import Path

import pytest
import yaml

from controller import deploy_plan, deployments, signing
from controller.store import EngineStore

from .plugin_files import load
from .store_helpers import staged

TRT_DEPLOY = load("module_utils/trt_deploy.py", "trt_deploy_under_test")
# library/engine_deploy.py imports them the way Ansible ships them to a device.
sys.modules["ansible.module_utils.trt_deploy"] = TRT_DEPLOY
# Its relative import of trt_deploy finds the module above (its package is Ansible's).
TRT_DEPLOY_WRITE = load("module_utils/trt_deploy_write.py",
                        "ansible.module_utils.trt_deploy_write")
sys.modules["ansible.module_utils.trt_signature"] = load("module_utils/trt_signature.py",
                                                         "trt_signature_under_test")
DEPLOY = load("library/engine_deploy.py", "engine_deploy_under_test")
PLAN = deploy_plan
RECORD = deployments

NANO = "jetson-nano_l4t32.7.1_trt8.2.1"
NANO_UPGRADED = "jetson-nano_l4t32.7.4_trt8.2.1"
MODEL = "ssd_mobilenet_v2_coco"


def sha(data):
    return hashlib.sha256(data).hexdigest()


def key_of(text):
    return sha(text.encode())


# ---------------------------------------------------------------- layout helpers

def test_version_name_is_readable_unique_and_refuses_non_digests():
    key, digest = key_of("k1"), sha(b"engine")
    assert TRT_DEPLOY_WRITE.version_name(key, digest) == "{}-{}".format(key[:12], digest[:12])
    assert TRT_DEPLOY.VERSION_RE.match(TRT_DEPLOY_WRITE.version_name(key, digest))
    assert PLAN.version_name(key, digest) == TRT_DEPLOY_WRITE.version_name(key, digest)
    with pytest.raises(ValueError, match="build_key"):
        TRT_DEPLOY_WRITE.version_name("../../etc", digest)
    with pytest.raises(ValueError, match="engine_sha256"):
        TRT_DEPLOY_WRITE.version_name(key, digest[:12] + "zz")
    with pytest.raises(ValueError, match="shorter than 12"):
        TRT_DEPLOY_WRITE.version_name(key[:11], digest)


@pytest.mark.parametrize("ordered, keep, current, previous, removed", [
    (["a", "b", "c", "d"], 2, "d", "c", ["a"]),          # d current, keep c (previous) and b
    (["a", "b", "c", "d"], 0, "d", "c", ["a", "b"]),     # previous survives keep=0
    (["a", "b", "c", "d"], 1, "d", "a", ["b", "c"]),     # after rollbacks previous may be old
    (["a"], 2, "a", None, []),
    (["a", "b"], 2, None, None, []),
])
def test_prune_plan_keeps_current_previous_and_the_newest(ordered, keep, current, previous,
                                                          removed):
    assert TRT_DEPLOY_WRITE.prune_plan(ordered, keep, current, previous) == removed


def test_switch_link_replaces_current_atomically_and_state_reads_it(tmp_path):
    model_dir = tmp_path / MODEL
    for version, key in (("aaaaaaaaaaaa-111111111111", "k1"), ("bbbbbbbbbbbb-222222222222", "k2")):
        (model_dir / version).mkdir(parents=True)
        (model_dir / version / "TRT_{}.bin".format(MODEL)).write_bytes(b"SIMULATED engine")
        (model_dir / version / "manifest.json").write_text(json.dumps(
            {"build_key": key, "platform_id": NANO, "engine_sha256": "e" + key,
             "engine_file": "TRT_{}.bin".format(MODEL), "spec": {"big": "x" * 1000}}))
    TRT_DEPLOY_WRITE.switch_link(str(model_dir), "current", "aaaaaaaaaaaa-111111111111")
    TRT_DEPLOY_WRITE.switch_link(str(model_dir), "current", "bbbbbbbbbbbb-222222222222")
    assert os.readlink(str(model_dir / "current")) == "bbbbbbbbbbbb-222222222222"
    assert not [p for p in model_dir.iterdir() if ".tmp-" in p.name]
    state = TRT_DEPLOY.install_state(str(tmp_path))
    assert list(state) == [MODEL]
    assert state[MODEL]["current"] == {
        "version": "bbbbbbbbbbbb-222222222222", "build_key": "k2", "platform_id": NANO,
        "engine_sha256": "ek2", "engine_file": "TRT_{}.bin".format(MODEL),
        "intact": False}  # hashed: "ek2" is not the engine's sha256
    assert state[MODEL]["previous"] is None
    assert sorted(state[MODEL]["versions"]) == ["aaaaaaaaaaaa-111111111111",
                                                "bbbbbbbbbbbb-222222222222"]
    assert TRT_DEPLOY.install_state(str(tmp_path / "missing")) == {}


# ---------------------------------------------------------------- the module's checks

def verify_record(status="ok", kind=None, message="", lines=(), **result):
    """What `python -m builder verify --json` prints (builder/cli.py's record)."""
    return json.dumps({"record": 1, "command": "verify", "status": status, "kind": kind,
                       "message": message, "tensorrt_lines": list(lines), "details": {},
                       "result": result or None})


VERIFY_OK = verify_record(ok=True, fps=41.5, median_ms=24.1, problems=[], runs=10,
                          keep_count=3)


@pytest.mark.parametrize("rc, stdout, stderr, ok, reason", [
    (0, VERIFY_OK, "", True, None),
    (1, verify_record("failed", "tensorrt", "TensorRT could not deserialize the engine", [
        "[TRT] [E] 6: The engine plan file is generated on an incompatible device, expecting "
        "compute 7.2 got compute 5.3, please rebuild."]), "", False, "incompatible device"),
    (1, verify_record("failed", "verify", "insane output", ok=False,
                      problems=["box 2 is not normalized: xmax 1.7"]), "",
     False, "box 2 is not normalized"),
    (0, "not json", "", False, "without output"),
    (1, "", "Traceback (most recent call last):\nImportError: no module named yaml", False,
     "ImportError"),
    (2, verify_record("failed", "user", "no libcudart found: set --cudart"), "", False,
     "no libcudart"),
])
def test_parse_verify_accepts_only_a_sane_run(rc, stdout, stderr, ok, reason):
    good, record, why = DEPLOY.parse_verify(rc, stdout, stderr)
    assert good is ok
    if ok:
        assert record["fps"] == 41.5 and why is None
    else:
        assert why.startswith("verify failed (exit {})".format(rc)) and reason in why


def manifest_for(model=MODEL, platform_id=NANO, key="k" * 64, engine=b"SIMULATED engine"):
    return {"model": model, "platform_id": platform_id, "build_key": key,
            "engine_file": "TRT_{}.bin".format(model), "engine_sha256": sha(engine)}


def test_check_manifest_names_the_key_that_differs():
    manifest = manifest_for()
    DEPLOY.check_manifest(manifest, "m.json", MODEL, NANO, build_key="k" * 64,
                          engine_sha256=sha(b"SIMULATED engine"))
    with pytest.raises(DEPLOY.DeployError, match="platform_id is 'jetson-nano_l4t32.7.1"):
        DEPLOY.check_manifest(manifest, "m.json", MODEL, NANO_UPGRADED)
    with pytest.raises(DEPLOY.DeployError, match="build_key"):
        DEPLOY.check_manifest(manifest, "m.json", MODEL, NANO, build_key="other")
    with pytest.raises(DEPLOY.DeployError, match="missing or not a JSON object"):
        DEPLOY.check_manifest(None, "m.json", MODEL, NANO)


class FakeRun:
    """Stands in for AnsibleModule (check_mode, run_command) around the module's functions;
    the verify command is a real process (python printing what builder verify prints)."""

    def __init__(self, tmp_path, verify_rc=0, check_mode=False):
        self.check_mode = check_mode
        self.calls = []
        script = tmp_path / "verify.py"
        script.write_text("import sys\nprint({!r})\nsys.stderr.write('error: insane output\\n')"
                          "\nsys.exit({})\n".format(VERIFY_OK if verify_rc == 0 else "", verify_rc))
        self.params = {"verify_command": [sys.executable, str(script)]}

    def run_command(self, argv):
        import subprocess  # noqa: PLC0415
        self.calls.append(argv)
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        return done.returncode, done.stdout, done.stderr


def install_keyring(root):
    """The controller's keyring where the deploy puts it (<root>/bin/keys/); its signer."""
    signer = signing.load_signer(Path(str(root) + "-controller") / "engine-signing.key")
    keys = root / "bin" / "keys"
    keys.mkdir(parents=True, exist_ok=True)
    (keys / "trusted-keys.json").write_bytes(signing.keyring_path(signer.key_path).read_bytes())
    return signer


def sign_push(root, directory, manifest, engine):
    """The controller's statement of a pushed engine beside it, and its keyring on the device."""
    statement = install_keyring(root).sign(signing.statement_payload(
        dict(manifest, engine_size=len(engine)), "fp16-ws512"))
    (directory / "statement.json").write_text(json.dumps(statement))


def push(root, engine, key, platform_id=NANO):
    """What the role's copy tasks leave: <root>/<model>/.incoming/<version>/{engine, manifest,
    statement} and the keyring."""
    version = TRT_DEPLOY_WRITE.version_name(key, sha(engine))
    incoming = root / MODEL / ".incoming" / version
    incoming.mkdir(parents=True)
    (incoming / "TRT_{}.bin".format(MODEL)).write_bytes(engine)
    manifest = manifest_for(platform_id=platform_id, key=key, engine=engine)
    (incoming / "manifest.json").write_text(json.dumps(manifest))
    sign_push(root, incoming, manifest, engine)
    return version, {"install_root": str(root), "model": MODEL, "version": version,
                     "build_key": key, "engine_sha256": sha(engine), "platform_id": NANO,
                     "keep": 1}


def test_install_switches_only_after_sha256_and_verify_then_rolls_back(tmp_path):
    root = tmp_path / "engines"
    runner = FakeRun(tmp_path)
    first, params = push(root, b"SIMULATED engine one", key_of("k1"))
    result = DEPLOY.install(runner, params)
    assert result["changed"] and result["from_version"] is None and result["verify"]["ok"]
    model_dir = root / MODEL
    assert os.readlink(str(model_dir / "current")) == first
    assert (model_dir / "current" / "TRT_{}.bin".format(MODEL)).read_bytes() == \
        b"SIMULATED engine one"
    assert runner.calls[-1][-3:] == ["--json", "--", str(
        model_dir / ".incoming" / first / "TRT_{}.bin".format(MODEL))]

    second, params = push(root, b"SIMULATED engine two", key_of("k2"))
    assert DEPLOY.install(runner, params)["from_version"] == first
    assert os.readlink(str(model_dir / "previous")) == first
    assert DEPLOY.install(runner, params)["changed"] is False, "a rerun changes nothing"

    third, params = push(root, b"SIMULATED engine three", key_of("k3"))
    result = DEPLOY.install(runner, params)
    assert result["removed"] == [first], "keep=1: only previous survives"
    assert sorted(TRT_DEPLOY_WRITE.versions(str(model_dir))) == sorted([second, third])

    back = DEPLOY.rollback(runner, {"install_root": str(root), "model": MODEL,
                                    "platform_id": NANO})
    assert back["version"] == second and back["from_version"] == third
    assert os.readlink(str(model_dir / "current")) == second
    assert os.readlink(str(model_dir / "previous")) == third


def test_a_damaged_push_or_a_failed_verify_leaves_current_alone(tmp_path):
    root = tmp_path / "engines"
    good, params = push(root, b"SIMULATED engine one", key_of("k1"))
    DEPLOY.install(FakeRun(tmp_path), params)

    bad, params = push(root, b"SIMULATED engine two", key_of("k2"))
    (root / MODEL / ".incoming" / bad / "TRT_{}.bin".format(MODEL)).write_bytes(b"truncat")
    with pytest.raises(DEPLOY.DeployError, match="the copy is damaged") as error:
        DEPLOY.install(FakeRun(tmp_path), params)
    assert error.value.kind == "sha256"
    assert os.readlink(str(root / MODEL / "current")) == good

    failing, params = push(root, b"SIMULATED engine three", key_of("k3"))
    with pytest.raises(DEPLOY.DeployError, match="verify failed") as error:
        DEPLOY.install(FakeRun(tmp_path, verify_rc=1), params)
    assert error.value.kind == "verify"
    assert os.readlink(str(root / MODEL / "current")) == good
    assert not (root / MODEL / failing).exists(), "an unverified engine never becomes a version"

    _, params = push(root, b"SIMULATED engine four", key_of("k4"))
    DEPLOY.install(FakeRun(tmp_path), params)
    assert not (root / MODEL / ".incoming").exists(), "failed pushes cleaned after a success"


def test_check_mode_reports_the_switch_and_touches_nothing(tmp_path):
    root = tmp_path / "engines"
    version, params = push(root, b"SIMULATED engine one", key_of("k1"))
    runner = FakeRun(tmp_path, check_mode=True)
    result = DEPLOY.install(runner, params)
    assert result["changed"] and "would switch" in result["msg"] and runner.calls == []
    assert not (root / MODEL / "current").exists()


def test_rollback_without_a_previous_version_says_so(tmp_path):
    root = tmp_path / "engines"
    _, params = push(root, b"SIMULATED engine one", key_of("k1"))
    DEPLOY.install(FakeRun(tmp_path), params)
    with pytest.raises(DEPLOY.DeployError, match="no previous version"):
        DEPLOY.rollback(FakeRun(tmp_path), {"install_root": str(root), "model": MODEL,
                                            "platform_id": NANO})


# ---------------------------------------------------------------- the controller's plan

def signing_key_of(store):
    """The controller's signing key the tests' stores are signed with."""
    return store.parent / "controller" / "engine-signing.key"


def make_store(store, platform_id, model, engine, key):
    """A store entry filed and signed as build_engines.yml files it (controller/store.py)."""
    staging = store.parent / "staged" / key[:8]
    staged(staging, model, platform_id, key, payload=engine)
    filed = EngineStore(store, signing_key=signing_key_of(store)).file_engine(
        staging, platform_id=platform_id, model=model, variant="fp16-ws512", build_key=key,
        built_on="nano-1", max_bytes=1 << 20)
    return Path(filed["path"])


def plan_for(key, platform_id, installed, store):
    return PLAN.plan_model("nano-1", MODEL, key, platform_id, installed=installed,
                           store=EngineStore(store, signing_key=signing_key_of(store)),
                           verified={})


def test_plan_finds_the_entry_by_build_key_never_by_file_name(tmp_path):
    store = tmp_path / "engines"
    key = key_of("nano-key")
    entry = make_store(store, NANO, MODEL, b"SIMULATED nano engine", key)
    plan = plan_for(key, NANO, {}, store)
    assert plan["action"] == "deploy" and plan["push"]
    assert plan["version"] == TRT_DEPLOY_WRITE.version_name(key, sha(b"SIMULATED nano engine"))
    assert plan["store_engine"] == str(entry / "TRT_{}.bin".format(MODEL))

    # Same file name and platform directory, another key (e.g. other options): refused.
    other = plan_for(key_of("fp32"), NANO, {}, store)
    assert other["action"] == "refused" and "no engine for its build key" in other["reason"]
    assert "run build_engines.yml" in other["reason"] and "--limit nano-1" in other["reason"]


def test_plan_up_to_date_and_reactivation_without_push(tmp_path):
    store = tmp_path / "engines"
    key = key_of("nano-key")
    make_store(store, NANO, MODEL, b"SIMULATED nano engine", key)
    version = TRT_DEPLOY_WRITE.version_name(key, sha(b"SIMULATED nano engine"))
    installed = {"current": {"version": version, "build_key": key, "platform_id": NANO,
                             "engine_sha256": sha(b"SIMULATED nano engine")},
                 "versions": [version]}
    plan = plan_for(key, NANO, installed, store)
    assert plan["action"] == "up_to_date" and plan["version"] == version

    rolled_back = {"current": {"version": "aaaaaaaaaaaa-bbbbbbbbbbbb", "build_key": "old",
                               "platform_id": NANO}, "versions": [version,
                                                                  "aaaaaaaaaaaa-bbbbbbbbbbbb"]}
    plan = plan_for(key, NANO, rolled_back, store)
    assert plan["action"] == "deploy" and plan["push"] is False


def test_plan_refuses_a_corrupt_entry_and_an_upgraded_jetpack(tmp_path):
    store = tmp_path / "engines"
    key = key_of("nano-key")
    entry = make_store(store, NANO, MODEL, b"SIMULATED nano engine", key)
    (entry / "TRT_{}.bin".format(MODEL)).write_bytes(b"SIMULATED bit rot")
    plan = plan_for(key, NANO, {}, store)
    assert plan["action"] == "refused" and plan["push"] is False
    assert "is corrupt" in plan["reason"] and "nothing was pushed" in plan["reason"]
    assert ("run build_engines.yml (its plan moves the entry to the store's .quarantine/"
            in plan["reason"])

    installed = {"current": {"version": "aaaaaaaaaaaa-bbbbbbbbbbbb", "build_key": key,
                             "platform_id": NANO}}
    upgraded = plan_for(key_of("new key"), NANO_UPGRADED, installed, store)
    assert upgraded["action"] == "refused"
    assert NANO in upgraded["reason"] and NANO_UPGRADED in upgraded["reason"]
    assert "it keeps aaaaaaaaaaaa-bbbbbbbbbbbb" in upgraded["reason"]


def test_settings_problems_name_host_key_and_fix():
    good = {"engine_deploy_keep": 2, "engine_deploy_restart": {"systemd": "detector.service"},
            "engine_deploy_health": {"url": "http://127.0.0.1/health", "retries": 3}}
    assert PLAN.settings_problems("nano-1", good) == []
    bad = {"engine_deploy_keep": -1, "engine_deploy_install_root": "relative",
           "engine_deploy_restart": {"systemd": "a", "command": "b"},
           "engine_deploy_health": {"command": "curl", "delay": "soon"}}
    problems = PLAN.settings_problems("nano-1", bad)
    assert len(problems) == 4, problems
    assert all(p.startswith("host 'nano-1', key 'engine_deploy_") for p in problems)
    assert all("host_vars/nano-1.yml" in p for p in problems)


# ---------------------------------------------------------------- outcomes and the record

def deploy_item(**extra):
    item = {"action": "deploy", "version": "new", "from_version": "old", "build_key": "k",
            "from_build_key": "ok", "platform_id": NANO, "from_platform_id": NANO}
    item.update(extra)
    return item


@pytest.mark.parametrize("switch, undo, health, status, version", [
    ({"changed": True, "version": "new"}, None, None, "deployed", "new"),
    ({"failed": True, "msg": "verify failed (exit 1): incompatible"}, None, None, "failed", "old"),
    (None, None, None, "failed", "old"),
    ({"changed": True}, {"changed": True, "version": "old"}, "health check failed",
     "health rolled back", "old"),
    ({"changed": True}, {"failed": True, "msg": "no previous"}, "health check failed",
     "failed", "new"),
])
def test_model_outcome(switch, undo, health, status, version):
    outcome = RECORD.model_outcome(deploy_item(), switch, undo, health)
    assert outcome["status"] == status and outcome["version"] == version


def test_health_failure_reads_the_check_that_ran():
    skipped = {"skipped": True}
    assert RECORD._health_failure({"engine_deploy_health_command": skipped}) is None
    failed = {"engine_deploy_health_url": {"failed": True, "attempts": 3, "msg": "Status 503"},
              "engine_deploy_health_command": skipped}
    assert RECORD._health_failure(failed) == "health check failed after 3 attempt(s): Status 503"
    restart = {"engine_deploy_restarted_command": {"failed": True, "stderr": "no such unit"}}
    assert RECORD._health_failure(restart) == "restart failed: no such unit"


def test_record_merges_batches_atomically_under_the_store_lock(tmp_path):
    store = tmp_path / "engines"
    outcome = {"version": "v1", "build_key": "k", "platform_id": NANO, "health": "ok",
               "status": "deployed", "detail": "nothing -> v1"}
    threads = [threading.Thread(target=RECORD.write_record, args=(
        str(store), {"host-{}".format(i): {MODEL: dict(outcome)}}, "2026-12-01T21:00:00Z"))
        for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    record = json.loads((store / "deployments.json").read_text())
    assert sorted(record["hosts"]) == ["host-{}".format(i) for i in range(8)]
    assert record["hosts"]["host-3"][MODEL]["changed_utc"] == "2026-12-01T21:00:00Z"

    RECORD.write_record(str(store), {"host-3": {MODEL: dict(outcome, status="up to date")}},
                        "2026-12-02T08:00:00Z")
    again = json.loads((store / "deployments.json").read_text())["hosts"]["host-3"][MODEL]
    assert again["when"] == "2026-12-02T08:00:00Z"
    assert again["changed_utc"] == "2026-12-01T21:00:00Z", "unchanged current keeps its date"
    assert not [p for p in store.iterdir() if p.name.startswith(".deployments-")]
    assert Path(store / ".lock").exists()


@pytest.mark.parametrize("damaged", ["[]", '"hosts"', '{"hosts": []}'])
def test_a_record_that_is_not_an_object_is_rewritten(tmp_path, damaged):
    store = tmp_path / "engines"
    store.mkdir()
    (store / "deployments.json").write_text(damaged)
    outcome = {"version": "v1", "build_key": "k", "platform_id": NANO, "health": "ok",
               "status": "deployed", "detail": "nothing -> v1"}
    RECORD.write_record(str(store), {"host-1": {MODEL: outcome}}, "2026-12-01T21:00:00Z")
    record = json.loads((store / "deployments.json").read_text())
    assert record["format"] == 1 and list(record["hosts"]) == ["host-1"]


# ---------------------------------------------------------------- the restart handlers

HANDLERS = Path(__file__).resolve().parents[2] / "roles/engine_deploy/handlers/main.yml"


def _handlers_that_run(restart):
    """Names of the handlers whose `when` holds for ``engine_deploy_restart: restart``,
    evaluated by Ansible's own conditional code, with the module each one calls."""
    from ansible.parsing.dataloader import DataLoader  # noqa: PLC0415
    from ansible.playbook.conditional import Conditional  # noqa: PLC0415
    from ansible.template import Templar  # noqa: PLC0415

    templar = Templar(loader=DataLoader(),
                      variables={"engine_deploy_settings": {"restart": restart}})
    running = {}
    for handler in yaml.safe_load(HANDLERS.read_text()):
        conditional = Conditional(loader=DataLoader())
        conditional.when = [handler["when"]]
        if conditional.evaluate_conditional(templar, templar.available_variables):
            module = next(key for key in handler if key.startswith("ansible.builtin."))
            running[handler["name"]] = (module, templar.template(handler[module]))
    return running


def test_restart_handlers_pick_the_configured_form():
    systemd = _handlers_that_run({"systemd": "detector.service"})
    assert list(systemd.values()) == [("ansible.builtin.systemd_service",
                                       {"name": "detector.service", "state": "restarted"})]
    command = _handlers_that_run({"command": "/usr/local/bin/detector --reload"})
    assert list(command.values()) == [("ansible.builtin.command",
                                       {"cmd": "/usr/local/bin/detector --reload"})]
    assert _handlers_that_run(None) == {}
    for handler in yaml.safe_load(HANDLERS.read_text()):
        assert handler["listen"] == "Restart the engine consumer"
        assert handler["register"].startswith("engine_deploy_restarted_")


# ---------------------------------------------------------------- the staged rollout

PLAYBOOK = Path(__file__).resolve().parents[2] / "playbooks/deploy_engines.yml"


@pytest.mark.parametrize("extra, batches", [
    ({}, [1, "100%"]),                                         # one canary, then the rest
    ({"engine_deploy_canary": 0.1}, ["10%", "100%"]),          # a fraction of the fleet
    ({"engine_deploy_canary": "5%", "engine_deploy_max_fail_percentage": 20}, ["5%", "100%"]),
    ({"engine_deploy_canary": 0, "engine_deploy_batch": "50%"}, ["50%"]),  # no canary
])
def test_serial_batches_from_the_rollout_settings(extra, batches):
    """The play's serial and max_fail_percentage, templated as Ansible does when the play starts
    (its vars, the engine_rollout lookup of plugins/lookup/: controller/schema.py)."""
    from ansible.parsing.dataloader import DataLoader  # noqa: PLC0415
    from ansible.plugins.loader import lookup_loader  # noqa: PLC0415
    from ansible.template import Templar  # noqa: PLC0415

    lookup_loader.add_directory(str(PLAYBOOK.parents[1] / "plugins" / "lookup"))
    play = yaml.safe_load(PLAYBOOK.read_text())[0]
    templar = Templar(loader=DataLoader(), variables=dict(play["vars"], **extra))
    rendered = templar.template(play["serial"])
    assert [str(b) for b in rendered] == [str(b) for b in batches]
    assert int(templar.template(play["max_fail_percentage"])) == \
        extra.get("engine_deploy_max_fail_percentage", 0)


def test_a_deploys_files_go_in_one_push_to_where_the_install_reads_them(tmp_path):
    """host_push: the wheel (only when the venv is installed), each engine with its manifest and
    statement under .incoming/<version>/, the staged ones under .stage-incoming/; its two
    commands, run by a real shell around copies standing for the transfers, remove a link
    planted at a part name or a file's name without writing through it, and leave each file
    readable by the engine's consumer."""
    from controller.device_push import SHARED  # noqa: PLC0415

    from .push_helpers import push_here  # noqa: PLC0415

    store = tmp_path / "store"
    store.mkdir()
    sources = {}
    for name in ("builder-1.0-py3-none-any.whl", "TRT_m.bin", "manifest.json", "statement.json"):
        sources[name] = store / name
        sources[name].write_text("content of " + name)
    root = tmp_path / "engines"
    plan = {"settings": {"install_root": str(root)}, "env": {"install": True},
            "files": [{"model": "m", "version": "v1", "src": str(sources[name])}
                      for name in ("TRT_m.bin", "manifest.json", "statement.json")],
            "stage_files": [{"model": "m", "platform_id": "jetson-orin_x", "variant": "fp16",
                             "src": str(sources["TRT_m.bin"])}]}
    wheel = {"src": str(sources["builder-1.0-py3-none-any.whl"]),
             "name": "builder-1.0-py3-none-any.whl"}
    push = deploy_plan.host_push(plan, wheel)
    assert [item["path"] for item in push] == [
        "{}/.deploy-wheels/builder-1.0-py3-none-any.whl".format(root),
        "{}/m/.incoming/v1/TRT_m.bin".format(root),
        "{}/m/.incoming/v1/manifest.json".format(root),
        "{}/m/.incoming/v1/statement.json".format(root),
        "{}/m/.stage-incoming/jetson-orin_x/fp16/TRT_m.bin".format(root)]
    assert len(deploy_plan.host_push(dict(plan, env={"install": False}), wheel)) == 4

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "target").write_text("not the deploy's")
    (root / "m" / ".incoming" / "v1").mkdir(parents=True)
    os.symlink(str(elsewhere / "target"), push[1]["part"])  # a link at a part name
    os.symlink(str(elsewhere), push[2]["path"])  # a link at a file's own name
    push_here(push, SHARED)
    for item in push:
        final = Path(item["path"])
        assert not final.is_symlink() and final.read_text() == Path(item["src"]).read_text()
        assert final.stat().st_mode & 0o777 == 0o644
    assert (elsewhere / "target").read_text() == "not the deploy's"
    assert sorted(p.name for p in elsewhere.iterdir()) == ["target"]
