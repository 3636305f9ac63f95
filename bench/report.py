"""The benchmark's table and targets (markdown), its JSON and its chart.

Input: one entry per fleet size: {"size", "hosts", "emulated_build_s", "naive_builds",
"distinct_builds", "platforms", "models", "baseline": step, "scopes": {scope: {"cold",
"noop", "changed", and in platform scope "check", "ping", "deploy", "deploy_again": step,
"env_in_cold": bool}}} with steps as made by steps.py; a no-op-only entry is {"size",
"hosts", "noop_only": True, "runs": {forks: {"noop", and at ansible.cfg's forks "ping"}},
"check"}.
"""

import json

from bench import png_chart

TARGET_NOOP_COMMANDS = 2
TARGET_NOOP_CPU_S = 0.1
# "No device waits on another": what the device doing the slowest build may spend idle while
# other devices work (the controller dispatching 32 workers one after the other takes ~0.5 s).
TARGET_WAIT_S = 1.0
# A no-op rerun against a bare `ansible all -m ping` of the same fleet in the same run.
TARGET_NOOP_OVER_PING = 1.25
# Cold wall over the longest single-model builder run, when every platform has at least as
# many devices as models (so no device needs to build twice).
TARGET_COLD_OVER_FLOOR = 1.5
NOOP_VS_PING = (("controller CPU", "controller_cpu_s"), ("wall", "wall_s"),
                ("bytes sent", "bytes_to_device_per_device"))


def ratio(a, b):
    return None if not b or a is None else a / float(b)


def devices_per_platform_cover_models(entry):
    """Whether every kind in the fleet ("nano=11,tx2=11,xavier=10") has >= models devices."""
    counts = [int(part.split("=")[1]) for part in entry["hosts"].split(",")]
    return bool(counts) and min(counts) >= len(entry["models"] or ())


def noop_ping_targets(size, noop, ping, scope="platform", note=""):
    rows = []
    for name, key in NOOP_VS_PING:
        value = ratio(noop[key], ping[key])
        rows.append(("no-op / ping {} <= {:g}x{}".format(name, TARGET_NOOP_OVER_PING, note), scope,
                     "-" if value is None else "{:.2f}x".format(value),
                     value is not None and value <= TARGET_NOOP_OVER_PING))
    return rows


# A step the run left out (the platform scope's changed run outside --changed-sizes).
NOT_RUN = dict.fromkeys(("wall_s", "builds", "commands_per_device",
                         "bytes_to_device_per_device", "controller_cpu_per_device_s"))


def _fixed(value, digits=1):
    return "-" if value is None else "{:.{}f}".format(value, digits)


def _s(value):
    return _fixed(value)


def _g(value):
    return "-" if value is None else "{:g}".format(value)


def _kb(value):
    return _fixed(None if value is None else value / 1024.0)


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
        noop, cold, changed = steps["noop"], steps["cold"], steps.get("changed")
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
        ]
        if changed is not None:   # --changed-sizes
            rows.append(("changed: only the changed model's builds", scope,
                         "{} (want {})".format(changed["builds"], expect_changed),
                         changed["builds"] == expect_changed))
        if "ping" in steps:
            rows += noop_ping_targets(entry["size"], noop, steps["ping"], scope)
        over_floor = ratio(cold["wall_s"], cold.get("floor_s"))
        if platform_scope and devices_per_platform_cover_models(entry) and over_floor:
            rows.append((
                "cold wall / longest single-model builder run <= {:g}".format(
                    TARGET_COLD_OVER_FLOOR), scope,
                "{:.1f} s / {:.1f} s = {:.2f}".format(cold["wall_s"], cold["floor_s"],
                                                      over_floor),
                over_floor <= TARGET_COLD_OVER_FLOOR and not steps["env_in_cold"]))
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


def full_entries(entries):
    return [entry for entry in entries if not entry.get("noop_only")]


def _noop_only_steps(entry):
    for forks, pair in sorted(entry["runs"].items(), key=lambda item: int(item[0])):
        for name, step in sorted(pair.items()):
            yield "{} forks {}".format(name, forks), step
    yield "check", entry["check"]


def noop_only_targets(entry):
    rows = []
    for forks, pair in sorted(entry["runs"].items(), key=lambda item: int(item[0])):
        noop = pair["noop"]
        rows += [("no-op: remote executions per device <= {} (forks {})".format(
            TARGET_NOOP_COMMANDS, forks), "platform", "max {}".format(noop["commands_max_device"]),
            noop["commands_max_device"] <= TARGET_NOOP_COMMANDS),
            ("no-op: 0 builds (forks {})".format(forks), "platform", str(noop["builds"]),
             noop["builds"] == 0)]
        if "ping" in pair:
            rows += noop_ping_targets(entry["size"], noop, pair["ping"],
                                      note=" (forks {})".format(forks))
    return rows


def _pairs(entries, cfg_forks):
    """(size, forks, noop, ping, check) of every no-op measured beside a ping."""
    for entry in entries:
        if entry.get("noop_only"):
            for forks, pair in sorted(entry["runs"].items(), key=lambda item: int(item[0])):
                if "ping" in pair:
                    yield entry["size"], int(forks), pair["noop"], pair["ping"], entry["check"]
        elif "ping" in entry["scopes"].get("platform", {}):
            steps = entry["scopes"]["platform"]
            yield entry["size"], cfg_forks, steps["noop"], steps["ping"], steps["check"]


def added_device_ratios(pairs):
    """[(from size, to size, forks, {figure: (no-op per added device, ping per added device)})]
    between consecutive sizes measured with the same forks: what each added device costs,
    without the fixed start-up of ansible-playbook (preflight, plan, report) or of ansible."""
    out = []
    by_forks = {}
    for size, forks, noop, ping, _ in sorted(pairs, key=lambda p: (p[1], p[0])):
        previous = by_forks.get(forks)
        if previous is not None and size > previous[0]:
            added = float(size - previous[0])
            figures = {key: ((noop[key] - previous[1][key]) / added,
                             (ping[key] - previous[2][key]) / added)
                       for key in ("controller_cpu_s", "wall_s")}
            out.append((previous[0], size, forks, figures))
        by_forks[forks] = (size, noop, ping)
    return out


def _x(a, b):
    value = ratio(a, b)
    return "-" if value is None else "{:.2f}x".format(value)


def noop_vs_ping_lines(entries, cfg_forks):
    pairs = list(_pairs(entries, cfg_forks))
    if not pairs:
        return []
    lines = ["", "## No-op rerun against `ansible all -m ping` (same fleet, same run)", "",
             "Platform scope, the store already complete. forks `cfg` is ansible.cfg's. "
             "Controller CPU is of the whole process tree; peak RSS is the largest single "
             "process, peak tree PSS the most memory the whole tree held at once (sampled); "
             "KiB sent are bytes on the wire to each device. Each figure is the median over "
             "the pairs run (each no-op followed at once by a ping).", "",
             "| devices | forks | pairs | no-op wall s | ping wall s | wall ratio "
             "| no-op CPU s/device | ping CPU s/device | CPU ratio | no-op KiB sent/device "
             "| ping KiB sent/device "
             "| bytes ratio | peak RSS MiB no-op / ping | peak tree PSS MiB no-op / ping "
             "| --check wall s, execs/device |",
             "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---|"]
    for size, forks, noop, ping, check in pairs:
        lines.append(
            "| {} | {} | {} | {:.1f} | {:.1f} | {} | {:.3f} | {:.3f} | {} | {} | {} | {} | {} / {} "
            "| {} / {} | {:.1f}, {:g} |".format(
                size, forks, len(noop.get("reps") or [noop]), noop["wall_s"], ping["wall_s"],
                _x(noop["wall_s"], ping["wall_s"]),
                noop["controller_cpu_per_device_s"], ping["controller_cpu_per_device_s"],
                _x(noop["controller_cpu_s"], ping["controller_cpu_s"]),
                _kb(noop["bytes_to_device_per_device"]), _kb(ping["bytes_to_device_per_device"]),
                _x(noop["bytes_to_device_per_device"], ping["bytes_to_device_per_device"]),
                _s(noop.get("controller_peak_rss_mib")), _s(ping.get("controller_peak_rss_mib")),
                _s(noop.get("controller_peak_tree_pss_mib")),
                _s(ping.get("controller_peak_tree_pss_mib")),
                check["wall_s"], check["commands_per_device"]))
    slopes = added_device_ratios(pairs)
    if slopes:
        lines += ["", "Per added device (the growth of the run's total from the smaller fleet, "
                  "same forks, divided by the devices added):", "",
                  "| devices | forks | no-op CPU s | ping CPU s | CPU ratio | no-op wall s "
                  "| ping wall s | wall ratio |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
        for small, large, forks, figures in slopes:
            cpu, wall = figures["controller_cpu_s"], figures["wall_s"]
            lines.append("| {} -> {} | {} | {:.4f} | {:.4f} | {} | {:.4f} | {:.4f} | {} |".format(
                small, large, forks, cpu[0], cpu[1], _x(*cpu), wall[0], wall[1], _x(*wall)))
    return lines


def forks_lines(entries):
    """The no-op of each --noop-sizes fleet at each forks setting: what ansible.cfg's forks is
    chosen by."""
    rows = [(entry["size"], int(forks), pair["noop"]) for entry in entries
            if entry.get("noop_only") and len(entry["runs"]) > 1
            for forks, pair in sorted(entry["runs"].items(), key=lambda item: int(item[0]))]
    if not rows:
        return []
    lines = ["", "## forks (the no-op at each --noop-forks, same fleet, same run)", "",
             "| devices | forks | runs | no-op wall s | ctrl CPU s/device "
             "| peak tree PSS MiB |", "|---:|---:|---:|---:|---:|---|"]
    for size, forks, noop in rows:
        lines.append("| {} | {} | {} | {:.1f} | {:.3f} | {} |".format(
            size, forks, len(noop.get("reps") or [noop]), noop["wall_s"],
            noop["controller_cpu_per_device_s"], _s(noop.get("controller_peak_tree_pss_mib"))))
    return lines


def deploy_lines(entries):
    rows = [(e["size"], e["scopes"]["platform"]) for e in full_entries(entries)
            if "deploy" in e["scopes"].get("platform", {})]
    if not rows:
        return []
    lines = ["", "## deploy_engines.yml (after the build, same fleet)", "",
             "| devices | run | wall s | remote execs/device | files sent/device "
             "| KiB sent/device | ctrl CPU s/device | rc |",
             "|---:|---|---:|---:|---:|---:|---:|---:|"]
    for size, steps in rows:
        for name in ("deploy", "deploy_again"):
            step = steps[name]
            lines.append("| {} | {} | {:.1f} | {:g} | {:g} | {} | {:.3f} | {} |".format(
                size, "first deploy" if name == "deploy" else "up-to-date rerun",
                step["wall_s"], step["commands_per_device"], step["file_transfers_per_device"],
                _kb(step["bytes_to_device_per_device"]), step["controller_cpu_per_device_s"],
                step["rc"]))
    return lines


def processes_lines(processes):
    """The same cold build of every model on one device, in one builder process and in one
    process per model (engine_build_processes), from the same benchmark run."""
    if not processes:
        return []
    lines = ["", "## Builder processes (one {kind} device, every model cold, emulated build "
             "{emulated_build_s:g} s, builds polled every {poll_s:g} s)".format(
                 **dict({"poll_s": 5}, **processes)), "",
             "| engine_build_processes | wall s | builder task s on the device "
             "| ctrl CPU s | builds | rc |", "|---|---:|---:|---:|---:|---:|"]
    for mode, step in processes["runs"].items():
        lines.append("| {} | {:.1f} | {} | {:.2f} | {} | {} |".format(
            mode, step["wall_s"], _s(sum((step.get("builder_runs") or {}).values()) or None),
            step["controller_cpu_s"], step["builds"], step["rc"]))
    return lines


def _floor(cold):
    if cold.get("floor_s") is None:
        return "-"
    return "{:.1f} ({:.2f})".format(cold["floor_s"], cold["wall_s"] / cold["floor_s"])


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
             "| floor s (cold/floor) | builds cold / no-op / changed (naive, distinct) "
             "| remote execs/device cold / no-op / changed (baseline) "
             "| KiB sent/device cold / no-op / changed (baseline) "
             "| files sent/device no-op | ctrl CPU s/device cold / no-op / changed (baseline) "
             "| cold: slowest builder busy / waited s after the plan (with facts) |",
             "|---:|---|---:|---:|---:|---:|---:|---|---|---|---:|---|---|"]
    for entry in full_entries(entries):
        base = entry["baseline"]
        for scope, steps in sorted(entry["scopes"].items()):
            cold, noop = steps["cold"], steps["noop"]
            changed = steps.get("changed") or NOT_RUN
            lines.append(
                "| {size} | {scope} | {base} | {cold}{env} | {noop} | {changed} | {floor} "
                "| {bc} / {bn} / {bch} ({naive}, {distinct}) | {cc:g} / {cn:g} / {cch} ({cb}) "
                "| {kc} / {kn} / {kch} ({kb}) | {fn:g} | {pc:.2f} / {pn:.3f} / {pch} "
                "({pb}) | {waits} |".format(
                    size=entry["size"], scope=scope, base=_s(base and base["wall_s"]),
                    cold=_s(cold["wall_s"]), env=" +env" if steps["env_in_cold"] else "",
                    noop=_s(noop["wall_s"]), changed=_s(changed["wall_s"]),
                    floor=_floor(cold), bc=cold["builds"], bn=noop["builds"],
                    bch=_g(changed["builds"]), naive=entry["naive_builds"],
                    distinct=entry["distinct_builds"], cc=cold["commands_per_device"],
                    cn=noop["commands_per_device"], cch=_g(changed["commands_per_device"]),
                    cb=_g(base and base["commands_per_device"]),
                    kc=_kb(cold["bytes_to_device_per_device"]),
                    kn=_kb(noop["bytes_to_device_per_device"]),
                    kch=_kb(changed["bytes_to_device_per_device"]),
                    kb=_kb(base and base["bytes_to_device_per_device"]),
                    fn=noop["file_transfers_per_device"],
                    pc=cold["controller_cpu_per_device_s"],
                    pn=noop["controller_cpu_per_device_s"],
                    pch=_fixed(changed["controller_cpu_per_device_s"], 2),
                    pb=_fixed(base and base["controller_cpu_per_device_s"], 2),
                    waits=_waits(cold.get("floor_device"))))
    lines += noop_vs_ping_lines(entries, meta.get("cfg_forks")) + forks_lines(entries)
    lines += deploy_lines(entries)
    lines += processes_lines(meta.get("processes"))
    lines += ["", "## Targets", "", "| devices | target | scope | measured | met |",
              "|---:|---|---|---|---|"]
    previous = None
    for entry in entries:
        for name, scope, measured, met in (targets(entry, previous) if not entry.get("noop_only")
                                           else noop_only_targets(entry)):
            lines.append("| {} | {} | {} | {} | {} |".format(
                entry["size"], name, scope, measured, "yes" if met else "**NO**"))
        if not entry.get("noop_only"):
            previous = entry
    for small, large, forks, figures in added_device_ratios(_pairs(entries,
                                                                   meta.get("cfg_forks"))):
        for name, key in NOOP_VS_PING[:2]:
            value = ratio(*figures[key])
            lines.append("| {} | no-op / ping {} per added device (from {}) <= {:g}x | "
                         "platform, forks {} | {} | {} |".format(
                             large, name, small, TARGET_NOOP_OVER_PING, forks,
                             "-" if value is None else "{:.2f}x".format(value),
                             "yes" if value is not None and value <= TARGET_NOOP_OVER_PING
                             else "**NO**"))
    failed = [(e["size"], s, name) for e in full_entries(entries)
              for s, steps in e["scopes"].items() for name, step in steps.items()
              if isinstance(step, dict) and step["rc"] != 0] + [
        (e["size"], "baseline", "") for e in full_entries(entries)
        if e["baseline"] and e["baseline"]["rc"] != 0] + [
        (e["size"], "platform", name) for e in entries if e.get("noop_only")
        for name, step in _noop_only_steps(e) if step["rc"] != 0]
    if failed:
        lines += ["", "Runs that exited non-zero (their figures still count what was done): "
                  + ", ".join("{} devices {} {}".format(*f).strip() for f in failed)]
    return "\n".join(lines) + "\n"


def chart(entries, scope):
    entries = full_entries(entries)
    labels = [str(e["size"]) for e in entries]

    def walls(step):
        return [(e["scopes"][scope].get(step) or NOT_RUN)["wall_s"] if scope in e["scopes"]
                else None for e in entries]

    series = [("baseline", [e["baseline"]["wall_s"] if e["baseline"] else None for e in entries]),
              ("cold", walls("cold")), ("no-op", walls("noop")),
              ("changed", walls("changed")),
              ("floor", [e["scopes"][scope]["cold"].get("floor_s") if scope in e["scopes"]
                         else None for e in entries])]
    return png_chart.line_chart("wall time vs devices ({} scope)".format(scope), labels,
                                series, "seconds")


def write(results_dir, stamp, meta, entries):
    results_dir.mkdir(parents=True, exist_ok=True)
    text = markdown(meta, entries)
    (results_dir / (stamp + ".md")).write_text(text)
    (results_dir / (stamp + ".json")).write_text(
        json.dumps({"meta": meta, "entries": entries}, indent=1) + "\n")
    full = full_entries(entries)
    scope = "platform" if any("platform" in e["scopes"] for e in full) else \
        next(iter(full[0]["scopes"]))
    (results_dir / (stamp + ".png")).write_bytes(chart(entries, scope))
    return text
