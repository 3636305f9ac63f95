"""What a device's builder said about each model, read from its JSON record (builder/cli.py).

The record is the device's word: its kind and message are shown, never used as a path. A
command that left no record (killed, or the interpreter did not start) is judged by how it
ended: a signal, or a missing or garbled record from a crashed process.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

# Exit codes the builder's cli.main decides, for commands that left no readable record.
EXIT_KINDS = {1: "tensorrt", 2: "user", 3: "disk", 4: "oom", 70: "bug"}
SIGNALS = {9: "SIGKILL: killed, most often by the kernel's OOM killer (add swap: "
              "jetson_env_swap_mib, or lower engine_workspace_mib)",
           15: "SIGTERM", 6: "SIGABRT", 11: "SIGSEGV"}
MAX_MESSAGE = 2000


@dataclass
class BuildOutcome:
    model: str
    build_key: str
    status: str            # built | on_device | failed
    kind: str | None       # None | user | disk | tensorrt | oom | verify | bug | lost
    reason: str | None
    elapsed: str | None
    verify: dict | None
    tensorrt_lines: list
    details: dict


def read_record(result: dict) -> dict | None:
    """The builder's record from a command result's stdout (None when there is none)."""
    try:
        record = json.loads(result.get("stdout") or "")
    except ValueError:
        return None
    if not isinstance(record, dict) or record.get("record") != 1:
        return None
    return record


def _no_record(result: dict) -> tuple[str, str]:
    rc = result.get("rc")
    if rc is None:
        return "lost", str(result.get("msg") or "the command did not run (connection lost?)")
    signal = -rc if rc < 0 else rc - 128 if rc > 128 else None
    if signal in SIGNALS:
        return "oom" if signal == 9 else "bug", "killed by {} (rc {})".format(SIGNALS[signal], rc)
    tail = [line for line in (result.get("stderr") or "").splitlines() if line.strip()]
    last = tail[-1].strip() if tail else "nothing on stderr"
    # Every ending of the builder writes a record; without one, exit 1 is Python's own for an
    # uncaught exception before the builder started (a bug, not a TensorRT refusal).
    kind = "bug" if rc == 1 else EXIT_KINDS.get(rc, "bug")
    return kind, "exit {} without a builder record: {}".format(rc, last)


def _text(value: object) -> str:
    return str(value)[:MAX_MESSAGE]


def outcome_of(model: str, build_key: str, result: dict, built: bool) -> BuildOutcome:
    """``built``: the result is a build (build --verify); else a verify of an engine that was
    already on the device."""
    record = read_record(result)
    if record is None:
        kind, reason = _no_record(result)
        return BuildOutcome(model, build_key, "failed", kind, reason, result.get("delta"), None,
                            [], {})
    lines = [_text(line) for line in (record.get("tensorrt_lines") or [])][:50]
    details = record.get("details") if isinstance(record.get("details"), dict) else {}
    payload = record.get("result") if isinstance(record.get("result"), dict) else {}
    verify = payload.get("verify") if built else payload
    if record.get("status") == "ok":
        return BuildOutcome(model, build_key, "built" if built else "on_device", None, None,
                            result.get("delta"), verify if isinstance(verify, dict) else None,
                            lines, details)
    kind = record.get("kind") if record.get("kind") in EXIT_KINDS.values() or record.get(
        "kind") == "verify" else "bug"
    reason = _text(record.get("message") or "failed")
    if kind == "verify":
        reason = "verify: " + reason
    return BuildOutcome(model, build_key, "failed", kind, reason, result.get("delta"),
                        None, lines, details)


def host_outcomes(build_results: list, verify_results: list, host_plan: dict, host: str,
                  root_dir: str) -> dict:
    """model -> outcome (as a dict) of one host's round, from the registered loop results."""
    outcomes = {}
    for result, built in [(r, True) for r in build_results] + [(r, False)
                                                                for r in verify_results]:
        if result.get("skipped"):
            continue
        model = result.get("item")
        entry = host_plan["models"].get(model)
        if entry is None:
            continue
        outcome = outcome_of(model, entry["build_key"], result, built)
        if outcome.kind == "disk":
            outcome.reason = disk_advice(host, asdict(outcome), root_dir)
        outcomes[model] = asdict(outcome)
    return outcomes


def disk_advice(host: str, outcome: dict, root_dir: str) -> str:
    """A disk failure's message with the device, the directory, the figures and the fix."""
    details = outcome.get("details") or {}
    free, needed = details.get("free_bytes"), details.get("needed_bytes")
    figures = ""
    if isinstance(free, int) and isinstance(needed, int):
        figures = " ({:.0f} MiB free, about {:.0f} MiB needed)".format(free / 2**20,
                                                                      needed / 2**20)
    return ("device {}: not enough disk space in {}{}. Free space on the device, or set "
            "jetson_facts_root_dir and jetson_env_root_dir (group_vars) to a larger disk".format(
                host, details.get("directory") or root_dir, figures))
