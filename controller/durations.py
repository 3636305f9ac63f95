"""The one format of a duration the tool shows: the summary, the progress lines, the reports
and their charts' axes.

    7.7 s   45 s   12m 34s   5m   1h 02m 05s   2h

Under a minute with a tenth (simulated builds take seconds), then whole seconds; a part that
is zero at the end is left out (an axis tick of 300 s reads 5m).
"""

from __future__ import annotations

import re

# The command module's "delta": H:MM:SS.ffffff
DELTA = re.compile(r"^(\d+):(\d\d):(\d\d(?:\.\d+)?)\Z")


def format_duration(seconds: float) -> str:
    tenths = int(round(seconds * 10))
    if tenths < 600:
        return "{:.1f} s".format(tenths / 10).replace(".0 s", " s")
    whole = int(round(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    parts = (["{}h".format(hours), "{:02d}m".format(minutes)] if hours
             else ["{}m".format(minutes)]) + ["{:02d}s".format(secs)]
    while parts[-1].startswith("00"):
        parts.pop()
    return " ".join(parts)


def delta_seconds(delta: object) -> float | None:
    """Ansible's ``delta`` (0:12:34.500001) in seconds; None when it is not one."""
    match = DELTA.match(str(delta))
    if not match:
        return None
    return int(match.group(1)) * 3600 + int(match.group(2)) * 60 + float(match.group(3))
