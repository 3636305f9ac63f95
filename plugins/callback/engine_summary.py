"""The engine summary table at the end of a run (the build's progress lines are the
engine_round_finish action's: controller/build_wait.py)."""

from controller.callback import ProjectCallback

DOCUMENTATION = r"""
name: engine_summary
type: aggregate
short_description: Per host and model summary of an engine build run
description:
  - After the play recap, prints one line per host and model (built / collected / cached /
    shared / failed with its reason) as computed by the engine_report action (its result's
    C(summary_rows); the engine_plan action's when that finished the run) or by the deploy
    (handed over with set_stats under C(engine_summary)).
  - Adds the hosts that were unreachable or failed before the plan existed, with the message
    Ansible gave, so every host of the run appears in the table.
requirements:
  - enable in ansible.cfg (callbacks_enabled = engine_summary)
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
# The rescue of a device's round: when it finds the disk full, its message (device, directory,
# free space) replaces the failed step's, which said only what broke (MODULE FAILURE).
DISK_ACTION = "engine_disk"


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


class CallbackModule(ProjectCallback):
    CALLBACK_NAME = "engine_summary"

    def __init__(self):
        super().__init__()
        self.unreachable = {}
        self.failures = {}
        self.controller_lines = []
        self.report_rows = None

    def _take_report_rows(self, result):
        """True when ``result`` is the report's, with the run's summary rows."""
        if result._task.action not in REPORT_ACTIONS or "summary_rows" not in result._result:
            return False
        self.report_rows = result._result["summary_rows"]
        return True

    def v2_runner_on_ok(self, result):
        self._take_report_rows(result)

    v2_runner_on_skipped = v2_runner_on_ok

    def v2_runner_on_unreachable(self, result):
        host = result._host.get_name()
        if result._task.ignore_unreachable:
            return  # the host stays in the run (a push whose failure a later step reports)
        self.unreachable.setdefault(host, first_line(result._result.get("msg")))

    def v2_runner_on_failed(self, result, ignore_errors=False):
        if ignore_errors or self._take_report_rows(result):
            return
        task = result._task
        host = CONTROLLER if task.action in CONTROLLER_ACTIONS else result._host.get_name()
        if host == CONTROLLER:
            # Every line of it (a preflight lists all its problems), printed after the table.
            self.controller_lines.extend(str(result._result.get("msg") or "").splitlines())
        message = "{}: {}".format(task.get_name(), first_line(result._result.get("msg")))
        if task.action == DISK_ACTION and result._result.get("failure_kind") == "disk":
            self.failures[host] = message
        self.failures.setdefault(host, message)

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
