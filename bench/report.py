"""The benchmark's table and targets (markdown), its JSON and its chart.

Input: one entry per fleet size: {"size", "hosts", "floor_s", "naive_builds",
"distinct_builds", "platforms", "models", "baseline": step, "scopes": {scope: {"cold",
"noop", "changed": step, "env_in_cold": bool}}} with steps as made by steps.py.
"""

import json

from bench import png_chart

TARGET_NOOP_COMMANDS = 2
TARGET_NOOP_CPU_S = 0.1
# "No device waits on another": what the device doing the slowest build may spend idle while
# other devices work (the controller dispatching 32 workers one after the other takes ~0.5 s).
TARGET_WAIT_S = 1.0


def _s(value):
    return "-" if value is None else "{:.1f}".format(value)


def _kb(value):
    return "{:.1f}".format(value / 1024.0)


def noop_cpu_per_added_device(entry, previous, scope):
    """Controller CPU that each device added since the previous (smaller) fleet of the same
    run costs a no-op rerun: the slope, without ansible-playbook's fixed start-up."""
    if previous is None or scope not in previous["scopes"]:
        return None
    added = entry["size"] - previous["size"]
    grown = (entry["scopes"][scope]["noop"]["controller_cpu_s"]
             - previous["scopes"][scope]["noop"]["controller_cpu_s"])
    return grown / added


def targets(entry, previous=None):
    """[(target, scope, measured, pass)] for one fleet size; ``previous``: the next smaller
    fleet of the same run (for the no-op CPU per added device; None: not judged)."""
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
            ("no-op: controller CPU per device <= {} s (run total / devices)".format(
                TARGET_NOOP_CPU_S), scope,
             "{:.3f} s".format(noop["controller_cpu_per_device_s"]),
             noop["controller_cpu_per_device_s"] <= TARGET_NOOP_CPU_S),
        ]
        slope = noop_cpu_per_added_device(entry, previous, scope)
        if slope is not None:
            rows.append((
                "no-op: controller CPU per added device <= {} s (vs {} devices)".format(
                    TARGET_NOOP_CPU_S, previous["size"]), scope,
                "{:.3f} s".format(slope), slope <= TARGET_NOOP_CPU_S))
        rows += [
            ("cold: builds = {}".format("distinct (platform, model)" if platform_scope
                                        else "devices x models"), scope,
             "{} (want {})".format(cold["builds"], expect_cold), cold["builds"] == expect_cold),
            ("no-op: 0 builds", scope, str(noop["builds"]), noop["builds"] == 0),
            ("changed: only the changed model's builds", scope,
             "{} (want {})".format(changed["builds"], expect_changed),
             changed["builds"] == expect_changed),
        ]
        floor_device = cold.get("floor_device")
        if entry["size"] >= 32 and floor_device:
            rows.append((
                "cold: no device waits on another once the plan is made: the slowest "
                "builder idles <= {:g} s while other devices work".format(TARGET_WAIT_S), scope,
                "{host} waited {waiting_after_facts_s:.1f} s after the plan ({waiting_s:.1f} s "
                "with the wait for every device's facts) in a {wall:.1f} s run, busy "
                "{busy_s:.1f} s".format(wall=cold["wall_s"], **floor_device),
                floor_device["waiting_after_facts_s"] <= TARGET_WAIT_S))
    return rows


def _waits(floor_device):
    if not floor_device:
        return "-"
    return "{host}: {busy_s:.1f} / {waiting_after_facts_s:.1f} ({waiting_s:.1f})".format(
        **floor_device)


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
             "| files sent/device no-op | ctrl CPU s/device cold / no-op / changed (baseline) "
             "| cold: slowest builder busy / waited s after the plan (with facts) |",
             "|---:|---|---:|---:|---:|---:|---:|---|---|---|---:|---|---|"]
    for entry in entries:
        base = entry["baseline"]
        for scope, steps in sorted(entry["scopes"].items()):
            cold, noop, changed = steps["cold"], steps["noop"], steps["changed"]
            lines.append(
                "| {size} | {scope} | {base} | {cold}{env} | {noop} | {changed} | {floor} "
                "| {bc} / {bn} / {bch} ({naive}, {distinct}) | {cc:g} / {cn:g} / {cch:g} ({cb}) "
                "| {kc} / {kn} / {kch} ({kb}) | {fn:g} | {pc:.2f} / {pn:.3f} / {pch:.2f} "
                "({pb}) | {waits} |".format(
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
                    pb="{:.2f}".format(base["controller_cpu_per_device_s"]) if base else "-",
                    waits=_waits(cold.get("floor_device"))))
    lines += ["", "## Targets", "", "| devices | target | scope | measured | met |",
              "|---:|---|---|---|---|"]
    previous = None
    for entry in entries:
        for name, scope, measured, met in targets(entry, previous):
            lines.append("| {} | {} | {} | {} | {} |".format(
                entry["size"], name, scope, measured, "yes" if met else "**NO**"))
        previous = entry
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
