"""The store's reports (report.md, report.html), the index content they need, and the
engine_summary callback's progress lines and table: pure functions, no Ansible run."""

import copy
import json
import os
import selectors
import signal
import subprocess
import threading
import time
from html.parser import HTMLParser

import pytest

from controller import build_wait, report, report_html, tags
from controller import report_md as store_report
from controller import summary as run_summary
from controller.attempts import updated_attempts
from tests.unit.plugin_files import load

summary = load("plugins/callback/engine_summary.py", "engine_summary_callback")

NANO = "jetson-nano_l4t32.7.1_trt8.2.1"
XAVIER = "jetson-agx-xavier_l4t35.4.1_trt8.5.2"
V1, V2 = "ssd_mobilenet_v1_coco", "ssd_mobilenet_v2_coco"


def entry(size, seconds, verify, host="nano-1", created="2026-11-25T03:31:31Z", **platform):
    facts = {"module": "jetson-nano", "l4t": "32.7.1", "jetpack": "4.6.1"}
    facts.update(platform)
    return {"variant": "fp16-ws256",
        "build_key": "b" * 64, "engine_sha256": "e" * 64, "engine_size": size,
        "build_seconds": seconds, "created_utc": created, "precision": "fp16",
        "tensorrt_version": "8.2.1.8", "graph_sha256": "93fb612d8dff" + "0" * 52,
        "graph_file": "frozen_inference_graph.pb", "built_on": host, "platform": facts,
        "verify": verify, "engine": "x/y/TRT_y.bin",
    }


def sample_index():
    """Two platforms x two models: verified, verify failed, not verified (no verify)."""
    return as_entries({
        NANO: {
            V1: entry(195403, 3.004, {"ok": True, "fps": 23.93, "median_ms": 41.79}),
            V2: entry(23456789, 754.2, {"ok": False, "fps": 3.1, "median_ms": 320.0,
                                        "problems": ["NMS kept <b>0</b> & nothing"]}),
        },
        XAVIER: {
            V1: entry(131213, 1.002, {"ok": True, "fps": 97.17, "median_ms": 10.29},
                      host="xavier-2", created="2026-11-26T10:00:00Z",
                      module="jetson-agx-xavier", l4t="35.4.1", jetpack="5.1.2"),
            V2: entry(195755, 61.0, {}, host="xavier-2", module="jetson-agx-xavier",
                      l4t="35.4.1", jetpack="5.1.2"),
        },
    })


def entry_of(index, platform_id, model):
    return next(e for e in index["entries"].values()
                if (e["platform_id"], e["model"]) == (platform_id, model))


def as_entries(by_platform, simulated=False):
    """An index of format 2 from {platform_id: {model: entry}}."""
    entries = {}
    for platform_id, models in by_platform.items():
        for model, summary_entry in models.items():
            rel = "{}/{}/{}".format(platform_id, model, summary_entry["variant"])
            entries[rel] = dict(summary_entry, platform_id=platform_id, model=model)
    return {"format": 2, "simulated": simulated, "entries": entries}


# What a reader must see in each row (formatted by hand, not by the code under test).
EXPECTED = {
    (NANO, V1): {"status": "verified", "size": "190.8 KiB", "fps": "23.9",
                 "build-time": "3 s", "latency": "41.8 ms"},
    (NANO, V2): {"status": "verify failed", "size": "22.4 MiB", "fps": "3.1",
                 "build-time": "12m 34s", "latency": "320.0 ms"},
    (XAVIER, V1): {"status": "verified", "size": "128.1 KiB", "fps": "97.2",
                   "build-time": "1 s", "latency": "10.3 ms"},
    (XAVIER, V2): {"status": "not verified", "size": "191.2 KiB", "fps": "–",
                   "build-time": "1m 01s", "latency": "–"},
}


class TableReader(HTMLParser):
    """rows[(platform, model)] = {cell class: {"text", "value"}} of the engines table, plus
    every tag and attribute seen (to check for external resources) and the SVG bar titles."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.rows = {}
        self.tags = []
        self.bar_titles = []
        self._row = self._cell = None
        self._stack = []
        self._title = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append((tag, attrs))
        self._stack.append(tag)
        if tag == "tr" and "data-platform" in attrs:
            self._row = self.rows.setdefault((attrs["data-platform"], attrs["data-model"]), {})
        elif tag in ("td", "span") and self._row is not None and attrs.get("class"):
            name = attrs["class"].split()[-1]
            self._row[name] = {"text": "", "value": attrs.get("data-value")}
            if tag == "td":
                self._cell = self._row[name]
        elif tag == "title" and "rect" in self._stack[:-1]:
            self._title = ""

    def handle_endtag(self, tag):
        if self._stack and self._stack[-1] == tag:
            self._stack.pop()
        if tag == "tr":
            self._row = None
        elif tag == "td":
            self._cell = None
        elif tag == "title" and self._title is not None:
            self.bar_titles.append(self._title)
            self._title = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell["text"] += data
        if self._title is not None:
            self._title += data


def read_html(text):
    reader = TableReader()
    reader.feed(text)
    reader.close()
    return reader


def test_html_rows_carry_every_value_of_the_index_in_the_right_row():
    index = sample_index()
    reader = read_html(report_html.engine_store_report_html(index))

    assert set(reader.rows) == set(EXPECTED)
    for (platform_id, model), expected in EXPECTED.items():
        row = reader.rows[(platform_id, model)]
        source = entry_of(index, platform_id, model)
        assert row["platform"]["value"] == platform_id
        assert row["platform"]["text"].startswith(platform_id)
        assert "JetPack " + source["platform"]["jetpack"] in row["platform"]["text"]
        assert row["model"]["value"] == model and row["model"]["text"].startswith(model)
        assert row["variant"]["value"] == "fp16-ws256"
        assert row["size"]["value"] == str(source["engine_size"])
        assert row["build-time"]["value"] == str(source["build_seconds"])
        assert row["built"]["value"] == source["created_utc"]
        assert row["built-on"]["value"] == source["built_on"]
        assert row["graph"]["value"] == source["graph_sha256"]
        assert row["status"]["value"] == expected["status"]
        assert row["fps"]["value"] == (str(source["verify"]["fps"]) if "fps" in source["verify"]
                                       else None)
        for cell in ("size", "fps", "build-time", "latency"):
            assert row[cell]["text"].strip() == expected[cell], (platform_id, model, cell)
    failed = reader.rows[(NANO, V2)]["status"]["text"]
    assert "verify failed" in failed and "NMS kept <b>0</b> & nothing" in failed


def test_html_is_self_contained_and_escapes_text():
    index = sample_index()
    entry_of(index, NANO, V1)["built_on"] = '<img src="http://x/y.png">'
    text = report_html.engine_store_report_html(index)
    reader = read_html(text)

    assert not [tag for tag, _ in reader.tags if tag in ("script", "link", "img", "iframe")]
    for tag, attrs in reader.tags:
        for name, value in attrs.items():
            assert not (name in ("src", "href") and value), (tag, name, value)
            if name in ("xmlns", "data-value"):  # a namespace name; escaped data
                continue
            assert "http" not in (value or ""), (tag, name, value)
    assert "&lt;img src=&quot;http://x/y.png&quot;&gt;" in text
    assert "&lt;b&gt;0&lt;/b&gt; &amp; nothing" in text
    assert reader.rows[(NANO, V1)]["built-on"]["value"] == '<img src="http://x/y.png">'


def test_html_charts_draw_fps_of_verified_engines_and_every_build_time():
    reader = read_html(report_html.engine_store_report_html(sample_index()))

    fps_bars = sorted(t for t in reader.bar_titles if t.split(": ")[-1] in ("23.9", "97.2", "3.1"))
    assert fps_bars == sorted([
        "{} on {}: 23.9".format(V1, NANO), "{} on {}: 97.2".format(V1, XAVIER)])
    for (platform_id, model), expected in EXPECTED.items():
        title = "{} on {}: {}".format(model, platform_id, expected["build-time"])
        assert title in reader.bar_titles, title


def test_reports_are_identical_for_identical_content():
    index = sample_index()
    reordered = dict(index, entries=dict(reversed(list(copy.deepcopy(index)["entries"].items()))))
    for name in ("report.md", "report.html"):
        first = report_html.engine_store_document(index, name)
        assert first == report_html.engine_store_document(json.loads(json.dumps(index)), name)
        assert first == report_html.engine_store_document(reordered, name)
    changed = copy.deepcopy(index)
    entry_of(changed, NANO, V1)["verify"]["fps"] = 24.5
    assert report_html.engine_store_document(changed, "report.html") != \
        report_html.engine_store_document(index, "report.html")


def test_reports_name_the_newest_build_instead_of_the_clock():
    for name in ("report.md", "report.html"):
        text = report_html.engine_store_document(sample_index(), name)
        assert "Newest build 2026-11-26 10:00 UTC" in text


def test_markdown_rows_carry_the_values_of_the_index():
    text = store_report.engine_store_report(sample_index()).split("## Platform")[0]
    lines = [line for line in text.splitlines() if line.startswith("| jetson-")]
    assert len(lines) == len(EXPECTED)
    for (platform_id, model), expected in EXPECTED.items():
        row = next(line for line in lines
                   if line.startswith("| " + platform_id) and "| {} |".format(model) in line)
        cells = [cell.strip() for cell in row.strip("|").split(" | ")]
        assert cells[2].startswith(expected["status"])
        assert cells[4:8] == [expected["size"], expected["build-time"], expected["fps"],
                              expected["latency"]]
        assert cells[9] == index_host(platform_id)


def index_host(platform_id):
    return "nano-1" if platform_id == NANO else "xavier-2"


def test_markdown_escapes_the_table_separator():
    index = sample_index()
    entry_of(index, NANO, V2)["verify"]["problems"] = ["a | b"]
    row = next(line for line in store_report.engine_store_report(index).splitlines()
               if line.startswith("| jetson-") and "verify failed" in line)
    assert "a \\| b" in row


def test_empty_store_says_so():
    for name in ("report.md", "report.html"):
        text = report_html.engine_store_document({"format": 2, "entries": {}}, name)
        assert "no engine yet" in text
    with pytest.raises(ValueError, match="unknown report 'report.pdf'"):
        report_html.engine_store_document({}, "report.pdf")


@pytest.mark.parametrize("largest, step_for, ticks", [
    (98.6, report_html.decimal_step, [0, 25, 50, 75, 100]),
    (3.0, report_html.duration_step, [0, 1, 2, 3]),
    (754.2, report_html.duration_step, [0, 300, 600, 900]),
    (0, report_html.decimal_step, [0, 1]),
])
def test_axis_ticks_are_round(largest, step_for, ticks):
    assert report_html.nice_ticks(largest, step_for) == ticks


def test_reports_of_a_simulated_store_say_so():
    index = dict(sample_index(), simulated=True)
    for name in ("report.md", "report.html"):
        assert "SIMULATED" in report_html.engine_store_document(index, name)
        assert "SIMULATED" not in report_html.engine_store_document(sample_index(), name)


# ---------------------------------------------------------------- callback

class FakeClock:
    """The wait's clock; each sleep moves it on (no real waiting)."""

    def __init__(self):
        self.now = 1000.0
        self.slept = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.slept.append(seconds)
        self.now += seconds


class FakeDevice:
    """A device whose jobs end at given times of the clock (None: never). Its long poll
    returns as soon as one of the asked jobs ended, else after the window; ``silent_after``
    wait calls it stops answering (each failed attempt takes ``failed_s``)."""

    def __init__(self, clock, ends, *, silent_after=None, failed_s=0.0):
        self.clock, self.ends = clock, ends
        self.silent_after, self.failed_s = silent_after, failed_s
        self.waits, self.statuses = [], []

    def wait(self, jids, window_s):
        self.waits.append((list(jids), window_s))
        if self.silent_after is not None and len(self.waits) > self.silent_after:
            self.clock.now += self.failed_s
            return None
        ends = [self.ends[jid] for jid in jids if self.ends[jid] is not None]
        first = min(ends, default=None)
        if first is not None and first <= self.clock.now + window_s:
            self.clock.now = max(self.clock.now, first)
            return {jid for jid in jids if self.ended(jid)}
        self.clock.now += window_s
        return set()

    def ended(self, jid):
        return self.ends[jid] is not None and self.ends[jid] <= self.clock.now

    def status(self, jid):
        self.statuses.append(jid)
        if self.ended(jid):
            return {"started": 1, "finished": 1, "rc": 0, "ansible_job_id": jid}
        return {"started": 1, "finished": 0, "ansible_job_id": jid}


def started_jobs(clock, *wait_s):
    jobs, _ = build_wait.jobs_from(
        [{"ansible_job_id": "j{}".format(n), "item": {"models": [model], "wait_s": seconds}}
         for n, (model, seconds) in enumerate(zip((V1, V2), wait_s), start=1)], clock.now)
    return jobs


def test_the_wait_prints_progress_at_a_human_pace_and_gives_up_at_the_deadline():
    """A device that answers for a while, then goes silent: one progress line per 15 s with
    the models and the time, then the job is given up at its deadline, on the wall clock
    however long the failed attempts took."""
    clock = FakeClock()
    process = {"models": [V1, V2], "wait_s": 100}
    (job,), _ = build_wait.jobs_from([{"ansible_job_id": "j1", "item": process}], clock.now)
    device = FakeDevice(clock, {"j1": None}, silent_after=8, failed_s=10)
    lines = []
    (result,) = build_wait.wait_for([job], device.status, device.wait, host="nano-1",
                                    poll_s=5, say=lines.append, clock=clock, sleep=clock.sleep)
    assert lines[0] == "  building  nano-1  {}, {}  0 s".format(V1, V2)
    assert lines[1] == "  building  nano-1  {}, {}  15 s".format(V1, V2)
    assert lines[-1].endswith("(no answer from the device)")
    assert not any(line.endswith("(no answer from the device)") for line in lines[:3])
    assert result["timedout"] == {"period": 100} and result["item"] == process
    assert device.statuses == []
    assert 1100 <= clock.now <= 1110  # the deadline, plus at most one failed attempt


def test_the_wait_returns_each_finished_job_and_the_ones_that_never_started():
    clock = FakeClock()
    started = [{"ansible_job_id": "j1", "item": {"models": [V1], "wait_s": 60}},
               {"failed": True, "msg": "could not start", "item": {"models": [V2]}},
               {"skipped": True}]
    jobs, not_started = build_wait.jobs_from(started, clock.now)
    assert [j.jid for j in jobs] == ["j1"] and not_started[0]["msg"] == "could not start"
    done = build_wait.wait_for(jobs, lambda jid: {"finished": 1, "rc": 0, "stdout": "{}"},
                               lambda jids, window_s: set(jids), host="tx2-1", poll_s=30,
                               say=lambda line: None, clock=clock, sleep=clock.sleep)
    assert done == [{"finished": 1, "rc": 0, "stdout": "{}", "item": {"models": [V1],
                                                                    "wait_s": 60}}]
    assert build_wait.wait_results(started, {"results": done}) == done
    cut = build_wait.wait_results(started, {"failed": True, "timedout": {"period": 300}})
    assert [r.get("timedout") for r in cut] == [{"period": 300}, {"period": 300}]


def test_a_job_that_ends_mid_window_is_asked_once():
    clock = FakeClock()
    device = FakeDevice(clock, {"j1": 1012.0})
    (result,) = build_wait.wait_for(started_jobs(clock, 600), device.status, device.wait,
                                    host="nano-1", poll_s=30, say=lambda line: None,
                                    clock=clock, sleep=clock.sleep)
    assert (result["finished"], result["item"]["models"]) == (1, [V1])
    assert device.waits == [(["j1"], 30)] and device.statuses == ["j1"]
    assert clock.now == 1012.0 and clock.slept == []  # heard back when it ended


def test_a_job_that_never_ends_meets_its_deadline_without_a_status_call():
    """The windows end at the deadline (not past it), and nothing is asked of the job."""
    clock = FakeClock()
    device = FakeDevice(clock, {"j1": None})
    (result,) = build_wait.wait_for(started_jobs(clock, 100), device.status, device.wait,
                                    host="nano-1", poll_s=30, say=lambda line: None,
                                    clock=clock, sleep=clock.sleep)
    assert result["timedout"] == {"period": 100}
    assert [window for _, window in device.waits] == [30, 30, 30, 10]
    assert device.statuses == [] and clock.now == 1100.0


def test_a_long_poll_without_an_answer_is_retried_after_its_window():
    """A long poll that fails at once (the connection is refused) is not retried at once:
    the round lasts its window, and the next progress line says the device did not answer."""
    clock = FakeClock()
    answers = iter([None, None])
    lines = []

    def wait(jids, window_s):
        clock.now += 0.5
        return next(answers, set(jids))

    statuses = []

    def status(jid):
        statuses.append(jid)
        return {"finished": 1, "rc": 0}

    (result,) = build_wait.wait_for(started_jobs(clock, 600), status, wait, host="nano-1",
                                    poll_s=30, say=lines.append, clock=clock, sleep=clock.sleep)
    assert result["finished"] == 1 and statuses == ["j1"]
    assert clock.slept == [29.5, 29.5] and clock.now == 1060.5
    assert lines == ["  building  nano-1  {}  0 s".format(V1),
                     "  building  nano-1  {}  30 s  (no answer from the device)".format(V1),
                     "  building  nano-1  {}  1m  (no answer from the device)".format(V1)]


def test_two_jobs_that_end_at_different_times_are_each_asked_once():
    clock = FakeClock()
    device = FakeDevice(clock, {"j1": 1010.0, "j2": 1040.0})
    first, second = build_wait.wait_for(started_jobs(clock, 600, 600), device.status,
                                        device.wait, host="nano-1", poll_s=30,
                                        say=lambda line: None, clock=clock, sleep=clock.sleep)
    assert (first["item"]["models"], second["item"]["models"]) == ([V1], [V2])
    assert first["finished"] == second["finished"] == 1
    assert device.waits == [(["j1", "j2"], 30), (["j2"], 30)]
    assert device.statuses == ["j1", "j2"] and clock.now == 1040.0


def test_a_status_that_contradicts_the_long_poll_waits_out_the_window():
    """A job the device named as ended but async_status says runs (a job file this code
    misreads): asked again after a window, never in a tight loop."""
    clock = FakeClock()

    def status(jid):
        return {"started": 1, "finished": 0} if clock.now < 1060 else {"finished": 1}

    (result,) = build_wait.wait_for(started_jobs(clock, 600), status,
                                    lambda jids, window_s: set(jids), host="nano-1", poll_s=30,
                                    say=lambda line: None, clock=clock, sleep=clock.sleep)
    assert result["finished"] == 1 and clock.slept == [30, 30] and clock.now == 1060


def test_a_wait_that_hangs_is_cut_on_the_controllers_clock():
    """A call blocked on a device that never answers (here: a select on a pipe nobody writes,
    as the ssh connection waits for its output) is cut after the bound; every started
    process is then given up as timed out; the alarm's handler before is restored."""
    before = signal.getsignal(signal.SIGALRM)
    reader, writer = os.pipe()
    try:
        with selectors.DefaultSelector() as selector:
            selector.register(reader, selectors.EVENT_READ)
            start = time.monotonic()
            assert build_wait.within(0.3, lambda: selector.select(60)) is None
            assert 0.3 <= time.monotonic() - start < 10
    finally:
        os.close(reader)
        os.close(writer)
    assert build_wait.within(10, lambda: "answered") == "answered"
    assert signal.getsignal(signal.SIGALRM) is before
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
    started = [{"ansible_job_id": "j1", "item": {"models": [V1], "wait_s": 1910}},
               {"skipped": True}]
    cut = build_wait.wait_result([], None, 2030)
    assert cut["timedout"] == {"period": 2030}
    (given_up,) = build_wait.wait_results(started, cut)
    assert given_up["timedout"] == {"period": 2030}
    assert given_up["msg"] == "no answer from the device within 1910 s"


def test_the_long_poll_runs_in_sh_against_job_files(tmp_path):
    """The device's side of the long poll, run for real: a running job's file (as
    async_wrapper writes it), an ended job's (whose output holds the running text), and a
    missing one (async_status reports it); the async_dir under ~ with a space in it."""
    jobs = tmp_path / "async dir"
    jobs.mkdir()

    def running(jid):
        (jobs / jid).write_text(json.dumps({"started": 1, "finished": 0, "ansible_job_id": jid}))

    def ended(jid):
        (jobs / "tmp").write_text(json.dumps({
            "rc": 0, "stdout": json.dumps({"started": 1, "finished": 0, "ansible_job_id": jid})
            + "\n  ok", "changed": True, "ansible_job_id": jid}))
        (jobs / "tmp").rename(jobs / jid)

    def long_poll(jids, window_s):
        command = build_wait.long_poll_command("~/async dir/", jids, window_s)
        began = time.monotonic()
        out = subprocess.run(["sh", "-c", command], env={"HOME": str(tmp_path), "PATH":
                             os.environ["PATH"]}, capture_output=True, text=True, check=True,
                             timeout=30)
        return out.stdout, time.monotonic() - began

    running("111.1")
    ended("222.2")
    stdout, took = long_poll(["111.1", "222.2", "333.3"], 20)
    assert stdout == "222.2\n333.3\n" and took < 5  # at once
    assert build_wait.ended_jids(stdout + "junk\n", ["111.1", "222.2"]) == {"222.2"}
    stdout, took = long_poll(["111.1"], 2)
    assert stdout == "" and 2 <= took < 6  # the window passed
    ender = threading.Timer(1.5, ended, args=("111.1",))
    ender.start()
    try:
        stdout, took = long_poll(["111.1"], 20)
    finally:
        ender.join()
    assert stdout == "111.1\n" and 1.5 <= took < 6  # within a second of its end


def test_a_path_for_the_shell():
    assert build_wait.shell_path("~/.ansible_async") == '"$HOME"/.ansible_async'
    assert build_wait.shell_path("~") == '"$HOME"'
    assert build_wait.shell_path("/var/tmp/it's") == "'/var/tmp/it'\"'\"'s'"
    assert build_wait.shell_path("~other/x") == "'~other/x'"


def test_summary_table_is_aligned_and_lists_unreachable_hosts():
    rows = [
        {"host": "nano-1", "model": V1, "platform_id": NANO, "variant": "fp16-ws256",
         "status": "built",
         "detail": "in 1m20s"},
        {"host": "orin-1", "model": V2, "platform_id": "jetson-agx-orin_l4t36.3.0_trt10.3.0",
         "status": "failed", "detail": "TensorRT 10 has no UFF parser", "host_left": False},
        {"host": "tx2-1", "model": V1, "platform_id": "jetson-tx2_x", "status": "failed",
         "detail": "host left the run", "host_left": True},
    ]
    merged = summary.merge_host_problems(rows, {"tx2-1": "ssh: timed out", "gone-1": "no route"},
                                         {})
    lines = summary.format_table(merged)

    header = lines[0]
    starts = [header.index(name) for name in summary.SUMMARY_COLUMNS]
    assert starts == sorted(starts)
    by_host = {line.split()[0]: line for line in lines[1:]}
    assert set(by_host) == {"nano-1", "orin-1", "tx2-1", "gone-1"}
    for line in lines[1:]:
        assert line[starts[4]:].split()[0] in ("built", "failed", "unreachable"), line
        assert line[starts[4] - 2:starts[4]] == "  "
    assert by_host["nano-1"][starts[3]:].split()[0] == "fp16-ws256"
    assert by_host["orin-1"][starts[5]:] == "TensorRT 10 has no UFF parser"
    assert by_host["tx2-1"][starts[5]:] == "host unreachable: ssh: timed out"
    assert by_host["gone-1"][starts[1]:].split()[:4] == ["-", "-", "-", "unreachable"]
    assert by_host["gone-1"].endswith("no route")




@pytest.mark.parametrize("delta, shown", [
    ("0:00:07.703662", "7.7 s"), ("0:12:34.400001", "12m 34s"), ("0:12:34.500001", "12m 35s"),
    ("1:02:05.1", "1h 02m 05s"),
    ("soon", "soon"),
])
def test_build_wall_time_is_readable(delta, shown):
    assert run_summary.readable_delta(delta) == shown


def test_the_fleet_view_shows_what_each_device_runs():
    deployments = {"format": 1, "hosts": {"nano-1": {V1: {
        "version": "aaaaaaaaaaaa-bbbbbbbbbbbb", "platform_id": NANO, "status": "deployed",
        "health": "healthy", "when": "2026-12-01T10:00:00Z", "build_key": "b" * 64}}}}
    index = dict(sample_index(), deployments=deployments)
    page = report_html.engine_store_document(index, "report.html")
    assert '<table id="fleet">' in page and 'data-host="nano-1"' in page
    assert "aaaaaaaaaaaa-bbbbbbbbbbbb" in page and "healthy" in page
    markdown = report_html.engine_store_document(index, "report.md")
    assert "## Fleet (deploy_engines.yml)" in markdown
    assert "| nano-1 | {} | aaaaaaaaaaaa-bbbbbbbbbbbb | {} | deployed | healthy |".format(
        V1, NANO) in markdown
    assert "fleet" not in report_html.engine_store_document(sample_index(), "report.html")


ORIN = "jetson-agx-orin_l4t36.4.3_trt10.3.0"


def planned(hosts):
    """A plan of {host: (platform_id, {model: refused reason or None})}."""
    return {"hosts": {host: {"platform_id": pid, "scope": "platform", "models": {
        model: {"refused": refused, "variant": "fp16-ws256"} for model, refused in models.items()}}
        for host, (pid, models) in hosts.items()}, "refused_hosts": {"tx2-9": "bad facts"}}


def summary_row(host, model, status, detail, variant="fp16-ws256"):
    return {"host": host, "model": model, "variant": variant, "status": status,
            "detail": detail}


def test_attempts_keep_failures_until_the_engine_is_in_the_store():
    plan = planned({"orin-1": (ORIN, {V1: "TensorRT 10 has no UFF parser", V2: None}),
                    "nano-1": (NANO, {V1: None}), "nano-2": (NANO, {V1: None})})
    rows = [summary_row("orin-1", V1, "failed", "TensorRT 10 has no UFF parser"),
            summary_row("orin-1", V2, "built", "device run 3.0 s"),
            summary_row("nano-1", V1, "failed", "not built: it failed on nano-2 (same build key)"),
            summary_row("nano-2", V1, "failed", "out of memory (oom)")]
    first = updated_attempts({}, plan, rows, "2026-12-02T01:00:00Z")
    orin, nano = first["platforms"][ORIN], first["platforms"][NANO]
    assert orin["selected"] == sorted([V1, V2]) and nano["selected"] == [V1]
    assert orin["failures"] == {V1 + "/fp16-ws256": {
        "variant": "fp16-ws256", "status": "refused", "reason": "TensorRT 10 has no UFF parser",
        "host": "orin-1", "since_utc": "2026-12-02T01:00:00Z"}}
    # the failure itself, not the peer that repeats it
    assert nano["failures"][V1 + "/fp16-ws256"]["host"] == "nano-2"
    assert nano["failures"][V1 + "/fp16-ws256"]["status"] == "failed"
    assert first["hosts_without_platform"] == {"tx2-9": "bad facts"}
    # a rerun that fails the same way changes nothing (no rewrite of attempts.json)
    assert updated_attempts(first, plan, rows, "2026-12-02T02:00:00Z") == first
    # the Nano engine lands: its failure goes; the Orin refusal stays
    rows[3] = summary_row("nano-2", V1, "built", "device run 9.0 s")
    rows[2] = summary_row("nano-1", V1, "shared", "built by nano-2")
    later = updated_attempts(first, plan, rows, "2026-12-02T03:00:00Z")
    assert later["platforms"][NANO]["failures"] == {}
    assert later["platforms"][ORIN]["failures"] == orin["failures"]
    # one Nano ran out of memory and the next one built the engine in the same run
    rows[2] = summary_row("nano-1", V1, "failed", "out of memory (oom)")
    assert updated_attempts({}, plan, rows, "2026-12-02T04:00:00Z")["platforms"][NANO][
        "failures"] == {}


def grid_index():
    index = sample_index()
    plan = planned({"orin-1": (ORIN, {V1: "TensorRT 10 has no UFF parser"}),
                    "nano-1": (NANO, {V1: None, V2: None})})
    rows = [summary_row("orin-1", V1, "failed", "TensorRT 10 has no UFF parser")]
    index["attempts"] = updated_attempts({}, plan, rows, "2026-12-02T01:00:00Z")
    return index


def test_grid_shows_the_store_failures_and_what_was_never_built():
    models, lines = store_report.grid(grid_index())
    assert models == [V1, V2]
    cells = dict(lines)
    assert [c["state"] for c in cells[NANO][V1]] == ["verified"]
    assert [c["state"] for c in cells[NANO][V2]] == ["verify failed"]
    refused = cells[ORIN][V1]
    assert [c["state"] for c in refused] == ["refused"]
    assert "TensorRT 10 has no UFF parser" in refused[0]["text"] and "orin-1" in refused[0]["text"]
    assert cells[ORIN][V2] == [{"state": "never built", "variant": None, "text":
                                "never built: no host of this platform selects it"}]
    assert set(cells) == {NANO, XAVIER, ORIN}


def test_both_reports_show_the_grid_and_label_build_times():
    index = grid_index()
    markdown = store_report.engine_store_report(index)
    section = markdown.split("## Platform × model")[1]
    orin_line = next(line for line in section.splitlines() if line.startswith("| " + ORIN))
    assert "refused fp16-ws256 on orin-1" in orin_line and "never built" in orin_line
    assert "tx2-9: bad facts" in section
    assert "TensorRT build" in markdown and "device run" in markdown
    page = report_html.engine_store_report_html(index)
    assert 'id="grid"' in page and 'data-state="refused"' in page
    assert 'data-state="never built"' in page and "tx2-9: bad facts" in page
    assert "<th class=\"num\">TensorRT build</th>" in page


def test_a_store_without_engines_still_shows_what_failed():
    index = grid_index()
    index["entries"] = {}
    markdown = store_report.engine_store_report(index)
    assert "The store holds no engine yet." in markdown
    assert "TensorRT 10 has no UFF parser" in markdown
    assert 'data-state="refused"' in report_html.engine_store_report_html(index)


def test_reports_name_the_device_python_that_built_each_engine():
    index = sample_index()
    entry_of(index, NANO, V1)["platform"]["python"] = "3.11.7"   # a simulated fallback
    markdown = store_report.engine_store_report(index)
    row = next(line for line in markdown.splitlines()
               if line.startswith("| " + NANO) and "| {} |".format(V1) in line)
    assert "Python 3.11.7" in row
    assert "Python 3.11.7" in report_html.engine_store_report_html(index)


def test_jetpack7_platforms_name_their_family_where_the_module_does_not():
    """A Thor's module is jetson-t5000: the reports say Thor; an Orin's name says Orin."""
    thor, orin = "jetson-t5000_l4t38.4.0_trt10.13.3", "jetson-agx-orin_l4t39.2.1_trt11.4.1"
    index = as_entries({
        thor: {V2: dict(entry(153900, 1.0, {"ok": True, "fps": 240.2, "median_ms": 4.2},
                              host="thor-1", module="jetson-t5000", soc="tegra264",
                              l4t="38.4.0", jetpack="7.1", python="3.12.3"),
                        tensorrt_version="10.13.3.9")},
        orin: {V2: dict(entry(153900, 1.2, {"ok": True, "fps": 192.7, "median_ms": 5.2},
                              host="orin-2", module="jetson-agx-orin", soc="tegra234",
                              l4t="39.2.1", jetpack="7.2.1", python="3.12.3"),
                        variant="fp16-typed-ws512", tensorrt_version="11.4.1.6")},
    })
    rows = {line.split(" (", 1)[0][2:]: line
            for line in store_report.engine_store_report(index).splitlines()
            if line.startswith("| jetson-")}
    assert ("(Thor · JetPack 7.1 · L4T 38.4.0 · TensorRT 10.13.3.9 · Python 3.12.3)"
            in rows[thor]), rows[thor]
    assert "(JetPack 7.2.1 · L4T 39.2.1 · TensorRT 11.4.1.6 · Python 3.12.3)" in rows[orin]
    assert "fp16-typed-ws512" in rows[orin]
    page = report_html.engine_store_report_html(index)
    assert "<tspan>jetson-t5000 (Thor)</tspan>" in page
    assert "<tspan>jetson-agx-orin</tspan>" in page
    assert store_report.module_family({"module": "jetson-nano", "soc": "tegra210"}) is None


def test_the_run_report_reads_what_each_round_filed_and_refused():
    """One registered result per host (engine_round_result) carries the outcomes and what its
    rounds filed into the store or the store refused: built, or failed with the store's why."""
    entry = {"model": V2, "build_key": "k" * 64, "variant": "fp16-ws512",
             "engine": "TRT_{}.bin".format(V2), "cached": False, "on_device": False, "rank": 0,
             "refused": None, "store_problem": None, "engine_path": "uff", "export_key": None,
             "onnx_precision": None}
    plan = {"pending": 1, "steps": tags.device_steps(None, None),
            "hosts": {"nano-1": {"platform_id": NANO, "scope": "platform",
                                 "models": {V2: entry}, "stale_work": []}}}
    outcome = {"model": V2, "build_key": entry["build_key"], "status": "built", "kind": None,
               "reason": None, "elapsed": "0:00:04", "verify": {"ok": True}, "details": {}}

    def row(registered):
        rows, _, _ = report.run_report(plan, {"nano-1": {"engine_round_result": registered}},
                                       ["nano-1"], {"nano-1"}, "", check_mode=False)
        (only,) = rows
        return only["status"], only["detail"]

    assert row({"outcomes": {V2: outcome}, "filed": {V2: "/store/x"}, "refused": {}}) == (
        "built", "device run 4 s")
    status, detail = row({"outcomes": {V2: outcome}, "filed": {},
                          "refused": {V2: "sha256 does not match"}})
    assert status == "failed" and detail.startswith(
        "not brought into the store: sha256 does not match"), detail
