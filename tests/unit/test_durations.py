"""One duration format (controller/durations.py) for the summary, the progress lines, the
reports and their charts' axes."""

import pytest

from controller import build_wait, durations, report_html, report_md, summary


@pytest.mark.parametrize(("seconds", "shown"), [
    (0, "0 s"), (0.04, "0 s"), (7.703, "7.7 s"), (45, "45 s"), (59.94, "59.9 s"),
    (59.96, "1m"), (61, "1m 01s"), (300, "5m"), (754.4, "12m 34s"), (3600, "1h"),
    (3720, "1h 02m"), (3725, "1h 02m 05s"), (7200, "2h"),
])
def test_the_format(seconds, shown):
    assert durations.format_duration(seconds) == shown


def test_every_place_that_shows_a_duration_uses_it():
    assert summary.readable_delta("1:02:05.1") == "1h 02m 05s"
    assert summary.readable_delta("not a delta") == "not a delta"
    assert build_wait.format_duration is durations.format_duration  # the progress lines
    assert report_md.format_seconds(754.4) == "12m 34s"
    assert report_md.format_seconds(None) == report_md.MISSING
    assert report_html.BUILD_TIME_CHART["tick"](300) == "5m"
    assert report_html.BUILD_TIME_CHART["label"](7.7) == "7.7 s"


@pytest.mark.parametrize(("delta", "seconds"), [
    ("0:00:07.703662", 7.703662), ("1:02:05", 3725.0), ("0:12:34\n", None), ("12:34", None),
])
def test_ansibles_delta_is_read(delta, seconds):
    assert durations.delta_seconds(delta) == seconds
