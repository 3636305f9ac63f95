"""What a device's builder said about each model, read from its JSON records (builder/cli.py).

The record is the device's word: its kind and message are shown, never used as a path. A
builder process of several models prints one record per model (JSON lines, each naming its
model). A model the process left no record for (killed, or the interpreter did not start) is
judged by how the process ended: a signal, or a missing or garbled record from a crash.
"""

from __future__ import annotations

import datetime
import json
from dataclasses import asdict, dataclass
from typing import Any

from builder.cli import EXIT_CODES

from .device_work import DEADLINE_EXIT
from .diskspace import MOVE_ROOT_DIR

# The kinds a record may say (builder/cli.py decides them and their exit codes).
KINDS = frozenset(kind for kind in EXIT_CODES if kind is not None)
# The kind of a process that left no readable record, by its exit code. 1 is not there: it is
# also Python's own for an uncaught exception before the builder started (a bug).
KIND_OF_EXIT = {code: kind for kind, code in EXIT_CODES.items()
                if kind is not None and code != 1}
SIGNALS = {9: "SIGKILL: killed, most often by the kernel's OOM killer (add swap: "
              "jetson_env_swap_mib, or lower engine_workspace_mib)",
           15: "SIGTERM", 6: "SIGABRT", 11: "SIGSEGV"}
MAX_MESSAGE = 2000
MAX_RECORDS = 256  # more lines than any process of a device's round has models


@dataclass
class BuildOutcome:
    model: str
    build_key: str
    status: str            # built | on_device | failed
    kind: str | None       # None | user | disk | tensorrt | oom | verify | bug | lost | deadline
    reason: str | None
    elapsed: str | None
    verify: dict[str, Any] | None
    tensorrt_lines: list[str]
    details: dict[str, Any]


def read_records(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The builder's records in a command result's stdout: one per line (JSON lines), or the
    indented single record of builders before JSON lines."""
    text = str(result.get("stdout") or "")
    candidates = []
    for line in text.splitlines()[:MAX_RECORDS]:
        try:
            candidates.append(json.loads(line))
        except ValueError:
            continue
    if not any(_is_record(value) for value in candidates):
        try:
            candidates = [json.loads(text)]
        except ValueError:
            return []
    return [value for value in candidates if _is_record(value)]


def _is_record(value: object) -> bool:
    return isinstance(value, dict) and value.get("record") == 1


def read_record(result: dict[str, Any]) -> dict[str, Any] | None:
    """The one record of a single-subject command (verify), None when there is none."""
    records = read_records(result)
    return records[0] if records else None


def _no_record(result: dict[str, Any]) -> tuple[str, str]:
    rc = result.get("rc")
    clocks = _mapping(result.get("item"))
    if result.get("timedout"):
        # The controller stopped waiting (device_work.deadlines, build_wait.within).
        return "deadline", ("the device did not answer within {} s, its build's deadline "
                            "({} s, engine_build_deadline_s) and margins: its sshd or the "
                            "device hangs, or the network to it is down. Its other steps "
                            "were skipped; the other devices went on".format(
                                clocks.get("wait_s"), clocks.get("deadline_s")))
    if rc == DEADLINE_EXIT:
        return "deadline", ("the build ran past its deadline of {} s (engine_build_deadline_s; "
                            "0 is 3 times the platform's expected build time) and was stopped. "
                            "If the device is only slow, raise engine_build_deadline_s in its "
                            "group_vars or host_vars".format(clocks.get("deadline_s")))
    if rc is None:
        return "lost", str(result.get("msg") or "the command did not run (connection lost?)")
    signal = -rc if rc < 0 else rc - 128 if rc > 128 else None
    if signal in SIGNALS:
        return "oom" if signal == 9 else "bug", "killed by {} (rc {})".format(SIGNALS[signal], rc)
    last = last_line(result.get("stderr")) or "nothing on stderr"
    # Every ending of the builder writes a record; without one, exit 1 is Python's own for an
    # uncaught exception before the builder started (a bug, not a TensorRT refusal).
    kind = KIND_OF_EXIT.get(rc, "bug")
    return kind, "exit {} without a builder record: {}".format(rc, last)


def _text(value: object) -> str:
    return str(value)[:MAX_MESSAGE]


def last_line(device_text: object) -> str | None:
    """The last non-empty line of a text a device sent (a command's stderr), bounded like
    every device text; None when it has none."""
    lines = [line for line in str(device_text or "").splitlines() if line.strip()]
    return _text(lines[-1].strip()) if lines else None


def _mapping(value: object) -> dict[str, Any]:
    """``value`` when it is a JSON object, else an empty one."""
    return value if isinstance(value, dict) else {}


def outcome_of(model: str, build_key: str, result: dict[str, Any], built: bool) -> BuildOutcome:
    """``built``: the result is a build (build --verify); else a verify of an engine that was
    already on the device."""
    return outcome_from_record(model, build_key, read_record(result), result, built=built,
                               elapsed=result.get("delta"))


def outcome_from_record(model: str, build_key: str, record: dict[str, Any] | None,
                        result: dict[str, Any], *, built: bool, elapsed: str | None
                        ) -> BuildOutcome:
    """One model's outcome from its record, or from how its process ended (no record)."""
    if record is None:
        kind, reason = _no_record(result)
        return BuildOutcome(model, build_key, "failed", kind, reason, elapsed, None, [], {})
    lines = [_text(line) for line in (record.get("tensorrt_lines") or [])][:50]
    details = _mapping(record.get("details"))
    payload = _mapping(record.get("result"))
    verify = payload.get("verify") if built else payload
    if record.get("status") == "ok":
        return BuildOutcome(model, build_key, "built" if built else "on_device", None, None,
                            elapsed, verify if isinstance(verify, dict) else None,
                            lines, details)
    said = record.get("kind")
    kind = said if isinstance(said, str) and said in KINDS else "bug"
    reason = _text(record.get("message") or "failed")
    if kind == "verify":
        reason = "verify: " + reason
    return BuildOutcome(model, build_key, "failed", kind, reason, elapsed, None, lines, details)


def process_outcomes(result: dict[str, Any], host_plan: dict[str, Any]) -> list[BuildOutcome]:
    """The outcome of every planned model of one builder process (``result["item"]``: the
    process, {"models", ...}).

    A record names its model; one without a model (the command line refused as a whole, or a
    builder of one model only) stands for every model that has none of its own. A model left
    without any record (the process was killed or crashed before it) says so, with the
    process's other models when there are several.
    """
    item = _mapping(result.get("item"))
    models = [model for model in item.get("models") or [] if model in host_plan["models"]]
    records = read_records(result)
    by_model = {record["model"]: record for record in records if record.get("model") in models}
    whole = next((record for record in records if record.get("model") is None), None)
    outcomes = []
    for model in models:
        record = by_model.get(model, whole)
        elapsed = result.get("delta")
        if len(models) > 1:
            elapsed = _elapsed_of(record)
        outcome = outcome_from_record(model, host_plan["models"][model]["build_key"], record,
                                      result, built=True, elapsed=elapsed)
        if record is None and len(models) > 1:
            outcome.reason = "{} (its builder process also built {})".format(
                outcome.reason, ", ".join(m for m in models if m != model))
        outcomes.append(outcome)
    return outcomes


def _elapsed_of(record: dict[str, Any] | None) -> str | None:
    """A model's own wall time from its record, in the form of Ansible's ``delta``."""
    seconds = (record or {}).get("seconds")
    if not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or seconds < 0:
        return None
    return str(datetime.timedelta(seconds=round(min(seconds, 10**7), 3)))


def host_outcomes(build_results: list[dict[str, Any]], verify_results: list[dict[str, Any]],
                  host_plan: dict[str, Any], host: str, root_dir: str
                  ) -> dict[str, dict[str, Any]]:
    """model -> outcome (as a dict) of one host's round, from the registered loop results:
    one per builder process (``build_results``) and one per verified model (each its round
    work's verify, {"model", "argv"}, as ``item``)."""
    found = []
    for result in build_results:
        if not result.get("skipped"):
            found += process_outcomes(result, host_plan)
    for result in verify_results:
        model = _mapping(result.get("item")).get("model")  # the round work's {model, argv}
        if result.get("skipped") or not isinstance(model, str):
            continue
        entry = host_plan["models"].get(model)
        if entry is None:
            continue
        found.append(outcome_of(model, entry["build_key"], result, False))
    outcomes = {}
    for outcome in found:
        if outcome.kind == "disk":
            outcome.reason = disk_advice(host, asdict(outcome), root_dir)
        outcomes[outcome.model] = asdict(outcome)
    return outcomes


def disk_advice(host: str, outcome: dict[str, Any], root_dir: str) -> str:
    """A disk failure's message with the device, the directory, the figures and the fix."""
    details = outcome.get("details") or {}
    free, needed = details.get("free_bytes"), details.get("needed_bytes")
    figures = ""
    if isinstance(free, int) and isinstance(needed, int):
        figures = " ({:.0f} MiB free, about {:.0f} MiB needed)".format(free / 2**20,
                                                                      needed / 2**20)
    return "device {}: not enough disk space in {}{}. Free space on the device, {}".format(
        host, details.get("directory") or root_dir, figures, MOVE_ROOT_DIR)
