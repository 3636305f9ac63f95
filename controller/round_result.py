"""The controller reads one device's round back, in one step: what each model's builder
process or verify said (controller/outcome.py), and which of the files the device listed may
be fetched into the store's staging area (controller/collect.py).

The route of a model name through a build run (docs/internals.md, "The route of a model"):
``engine_models`` -> selection -> plan entry -> round item -> device record -> round result ->
store. The round result is this module's ``finish_round`` (the engine_round_finish action: the
device's wait, verifies, listing, this read-back, the fetch and the filing into the store, for
one device, without waiting for the round's other devices), registered as
``engine_round_result``, which the next round and the report read.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .build_wait import wait_results, went_silent
from .collect import fetchable, limit_of, timing_cache_fetch
from .outcome import host_outcomes, last_line
from .plan import refute_confirmations
from .store import EngineStore

# Where engine_build registers this round's result (registered, never facts): finish_round's,
# which the next round and the report read.
REGISTERED = "engine_round_result"


def previous_outcomes(registered: object) -> dict[str, dict[str, Any]]:
    """model -> outcome of one host's earlier rounds of this run, from its registered
    ``REGISTERED`` result (None before its first round)."""
    return dict(registered.get("outcomes") or {}) if isinstance(registered, Mapping) else {}


def listed_files(listing: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The files of ansible.builtin.find's result (none when it was skipped or failed)."""
    files = listing.get("files") if not listing.get("failed") else None
    return [f for f in files or [] if isinstance(f, dict)]


def read_round(work: dict[str, Any], host_plan: dict[str, Any], *, host: str,
               started: list[dict[str, Any]], wait: dict[str, Any],
               verifies: list[dict[str, Any]], listing: Mapping[str, Any],
               previous: dict[str, dict[str, Any]], catalog: dict[str, Any],
               max_bytes: int, store: EngineStore) -> dict[str, Any]:
    """{outcomes, silent, fetch, timing_cache_fetch, refused, msg}: the round of ``host``.

    ``work``: its round work (controller/device_work.py round_work); ``started`` / ``wait`` /
    ``verifies``: the registered results of the builder processes, of their wait and of the
    verifies; ``listing``: find over ``work["listing"]`` (links not followed); ``previous``:
    the outcomes of its earlier rounds. ``fetch``: [{model, name, src, dest}], the engine and
    manifest of each verified model, keyed by ``model``.
    """
    outcomes = dict(previous)
    build_results = wait_results(started, wait)
    outcomes.update(host_outcomes(build_results, verifies, host_plan, host, work["root_dir"]))
    for model in work["confirm"]:  # the summary says what these verifies were
        if (outcomes.get(model) or {}).get("status") == "on_device":
            outcomes[model] = dict(outcomes[model], details=dict(
                outcomes[model].get("details") or {}, confirms_stored_engine=True))
    # A stored engine this device could not verify for its platform leaves the store.
    for model, where in refute_confirmations(store, host, work["confirm"], outcomes).items():
        outcomes[model] = dict(outcomes[model], reason="{}; the stored engine it was to "
                               "verify moved to {}".format(outcomes[model]["reason"], where))
    silent = went_silent(wait)
    this_round = set(work["build"] + work["collect"])
    verified = sorted(model for model, o in outcomes.items() if model in this_round
                      and o["status"] in ("built", "on_device") and o["verify"] is not None)
    fetch: list[dict[str, Any]] = []
    refused: dict[str, str] = {}
    cache_fetch, cache_refused = None, None
    if not silent:
        files = listed_files(listing)
        limits = {m: limit_of(m, catalog, max_bytes) for m in verified}
        fetch, refused = fetchable(files, verified, host_plan, limits, host,
                                   root_dir=work["root_dir"],
                                   staging=store.staging_dir(host))
        device_file = work["timing_cache"].get("device_file")
        cache_info = next((dict(f, exists=True) for f in files if f.get("path") == device_file),
                          None)
        cache_fetch, cache_refused = timing_cache_fetch(cache_info, device_file, host,
                                                        store.staging_dir(host))
    lines = ["{}: {}{}{}".format(model, o["status"],
                                 " in " + o["elapsed"] if o["elapsed"] else "",
                                 ": " + o["reason"] if o["reason"] else "")
             for model, o in sorted(outcomes.items())]
    lines += ["{}: refused: {}".format(m, r) for m, r in sorted(refused.items())]
    result = {"outcomes": outcomes, "silent": silent, "fetch": fetch,
              "timing_cache_fetch": cache_fetch, "refused": refused, "msg": lines}
    if cache_refused:
        result["warnings"] = [cache_refused]
    return result


def start_failure(started: list[dict[str, Any]]) -> str | None:
    """Why a builder job did not reach the device, or None when every job started
    (``started``: the start task's loop results; Ansible made it unreachable, as when the
    device has no room for its temporary directory)."""
    failed = next((result for result in started if result.get("unreachable")), None)
    if failed is None:
        return None
    return "the build's job could not be started on the device: {}".format(
        failed.get("msg") or "unreachable")


def install_problem(answer: dict[str, Any]) -> str | None:
    """Why the builder's install (a command's module result) failed, or None."""
    if answer.get("rc") == 0:
        return None
    return "installing the builder into the venv failed (exit code {}): {}".format(
        answer.get("rc"), last_line(answer.get("stderr") or answer.get("msg")) or "no message")


class DeviceGone(Exception):
    """The device stopped answering a call after its builds (Ansible makes it unreachable)."""


@dataclass
class RoundCalls:
    """What finishing a round asks of its device: the action's calls over its connection.

    ``wait()``: the wait for the builder processes (build_wait.wait_result); ``run(argv)``: a
    command's module result (rc, stdout, ...); ``find(paths)``: ansible.builtin.find's result
    over ``paths``; ``fetch(files)``: (the local paths fetched, the error that stopped the
    fetch or None). ``run``, ``find`` and ``fetch`` raise DeviceGone when the device is gone.
    """

    wait: Callable[[], dict[str, Any]]
    run: Callable[[list[str]], dict[str, Any]]
    find: Callable[[list[str]], dict[str, Any]]
    fetch: Callable[[list[dict[str, Any]]], tuple[list[str], str | None]]
    file: Callable[[dict[str, Any]], dict[str, Any]]


def verify_result(item: dict[str, Any], answer: dict[str, Any]) -> dict[str, Any]:
    """A verify's command result in the shape of a loop result (the round work's {model, argv}
    as its ``item``): changed when it passed, failed only when it did not run (no rc); a
    failed verify is the model's outcome (its record), not the device's failure."""
    return dict(answer, item=item, changed=answer.get("rc") == 0, failed="rc" not in answer)


def _fetch_and_file(result: dict[str, Any], calls: RoundCalls
                    ) -> tuple[dict[str, Any], str | None, str | None]:
    """Fetch the files ``result`` (the read-back) allows and file what arrived, also after a
    failed fetch; ``result`` gains fetched, fetch_failed, timing_cache, the filing's warnings
    and its refusals in msg. (the filing's result, the device gone, the fetch's problem)."""
    files = [item for item in result["fetch"] + [result["timing_cache_fetch"]] if item]
    try:
        result["fetched"], result["fetch_failed"] = calls.fetch(files)
    except DeviceGone as error:
        return {"filed": {}, "refused": {}}, str(error), None
    result["changed"] = result["changed"] or bool(result["fetched"])
    filing = calls.file(result)
    not_filed = ["{}: not filed: {}".format(m, r) for m, r in sorted(filing["refused"].items())
                 if m not in result["refused"]]
    result["timing_cache"] = filing["timing_cache"]
    result["warnings"] = list(result.get("warnings") or []) + filing["warnings"]
    result["msg"] = list(result["msg"]) + not_filed
    problem = "; ".join([str(result["fetch_failed"])] + not_filed) \
        if result["fetch_failed"] else None
    return filing, None, problem


def finish_round(work: dict[str, Any], started: list[dict[str, Any]], calls: RoundCalls,
                 read: Callable[[list[dict[str, Any]], dict[str, Any], list[dict[str, Any]],
                                 Mapping[str, Any]], dict[str, Any]],
                 *, fetching: bool, earlier: Mapping[str, Any]) -> dict[str, Any]:
    """One device's round after its builds started (``started``: the start task's loop
    results), for this device only: wait for them, then, unless it went silent, verify each
    engine that was already on it and list the round's files; read the round back
    (``read(started, wait, verifies, listing)``: ``read_round``); when ``fetching`` (the run's
    collect step) and it answers, fetch the files the read-back allows and file them into the
    store (``calls.file``), so that its engines are in the store as soon as its own round ends.

    The read-back's keys, plus ``fetched`` (local paths), ``fetch_failed`` (the fetch's error,
    or None: what arrived is filed, then the device fails with it), ``filed`` (model -> store
    path) and ``refused`` (model -> why it was not filed), both over every round of the run so
    far (``earlier``: this host's registered result of its last round, or empty), which the
    report reads, ``timing_cache`` (the store path of its grown cache, or None),
    ``builds_wait_s`` (how long the step waited for the builds, on the controller's clock,
    from its start: the builder's install runs while they run) and
    ``builder_current`` and ``env_ensured`` (the venv holds the run's builder; the environment
    ensured: a later round of the run installs neither again, controller/device_work.py).
    A verify that did not run or a listing that failed fails the result (the device's round
    fails, and its rescue looks at its disk), and nothing is fetched; a device gone makes it
    unreachable. Either keeps the outcomes read so far (the report reads them). A job that
    did not start fails it too, with the device asked nothing and the outcomes of its earlier
    rounds kept. So does a failed ``install`` (first, before the wait), once the builds that
    started ended: none is left running on the device.
    """
    problem, gone = start_failure(started), None
    installed: dict[str, Any] = {}
    started_failed = problem is not None
    waiting_since = time.monotonic()  # the builds run from here on, during the install too
    if started_failed:
        started = []  # nothing of this round ran: nothing to wait for, verify or read back
    elif work["install"]:
        # The builder's install into the venv runs while the round's builds run: they import
        # it from the pushed wheel (controller/device_work.py round_work).
        try:
            installed = calls.run(work["install"])
        except DeviceGone as error:
            gone = str(error)
        problem = install_problem(installed) if gone is None else None
    wait = calls.wait() if work["processes"] and not started_failed and gone is None else {}
    builds_wait_s = round(time.monotonic() - waiting_since, 2)
    verifies: list[dict[str, Any]] = []
    listing: dict[str, Any] = {}
    try:
        if problem is None and gone is None and not went_silent(wait):
            verifies = [verify_result(item, calls.run(item["argv"]))
                        for item in work["verifies"]]
            problem = next(("the verify of {} did not run: {}".format(
                result["item"]["model"], result.get("msg") or "no exit code")
                for result in verifies if result["failed"]), None)
            if problem is None and work["listing"]:
                listing = calls.find(list(work["listing"]))
                if listing.get("failed"):
                    problem = "listing the round's files failed: {}".format(
                        listing.get("msg") or "no message")
    except DeviceGone as error:
        gone = str(error)
    result = dict(read(started, wait, verifies, listing), fetched=[], fetch_failed=None,
                  builds_wait_s=builds_wait_s, builder_current=work["builder_current"],
                  env_ensured=work["env_ensured"], timing_cache=None)
    result["changed"] = bool(wait.get("changed") or installed) \
        or any(v["changed"] for v in verifies)
    filing: dict[str, Any] = {"filed": {}, "refused": {}}
    if gone is None and problem is None and fetching and not result["silent"]:
        filing, gone, problem = _fetch_and_file(result, calls)
    result["filed"] = dict(earlier.get("filed") or {}, **filing["filed"])
    result["refused"] = dict(earlier.get("refused") or {}, **filing["refused"])
    if gone is not None:
        result.update(unreachable=True, msg=gone)
    elif problem is not None:
        result.update(failed=True, msg=problem)
    return result
