"""The end of a run: summary rows for the callback, the store's reports where they changed."""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from builder.atomic import write_text

from . import runlock
from .attempts import read_attempts, updated_attempts
from .report_html import engine_store_document
from .round_result import REGISTERED, previous_outcomes
from .store import (
    ATTEMPTS_NAME,
    DEPLOYMENTS_NAME,
    DOCUMENTS,
    EngineStore,
    write_json_atomic,
)
from .summary import FAILED, RunFacts, summary_rows


def _run_facts(plan: dict[str, Any], hostvars: Mapping[str, Any], hosts: list[str],
               active: set[str]) -> RunFacts | None:
    """What the hosts did in this run; None when nothing ran on a device (no round)."""
    if plan.get("pending", 1) == 0:
        return None
    outcomes: dict[str, dict[str, dict[str, Any]]] = {}
    collected: dict[str, dict[str, str]] = {}
    for host in hosts:
        if host not in plan["hosts"]:
            continue
        registered = hostvars[host].get(REGISTERED)
        outcomes[host] = previous_outcomes(registered)
        filed = registered if isinstance(registered, Mapping) else {}
        collected[host] = dict(filed.get("filed") or {})
        for model, reason in (filed.get("refused") or {}).items():
            outcome = outcomes[host].get(model)
            if outcome:
                outcomes[host][model] = dict(outcome, status=FAILED, kind="store",
                                             reason="not brought into the store: " + reason)
    return RunFacts(outcomes, collected, active)


def run_report(plan: dict[str, Any], hostvars: Mapping[str, Any], hosts: list[str],
               active: set[str], store_dir: str, *, check_mode: bool,
               documents: Sequence[str] = DOCUMENTS
               ) -> tuple[list[dict[str, Any]], list[str], list[str]]:
    """(summary rows, report files written, notes)."""
    rows: list[dict[str, Any]] = []
    written: list[str] = []
    notes: list[str] = []
    store = EngineStore(store_dir) if store_dir else None
    if plan:
        # Nothing built when the run's tags left the build step out (controller/tags.py).
        built = (plan.get("steps") or {}).get("build", True)
        facts = None if check_mode or not built else _run_facts(plan, hostvars, hosts, active)
        rows = summary_rows(plan, facts, lambda key: store is not None and
                            store.lookup(key) is not None)
        for host, reason in sorted((plan.get("refused_hosts") or {}).items()):
            rows.append({"host": host, "model": "-", "platform_id": None, "variant": "-",
                         "status": FAILED, "detail": "refused: " + reason,
                         "host_left": False})
    if store is None or check_mode or not store.root.is_dir():
        return rows, written, notes
    if plan:
        _record_attempts(store, plan, rows)
    written = write_reports(store, documents)
    notes += store.notes
    return rows, written, notes


def finish_run(plan: dict[str, Any], hostvars: Mapping[str, Any], hosts: list[str],
               active: set[str], store_dir: str, *, check_mode: bool) -> dict[str, Any]:
    """The run's last step, as a task result: the summary rows (``summary_rows``, which the
    engine_summary callback prints), the store's reports where they changed, then the run lock
    released (by the run's ansible-playbook process, the parent of the worker running this).
    ``failed`` when an engine failed, so that the run's exit code says so."""
    try:
        rows, written, notes = run_report(plan, hostvars, hosts, active, store_dir,
                                          check_mode=check_mode)
    finally:
        if store_dir and not check_mode:
            runlock.release(Path(store_dir), os.getppid())
    failed = [row for row in rows if row["status"] == FAILED]
    result: dict[str, Any] = {"failed_rows": failed, "written": written, "notes": notes,
              "changed": bool(written), "msg": "reports written: {}".format(
                  ", ".join(written) or "none (unchanged)")}
    if plan:  # no plan (the run stopped before it): no rows to show
        result["summary_rows"] = rows
    if failed:
        result.update(failed=True, msg="{} engine(s) failed: {} (reasons in the summary "
                      "below)".format(len(failed), ", ".join(
                          "{}/{}".format(row["host"], row["model"]) for row in failed)))
    return result


def _record_attempts(store: EngineStore, plan: dict[str, Any], rows: list[dict[str, Any]]
                     ) -> None:
    """attempts.json after this run, written only when it changed (a no-op rerun writes
    nothing)."""
    previous = read_attempts(store.root)
    when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    attempts = updated_attempts(previous, plan, rows, when)
    if attempts != previous:
        write_json_atomic(store.root / ATTEMPTS_NAME, attempts)


def write_reports(store: EngineStore, documents: Sequence[str] = DOCUMENTS) -> list[str]:
    """Render the store's reports from index.json (and deployments.json: the fleet view);
    write those whose content changed. Returns the paths written."""
    index = dict(store.index())
    # No deploy yet, or a damaged record (the next deploy rewrites it): no fleet view.
    with contextlib.suppress(FileNotFoundError, ValueError):
        index["deployments"] = json.loads((store.root / DEPLOYMENTS_NAME).read_text())
    index["attempts"] = read_attempts(store.root)
    written = []
    for name in documents:
        target = store.root / name
        text = engine_store_document(index, name)
        try:
            unchanged = target.read_text(encoding="utf-8") == text
        except FileNotFoundError:
            unchanged = False
        if not unchanged:
            write_text(str(target), text)
            written.append(str(target))
    return written
