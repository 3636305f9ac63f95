"""The store's content as report rows (from index.json only) and the Markdown report.

Both the Markdown and the HTML report (engine_report_html.py) are built from the rows of
``store_rows``: one per (platform, model), sorted, values raw and formatted. Nothing here
reads the clock, so the same index.json always gives the same report bytes.
"""

from __future__ import annotations

from typing import Any

from .durations import format_duration

SIMULATED_TEXT = ("these engines were built by a simulated fleet (test doubles of TensorRT): "
                  "they do not run on a Jetson, and their FPS, latency and build times are "
                  "emulated")
VERIFIED = "verified"
VERIFY_FAILED = "verify failed"
NOT_VERIFIED = "not verified"
MISSING = "–"  # en dash: a value the index does not have


def verify_status(verify: dict[str, Any] | None) -> tuple[str, str]:
    """(status, detail) of an engine from its index "verify" entry."""
    if not verify or "ok" not in verify:
        return NOT_VERIFIED, "no verify result in the manifest"
    if verify["ok"]:
        return VERIFIED, ""
    problems = verify.get("problems") or []
    return VERIFY_FAILED, "; ".join(str(p) for p in problems) or "verification reported a failure"


def store_rows(index: dict[str, Any] | None) -> list[dict[str, Any]]:
    """One dict per engine of index.json, sorted by platform then model."""
    rows = []
    entries = (index or {}).get("entries") or {}
    for _, entry in sorted(entries.items()):
        if isinstance(entry, dict):
            platform_id, model = entry.get("platform_id"), entry.get("model")
            verify = entry.get("verify") or {}
            platform = entry.get("platform") or {}
            status, detail = verify_status(verify)
            rows.append({
                "platform_id": platform_id,
                "model": model,
                "module": platform.get("module"),
                "soc": platform.get("soc"),
                "l4t": platform.get("l4t"),
                "jetpack": platform.get("jetpack"),
                "python": platform.get("python"),
                "tensorrt": entry.get("tensorrt_version"),
                "precision": entry.get("precision"),
                "variant": entry.get("variant"),
                "engine_path": entry.get("engine_path"),
                "status": status,
                "status_detail": detail,
                "engine_size": entry.get("engine_size"),
                "build_seconds": entry.get("build_seconds"),
                "fps": verify.get("fps"),
                "median_ms": verify.get("median_ms"),
                "created_utc": entry.get("created_utc"),
                "built_on": entry.get("built_on"),
                "graph_file": entry.get("graph_file"),
                "graph_sha256": entry.get("graph_sha256"),
                "build_key": entry.get("build_key"),
            })
    return rows


def newest_build(rows: list[dict[str, Any]]) -> str | None:
    """The latest created_utc of the rows (ISO 8601 UTC strings sort by time), or None."""
    stamps: list[str] = [row["created_utc"] for row in rows if row["created_utc"]]
    return max(stamps) if stamps else None


def format_size(size: float | None) -> str:
    if size is None:
        return MISSING
    if size < 1048576:
        return "{:.1f} KiB".format(size / 1024.0)
    return "{:.1f} MiB".format(size / 1048576.0)


def format_seconds(seconds: float | None) -> str:
    """A build time in the tool's one duration format (controller/durations.py)."""
    return MISSING if seconds is None else format_duration(seconds)


def format_fps(fps: float | None) -> str:
    return MISSING if fps is None else "{:.1f}".format(fps)


def format_ms(ms: float | None) -> str:
    return MISSING if ms is None else "{:.1f} ms".format(ms)


def format_utc(stamp: str | None) -> str:
    """2026-11-25T03:31:31Z -> 2026-11-25 03:31 (the report says UTC in its headers)."""
    if not stamp:
        return MISSING
    return stamp.replace("T", " ")[:16]


# Jetson families by SoC (builder/platform/detect.py's MODULES), named in the reports where the
# module's own name does not say it: a Thor's modules are jetson-t5000 / jetson-t4000.
FAMILY_BY_SOC = {"tegra194": "Xavier", "tegra234": "Orin", "tegra264": "Thor"}


def module_family(row: dict[str, Any]) -> str | None:
    """"Thor" for a jetson-t5000; None where the module's name says the family already."""
    soc = row.get("soc")
    family = FAMILY_BY_SOC.get(soc) if isinstance(soc, str) else None
    module = (row.get("module") or "").lower()
    return family if family and module and family.lower() not in module else None


def platform_facts(row: dict[str, Any]) -> str:
    """"JetPack 4.6.1 · L4T 32.7.1 · TensorRT 8.2.1.8" from what the row knows (led by the
    family where the module's name does not say it: "Thor · JetPack 7.1 · ...")."""
    family = module_family(row)
    parts = ([family] if family else []) + [
        "{} {}".format(name, row[key])
        for name, key in (("JetPack", "jetpack"), ("L4T", "l4t"), ("TensorRT", "tensorrt"),
                          ("Python", "python"))
        if row[key]
    ]
    return " · ".join(parts)


def short_sha(sha: str | None) -> str:
    return sha[:12] if sha else MISSING


def text_or_missing(value: object) -> str:
    return MISSING if value in (None, "") else str(value)


def summary_line(rows: list[dict[str, Any]]) -> str:
    """The one-line overview both reports open with."""
    platforms = len({row["platform_id"] for row in rows})
    models = len({row["model"] for row in rows})
    counts = {status: sum(1 for row in rows if row["status"] == status)
              for status in (VERIFIED, VERIFY_FAILED, NOT_VERIFIED)}
    line = "{} engine(s) of {} model(s) on {} platform(s): {} verified".format(
        len(rows), models, platforms, counts[VERIFIED])
    for status in (VERIFY_FAILED, NOT_VERIFIED):
        if counts[status]:
            line += ", {} {}".format(counts[status], status)
    newest = newest_build(rows)
    if newest:
        line += ". Newest build {} UTC".format(format_utc(newest))
    return line + "."


NEVER_BUILT = "never built"
# A platform's row of the grid: (platform_id, {model: [cell]}), a cell {"state", "variant", "text"}.
GridLine = tuple[str, dict[str, list[dict[str, Any]]]]


def grid(index: dict[str, Any] | None) -> tuple[list[str], list[GridLine]]:
    """(models, [(platform_id, {model: [cell]})]): the platform x model view of the store's
    engines and the runs' failures (index["attempts"], controller/attempts.py).

    A cell is {"state", "variant", "text"}: state is an engine's verify status, "failed" or
    "refused" (with the reason and host), or "never built" (with why).
    """
    attempts = ((index or {}).get("attempts") or {}).get("platforms") or {}
    engines: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in store_rows(index):
        engines.setdefault((row["platform_id"], row["model"]), []).append(row)
    models = {model for _, model in engines}
    for body in attempts.values():
        models.update(body.get("selected") or [])
        models.update(slot.split("/", 1)[0] for slot in body.get("failures") or {})
    platforms = sorted({pid for pid, _ in engines} | set(attempts))
    lines = []
    for platform_id in platforms:
        body = attempts.get(platform_id) or {}
        failures = body.get("failures") or {}
        cells = {}
        for model in sorted(models):
            found = [{"state": row["status"], "variant": row["variant"],
                      "text": "{} {}".format(row["status"], text_or_missing(row["variant"]))}
                     for row in engines.get((platform_id, model), [])]
            for slot, failure in sorted(failures.items()):
                if slot.split("/", 1)[0] == model:
                    found.append({"state": failure["status"], "variant": failure["variant"],
                                  "text": "{} {} on {} (since {} UTC): {}".format(
                                      failure["status"], failure["variant"], failure["host"],
                                      format_utc(failure["since_utc"]), failure["reason"])})
            if not found:
                why = ("selected, but no run finished it yet" if model in (
                    body.get("selected") or []) else "no host of this platform selects it")
                found = [{"state": NEVER_BUILT, "variant": None,
                          "text": "{}: {}".format(NEVER_BUILT, why)}]
            cells[model] = found
        lines.append((platform_id, cells))
    return sorted(models), lines


def hosts_without_platform(index: dict[str, Any] | None) -> list[tuple[str, str]]:
    attempts = (index or {}).get("attempts") or {}
    return sorted((attempts.get("hosts_without_platform") or {}).items())


GRID_INTRO = ("Every platform and model the store or the runs know: the engines in the store "
              "and, from the runs, what failed or was refused (and why) and what was never "
              "built.")


def _md_grid(index: dict[str, Any] | None) -> list[str]:
    models, lines = grid(index)
    if not lines:
        return []
    out = ["", "## Platform × model", "", GRID_INTRO, "",
           "| platform | " + " | ".join(_md_cell(m) for m in models) + " |",
           "|" + "---|" * (len(models) + 1)]
    out += ["| {} | {} |".format(_md_cell(pid), " | ".join(
        _md_cell("; ".join(c["text"] for c in cells[m])) for m in models))
        for pid, cells in lines]
    unplaced = hosts_without_platform(index)
    if unplaced:
        out += ["", "Hosts with no platform (their facts were refused):", ""]
        out += ["- {}: {}".format(host, _md_cell(reason)) for host, reason in unplaced]
    return out


def _md_cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


# What "TensorRT build" means (the run summary's "device run" is the whole device command).
BUILD_TIME_TEXT = ("TensorRT build is the time TensorRT took to parse the graph and build the "
                   "engine on the device (the manifest's build_seconds); the run summary's "
                   "\"device run\" is the whole device command: conversion, build and verify")
MD_COLUMNS = ("platform", "model", "status", "variant", "size", "TensorRT build", "FPS",
              "latency (median)", "built (UTC)", "built on", "graph")


def _md_cells(row: dict[str, Any]) -> tuple[str, ...]:
    status = row["status"] + (": " + row["status_detail"] if row["status_detail"] else "")
    platform = "{} ({})".format(row["platform_id"], platform_facts(row)) if platform_facts(
        row) else row["platform_id"]
    graph = "{} `{}`".format(text_or_missing(row["graph_file"]), short_sha(row["graph_sha256"]))
    variant = text_or_missing(row["variant"]) + (
        " ({})".format(row["engine_path"]) if row["engine_path"] else "")
    return (platform, row["model"], status, variant,
            format_size(row["engine_size"]), format_seconds(row["build_seconds"]),
            format_fps(row["fps"]), format_ms(row["median_ms"]), format_utc(row["created_utc"]),
            text_or_missing(row["built_on"]), graph)


def fleet_rows(index: dict[str, Any] | None) -> list[dict[str, Any]]:
    """One dict per (host, model) of the deployments record the index carries (if any)."""
    hosts = ((index or {}).get("deployments") or {}).get("hosts") or {}
    return [dict(record, host=host, model=model)
            for host, models in sorted(hosts.items())
            for model, record in sorted((models or {}).items()) if isinstance(record, dict)]


FLEET_COLUMNS = ("device", "model", "deployed version", "platform", "status", "health",
                 "staged (trt-engine-path)", "after a JetPack upgrade to", "when (UTC)")
# A staged engine trt-engine-path would hand out (controller/deployments.py statuses).
STAGED_OK = ("current", "staged", "up to date")


def _staged_cells(row: dict[str, Any]) -> tuple[str, str]:
    """(what is staged per platform, what the app gets after an upgrade to each other one)."""
    found = row.get("staged")
    staged: dict[str, Any] = found if isinstance(found, dict) else {}
    here = row.get("platform_id")
    parts, after = [], []
    for platform_id, view in sorted(staged.items()):
        if not isinstance(view, dict):
            continue
        ok = view.get("status") in STAGED_OK
        engine = "{} {}".format(view.get("variant") or "?", str(view.get("engine_sha256")
                                                              or "")[:12]).strip()
        parts.append("{}: {}".format(platform_id, engine if ok else "{} ({})".format(
            view.get("status"), view.get("detail"))))
        if platform_id != here:
            after.append("{}: {}".format(platform_id, engine if ok else
                                         "none, trt-engine-path exits 3"))
    return "; ".join(parts) or MISSING, "; ".join(after) or MISSING


def fleet_cells(row: dict[str, Any]) -> tuple[str, ...]:
    staged, after = _staged_cells(row)
    return (row["host"], row["model"], text_or_missing(row.get("version")),
            text_or_missing(row.get("platform_id")), text_or_missing(row.get("status")),
            text_or_missing(row.get("health")), staged, after, format_utc(row.get("when")))


def engine_store_report(index: dict[str, Any] | None) -> str:
    """Markdown report of the store (platform x model), from index.json's content."""
    rows = store_rows(index)
    lines = ["# TensorRT engines in the store", ""]
    if (index or {}).get("simulated"):
        lines += ["> **SIMULATED**: " + SIMULATED_TEXT, ""]
    if not rows:
        return "\n".join(lines + ["The store holds no engine yet."] + _md_grid(index) + [""])
    lines += [
        summary_line(rows) + " FPS and latency were measured on the device after the build"
        " (`builder verify`). " + BUILD_TIME_TEXT + ". report.html shows the same table with "
        "charts.",
        "",
        "| " + " | ".join(MD_COLUMNS) + " |",
        "|" + "---|" * len(MD_COLUMNS),
    ]
    lines += ["| " + " | ".join(_md_cell(c) for c in _md_cells(row)) + " |" for row in rows]
    lines += _md_grid(index)
    fleet = fleet_rows(index)
    if fleet:
        lines += ["", "## Fleet (deploy_engines.yml)", "",
                  "| " + " | ".join(FLEET_COLUMNS) + " |", "|" + "---|" * len(FLEET_COLUMNS)]
        lines += ["| " + " | ".join(_md_cell(c) for c in fleet_cells(row)) + " |"
                  for row in fleet]
    return "\n".join(lines) + "\n"

