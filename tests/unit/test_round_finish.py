"""A device's round after its builds, in one step for its own device (controller/round_result.py
finish_round, plugins/action/engine_round_finish.py): wait, verify, list, read back, fetch, with
a fake device, and the filing into a real store on the controller, which fails the device after
a failed fetch."""

import json
from dataclasses import asdict
from types import SimpleNamespace

from controller.build_wait import wait_result
from controller.collect import file_round
from controller.outcome import BuildOutcome
from controller.round_result import (
    DeviceGone,
    RoundCalls,
    finish_round,
    read_round,
    start_failure,
)
from controller.store import EngineStore

from .plugin_files import load
from .store_helpers import staged

ROOT = "/opt/trt-builder"
PYTHON = ROOT + "/venv/bin/python"
HOST = "nano-1"
NANO = "jetson-nano_l4t32.7.1_trt8.2.1"
BUILT, ON_DEVICE = "ssd_a", "ssd_b"
PLAN = {"platform_id": NANO, "options": {"precision": "fp16", "workspace_mib": 512,
                                         "max_batch": 1, "dla_core": None},
        "models": {model: {"build_key": model[-1] * 64, "engine": "TRT_{}.bin".format(model),
                           "variant": "fp16-ws512"} for model in (BUILT, ON_DEVICE)}}
PROCESS = {"models": [BUILT], "wait_s": 1910, "deadline_s": 1800}
VERIFY = {"model": ON_DEVICE, "argv": [PYTHON, "-m", "builder", "verify", "--json"]}
WORK = {"root_dir": ROOT, "build": [BUILT], "collect": [ON_DEVICE], "confirm": [],
        "processes": [PROCESS], "verifies": [VERIFY], "wait_s": 2030,
        "listing": ["{}/work/{}".format(ROOT, m) for m in (BUILT, ON_DEVICE)],
        "timing_cache": {"device_file": None}, "builder_current": True,
        "env_ensured": {"pin_set": "simulated-cp36"}, "install": None}
INSTALL = ["sh", "-c", "pip install the builder wheel", "sh"]
STARTED = [{"ansible_job_id": "j1", "item": PROCESS}]


def record(payload):
    return json.dumps({"record": 1, "status": "ok", "result": payload})


def built_job():
    return {"finished": 1, "rc": 0, "ansible_job_id": "j1", "item": PROCESS,
            "stdout": json.dumps({"record": 1, "status": "ok", "model": BUILT,
                                  "result": {"verify": {"ok": True, "fps": 20.0}}})}


def listed(*models):
    return {"files": [{"path": "{}/work/{}/{}".format(ROOT, model, name), "isreg": True,
                       "islnk": False, "size": 10}
                      for model in models for name in ("TRT_{}.bin".format(model),
                                                       "manifest.json")]}


class FakeDevice:
    """The device's side of the step: what each call answers, and every call made."""

    def __init__(self, wait, *, verify=None, listing=None, fetch_error=None, gone_at=None,
                 install=None):
        self.answers = {"wait": wait, "run": verify if verify is not None else {
            "rc": 0, "stdout": record({"ok": True, "fps": 30.0}), "delta": "0:00:01"},
            "find": listing if listing is not None else listed(BUILT, ON_DEVICE),
            "install": install if install is not None else {"rc": 0, "stderr": ""}}
        self.fetch_error, self.gone_at = fetch_error, gone_at
        self.calls = []
        self.filings = []  # the read-backs the controller filed (no call to the device)

    def _call(self, name, *args):
        self.calls.append((name,) + args)
        if name == self.gone_at:
            raise DeviceGone("Failed to connect to the host via ssh")
        return self.answers.get(name)

    def calls_to(self, tmp_path):
        def fetch(files):
            self._call("fetch", [item["src"] for item in files])
            fetched = [item["dest"] + item["name"] for item in files]
            if self.fetch_error:
                return fetched[:1], self.fetch_error
            return fetched, None

        def file(result):
            self.filings.append(result)
            return file_round(str(tmp_path / "store"), HOST, PLAN, result,
                              timing_cache=WORK["timing_cache"], catalog={},
                              max_bytes=1 << 20, check_mode=False,
                              signing_key=str(tmp_path / "signing.key"))

        return RoundCalls(wait=lambda: self._call("wait"),
                          run=lambda argv: self._call(
                              "install" if argv == INSTALL else "run", argv),
                          find=lambda paths: self._call("find", paths), fetch=fetch, file=file)

    @property
    def asked(self):
        return [call[0] for call in self.calls]


def finish(device, tmp_path, *, fetching=True, work=WORK, earlier=None):
    store = EngineStore(tmp_path / "store")

    def read(started, wait, verifies, listing):
        return read_round(work, PLAN, host=HOST, started=started, wait=wait,
                          verifies=verifies, listing=listing, previous={}, catalog={},
                          max_bytes=1 << 20, store=store)

    return finish_round(work, STARTED, device.calls_to(tmp_path), read, fetching=fetching,
                        earlier=earlier or {})


def test_the_device_is_waited_for_verified_listed_read_back_and_fetched_in_order(tmp_path):
    device = FakeDevice(wait_result([], [built_job()], 2030))
    result = finish(device, tmp_path)
    assert device.asked == ["wait", "run", "find", "fetch"]
    assert device.calls[1] == ("run", VERIFY["argv"])
    assert device.calls[2] == ("find", WORK["listing"])
    # The verify's result reaches the read-back as its loop result did (the model's record).
    assert result["outcomes"][BUILT]["status"] == "built"
    assert result["outcomes"][ON_DEVICE]["status"] == "on_device"
    assert result["outcomes"][ON_DEVICE]["verify"] == {"ok": True, "fps": 30.0}
    (fetched_srcs,) = [call[1] for call in device.calls if call[0] == "fetch"]
    assert sorted(fetched_srcs) == sorted(item["src"] for item in result["fetch"])
    assert len(result["fetch"]) == 4 and len(result["fetched"]) == 4
    assert result["fetch_failed"] is None and result["silent"] is False
    assert result["changed"] is True and not result.get("failed")
    # The next round reads them: this device installs no builder or environment again.
    assert result["builder_current"] is True
    assert result["env_ensured"] == {"pin_set": "simulated-cp36"}


def test_a_failed_verify_is_the_models_outcome_and_nothing_of_it_is_fetched(tmp_path):
    failed = {"rc": 5, "stdout": json.dumps({"record": 1, "status": "failed", "kind": "verify",
                                             "message": "bad engine"}), "delta": "0:00:01"}
    device = FakeDevice(wait_result([], [built_job()], 2030), verify=failed)
    result = finish(device, tmp_path)
    assert result["outcomes"][ON_DEVICE]["status"] == "failed"
    assert "bad engine" in result["outcomes"][ON_DEVICE]["reason"]
    assert {item["model"] for item in result["fetch"]} == {BUILT}
    assert not result.get("failed")


def test_a_silent_device_is_asked_nothing_more_and_its_models_fail_at_the_deadline(tmp_path):
    """Given up at a process's deadline, or the wait cut after the round's wait_s (a poll
    hung): no verify, no listing, no fetch; every model of the process fails as deadline."""
    given_up = {"item": PROCESS, "failed": True, "ansible_job_id": "j1",
                "timedout": {"period": 1910}, "msg": "no answer"}
    for wait in (wait_result([], [given_up], 2030), wait_result([], None, 2030)):
        device = FakeDevice(wait)
        result = finish(device, tmp_path)
        assert device.asked == ["wait"]
        assert result["silent"] is True and result["fetch"] == [] and result["fetched"] == []
        outcome = result["outcomes"][BUILT]
        assert (outcome["status"], outcome["kind"]) == ("failed", "deadline")
        assert outcome["reason"].startswith("the device did not answer within 1910 s")
        assert ON_DEVICE not in result["outcomes"] and not result.get("failed")


def test_without_the_collect_step_nothing_is_fetched(tmp_path):
    device = FakeDevice(wait_result([], [built_job()], 2030))
    result = finish(device, tmp_path, fetching=False)
    assert device.asked == ["wait", "run", "find"]
    assert len(result["fetch"]) == 4 and result["fetched"] == []
    assert result["fetch_failed"] is None


def test_a_round_without_builds_does_not_wait(tmp_path):
    work = dict(WORK, build=[], processes=[], listing=WORK["listing"][1:])
    device = FakeDevice(None, listing=listed(ON_DEVICE))
    result = finish(device, tmp_path, work=work)
    assert device.asked == ["run", "find", "fetch"]
    assert list(result["outcomes"]) == [ON_DEVICE] and len(result["fetched"]) == 2


def test_the_builders_install_runs_first_while_the_builds_run(tmp_path):
    """The round's builds import the builder from the pushed wheel (controller/device_work.py
    round_work): its install into the venv runs in this step, before the wait."""
    installing = dict(WORK, install=INSTALL)
    device = FakeDevice(wait_result([], [built_job()], 2030))
    result = finish(device, tmp_path, work=installing)
    assert device.asked == ["install", "wait", "run", "find", "fetch"]
    assert result["changed"] is True and not result.get("failed")
    assert result["outcomes"][BUILT]["status"] == "built"


def test_a_device_that_only_readies_the_next_round_installs_the_builder_here(tmp_path):
    """No build and no verify of its own this round (controller/device_work.py: prepare): its
    install runs in this step, and before anything else."""
    readies = dict(WORK, build=[], collect=[], processes=[], verifies=[], listing=[],
                   install=INSTALL)
    device = FakeDevice(None)
    result = finish(device, tmp_path, work=readies)
    assert device.calls == [("install", INSTALL), ("fetch", [])]  # no wait, nothing to fetch
    assert result["changed"] is True and not result.get("failed")
    assert result["outcomes"] == {} and result["builder_current"] is True
    # With a model already on the device to verify, the install still comes first.
    device = FakeDevice(None, listing=listed(ON_DEVICE))
    finish(device, tmp_path, work=dict(readies, collect=[ON_DEVICE], verifies=[VERIFY],
                                       listing=WORK["listing"][1:]))
    assert device.asked == ["install", "run", "find", "fetch"]


def test_a_failed_install_fails_the_device_once_its_builds_ended(tmp_path):
    """The builds that started still run (from the wheel): they are waited for, so none is
    left running, and then nothing more is asked; nothing is fetched or filed."""
    failed = {"rc": 1, "stderr": "Processing ./wheels/x.whl\nOSError: [Errno 28] No space "
                                 "left on device"}
    device = FakeDevice(wait_result([], [built_job()], 2030), install=failed)
    result = finish(device, tmp_path, work=dict(WORK, install=INSTALL))
    assert device.asked == ["install", "wait"]
    assert result["failed"] is True and result["msg"] == (
        "installing the builder into the venv failed (exit code 1): OSError: [Errno 28] No "
        "space left on device")
    assert result["fetched"] == [] and result["filed"] == {} and device.filings == []
    readies = dict(WORK, build=[], processes=[], install=INSTALL)
    device = FakeDevice(None, install=failed)
    result = finish(device, tmp_path, work=readies)
    assert device.asked == ["install"] and result["failed"] is True
    device = FakeDevice(None, gone_at="install")
    result = finish(device, tmp_path, work=dict(WORK, install=INSTALL))
    assert device.asked == ["install"] and result["unreachable"] is True


def test_a_failed_fetch_is_in_the_result_with_what_arrived(tmp_path):
    device = FakeDevice(wait_result([], [built_job()], 2030),
                        fetch_error="fetching /opt/x failed: no such file")
    result = finish(device, tmp_path)
    assert result["fetch_failed"] == "fetching /opt/x failed: no such file"
    assert len(result["fetched"]) == 1
    # The read-back stays whole: what arrived is filed, then the device fails.
    assert result["outcomes"][BUILT]["status"] == "built" and len(result["fetch"]) == 4
    assert result["failed"] is True and result["msg"].startswith(result["fetch_failed"])


def test_a_verify_that_did_not_run_or_a_failed_listing_fails_the_result_without_a_fetch(
        tmp_path):
    no_rc = {"failed": True, "msg": "MODULE FAILURE"}
    device = FakeDevice(wait_result([], [built_job()], 2030), verify=no_rc)
    result = finish(device, tmp_path)
    assert device.asked == ["wait", "run"]
    assert result["failed"] is True
    assert result["msg"] == "the verify of {} did not run: MODULE FAILURE".format(ON_DEVICE)
    assert result["outcomes"][BUILT]["status"] == "built" and result["fetched"] == []
    device = FakeDevice(wait_result([], [built_job()], 2030),
                        listing={"failed": True, "msg": "MODULE FAILURE"})
    result = finish(device, tmp_path)
    assert device.asked == ["wait", "run", "find"]
    assert result["failed"] is True and result["msg"].startswith("listing the round's files")
    assert result["fetch"] == [] and result["fetched"] == []


def test_a_device_gone_after_its_builds_is_unreachable_with_its_outcomes(tmp_path):
    for step, asked in (("find", ["wait", "run", "find"]),
                        ("fetch", ["wait", "run", "find", "fetch"])):
        device = FakeDevice(wait_result([], [built_job()], 2030), gone_at=step)
        result = finish(device, tmp_path)
        assert device.asked == asked
        assert result["unreachable"] is True and "ssh" in result["msg"]
        assert result["outcomes"][BUILT]["status"] == "built" and result["fetched"] == []


def stage_fetched(tmp_path, *models):
    """What the fake device's fetch brings: each model's engine and manifest, staged."""
    store = EngineStore(tmp_path / "store")
    for model in models:
        entry = PLAN["models"][model]
        staged(store.staging_dir(HOST) / model, model, NANO, entry["build_key"],
               PLAN["options"])
    return store


def test_what_arrived_is_filed_at_once_asking_the_device_nothing_more(tmp_path):
    """The round files its own engines as soon as its fetch is done (not after the round's
    other devices): on the controller, into the store, with no call to the device."""
    store = stage_fetched(tmp_path, BUILT, ON_DEVICE)
    device = FakeDevice(wait_result([], [built_job()], 2030))
    earlier = {"filed": {"ssd_z": "/store/z"}, "refused": {"ssd_y": "too big"}}
    result = finish(device, tmp_path, earlier=earlier)
    assert device.asked == ["wait", "run", "find", "fetch"]  # nothing after the fetch
    assert len(device.filings) == 1 and device.filings[0]["fetched"] == result["fetched"]
    assert not result.get("failed")
    assert set(result["filed"]) == {BUILT, ON_DEVICE, "ssd_z"}  # with the earlier rounds'
    assert result["refused"] == {"ssd_y": "too big"}
    for model in (BUILT, ON_DEVICE):
        stored = store.lookup(PLAN["models"][model]["build_key"])
        assert stored is not None and str(stored.dir) == result["filed"][model]
        assert stored.built_on == HOST
    assert not store.staging_dir(HOST).exists()


def test_the_store_refusing_an_engine_is_the_models_refusal_not_the_devices_failure(tmp_path):
    store = stage_fetched(tmp_path, BUILT)  # ON_DEVICE's files did not arrive
    device = FakeDevice(wait_result([], [built_job()], 2030))
    result = finish(device, tmp_path)
    assert not result.get("failed") and list(result["filed"]) == [BUILT]
    assert list(result["refused"]) == [ON_DEVICE]
    assert "{}: not filed: ".format(ON_DEVICE) in " ".join(result["msg"])
    assert store.lookup(PLAN["models"][ON_DEVICE]["build_key"]) is None


def test_after_a_failed_fetch_what_arrived_is_filed_then_the_device_fails(tmp_path):
    store = stage_fetched(tmp_path, BUILT)
    device = FakeDevice(wait_result([], [built_job()], 2030),
                        fetch_error="fetching /opt/x failed: connection reset")
    result = finish(device, tmp_path)
    assert result["failed"] is True
    assert result["msg"].startswith("fetching /opt/x failed: connection reset; ")
    assert "{}: not filed".format(ON_DEVICE) in result["msg"]
    assert list(result["filed"]) == [BUILT]
    assert store.lookup(PLAN["models"][BUILT]["build_key"]) is not None
    assert not store.staging_dir(HOST).exists()


def test_nothing_is_filed_without_the_collect_step_or_from_a_device_gone(tmp_path):
    earlier = {"filed": {"ssd_z": "/store/z"}, "refused": {}}
    device = FakeDevice(wait_result([], [built_job()], 2030))
    result = finish(device, tmp_path, fetching=False, earlier=earlier)
    assert device.filings == [] and result["filed"] == earlier["filed"]
    device = FakeDevice(wait_result([], [built_job()], 2030), gone_at="fetch")
    result = finish(device, tmp_path, earlier=earlier)
    assert result["unreachable"] is True
    assert device.filings == [] and result["filed"] == earlier["filed"]


FINISH = load("plugins/action/engine_round_finish.py", "engine_round_finish_under_test")


def test_a_job_that_did_not_reach_the_device_fails_it_asking_nothing_more(tmp_path):
    """The start found the device unreachable (no room for Ansible's temporary directory):
    the finish step fails the device (its rescue looks at the disk) without a call to it, and
    keeps the outcomes of its earlier rounds for the report."""
    action = FINISH.ActionModule(
        SimpleNamespace(check_mode=False), None, None, None,
        SimpleNamespace(template=lambda value: value), None)
    earlier = {ON_DEVICE: asdict(BuildOutcome(
        ON_DEVICE, PLAN["models"][ON_DEVICE]["build_key"], "on_device", None, None, "0:00:02",
        {"ok": True}, [], {}))}
    unreachable = {"item": PROCESS, "unreachable": True,
                   "msg": "Failed to create temporary directory: No space left on device"}
    args = {"work": WORK, "started": {"results": [unreachable]}, "poll_s": 30,
            "collect": True, "plan": {"store_dir": str(tmp_path / "store"),
                                      "hosts": {HOST: PLAN}},
            "preflight": {"catalog": {}}, "previous": {"outcomes": earlier}}
    task_vars = {"inventory_hostname": HOST, "engine_fetch_max_mib": 1}
    result = action.decide(args, task_vars)  # no connection: any call to the device raises
    assert result["failed"] is True
    assert result["msg"] == ("the build's job could not be started on the device: Failed to "
                             "create temporary directory: No space left on device")
    assert result["outcomes"] == earlier and result["fetch"] == [] and not result["silent"]
    assert result["fetched"] == [] and result["builder_current"] is WORK["builder_current"]
    # Every job started: the step goes on to the wait.
    assert start_failure([dict(STARTED[0], changed=True)]) is None
