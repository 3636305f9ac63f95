"""engine_deploy on a real directory tree: the device checks each engine's signed statement
itself (install, rollback), and state=stage puts verified engines side by side per platform
without touching current (library/engine_deploy.py, module_utils/trt_deploy.py)."""

import json
import os
import shutil

import pytest

from controller import signing

from .test_deploy import DEPLOY, MODEL, NANO, TRT_DEPLOY, FakeRun, key_of, manifest_for, push, sha

ENGINE = "TRT_{}.bin".format(MODEL)
NANO_NEXT = "jetson-nano_l4t32.7.4_trt8.2.1"


class Runner(FakeRun):
    def __init__(self, tmp_path):
        super().__init__(tmp_path)
        self.warnings = []

    def warn(self, text):
        self.warnings.append(text)


@pytest.fixture
def device(tmp_path):
    """One engine installed as current (signed), the controller's signer."""
    root = tmp_path / "engines"
    version, params = push(root, b"SIMULATED engine one", key_of("k1"))
    DEPLOY.install(Runner(tmp_path), params)
    signer = signing.load_signer(tmp_path / "engines-controller" / "engine-signing.key")
    return {"root": root, "version": version, "signer": signer, "tmp": tmp_path}


def push_for_stage(device, platform_id, engine, *, signer=None, claimed_platform=None):
    """What the role's copy leaves in <model>/.stage-incoming/<platform_id>/<variant>/."""
    directory = device["root"] / MODEL / ".stage-incoming" / platform_id / "fp16-ws512"
    directory.mkdir(parents=True, exist_ok=True)
    manifest = manifest_for(platform_id=platform_id, key=key_of(platform_id), engine=engine)
    (directory / ENGINE).write_bytes(engine)
    (directory / "manifest.json").write_text(json.dumps(manifest))
    payload = signing.statement_payload(dict(manifest, engine_size=len(engine),
                                             platform_id=claimed_platform or platform_id),
                                        "fp16-ws512")
    (directory / "statement.json").write_text(json.dumps(
        (signer or device["signer"]).sign(payload)))
    return {"model": MODEL, "platform_id": platform_id, "source": "pushed",
            "variant": "fp16-ws512", "build_key": key_of(platform_id),
            "engine_sha256": sha(engine)}


def stage(device, *items):
    return DEPLOY.stage(Runner(device["tmp"]), {"install_root": str(device["root"]),
                                                "stage": list(items)})


CURRENT_ITEM = {"model": MODEL, "platform_id": NANO, "source": "current"}


def statuses(result):
    return {(o["platform_id"], o["status"]) for o in result["staged"]}


def test_current_and_a_target_platform_are_staged_side_by_side_current_unchanged(device):
    model_dir = device["root"] / MODEL
    result = stage(device, CURRENT_ITEM, push_for_stage(device, NANO_NEXT, b"SIMULATED next"))
    assert statuses(result) == {(NANO, "staged"), (NANO_NEXT, "staged")}
    assert (model_dir / NANO / "fp16-ws512" / ENGINE).read_bytes() == b"SIMULATED engine one"
    assert (model_dir / NANO_NEXT / "fp16-ws512" / ENGINE).read_bytes() == b"SIMULATED next"
    assert sorted(p.name for p in (model_dir / NANO_NEXT / "fp16-ws512").iterdir()) == \
        sorted([ENGINE, "manifest.json", "statement.json"])
    assert os.readlink(str(model_dir / "current")) == device["version"]
    assert not (model_dir / ".stage-incoming").exists()
    # The layout's readers see a version and two staged platforms, nothing else.
    state = TRT_DEPLOY.install_state(str(device["root"]))
    assert state[MODEL]["versions"] == [device["version"]]
    assert state[MODEL]["staged"] == {
        NANO: {"fp16-ws512": {"engine_sha256": sha(b"SIMULATED engine one"),
                              "key_id": device["signer"].key_id, "intact": True}},
        NANO_NEXT: {"fp16-ws512": {"engine_sha256": sha(b"SIMULATED next"),
                                   "key_id": device["signer"].key_id, "intact": True}}}
    again = stage(device, CURRENT_ITEM)
    assert statuses(again) == {(NANO, "up to date"), (NANO_NEXT, "removed")}
    assert not (model_dir / NANO_NEXT).exists()


def test_an_altered_staged_engine_is_replaced_by_a_verified_copy(device):
    stage(device, CURRENT_ITEM)
    staged = device["root"] / MODEL / NANO / "fp16-ws512" / ENGINE
    staged.write_bytes(b"SIMULATED tampered")
    assert TRT_DEPLOY.install_state(str(device["root"]))[MODEL]["staged"][NANO][
        "fp16-ws512"]["intact"] is False
    result = stage(device, CURRENT_ITEM)
    assert result["staged"][0]["status"] == "staged"
    assert "refused the staged engine" in result["staged"][0]["detail"]
    assert staged.read_bytes() == b"SIMULATED engine one"


def test_a_push_signed_by_another_key_or_for_another_platform_is_refused(device):
    stage(device, CURRENT_ITEM, push_for_stage(device, NANO_NEXT, b"SIMULATED next"))
    other = signing.load_signer(device["tmp"] / "attacker" / "key")
    forged = push_for_stage(device, NANO_NEXT, b"SIMULATED forged", signer=other)
    result = stage(device, CURRENT_ITEM, forged)
    refused = [o for o in result["staged"] if o["platform_id"] == NANO_NEXT][0]
    assert refused["status"] == "refused"
    assert "signed by key {}, which is not trusted here".format(other.key_id) in \
        refused["detail"]
    # What was staged there before stays.
    assert (device["root"] / MODEL / NANO_NEXT / "fp16-ws512" / ENGINE).read_bytes() == \
        b"SIMULATED next"
    misplaced = push_for_stage(device, NANO_NEXT, b"SIMULATED other", claimed_platform=NANO)
    refused = [o for o in stage(device, CURRENT_ITEM, misplaced)["staged"]
               if o["platform_id"] == NANO_NEXT][0]
    assert refused["status"] == "refused" and "vouches for platform_id" in refused["detail"]


def test_install_and_rollback_refuse_an_engine_the_controller_did_not_sign(device):
    root = device["root"]
    version, params = push(root, b"SIMULATED engine two", key_of("k2"))
    other = signing.load_signer(device["tmp"] / "attacker" / "key")
    statement = root / MODEL / ".incoming" / version / "statement.json"
    statement.write_text(json.dumps(other.sign(json.loads(json.loads(
        statement.read_text())["payload"]))))
    with pytest.raises(DEPLOY.DeployError, match="not trusted here") as error:
        DEPLOY.install(Runner(device["tmp"]), params)
    assert error.value.kind == "signature"
    assert os.readlink(str(root / MODEL / "current")) == device["version"]
    # A previous version whose statement is gone is not switched back to.
    third, params = push(root, b"SIMULATED engine three", key_of("k3"))
    DEPLOY.install(Runner(device["tmp"]), params)
    (root / MODEL / device["version"] / "statement.json").unlink()
    with pytest.raises(DEPLOY.DeployError, match="statement.json is missing"):
        DEPLOY.rollback(Runner(device["tmp"]), {"install_root": str(root), "model": MODEL,
                                                "platform_id": NANO})
    assert os.readlink(str(root / MODEL / "current")) == third


def test_without_the_keyring_nothing_is_staged(device):
    shutil.rmtree(str(device["root"] / "bin"))
    with pytest.raises(DEPLOY.DeployError, match="keyring cannot be read"):
        stage(device, CURRENT_ITEM)


def test_the_plan_refuses_a_store_entry_signed_by_another_key(tmp_path):
    """The controller checks each entry's statement before any push (controller/deploy_plan.py)."""
    from .test_deploy import make_store, plan_for  # noqa: PLC0415

    store = tmp_path / "engines"
    key = key_of("nano-key")
    entry = make_store(store, NANO, MODEL, b"SIMULATED nano engine", key)
    assert plan_for(key, NANO, {}, store)["action"] == "deploy"
    other = signing.load_signer(tmp_path / "attacker" / "key")
    statement = entry / "statement.json"
    statement.write_text(json.dumps(other.sign(json.loads(json.loads(
        statement.read_text())["payload"]))))
    plan = plan_for(key, NANO, {}, store)
    assert plan["action"] == "refused" and not plan["push"]
    assert "has no valid statement: " in plan["reason"]
    assert "signed by key {}, which is not trusted here".format(other.key_id) in plan["reason"]
    assert "store repair re-signs" in plan["reason"] and "nothing was pushed" in plan["reason"]


def test_what_is_staged_already_is_kept_and_checked_again(device):
    target = push_for_stage(device, NANO_NEXT, b"SIMULATED next")
    stage(device, CURRENT_ITEM, target)
    keep = {"model": MODEL, "platform_id": NANO_NEXT, "source": "staged",
            "variant": "fp16-ws512"}
    assert statuses(stage(device, CURRENT_ITEM, keep)) == {(NANO, "up to date"),
                                                           (NANO_NEXT, "up to date")}
    staged = device["root"] / MODEL / NANO_NEXT / "fp16-ws512" / ENGINE
    staged.write_bytes(b"SIMULATED altered")
    result = stage(device, CURRENT_ITEM, keep)
    refused = [o for o in result["staged"] if o["platform_id"] == NANO_NEXT][0]
    assert refused["status"] == "refused" and "sha256" in refused["detail"]


@pytest.mark.parametrize("value", ["jetson-nano_l4t32.7.4_trt8.2.1", ["../../etc"], [3],
                                   ["jetson-nano_l4t32.7.4"]])
def test_stage_platforms_that_are_not_platform_ids_are_named_with_the_fix(value):
    from controller.deploy_plan import settings_problems  # noqa: PLC0415

    (problem,) = settings_problems("nano-1", {"engine_deploy_stage_platforms": value})
    assert "host 'nano-1', key 'engine_deploy_stage_platforms'" in problem
    assert "is not a list of platform_ids" in problem and "python3 -m builder platform" in problem


def test_a_re_signed_statement_renews_the_running_engines_own(device):
    """After a key rotation and store repair, the statement of the engine current runs is
    pushed alone, checked against that version's manifest, and replaces the old one."""
    stage(device, CURRENT_ITEM)
    key_path = device["signer"].key_path
    old, new = signing.rotate(key_path, "2099-12-31")
    install_keyring_again = device["root"] / "bin" / "keys" / "trusted-keys.json"
    install_keyring_again.write_bytes(signing.keyring_path(key_path).read_bytes())
    version_dir = device["root"] / MODEL / device["version"]
    payload = json.loads(json.loads((version_dir / "statement.json").read_text())["payload"])
    pushed = device["root"] / MODEL / ".stage-incoming" / NANO / "fp16-ws512"
    pushed.mkdir(parents=True)
    (pushed / "statement.json").write_text(json.dumps(signing.load_signer(key_path).sign(
        payload)))
    item = dict(CURRENT_ITEM, statement="pushed", variant="fp16-ws512")
    assert statuses(stage(device, item)) == {(NANO, "staged")}
    for directory in (version_dir, device["root"] / MODEL / NANO / "fp16-ws512"):
        assert json.loads((directory / "statement.json").read_text())["key_id"] == new
    # A pushed statement for another engine is refused; the version keeps its own.
    pushed.mkdir(parents=True)
    (pushed / "statement.json").write_text(json.dumps(signing.load_signer(key_path).sign(
        dict(payload, engine_sha256=sha(b"another engine")))))
    (outcome,) = stage(device, item)["staged"]
    assert outcome["status"] == "refused" and "vouches for engine_sha256" in outcome["detail"]
    assert json.loads((version_dir / "statement.json").read_text())["key_id"] == new
    assert old != new


@pytest.mark.parametrize("platform_id, tensorrt", [
    ("jetson-nano_l4t32.7.1_trt8.2.1", "8.2.1"), ("jetson-agx-orin_l4t36.4.3_trt10.3.0", "10.3.0"),
    ("jetson-nano_l4t32.7.1_trtnone", None), ("../etc", None), ("x_trt8.2.1\n", None)])
def test_the_tensorrt_of_a_platform_id_is_what_make_platform_id_put_there(platform_id, tensorrt):
    from builder.platform.detect import make_platform_id, tensorrt_of_platform_id  # noqa: PLC0415

    assert tensorrt_of_platform_id(platform_id) == tensorrt
    assert tensorrt_of_platform_id(make_platform_id("jetson-tx2", "32.3.1", "6.0.1")) == "6.0.1"


def test_an_altered_running_engine_is_refused_then_restored_from_a_new_push(device):
    root, version = device["root"], device["version"]
    engine = root / MODEL / version / ENGINE
    engine.write_bytes(b"SIMULATED altered")
    state = TRT_DEPLOY.install_state(str(root))[MODEL]["current"]
    assert state["version"] == version and state["intact"] is False
    # The plan pushes it again (controller/deploy_plan.py) ...
    from .test_deploy import make_store, plan_for  # noqa: PLC0415

    store = device["tmp"] / "store" / "engines"
    make_store(store, NANO, MODEL, b"SIMULATED engine one", key_of("k1"))
    plan = plan_for(key_of("k1"), NANO, {"current": state, "versions": [version]}, store)
    assert plan["action"] == "deploy" and plan["push"] and plan["version"] == version
    # ... and the module installs the pushed copy over the altered one, verified.
    _, params = push(root, b"SIMULATED engine one", key_of("k1"))
    result = DEPLOY.install(Runner(device["tmp"]), params)
    assert result["changed"] and result["verify"]["ok"]
    assert engine.read_bytes() == b"SIMULATED engine one"
    assert os.readlink(str(root / MODEL / "current")) == version
    assert TRT_DEPLOY.install_state(str(root))[MODEL]["current"]["intact"] is True
