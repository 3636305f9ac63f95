"""Per-device busy and waiting time of one playbook run (events of bench_timeline).

A device is busy while one of its own tasks runs on it (a remote execution: module, async
build with its polls, copy, fetch). It waits on another device while it has nothing running
but another device has, between its first and its last task: that is the time the linear
strategy's task-by-task lockstep (and the plan, which needs every device's facts) makes it
stand idle. The target "no device waits on another" reads this for the device that did the
slowest build.
"""


def _union(intervals):
    """Sorted, merged [(start, end)]."""
    merged = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _length(intervals):
    return sum(end - start for start, end in intervals)


def _minus(intervals, holes):
    """Parts of the merged ``intervals`` not covered by the merged ``holes``."""
    left = []
    for start, end in intervals:
        cursor = start
        for hole_start, hole_end in holes:
            if hole_end <= cursor or hole_start >= end:
                continue
            if hole_start > cursor:
                left.append((cursor, hole_start))
            cursor = max(cursor, hole_end)
        if cursor < end:
            left.append((cursor, end))
    return left


def _clip(intervals, start, end):
    return [(max(s, start), min(e, end)) for s, e in intervals if e > start and s < end]


def device_times(events):
    """{host: {"busy_s", "waiting_s", "waiting_after_facts_s", "span_s"}} from bench_timeline
    events. ``waiting_after_facts_s`` leaves out the wait for the other devices' facts: the plan
    needs every device's facts before anyone builds, so that one wait is in the design (on a
    real fleet it lasts one facts call; on the simulated one, with every device's Python on the
    same 2 cores, it grows with the fleet)."""
    own = {}
    for event in events:
        if event["on_device"] and event["status"] != "skipped":
            own.setdefault(event["host"], []).append((event["start"], event["end"]))
    own = {host: _union(intervals) for host, intervals in own.items()}
    times = {}
    for host, intervals in own.items():
        first, last = intervals[0][0], intervals[-1][1]
        others = _union([i for other, its in own.items() if other != host for i in its])
        waiting = _minus(_clip(others, first, last), intervals)
        # From its second task on: the first is its facts call, then the plan waits for all.
        after_facts = _clip(waiting, intervals[1][0], last) if len(intervals) > 1 else []
        times[host] = {"busy_s": round(_length(intervals), 2),
                       "waiting_s": round(_length(waiting), 2),
                       "waiting_after_facts_s": round(_length(after_facts), 2),
                       "span_s": round(last - first, 2)}
    return times


# The engine_build tasks that start the builder on a device (an async job) and wait for it to
# end (roles/engine_build/tasks/main.yml: the round's finish step, whose result says how long
# its wait took, builds_wait_s).
BUILDER_TASK = "Build the engines"
BUILDER_WAIT_TASK = "Wait for the builds"


def builder_runs(events):
    """{host: seconds} of each device's builder runs, as the controller saw them: from the
    start of the task that starts them to the end of the wait for them (interpreter start,
    imports, conversion, build and verify on the device), summed over the rounds. The wait
    ends ``builds_wait_s`` after its step started, else with the step."""
    runs = {}
    started = {}
    for event in sorted(events, key=lambda e: e["start"]):
        if not event["on_device"] or event["status"] == "skipped":
            continue
        if BUILDER_TASK in event["task"]:
            started[event["host"]] = event["start"]
        elif BUILDER_WAIT_TASK in event["task"] and event["host"] in started:
            waited = event.get("builds_wait_s")
            end = event["end"] if waited is None else event["start"] + waited
            runs[event["host"]] = round(runs.get(event["host"], 0) + end
                                        - started.pop(event["host"]), 2)
    return runs
