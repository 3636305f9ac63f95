"""`ansible-playbook deploy_engines.yml` end to end on one simulated fleet.

One fleet, one store and one build serve every test of this module, in file order: the
engines are built once with build_engines.yml (as a user would), then deployed, redeployed,
refused, rolled back and interrupted. Each scenario prints its wall time.
"""

import contextlib
import hashlib
import http.server
import json
import threading
import time

import pytest

FLEET = "nano=2,xavier=1"
MODELS = ["ssd_mobilenet_v1_coco", "ssd_mobilenet_v2_coco"]
V1, V2 = MODELS
ROOT = "/opt/trt-engines"
CANARY = "nano-1"
RESTART_LOG = "/opt/consumer-restarts.log"
# The consumer's restart: a real command on the device (no systemd in a simulated device).
RESTART = {"command": "sh -c 'echo restarted >> {}'".format(RESTART_LOG)}
# Healthy when the consumer's engine file is there and no one marked the device unhealthy.
HEALTH = {"command": "sh -c 'test -s {}/{}/current/TRT_{}.bin && test ! -e /opt/unhealthy'"
          .format(ROOT, V1, V1), "retries": 1, "delay": 0}
SETTINGS = {"engine_deploy_restart": RESTART, "engine_deploy_health": HEALTH}
FP32 = {"engine_precision": "fp32", "engine_models": [V2]}


def sha256_bytes(data):
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def builder(fleet, engine_runner_factory):
    """build_engines.yml on the fleet: the store the deploys read."""
    runner = engine_runner_factory(fleet, MODELS)
    run = runner.run()
    assert run.returncode == 0, run.describe()
    return runner


@pytest.fixture(scope="module")
def deployer(builder):
    """The same inventory, catalog and store, running deploy_engines.yml."""
    return builder.deploy_runner()


@pytest.fixture(scope="module")
def timings():
    record = {}
    yield record
    print("deploy scenario wall times (s): {}".format(json.dumps(record, sort_keys=True)))


def timed(record, name, run):
    record[name] = round(run.seconds, 1)
    print("scenario {}: {:.1f} s".format(name, run.seconds))
    return run


def device_file(fleet, host, path):
    return fleet.device_path(host, path)


def current_of(fleet, host, model):
    """(version, engine bytes, manifest) that <root>/<model>/current points at, or None."""
    link = device_file(fleet, host, "{}/{}/current".format(ROOT, model))
    if not link.is_symlink():
        return None
    version = link.readlink().name
    directory = device_file(fleet, host, "{}/{}/{}".format(ROOT, model, version))
    engine = (directory / "TRT_{}.bin".format(model)).read_bytes()
    manifest = json.loads((directory / "manifest.json").read_text())
    return version, engine, manifest


def store_entry(store, platform_id, model):
    (directory,) = (store / platform_id / model).iterdir()  # its one variant here
    return (directory / "TRT_{}.bin".format(model)).read_bytes(), json.loads(
        (directory / "manifest.json").read_text())


def platform_of(run, host):
    return next(r["platform_id"] for r in run.summary() if r["host"] == host)


def restarts(fleet, host):
    path = device_file(fleet, host, RESTART_LOG)
    return len(path.read_text().splitlines()) if path.exists() else 0


def statuses(run):
    return {(r["host"], r["model"]): r["status"] for r in run.summary()}


@pytest.mark.fleet
def test_check_mode_prints_versions_and_touches_no_device(fleet, deployer, timings):
    run = timed(timings, "check", deployer.run("--check", extra_vars=SETTINGS))
    assert run.returncode == 0, run.describe()
    assert set(statuses(run).values()) == {"would deploy"}, run.describe()
    assert len(statuses(run)) == len(fleet.names) * len(MODELS)
    assert "nothing -> " in run.output
    for host in fleet.names:
        assert not device_file(fleet, host, ROOT).exists(), host


@pytest.mark.fleet
def test_mixed_fleet_gets_its_own_platforms_engines(fleet, deployer, timings):
    run = timed(timings, "first_deploy", deployer.run(extra_vars=SETTINGS))
    assert run.returncode == 0, run.describe()
    assert set(statuses(run).values()) == {"deployed"}, run.describe()
    record = json.loads((deployer.store / "deployments.json").read_text())
    for host in fleet.names:
        platform_id = platform_of(run, host)
        for model in MODELS:
            version, engine, manifest = current_of(fleet, host, model)
            store_engine, store_manifest = store_entry(deployer.store, platform_id, model)
            assert engine == store_engine and sha256_bytes(engine) == manifest["engine_sha256"]
            assert manifest["build_key"] == store_manifest["build_key"]
            assert manifest["platform_id"] == platform_id
            assert manifest["verify"]["ok"] is True, "verified on the device itself"
            assert version == "{}-{}".format(manifest["build_key"][:12],
                                             manifest["engine_sha256"][:12])
            entry = record["hosts"][host][model]
            assert (entry["version"], entry["build_key"], entry["platform_id"],
                    entry["health"]) == (version, manifest["build_key"], platform_id, "ok")
        assert restarts(fleet, host) == 1, "one restart per device whose current changed"
        assert not device_file(fleet, host, "{}/{}/.incoming".format(ROOT, V1)).exists()
    # The Xavier does not run a Nano's engine (the store holds one per platform).
    assert current_of(fleet, "xavier-1", V1)[1] != current_of(fleet, "nano-1", V1)[1]


@pytest.mark.fleet
def test_second_deploy_changes_nothing_and_sends_no_engine(fleet, deployer, timings):
    before = {h: device_file(fleet, h, "{}/{}/current/TRT_{}.bin".format(ROOT, V1, V1))
              .stat().st_mtime_ns for h in fleet.names}
    run = timed(timings, "up_to_date", deployer.run(extra_vars=SETTINGS))
    assert run.returncode == 0, run.describe()
    assert set(statuses(run).values()) == {"up to date"}, run.describe()
    assert all(c["changed"] == 0 for c in run.recap().values()), run.recap()
    # Only the facts module ran on the devices that are not first of their batch.
    assert run.recap()["xavier-1"]["ok"] == 1, run.recap()
    for host in fleet.names:
        assert restarts(fleet, host) == 1, "no restart where nothing changed"
        assert device_file(fleet, host, "{}/{}/current/TRT_{}.bin".format(
            ROOT, V1, V1)).stat().st_mtime_ns == before[host]


def _upgrade_l4t(fleet, host, old, new):
    """Rewrite the device's L4T release (nv_tegra_release and the L4T packages) as an
    apt upgrade of JetPack 4.6.1 -> 4.6.4 does (TensorRT stays 8.2.1)."""
    release = device_file(fleet, host, "/etc/nv_tegra_release")
    release.write_text(release.read_text().replace(
        "REVISION: {},".format(old.split(".", 1)[1]), "REVISION: {},".format(new.split(".", 1)[1])))
    # The device's own dpkg database, rewritten in place through the device's root.
    status = device_file(fleet, host, "/var/lib/dpkg/status")
    text = status.read_text()
    assert "Version: {}-".format(old) in text
    with open(str(status), "r+") as handle:
        handle.write(text.replace("Version: {}-".format(old), "Version: {}-".format(new)))


@pytest.mark.fleet
def test_upgraded_jetpack_is_refused_and_keeps_its_engine(fleet, deployer, timings):
    before = current_of(fleet, "nano-2", V1)
    _upgrade_l4t(fleet, "nano-2", "32.7.1", "32.7.4")
    try:
        run = timed(timings, "upgraded_l4t", deployer.run(extra_vars=SETTINGS))
    finally:
        _upgrade_l4t(fleet, "nano-2", "32.7.4", "32.7.1")
    rows = {(r["host"], r["model"]): r for r in run.summary()}
    assert run.returncode != 0, run.describe()
    for model in MODELS:
        row = rows[("nano-2", model)]
        assert row["status"] == "refused", run.describe()
        assert "jetson-nano_l4t32.7.1_trt8.2.1" in row["detail"]
        assert "jetson-nano_l4t32.7.4_trt8.2.1" in row["detail"]
        assert "run build_engines.yml" in row["detail"]
        assert statuses(run)[("nano-1", model)] == "up to date"
    assert current_of(fleet, "nano-2", V1) == before


@pytest.mark.fleet
def test_corrupt_store_engine_is_never_pushed(fleet, deployer, timings):
    # nano-2 lost its v2 engines; the store's copy has rotted.
    assert fleet.ssh("nano-2", "rm -rf {}/{}".format(ROOT, V2)).returncode == 0
    platform_id = json.loads(device_file(fleet, "nano-2", "{}/{}/current/manifest.json".format(
        ROOT, V1)).read_text())["platform_id"]
    (engine_path,) = (deployer.store / platform_id / V2).glob("*/TRT_{}.bin".format(V2))
    good = engine_path.read_bytes()
    engine_path.write_bytes(good[:-16] + b"SIMULATED rot!!!")
    try:
        run = timed(timings, "corrupt_store", deployer.run(extra_vars=SETTINGS))
    finally:
        engine_path.write_bytes(good)
    assert run.returncode != 0
    row = next(r for r in run.summary() if (r["host"], r["model"]) == ("nano-2", V2))
    assert row["status"] == "refused" and "is corrupt" in row["detail"], run.describe()
    assert not device_file(fleet, "nano-2", "{}/{}".format(ROOT, V2)).exists(), "pushed"
    assert statuses(run)[("nano-2", V1)] == "up to date"

    rerun = timed(timings, "after_corrupt_store", deployer.run(extra_vars=SETTINGS))
    assert rerun.returncode == 0 and statuses(rerun)[("nano-2", V2)] == "deployed"


def _break_gpu(fleet, host, capability):
    """The device's GPU no longer is the one its engines were built for (TensorRT refuses
    them at deserialization: 'generated on an incompatible device')."""
    path = device_file(fleet, host, "/etc/simjetson/device.json")
    device = json.loads(path.read_text())
    old, device["compute_capability"] = device["compute_capability"], capability
    path.write_text(json.dumps(device))
    return old


@pytest.mark.fleet
def test_failed_verify_keeps_current_and_restarts_only_where_changed(
        fleet, builder, deployer, timings):
    built = timed(timings, "build_fp32", builder.run(extra_vars=FP32))
    assert built.returncode == 0, built.describe()
    before = {h: current_of(fleet, h, V2) for h in fleet.names}
    counts = {h: restarts(fleet, h) for h in fleet.names}
    old = _break_gpu(fleet, "xavier-1", "6.2")
    try:
        run = timed(timings, "verify_fails", deployer.run(extra_vars=dict(SETTINGS, **FP32)))
    finally:
        _break_gpu(fleet, "xavier-1", old)
    assert run.returncode != 0
    row = next(r for r in run.summary() if r["host"] == "xavier-1")
    assert row["status"] == "failed" and "incompatible device" in row["detail"], run.describe()
    assert current_of(fleet, "xavier-1", V2) == before["xavier-1"]
    assert restarts(fleet, "xavier-1") == counts["xavier-1"], "nothing changed there"
    for host in ("nano-1", "nano-2"):
        assert statuses(run)[(host, V2)] == "deployed"
        assert current_of(fleet, host, V2)[2]["precision"] == "fp32"
        assert restarts(fleet, host) == counts[host] + 1


@pytest.mark.fleet
def test_unhealthy_canary_is_switched_back_and_stops_the_rollout(fleet, deployer, timings):
    before = {h: current_of(fleet, h, V2)[0] for h in fleet.names}
    assert fleet.ssh(CANARY, "touch /opt/unhealthy").returncode == 0
    try:
        run = timed(timings, "canary_fails", deployer.run(extra_vars=dict(
            SETTINGS, engine_deploy_rollback=True, engine_models=[V2])))
    finally:
        fleet.ssh(CANARY, "rm -f /opt/unhealthy")
    assert run.returncode != 0
    rows = {r["host"]: r for r in run.summary() if r["model"] in (V2, "-")}
    assert rows[CANARY]["status"] == "health rolled back", run.describe()
    assert "health check failed" in rows[CANARY]["detail"]
    assert current_of(fleet, CANARY, V2)[0] == before[CANARY], "switched back by itself"
    for host in ("nano-2", "xavier-1"):
        assert rows[host]["status"] == "not deployed" and "rollout stopped" in rows[host][
            "detail"], run.describe()
        assert current_of(fleet, host, V2)[0] == before[host]


@contextlib.contextmanager
def health_server(status):
    """An HTTP endpoint on the host's loopback (the simulated devices share its network) that
    answers every GET with ``status``; yields its URL and the paths it was asked for."""
    asked = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            asked.append(self.path)
            self.send_response(status)
            self.end_headers()
            self.wfile.write(b"consumer health\n")

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield "http://127.0.0.1:{}/health".format(server.server_address[1]), asked
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.fleet
def test_health_url_that_answers_503_switches_the_canary_back(fleet, deployer, timings):
    before = {h: current_of(fleet, h, V2)[0] for h in fleet.names}
    with health_server(503) as (url, asked):
        run = timed(timings, "health_url_503", deployer.run(extra_vars=dict(
            SETTINGS, engine_deploy_health={"url": url, "retries": 1, "delay": 0},
            engine_deploy_rollback=True, engine_models=[V2])))
    assert asked, "the device fetched the health URL"
    assert run.returncode != 0
    rows = {r["host"]: r for r in run.summary() if r["model"] in (V2, "-")}
    assert rows[CANARY]["status"] == "health rolled back", run.describe()
    assert current_of(fleet, CANARY, V2)[0] == before[CANARY]
    for host in ("nano-2", "xavier-1"):
        assert rows[host]["status"] == "not deployed", run.describe()
        assert current_of(fleet, host, V2)[0] == before[host]


@pytest.mark.fleet
def test_rollback_switches_to_the_previous_version_verified(fleet, deployer, timings):
    before = {h: current_of(fleet, h, V2) for h in fleet.names}
    run = timed(timings, "rollback", deployer.run(extra_vars=dict(
        SETTINGS, engine_deploy_rollback=True, engine_models=[V2])))
    for host in ("nano-1", "nano-2"):
        assert statuses(run)[(host, V2)] == "rolled back", run.describe()
        version, _, manifest = current_of(fleet, host, V2)
        assert manifest["precision"] == "fp16" and version != before[host][0]
        previous = device_file(fleet, host, "{}/{}/previous".format(ROOT, V2)).readlink().name
        assert previous == before[host][0]
    # xavier-1 never switched to fp32: it has no previous version and keeps what it runs.
    row = next(r for r in run.summary() if (r["host"], r["model"]) == ("xavier-1", V2))
    assert row["status"] == "refused" and "no previous version" in row["detail"]
    assert current_of(fleet, "xavier-1", V2) == before["xavier-1"]
    assert run.returncode != 0


@pytest.mark.fleet
def test_dropped_connection_mid_push_leaves_a_complete_current(fleet, deployer, timings):
    # nano-2 must receive its fp32 engine again: remove that version (it is not current).
    fp32_version = device_file(fleet, "nano-2", "{}/{}/previous".format(ROOT, V2)).readlink().name
    assert fleet.ssh("nano-2", "rm -rf {}/{}/previous {}/{}/{}".format(
        ROOT, V2, ROOT, V2, fp32_version)).returncode == 0
    before = current_of(fleet, "nano-2", V2)
    cut = threading.Event()
    incoming = device_file(fleet, "nano-2", "{}/{}/.incoming".format(ROOT, V2))

    def cut_once_transferred():
        # The push sends each file to a hidden part name, then renames them all into place:
        # cut the connection once the engine's part is there (or after 20 s regardless).
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not list(incoming.glob("*/.*.part")):
            time.sleep(0.005)
        fleet.fault("nano-2", "unreachable")
        cut.set()

    def drop_on_push(line):
        if line.startswith("TASK [engine_deploy : Push the builder wheel, each new engine"):
            threading.Thread(target=cut_once_transferred, daemon=True).start()

    try:
        run = timed(timings, "dropped", deployer.run(
            extra_vars=dict(SETTINGS, engine_deploy_canary=0, **FP32), on_line=drop_on_push))
    finally:
        fleet.fault("nano-2", "ok")
    assert cut.is_set() and run.returncode != 0, run.describe()
    # Cut during the transfers: the host is unreachable; cut while the files are renamed
    # into place: the push task fails (and is reported with its message).
    row = next(r for r in run.summary() if (r["host"], r["model"]) == ("nano-2", V2))
    assert row["status"] in ("unreachable", "failed"), run.describe()
    assert row["status"] == "unreachable" or "Push the builder wheel" in row["detail"], row
    print("dropped mid-push: nano-2 {}: {}".format(row["status"], row["detail"]))
    version, engine, manifest = current_of(fleet, "nano-2", V2)
    assert (version, engine) == before[:2], "current still the complete earlier engine"
    assert sha256_bytes(engine) == manifest["engine_sha256"]

    rerun = timed(timings, "after_drop", deployer.run(extra_vars=dict(SETTINGS, **FP32)))
    assert statuses(rerun)[("nano-2", V2)] == "deployed", rerun.describe()
    version, engine, manifest = current_of(fleet, "nano-2", V2)
    assert version == fp32_version and sha256_bytes(engine) == manifest["engine_sha256"]


@pytest.mark.fleet
def test_build_then_deploy_in_one_command(fleet, builder, timings):
    """What the preflight advises a host that still sets engine_deploy_after_build: both
    playbooks in one ansible-playbook command; the deploy runs after a build that succeeded."""
    class BuildThenDeploy(type(builder)):
        def command(self, *args, extra_vars=None):
            command = super().command(*args, extra_vars=extra_vars)
            deploy = command[1].replace("build_engines.yml", "deploy_engines.yml")
            return command[:2] + [deploy] + command[2:]

    runner = BuildThenDeploy(builder.fleet, builder.catalog, builder.store, builder.models,
                             builder.log_dir)
    runner.runs = 200
    run = timed(timings, "build_then_deploy", runner.run(extra_vars=SETTINGS))
    assert run.returncode == 0, run.describe()
    assert run.builds() == [], run.describe()  # the store had every engine
    assert run.output.count("ENGINE SUMMARY") == 2, run.describe()  # the build's, the deploy's
    assert len(statuses(run)) == len(fleet.names) * len(MODELS), run.describe()
    assert set(statuses(run).values()) <= {"deployed", "up to date"}, run.describe()
