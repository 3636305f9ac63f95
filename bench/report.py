"""The benchmark's table and targets (markdown), its JSON and its chart.

Input: one entry per fleet size: {"size", "hosts", "floor_s", "naive_builds",
"distinct_builds", "platforms", "models", "baseline": step, "scopes": {scope: {"cold",
"noop", "changed": step, "env_in_cold": bool}}} with steps as made by steps.py.
"""

import json

from bench import png_chart

TARGET_NOOP_COMMANDS = 2
TARGET_NOOP_CPU_S = 0.1


def _s(value):
    return "-" if value is None else "{:.1f}".format(value)


def _kb(value):
    return "{:.1f}".format(value / 1024.0)


def targets(entry, lone=None):
    """[(target, scope, measured, pass)] for one fleet size; ``lone``: the one-device entry
    of the same run, whose cold run prices a remote execution (None: not judged)."""
    rows = []
    for scope, steps in sorted(entry["scopes"].items()):
        noop, cold, changed = steps["noop"], steps["cold"], steps["changed"]
        platform_scope = scope == "platform"
        expect_cold = entry["distinct_builds"] if platform_scope else entry["naive_builds"]
        expect_changed = entry["platforms"] if platform_scope else entry["size"]
        rows += [
            ("no-op: remote executions per device <= {}".format(TARGET_NOOP_COMMANDS), scope,
             "max {}".format(noop["commands_max_device"]),
             noop["commands_max_device"] <= TARGET_NOOP_COMMANDS),
            ("no-op: 0 files sent (environment, graphs)", scope,
             "{:g} per device".format(noop["file_transfers_per_device"]),
             noop["file_transfers_per_device"] == 0),
            ("no-op: controller CPU per device <= {} s".format(TARGET_NOOP_CPU_S), scope,
             "{:.3f} s".format(noop["controller_cpu_per_device_s"]),
             noop["controller_cpu_per_device_s"] <= TARGET_NOOP_CPU_S),
            ("cold: builds = {}".format("distinct (platform, model)" if platform_scope
                                        else "devices x models"), scope,
             "{} (want {})".format(cold["builds"], expect_cold), cold["builds"] == expect_cold),
            ("no-op: 0 builds", scope, str(noop["builds"]), noop["builds"] == 0),
            ("changed: only the changed model's builds", scope,
             "{} (want {})".format(changed["builds"], expect_changed),
             changed["builds"] == expect_changed),
        ]
        lone_steps = (lone or {}).get("scopes", {}).get(scope)
        if entry["size"] >= 32 and lone_steps:
            allowed = cold_wall_allowance(entry, steps, lone, lone_steps)
            rows.append(("cold: wall <= slowest build + its remote executions", scope,
                         "{:.1f} s (allowed {:.1f} s)".format(cold["wall_s"], allowed),
                         cold["wall_s"] <= allowed))
    return rows


def cold_wall_allowance(entry, steps, lone, lone_steps):
    """The floor plus what the busiest device's remote executions cost. A remote execution
    is priced by the one-device cold run, where nothing waits on another device:
    (its wall - its floor) / its commands."""
    lone_cold = lone_steps["cold"]
    per_command = max(lone_cold["wall_s"] - lone["floor_s"], 0.0) / max(
        lone_cold["commands_max_device"], 1)
    return entry["floor_s"] + steps["cold"]["commands_max_device"] * per_command


def markdown(meta, entries):
    lines = ["# Fleet benchmark {}".format(meta["started"]), "",
             "Machine: {cpus} CPU(s), {machine}; simulated fleet (every device shares the "
             "controller's CPUs). Emulated build seconds: {build_seconds}. Models: "
             "{models}. Device kinds dealt round-robin: {kinds}.".format(**meta), "",
             "All figures of one row come from the same benchmark run, on the same fleet. "
             "`cold` starts from devices whose TensorFlow environment is already provisioned, "
             "except where marked `+env` (the environment install is included, measured).",
             "Per-device figures (what carries over to a real fleet): remote command "
             "executions (sshd sessions; one per module with pipelining), files and bytes "
             "sent to the device, controller CPU (user+sys of the whole process tree).", "",
             "| devices | scope | baseline wall s | cold wall s | no-op wall s | changed wall s "
             "| floor s | builds cold / no-op / changed (naive, distinct) "
             "| remote execs/device cold / no-op / changed (baseline) "
             "| KiB sent/device cold / no-op / changed (baseline) "
             "| files sent/device no-op | ctrl CPU s/device cold / no-op / changed (baseline) |",
             "|---:|---|---:|---:|---:|---:|---:|---|---|---|---:|---|"]
    for entry in entries:
        base = entry["baseline"]
        for scope, steps in sorted(entry["scopes"].items()):
            cold, noop, changed = steps["cold"], steps["noop"], steps["changed"]
            lines.append(
                "| {size} | {scope} | {base} | {cold}{env} | {noop} | {changed} | {floor} "
                "| {bc} / {bn} / {bch} ({naive}, {distinct}) | {cc:g} / {cn:g} / {cch:g} ({cb}) "
                "| {kc} / {kn} / {kch} ({kb}) | {fn:g} | {pc:.2f} / {pn:.3f} / {pch:.2f} "
                "({pb}) |".format(
                    size=entry["size"], scope=scope, base=_s(base and base["wall_s"]),
                    cold=_s(cold["wall_s"]), env=" +env" if steps["env_in_cold"] else "",
                    noop=_s(noop["wall_s"]), changed=_s(changed["wall_s"]),
                    floor=_s(entry["floor_s"]), bc=cold["builds"], bn=noop["builds"],
                    bch=changed["builds"], naive=entry["naive_builds"],
                    distinct=entry["distinct_builds"], cc=cold["commands_per_device"],
                    cn=noop["commands_per_device"], cch=changed["commands_per_device"],
                    cb="{:g}".format(base["commands_per_device"]) if base else "-",
                    kc=_kb(cold["bytes_to_device_per_device"]),
                    kn=_kb(noop["bytes_to_device_per_device"]),
                    kch=_kb(changed["bytes_to_device_per_device"]),
                    kb=_kb(base["bytes_to_device_per_device"]) if base else "-",
                    fn=noop["file_transfers_per_device"],
                    pc=cold["controller_cpu_per_device_s"],
                    pn=noop["controller_cpu_per_device_s"],
                    pch=changed["controller_cpu_per_device_s"],
                    pb="{:.2f}".format(base["controller_cpu_per_device_s"]) if base else "-"))
    lines += ["", "## Targets", "", "| devices | target | scope | measured | met |",
              "|---:|---|---|---|---|"]
    lone = next((e for e in entries if e["size"] == 1), None)
    for entry in entries:
        for name, scope, measured, met in targets(entry, lone):
            lines.append("| {} | {} | {} | {} | {} |".format(
                entry["size"], name, scope, measured, "yes" if met else "**NO**"))
    failed = [(e["size"], s, step) for e in entries
              for s, steps in e["scopes"].items() for step in ("cold", "noop", "changed")
              if steps[step]["rc"] != 0] + [(e["size"], "baseline", "") for e in entries
                                            if e["baseline"] and e["baseline"]["rc"] != 0]
    if failed:
        lines += ["", "Runs that exited non-zero (their figures still count what was done): "
                  + ", ".join("{} devices {} {}".format(*f).strip() for f in failed)]
    return "\n".join(lines) + "\n"


def chart(entries, scope):
    labels = [str(e["size"]) for e in entries]

    def walls(step):
        return [e["scopes"][scope][step]["wall_s"] if scope in e["scopes"] else None
                for e in entries]

    series = [("baseline", [e["baseline"]["wall_s"] if e["baseline"] else None for e in entries]),
              ("cold", walls("cold")), ("no-op", walls("noop")),
              ("changed", walls("changed")), ("floor", [e["floor_s"] for e in entries])]
    return png_chart.line_chart("wall time vs devices ({} scope)".format(scope), labels,
                                series, "seconds")


def write(results_dir, stamp, meta, entries):
    results_dir.mkdir(parents=True, exist_ok=True)
    text = markdown(meta, entries)
    (results_dir / (stamp + ".md")).write_text(text)
    (results_dir / (stamp + ".json")).write_text(
        json.dumps({"meta": meta, "entries": entries}, indent=1) + "\n")
    scope = "platform" if any("platform" in e["scopes"] for e in entries) else \
        next(iter(entries[0]["scopes"]))
    (results_dir / (stamp + ".png")).write_bytes(chart(entries, scope))
    return text
