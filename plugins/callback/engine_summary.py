"""Build progress while devices build, and the engine summary table at the end of a run."""

import time

from ansible.errors import AnsibleError
from ansible.plugins.callback import CallbackBase
from ansible.template import Templar

from controller.durations import format_duration

DOCUMENTATION = r"""
name: engine_summary
type: aggregate
short_description: Per host and model summary of an engine build run
description:
  - While an async task is polled (the device builds of roles/engine_build), prints which
    host works on which loop item and for how long, e.g.
    C(  building  nano-1  ssd_mobilenet_v2_coco  1m 20s), at most once per
    C(progress_interval) seconds per host (Ansible polls more often than a person reads).
  - After the play recap, prints one line per host and model (built / collected / cached /
    shared / failed with its reason) as computed by the engine_report action (its result's
    C(summary_rows); the engine_plan action's when that finished the run) or by the deploy
    (handed over with set_stats under C(engine_summary)).
  - Adds the hosts that were unreachable or failed before the plan existed, with the message
    Ansible gave, so every host of the run appears in the table.
requirements:
  - enable in ansible.cfg (callbacks_enabled = engine_summary)
options:
  progress_interval:
    description: Seconds between two progress lines of the same host's async job.
    type: int
    default: 15
    env:
      - name: ENGINE_SUMMARY_PROGRESS_INTERVAL
    ini:
      - section: callback_engine_summary
        key: progress_interval
"""

UNREACHABLE = "unreachable"
FAILED = "failed"
# A failure of a controller step (run once for the fleet) is the controller's, not the
# host's it ran "on".
CONTROLLER = "controller"
CONTROLLER_ACTIONS = ("engine_preflight", "engine_plan", "engine_onnx", "engine_round",
                      "engine_report")
# Their results carry the summary rows (the plan's when it finished a run with nothing pending,
# or in check mode); they fail the run when a row failed, which the table shows, so that failure
# is not the controller's.
REPORT_ACTIONS = ("engine_report", "engine_plan")


SUMMARY_COLUMNS = ("HOST", "MODEL", "PLATFORM", "VARIANT", "STATUS", "DETAIL")


def format_table(rows):
    """Aligned text lines: host, model, platform, status, detail (the last one not padded)."""
    cells = [SUMMARY_COLUMNS]
    cells += [(r["host"], r["model"], r.get("platform_id") or "-", r.get("variant") or "-",
               r["status"], r["detail"]) for r in rows]
    widths = [max(len(str(line[i])) for line in cells) for i in range(len(SUMMARY_COLUMNS) - 1)]
    return [
        ("  ".join(str(cell).ljust(width) for cell, width in zip(line, widths)) + "  "
         + str(line[-1])).rstrip()
        for line in cells
    ]


def format_elapsed(seconds):
    """45 s, 1m 20s, 1h 02m 05s: whole seconds, in the tool's one duration format."""
    return format_duration(int(seconds))


class BuildProgress:
    """Which host runs which item of a polled async task, and since when.

    Ansible's poll results name only the async job (no task, no item), so the progress is
    followed per host: the task start, then each finished loop item moves the host on to
    the next item of the list resolved when the task started.
    """

    def __init__(self, interval, clock=time.monotonic):
        self.interval = interval
        self.clock = clock
        self.hosts = {}
        self.widths = [0, 0]  # host and item columns, widened as longer ones show up

    def task_started(self, host, task_name, items):
        """``items``: the loop's item labels (None: not a loop, or not resolvable)."""
        self.hosts[host] = {"task": task_name, "items": items, "index": 0,
                            "since": self.clock(), "printed_at": None, "job": None}

    def item_done(self, host):
        state = self.hosts.get(host)
        if state is not None:
            state.update(index=state["index"] + 1, since=self.clock(), printed_at=None)

    def task_done(self, host):
        self.hosts.pop(host, None)

    def poll(self, host, job_id):
        """The progress line for a poll of ``host``'s job, or None when it is too soon."""
        state = self.hosts.get(host)
        if state is None:
            return None
        now = self.clock()
        if state["job"] != job_id:
            state.update(job=job_id, printed_at=None)
        if state["printed_at"] is not None and now - state["printed_at"] < self.interval:
            return None
        state["printed_at"] = now
        label = self.item_label(state)
        self.widths = [max(self.widths[0], len(host)), max(self.widths[1], len(label))]
        return "  building  {}  {}  {}".format(host.ljust(self.widths[0]),
                                              label.ljust(self.widths[1]),
                                              format_elapsed(now - state["since"]))

    @staticmethod
    def item_label(state):
        items, index = state["items"], state["index"]
        if items is None:
            return state["task"] if index == 0 else "{} (item {})".format(state["task"], index + 1)
        if index < len(items):
            return "{} ({} of {})".format(items[index], index + 1, len(items)) \
                if len(items) > 1 else items[index]
        return "item {}".format(index + 1)


def merge_host_problems(rows, unreachable, failures):
    """Rows of the report plus what only the callback saw (unreachable / early failures).

    unreachable, failures: host -> first message. A failed row of a host that dropped out of
    the run (``host_left``) gets the reason the host dropped out.
    """
    merged = []
    seen_hosts = set()
    for row in rows:
        seen_hosts.add(row["host"])
        host = row["host"]
        detail = row["detail"]
        if row.get("host_left") and host in unreachable:
            detail = "host unreachable: {}".format(unreachable[host])
        elif row.get("host_left") and host in failures:
            detail = "host failed at {}".format(failures[host])
        merged.append(dict(row, detail=detail))
    for host, message in sorted(unreachable.items()):
        if host not in seen_hosts:
            merged.append({"host": host, "model": "-", "status": UNREACHABLE, "detail": message})
    for host, message in sorted(failures.items()):
        if host not in seen_hosts and host not in unreachable:
            merged.append({"host": host, "model": "-", "status": FAILED, "detail": message})
    return merged


def first_line(text, limit=4000):
    """A message on one line (Ansible messages may span several), cut at ``limit``."""
    joined = " ".join(line.strip() for line in str(text or "").splitlines() if line.strip())
    if not joined:
        return "no message"
    return joined if len(joined) <= limit else joined[: limit - 3] + "..."


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "engine_summary"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super().__init__()
        self.unreachable = {}
        self.failures = {}
        self.play = None
        self.progress = None
        self.controller_lines = []
        self.report_rows = None

    def set_options(self, task_keys=None, var_options=None, direct=None):
        super().set_options(task_keys=task_keys, var_options=var_options, direct=direct)
        self.progress = BuildProgress(self.get_option("progress_interval"))

    def v2_playbook_on_play_start(self, play):
        self.play = play

    def loop_labels(self, host, task):
        """The labels of ``task``'s loop items for ``host``, as Ansible will resolve them.

        None when the task has no loop or it cannot be resolved here (the progress lines
        then name the task instead of the item).
        """
        if not task.loop or self.play is None:
            return None
        task_vars = self.play.get_variable_manager().get_vars(play=self.play, host=host,
                                                              task=task)
        templar = Templar(loader=self.play.get_loader(), variables=task_vars)
        try:
            items = templar.template(task.loop)
            if not isinstance(items, list):
                return None
            label = task.loop_control.label if task.loop_control else None
            loop_var = task.loop_control.loop_var if task.loop_control else "item"
            if not label:
                return [str(item) for item in items]
            labels = []
            for item in items:
                templar.available_variables = dict(task_vars, **{loop_var: item})
                labels.append(str(templar.template(label)))
            return labels
        except AnsibleError as error:
            self._display.vvv("engine_summary: no item names for the progress of {!r}: {}"
                              .format(task.get_name(), error))
            return None

    def v2_runner_on_start(self, host, task):
        if task.async_val and task.poll:
            self.progress.task_started(host.get_name(), task.get_name(),
                                       self.loop_labels(host, task))

    def v2_runner_on_async_poll(self, result):
        line = self.progress.poll(result._host.get_name(),
                                  result._result.get("ansible_job_id"))
        if line:
            self._display.display(line)

    def _item_done(self, result):
        self.progress.item_done(result._host.get_name())

    v2_runner_item_on_ok = _item_done
    v2_runner_item_on_failed = _item_done
    v2_runner_item_on_skipped = _item_done

    def _take_report_rows(self, result):
        """True when ``result`` is the report's, with the run's summary rows."""
        if result._task.action not in REPORT_ACTIONS or "summary_rows" not in result._result:
            return False
        self.report_rows = result._result["summary_rows"]
        return True

    def v2_runner_on_ok(self, result):
        self.progress.task_done(result._host.get_name())
        self._take_report_rows(result)

    v2_runner_on_skipped = v2_runner_on_ok

    def v2_runner_on_unreachable(self, result):
        host = result._host.get_name()
        self.progress.task_done(host)
        self.unreachable.setdefault(host, first_line(result._result.get("msg")))

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self.progress.task_done(result._host.get_name())
        if ignore_errors or self._take_report_rows(result):
            return
        task = result._task
        host = CONTROLLER if task.action in CONTROLLER_ACTIONS else result._host.get_name()
        if host == CONTROLLER:
            # Every line of it (a preflight lists all its problems), printed after the table.
            self.controller_lines.extend(str(result._result.get("msg") or "").splitlines())
        self.failures.setdefault(host, "{}: {}".format(
            task.get_name(), first_line(result._result.get("msg"))))

    def v2_playbook_on_stats(self, stats):
        custom = stats.custom.get("_run", {}) if stats.custom else {}
        rows = custom.get("engine_summary", self.report_rows)
        if rows is None and not (self.unreachable or self.failures):
            return
        merged = merge_host_problems(rows or [], self.unreachable, self.failures)
        self._display.banner("ENGINE SUMMARY")
        if rows is None:
            self._display.display("No per-model summary: the run stopped before the plan "
                                  "or the report (see the errors above).")
        for line in format_table(merged):
            self._display.display(line)
        problems = [r for r in merged if r["status"] in (FAILED, UNREACHABLE)]
        self._display.display("{} row(s), {} failed or unreachable".format(
            len(merged), len(problems)))
        if self.controller_lines:
            self._display.display("The controller stopped the run:")
            for line in self.controller_lines:
                self._display.display("  " + line)
