"""The store's report as one self-contained HTML page: a table and inline SVG bar charts.

No external resource (no CDN, no script): inline CSS and SVG only, so the file can be
mailed or opened from an air-gapped controller. Every text from the index goes through
html.escape. Cells carry the raw value in ``data-value`` so tools (and the tests) can read
the page back without parsing formatted numbers.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable
from typing import Any, TypedDict

from builder.platform.detect import version_prefix

from .durations import format_duration
from .report_md import (
    BUILD_TIME_TEXT,
    FLEET_COLUMNS,
    GRID_INTRO,
    MISSING,
    NEVER_BUILT,
    NOT_VERIFIED,
    SIMULATED_TEXT,
    VERIFIED,
    VERIFY_FAILED,
    engine_store_report,
    fleet_cells,
    fleet_rows,
    format_fps,
    format_ms,
    format_seconds,
    format_size,
    format_utc,
    grid,
    hosts_without_platform,
    module_family,
    platform_facts,
    short_sha,
    store_rows,
    summary_line,
    text_or_missing,
)
from .store import REPORT_HTML, REPORT_MD

# Distinct, colour-blind friendly enough series colours (one per model, in model order).
PALETTE = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#b07aa1", "#edc948",
           "#9c755f")
STATUS_CLASS = {VERIFIED: "ok", VERIFY_FAILED: "bad", NOT_VERIFIED: "warn", "failed": "bad",
                "refused": "bad", NEVER_BUILT: "none"}

CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
       color: #1f2328; background: #f6f8fa; margin: 0; padding: 20px 24px; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 17px; margin: 28px 0 10px; }
p.summary { color: #57606a; margin: 0; }
p.simulated { background: #fff8c5; border: 1px solid #d4a72c; padding: 6px 10px; }
.wide { overflow-x: auto; background: #fff; border: 1px solid #d0d7de; border-radius: 6px; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th, td { padding: 6px 8px; text-align: left; vertical-align: top; white-space: nowrap; }
th { background: #eef1f4; font-weight: 600; border-bottom: 1px solid #d0d7de; }
td { border-bottom: 1px solid #eaeef2; }
tr.first-of-platform td { border-top: 2px solid #d0d7de; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td .sub { display: block; color: #57606a; font-size: 12px; }
td.status span { display: inline-block; padding: 1px 8px; border-radius: 10px;
                 font-size: 12px; font-weight: 600; }
td.status .ok { background: #dafbe1; color: #116329; }
td.status .bad { background: #ffebe9; color: #a40e26; }
td.status .warn { background: #fff8c5; color: #7d4e00; }
td.status .none { background: #eaeef2; color: #57606a; }
#grid td { white-space: normal; min-width: 160px; }
#grid td.status span { display: block; margin-bottom: 3px; border-radius: 6px; }
td.status .why { display: block; white-space: normal; max-width: 220px; color: #a40e26;
                 font-size: 12px; font-weight: 400; background: none; padding: 0; }
code { font: 12px ui-monospace, SFMono-Regular, Menlo, monospace; color: #57606a; }
figure { margin: 0 0 16px; background: #fff; border: 1px solid #d0d7de; border-radius: 6px;
         padding: 12px; }
figure svg { max-width: 100%; height: auto; }
figcaption { font-weight: 600; margin-bottom: 6px; }
svg text { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
footer { color: #57606a; font-size: 12px; margin-top: 24px; }
"""


class Chart(TypedDict):
    """What a bar chart shows (bar_chart's ``measure``)."""

    key: str  # of the rows
    caption: str
    label: Callable[[float | None], str]  # a bar's value text
    tick: Callable[[float], str]  # an axis label
    step: Callable[[float], float]  # the axis step for a raw step
    verified_only: bool  # draw verified engines only


class Slot(TypedDict):
    """A bar's place in its chart (_bar's ``slot``)."""

    x: float
    width: int
    colour: str
    y_of: Callable[[float], float]
    base: int


# Chart geometry (SVG user units = CSS pixels at 100 %).
PLOT_HEIGHT = 220
TOP = 44          # room for the legend
LEFT = 64         # room for the y axis labels
BOTTOM = 46       # two lines of platform label
RIGHT = 16
GROUP_GAP = 28
GROUP_MIN_WIDTH = 190  # room for the two-line platform label under a group


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def _data_value(value: object) -> str:
    return "" if value is None else ' data-value="{}"'.format(esc(value))


def _cell(css_class: str, text: object, value: object = None, sub: str | None = None,
          title: str | None = None) -> str:
    """One <td>; ``value`` (raw) goes to data-value, ``sub`` to a second grey line."""
    inner = esc(text)
    if sub:
        inner += '<span class="sub">{}</span>'.format(esc(sub))
    title_attr = ' title="{}"'.format(esc(title)) if title else ""
    return '<td class="{}"{}{}>{}</td>'.format(css_class, _data_value(value), title_attr, inner)


def _model_cell(row: dict[str, Any]) -> str:
    return '<td class="model"{}>{}<span class="sub variant"{}>{}</span></td>'.format(
        _data_value(row["model"]), esc(row["model"]), _data_value(row["variant"]),
        esc(text_or_missing(row["variant"]) + (" · " + row["engine_path"]
                                               if row["engine_path"] else "")))


def _built_cell(row: dict[str, Any]) -> str:
    """When (UTC) and, on a second line, on which host; each with its raw value."""
    host = row["built_on"]
    return '<td class="built"{}>{}<span class="sub built-on"{}>on {}</span></td>'.format(
        _data_value(row["created_utc"]), esc(format_utc(row["created_utc"])),
        _data_value(host), esc(text_or_missing(host)))


def _status_cell(row: dict[str, Any]) -> str:
    why = '<span class="why">{}</span>'.format(esc(row["status_detail"])) \
        if row["status_detail"] else ""
    return '<td class="status" data-value="{}"><span class="{}">{}</span>{}</td>'.format(
        esc(row["status"]), STATUS_CLASS[row["status"]], esc(row["status"]), why)


TABLE_HEAD = (("platform", "Platform"), ("model", "Model, variant"), ("status", "Status"),
              ("num", "Size"), ("num", "TensorRT build"),
              ("num", "FPS"), ("num", "Latency"), ("built", "Built (UTC) on host"),
              ("graph", "Graph"))


def _table(rows: list[dict[str, Any]]) -> str:
    head = "".join('<th class="{}">{}</th>'.format(c, esc(t)) for c, t in TABLE_HEAD)
    body = []
    previous = None
    for row in rows:
        first = row["platform_id"] != previous
        previous = row["platform_id"]
        cells = [
            _cell("platform", row["platform_id"], row["platform_id"], platform_facts(row)),
            _model_cell(row),
            _status_cell(row),
            _cell("num size", format_size(row["engine_size"]), row["engine_size"],
                  title="{} bytes".format(row["engine_size"]) if row["engine_size"] else None),
            _cell("num build-time", format_seconds(row["build_seconds"]), row["build_seconds"]),
            _cell("num fps", format_fps(row["fps"]), row["fps"]),
            _cell("num latency", format_ms(row["median_ms"]), row["median_ms"]),
            _built_cell(row),
            _cell("graph", text_or_missing(row["graph_file"]), row["graph_sha256"],
                  sub="sha256 " + short_sha(row["graph_sha256"]) if row["graph_sha256"] else None,
                  title=row["graph_sha256"]),
        ]
        body.append('<tr class="{}" data-platform="{}" data-model="{}">{}</tr>'.format(
            "first-of-platform" if first else "", esc(row["platform_id"]), esc(row["model"]),
            "".join(cells)))
    return ('<div class="wide"><table id="engines"><thead><tr>{}</tr></thead>'
            "<tbody>\n{}\n</tbody></table></div>").format(head, "\n".join(body))


def decimal_step(raw: float) -> float:
    """The smallest of 1, 2, 2.5, 5 x 10^n that is >= raw."""
    magnitude: float = 10 ** math.floor(math.log10(raw))
    return next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)


# Axis steps a person reads at a glance: seconds, minutes, hours.
DURATION_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200)


def duration_step(raw: float) -> float:
    return next((step for step in DURATION_STEPS if step >= raw), decimal_step(raw))


def nice_ticks(largest: float, step_for: Callable[[float], float], count: int = 4
               ) -> list[float]:
    """Round axis ticks 0..top covering ``largest`` with about ``count`` steps."""
    if not largest or largest <= 0:
        return [0, 1]
    step = step_for(largest / float(count))
    needed = int(math.ceil(largest / step - 1e-9))
    return [round(step * i, 10) for i in range(needed + 1)]


def _platform_label(rows: list[dict[str, Any]], platform_id: str) -> tuple[str, str]:
    """Two short lines under a bar group: the module, then L4T / TensorRT."""
    row = next(r for r in rows if r["platform_id"] == platform_id)
    if not row["module"]:
        return platform_id, ""
    facts = []
    if row["l4t"]:
        facts.append("L4T " + row["l4t"])
    if row["tensorrt"]:
        tensorrt: str = version_prefix(row["tensorrt"], 3) or row["tensorrt"]
        facts.append("TRT " + tensorrt)
    family = module_family(row)
    return row["module"] + (" ({})".format(family) if family else ""), " · ".join(facts)


def bar_chart(rows: list[dict[str, Any]], measure: Chart) -> str:
    """Grouped bars: one group per platform, one bar per model, of one ``measure``.

    measure: "key" of the rows, "caption", "label" (value text), "tick" (axis text),
    "step" (axis step for a raw step), "verified_only" (draw verified engines only: the FPS
    of a failed verify means nothing; a missing bar says why).
    """
    key, formatter = measure["key"], measure["label"]
    platforms = sorted({r["platform_id"] for r in rows})
    models = sorted({r["model"] for r in rows})
    values = {(r["platform_id"], r["model"]): r for r in rows}
    bar = max(14, min(36, 150 // len(models)))
    group = max(GROUP_MIN_WIDTH, bar * len(models) + GROUP_GAP)
    width = max(480, LEFT + group * len(platforms) + RIGHT)
    height = TOP + PLOT_HEIGHT + BOTTOM
    drawn = [r for r in rows if r[key] is not None
             and (r["status"] == VERIFIED or not measure["verified_only"])]
    ticks = nice_ticks(max(r[key] for r in drawn) if drawn else 0, measure["step"])
    top = ticks[-1]
    base = TOP + PLOT_HEIGHT

    def y_of(value: float) -> float:
        return base - PLOT_HEIGHT * value / float(top)

    parts = ['<svg xmlns="http://www.w3.org/2000/svg" role="img" viewBox="0 0 {w} {h}" '
             'width="{w}" height="{h}" aria-label="{c}">'.format(w=width, h=height,
                                                                c=esc(measure["caption"]))]
    x = LEFT
    for i, model in enumerate(models):  # legend, about 7 units per character
        parts.append('<rect x="{}" y="8" width="12" height="12" fill="{}"/>'
                     '<text x="{}" y="18" font-size="12">{}</text>'.format(
                         x, PALETTE[i % len(PALETTE)], x + 16, esc(model)))
        x += 36 + 7 * len(model)
    for tick in ticks:  # grid and y axis
        y = y_of(tick)
        parts.append('<line x1="{}" x2="{}" y1="{y:.1f}" y2="{y:.1f}" stroke="{}"/>'
                     '<text x="{}" y="{:.1f}" font-size="11" text-anchor="end" '
                     'fill="#57606a">{}</text>'.format(
                         LEFT, width - RIGHT, "#d0d7de" if tick == 0 else "#eaeef2",
                         LEFT - 6, y + 4, esc(measure["tick"](tick)), y=y))
    for g, platform_id in enumerate(platforms):
        x0 = LEFT + g * group + (group - bar * len(models)) / 2.0
        for m, model in enumerate(models):
            row = values.get((platform_id, model))
            slot: Slot = {"x": x0 + m * bar, "width": bar, "colour": PALETTE[m % len(PALETTE)],
                    "y_of": y_of, "base": base}
            parts.append(_bar(row, key, formatter, slot, row in drawn))
        line1, line2 = _platform_label(rows, platform_id)
        center = x0 + bar * len(models) / 2.0
        parts.append('<text x="{:.1f}" y="{}" font-size="11" text-anchor="middle">'
                     '<title>{}</title><tspan>{}</tspan><tspan x="{:.1f}" dy="14" '
                     'fill="#57606a">{}</tspan></text>'.format(
                         center, base + 16, esc(platform_id), esc(line1), center, esc(line2)))
    parts.append("</svg>")
    return "<figure><figcaption>{}</figcaption>{}</figure>".format(
        esc(measure["caption"]), "".join(parts))


def _bar(row: dict[str, Any] | None, key: str, formatter: Callable[[float | None], str], slot: Slot,
         drawn: bool) -> str:
    """One bar with its value on top, or (not ``drawn``) a short note saying why not.

    slot: x and width of the bar's place, its colour, y_of(value) and the base line's y.
    """
    if row is None:
        return ""
    x, bar, y_of, base = slot["x"], slot["width"], slot["y_of"], slot["base"]
    value = row[key]
    center = x + bar / 2.0
    if not drawn:
        note = {VERIFIED: "n/a", VERIFY_FAILED: "failed"}.get(row["status"], "unverified")
        return ('<text x="{:.1f}" y="{}" font-size="9" text-anchor="middle" fill="#a40e26">'
                "<title>{}: {}</title>{}</text>").format(
                    center, base - 4, esc(row["model"]), esc(row["status"]), esc(note))
    y = y_of(value)
    label = formatter(value)
    label_attrs = ('x="{:.1f}" y="{:.1f}" text-anchor="middle"'.format(center, y - 4)
                   if bar >= 30 else
                   'x="{:.1f}" y="{:.1f}" transform="rotate(-90 {:.1f} {:.1f})"'.format(
                       center + 3, y - 4, center + 3, y - 4))
    return ('<rect x="{:.1f}" y="{:.1f}" width="{}" height="{:.1f}" fill="{}">'
            "<title>{} on {}: {}</title></rect>"
            '<text {} font-size="10" fill="#1f2328">{}</text>').format(
                x + 2, y, bar - 4, base - y, slot["colour"], esc(row["model"]),
                esc(row["platform_id"]), esc(label), label_attrs, esc(label))


def _axis_fps(value: float) -> str:
    return "{:g}".format(value)


FPS_CHART: Chart = {"key": "fps", "caption": "FPS measured on the device (higher is better)",
             "label": format_fps, "tick": _axis_fps, "step": decimal_step,
             "verified_only": True}
BUILD_TIME_CHART: Chart = {"key": "build_seconds", "caption": "TensorRT build time on the device",
                    "label": format_seconds, "tick": format_duration, "step": duration_step,
                    "verified_only": False}


def _fleet_table(index: dict[str, Any] | None) -> list[str]:
    """The fleet view: device x model -> deployed version, platform, status, health, when."""
    fleet = fleet_rows(index)
    if not fleet:
        return []
    head = "".join("<th>{}</th>".format(esc(title)) for title in FLEET_COLUMNS)
    body = "".join('<tr data-host="{}" data-model="{}">{}</tr>'.format(
        esc(row["host"]), esc(row["model"]),
        "".join("<td>{}</td>".format(esc(cell)) for cell in fleet_cells(row))) for row in fleet)
    return ["<h2>Fleet (deploy_engines.yml)</h2>",
            '<div class="wide"><table id="fleet"><thead><tr>{}</tr></thead><tbody>{}</tbody>'
            "</table></div>".format(head, body)]


def _grid_table(index: dict[str, Any] | None) -> list[str]:
    """Platform x model: each cell lists the engines in the store and the runs' failures."""
    models, lines = grid(index)
    if not lines:
        return []
    head = "<th>Platform</th>" + "".join("<th>{}</th>".format(esc(m)) for m in models)
    body = []
    for platform_id, cells in lines:
        tds = "".join('<td class="status" data-model="{}">{}</td>'.format(esc(model), "".join(
            '<span class="{}" data-state="{}">{}</span>'.format(
                STATUS_CLASS[cell["state"]], esc(cell["state"]), esc(cell["text"]))
            for cell in cells[model])) for model in models)
        body.append('<tr data-grid-platform="{}"><td class="platform">{}</td>{}</tr>'.format(
            esc(platform_id), esc(platform_id), tds))
    parts = ["<h2>Platform × model</h2>", '<p class="summary">{}</p>'.format(esc(GRID_INTRO)),
             '<div class="wide"><table id="grid"><thead><tr>{}</tr></thead><tbody>{}</tbody>'
             "</table></div>".format(head, "".join(body))]
    unplaced = hosts_without_platform(index)
    if unplaced:
        parts.append("<p>Hosts with no platform (their facts were refused):</p><ul>{}</ul>".format(
            "".join("<li>{}: {}</li>".format(esc(h), esc(r)) for h, r in unplaced)))
    return parts


SIMULATED_HTML = ('<p class="simulated"><strong>SIMULATED</strong>: {}</p>'.format(
    esc(SIMULATED_TEXT)))


def engine_store_report_html(index: dict[str, Any] | None) -> str:
    """The whole report page (a str) for index.json's content."""
    rows = store_rows(index)
    if rows:
        body = [
            '<p class="summary">{}</p>'.format(esc(summary_line(rows))),
            "<h2>Engines (platform × model)</h2>",
            _table(rows),
            "<h2>Per platform</h2>",
            bar_chart(rows, FPS_CHART),
            bar_chart(rows, BUILD_TIME_CHART),
        ] + _grid_table(index) + _fleet_table(index)
    else:
        body = ['<p class="summary">The store holds no engine yet.</p>'] + _grid_table(index)
    return "\n".join([
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>TensorRT engines in the store</title>",
        "<style>{}</style></head><body>".format(CSS),
        "<h1>TensorRT engines in the store</h1>",
    ] + ([SIMULATED_HTML] if (index or {}).get("simulated") else []) + body + [
        "<footer>Generated from index.json of the engine store; FPS and latency come from "
        "<code>builder verify</code> on the device that built the engine. {}. {} marks a "
        "value the index does not have.</footer>".format(esc(BUILD_TIME_TEXT), esc(MISSING)),
        "</body></html>",
        "",
    ])


# The store's report files and what renders each of them from index.json's content.
STORE_DOCUMENTS: dict[str, Callable[[dict[str, Any] | None], str]] = {
    REPORT_MD: engine_store_report, REPORT_HTML: engine_store_report_html}


def engine_store_document(index: dict[str, Any] | None, name: str) -> str:
    """The content of the store's report file ``name`` (report.md or report.html)."""
    if name not in STORE_DOCUMENTS:
        raise ValueError("engine_store_document: unknown report {!r}; expected one of {}".format(
            name, ", ".join(sorted(STORE_DOCUMENTS))))
    return STORE_DOCUMENTS[name](index)


