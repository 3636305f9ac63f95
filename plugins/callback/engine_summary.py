"""Print the engine summary table at the very end of a run, unreachable hosts included."""

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = r"""
name: engine_summary
type: aggregate
short_description: Per host and model summary of an engine build run
description:
  - After the play recap, prints one line per host and model (built / collected / cached /
    shared / failed with its reason) as computed by the engine_report role (handed over
    with set_stats under C(engine_summary)).
  - Adds the hosts that were unreachable or failed before the plan existed, with the message
    Ansible gave, so every host of the run appears in the table.
requirements:
  - enable in ansible.cfg (callbacks_enabled = engine_summary)
"""

UNREACHABLE = "unreachable"
FAILED = "failed"


def format_table(rows):
    """Aligned text lines: host, model, status, detail."""
    cells = [("HOST", "MODEL", "STATUS", "DETAIL")]
    cells += [(r["host"], r["model"], r["status"], r["detail"]) for r in rows]
    widths = [max(len(str(line[i])) for line in cells) for i in range(3)]
    return [
        "{:<{w0}}  {:<{w1}}  {:<{w2}}  {}".format(
            *line, w0=widths[0], w1=widths[1], w2=widths[2]
        ).rstrip()
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


def first_line(text, limit=240):
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

    def v2_runner_on_unreachable(self, result):
        host = result._host.get_name()
        self.unreachable.setdefault(host, first_line(result._result.get("msg")))

    def v2_runner_on_failed(self, result, ignore_errors=False):
        if ignore_errors:
            return
        host = result._host.get_name()
        self.failures.setdefault(host, "{}: {}".format(
            result._task.get_name(), first_line(result._result.get("msg"))))

    def v2_playbook_on_stats(self, stats):
        custom = stats.custom.get("_run", {}) if stats.custom else {}
        rows = custom.get("engine_summary")
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
