"""Engines staged before a JetPack upgrade, chosen and verified on the device by the guard
trt-engine-path, signed by the controller: end to end on one simulated fleet, in file order.

nano-1 is the canary already on the next JetPack (L4T 32.7.4, as an apt upgrade of 4.6.1 to
4.6.4 leaves it); it builds that platform's engines. The deploy then stages them on nano-2,
still on 32.7.1, beside its current engine; nano-2 is upgraded outside the tool, and the
guard hands the app the staged engine at once.
"""

import json
import shutil

import pytest

from controller import signing
from controller.store import EngineStore

from .test_deploy_engines import _upgrade_l4t, current_of, device_file, statuses

FLEET = "nano=2"
MODEL = "ssd_mobilenet_v2_coco"
ROOT = "/opt/trt-engines"
GUARD = ROOT + "/bin/trt-engine-path"
OLD, NEW = "jetson-nano_l4t32.7.1_trt8.2.1", "jetson-nano_l4t32.7.4_trt8.2.1"
STAGE = {"engine_deploy_stage_platforms": [NEW]}
VARIANT = "fp16-ws256"  # tests/integration/fleet_vars/group_vars/nano.yml


@pytest.fixture(scope="module")
def runners(fleet, engine_runner_factory):
    """The store: both devices' engines on 32.7.1, then the canary's on 32.7.4."""
    builder = engine_runner_factory(fleet, [MODEL])
    first = builder.run()
    assert first.returncode == 0, first.describe()
    _upgrade_l4t(fleet, "nano-1", "32.7.1", "32.7.4")
    canary = builder.run("--limit", "nano-1")
    assert canary.returncode == 0, canary.describe()

    return builder, builder.deploy_runner()


def guard(fleet, host, *args):
    return fleet.ssh(host, " ".join([GUARD, MODEL] + list(args)))


def staged_dir(platform_id):
    return "{}/{}/{}/{}".format(ROOT, MODEL, platform_id, VARIANT)


@pytest.mark.fleet
def test_staging_installs_both_platforms_without_changing_what_runs(fleet, runners):
    _, deployer = runners
    run = deployer.run(extra_vars=STAGE)
    assert run.returncode == 0, run.describe()
    assert statuses(run) == {("nano-1", MODEL): "deployed", ("nano-2", MODEL): "deployed"}
    version, engine, manifest = current_of(fleet, "nano-2", MODEL)
    assert manifest["platform_id"] == OLD, "staging does not switch the running engine"
    for platform_id in (OLD, NEW):
        directory = device_file(fleet, "nano-2", staged_dir(platform_id))
        assert sorted(p.name for p in directory.iterdir()) == [
            "TRT_{}.bin".format(MODEL), "manifest.json", "statement.json"], platform_id
    assert device_file(fleet, "nano-2", staged_dir(OLD) + "/TRT_{}.bin".format(MODEL)) \
        .read_bytes() == engine
    # The device holds public keys only.
    keyring = device_file(fleet, "nano-2", ROOT + "/bin/keys/trusted-keys.json").read_text()
    assert "PRIVATE" not in keyring
    assert signing.load_signer(deployer.signing_key, create=False).key_id in keyring
    assert not any("PRIVATE" in p.read_text(errors="replace") for p in device_file(
        fleet, "nano-2", ROOT + "/bin").rglob("*") if p.is_file())
    # Before the upgrade the guard hands out this platform's engine.
    before = guard(fleet, "nano-2")
    assert before.returncode == 0, before.stderr
    assert before.stdout.strip() == staged_dir(OLD) + "/TRT_{}.bin".format(MODEL)
    # The fleet view says what is staged and what an upgrade would use.
    report = (deployer.store / "report.md").read_text()
    line = next(row for row in report.splitlines() if row.startswith("| nano-2 | " + MODEL))
    assert "{}: {}".format(NEW, VARIANT) in line and "{}: {}".format(OLD, VARIANT) in line
    record = json.loads((deployer.store / "deployments.json").read_text())
    staged = record["hosts"]["nano-2"][MODEL]["staged"]
    assert staged[NEW]["status"] == "staged" and staged[OLD]["status"] == "staged"
    # A rerun has nothing to do.
    again = deployer.run(extra_vars=STAGE)
    assert again.returncode == 0 and set(statuses(again).values()) == {"up to date"}
    assert again.recap()["nano-2"]["changed"] == 0, again.recap()


@pytest.mark.fleet
def test_after_the_upgrade_the_guard_picks_the_staged_engine(fleet, runners):
    _upgrade_l4t(fleet, "nano-2", "32.7.1", "32.7.4")
    after = guard(fleet, "nano-2", "--json")
    assert after.returncode == 0, after.stderr
    record = json.loads(after.stdout)
    assert record["platform_id"] == NEW and record["status"] == "ok"
    assert record["path"] == staged_dir(NEW) + "/TRT_{}.bin".format(MODEL)
    assert record["staged"] == [OLD, NEW]
    _, deployer = runners
    store_engine = next((deployer.store / NEW / MODEL).glob("*/TRT_{}.bin".format(MODEL)))
    assert device_file(fleet, "nano-2", record["path"]).read_bytes() == \
        store_engine.read_bytes()


@pytest.mark.fleet
def test_no_staged_engine_fits_exit_3(fleet):
    _upgrade_l4t(fleet, "nano-2", "32.7.4", "32.7.6")
    try:
        result = guard(fleet, "nano-2")
    finally:
        _upgrade_l4t(fleet, "nano-2", "32.7.6", "32.7.4")
    assert result.returncode == 3 and result.stdout == ""
    assert "it is jetson-nano_l4t32.7.6_trt8.2.1, the staged ones are for {}, {}".format(
        OLD, NEW) in result.stderr


@pytest.mark.fleet
def test_a_tampered_engine_is_refused_and_the_next_deploy_restores_it(fleet, runners):
    _, deployer = runners
    engine = device_file(fleet, "nano-2", staged_dir(NEW) + "/TRT_{}.bin".format(MODEL))
    good = engine.read_bytes()
    engine.write_bytes(good[:-8] + b"tampered")
    refused = guard(fleet, "nano-2")
    assert refused.returncode == 4 and refused.stdout == ""
    assert "the engine was altered or damaged and is refused" in refused.stderr
    # nano-2 is on 32.7.4 now: the deploy makes the canary's engine current and restages.
    run = deployer.run(extra_vars=STAGE)
    assert run.returncode == 0, run.describe()
    assert engine.read_bytes() == good
    record = json.loads((deployer.store / "deployments.json").read_text())
    detail = record["hosts"]["nano-2"][MODEL]["staged"][NEW]["detail"]
    assert "refused the staged engine" in detail and "restored it" in detail, detail
    assert current_of(fleet, "nano-2", MODEL)[2]["platform_id"] == NEW
    assert guard(fleet, "nano-2").returncode == 0


@pytest.mark.fleet
def test_an_altered_running_engine_is_deployed_again(fleet, runners):
    _, deployer = runners
    version, good, _ = current_of(fleet, "nano-1", MODEL)
    engine = device_file(fleet, "nano-1", "{}/{}/{}/TRT_{}.bin".format(ROOT, MODEL, version,
                                                                      MODEL))
    engine.write_bytes(good[:-8] + b"tampered")
    run = deployer.run(extra_vars=STAGE)
    assert run.returncode == 0, run.describe()
    assert statuses(run)[("nano-1", MODEL)] == "deployed", run.describe()
    assert current_of(fleet, "nano-1", MODEL)[:2] == (version, good)


@pytest.mark.fleet
def test_a_store_entry_signed_by_another_key_is_refused(fleet, runners, tmp_path):
    builder, deployer = runners
    (entry,) = (deployer.store / NEW / MODEL).iterdir()
    statement = entry / "statement.json"
    saved = statement.read_bytes()
    other = signing.load_signer(tmp_path / "other" / "engine-signing.key")
    statement.write_text(json.dumps(other.sign(json.loads(json.loads(saved)["payload"]))))
    # Both devices lose their engines, so the deploy has to push the entry.
    for host in fleet.names:
        assert fleet.ssh(host, "rm -rf {}/{}".format(ROOT, MODEL)).returncode == 0
    try:
        run = deployer.run(extra_vars=STAGE)
    finally:
        statement.write_bytes(saved)
    assert run.returncode != 0
    rows = {(r["host"], r["model"]): r for r in run.summary()}
    for host in fleet.names:
        row = rows[(host, MODEL)]
        assert row["status"] == "refused", run.describe()
        assert "signed by key {}, which is not trusted here".format(other.key_id) in \
            row["detail"]
        assert not device_file(fleet, host, "{}/{}/current".format(ROOT, MODEL)).exists()
    assert deployer.run(extra_vars=STAGE).returncode == 0
    shutil.rmtree(str(tmp_path / "other"))


@pytest.mark.fleet
def test_a_rotated_key_reaches_the_devices_and_the_old_one_counts_until_its_day(
        fleet, runners):
    _, deployer = runners
    old = signing.load_signer(deployer.signing_key, create=False).key_id
    signing.rotate(deployer.signing_key, "2099-12-31")
    new = signing.load_signer(deployer.signing_key, create=False).key_id
    # The store still carries the old key's statements: accepted through their day.
    run = deployer.run(extra_vars=STAGE)
    assert run.returncode == 0, run.describe()
    keyring = json.loads(device_file(fleet, "nano-2", ROOT + "/bin/keys/trusted-keys.json")
                         .read_text())["keys"]
    assert keyring[old]["accepted_until"] == "2099-12-31"
    assert keyring[new]["accepted_until"] is None
    assert guard(fleet, "nano-2").returncode == 0
    done = EngineStore(deployer.store, signing_key=deployer.signing_key).repair()
    assert any(line.startswith("re-signed {}/{}".format(NEW, MODEL)) for line in done), done
    # The next deploy brings the new statements to the devices.
    run = deployer.run(extra_vars=STAGE)
    assert run.returncode == 0, run.describe()
    statement = json.loads(device_file(fleet, "nano-2", staged_dir(NEW) + "/statement.json")
                           .read_text())
    assert statement["key_id"] == new
    assert guard(fleet, "nano-2").returncode == 0
