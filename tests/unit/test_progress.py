"""Progress lines of long loops (``progress.py``): counts, pages, requests, rate and ETA."""

from __future__ import annotations

from airflow_provider_aigw.progress import Progress, format_duration
from tests.log_lines import LogLines


def test_durations_are_named_for_people() -> None:
    assert [format_duration(s) for s in (4.4, 65, 3725)] == ["4s", "1m05s", "1h02m"]


def test_progress_reports_counts_pages_requests_and_eta() -> None:
    lines = LogLines()
    progress = Progress(lines, expected=120, requests=lambda: 7, per_page=50, interval=0.0)
    assert list(progress.wrap({"id": str(i)} for i in range(60))) == [{"id": str(i)} for i in range(60)]
    assert progress.count == 60
    last = lines.text("info").splitlines()[-1]
    assert last.startswith("exported 60 of 120 logs, 2 pages, 7 API requests")
    assert "ETA" in last


def test_pages_are_counted_in_the_page_size_of_the_walk_and_lines_wait_for_the_interval() -> None:
    lines = LogLines()
    progress = Progress(lines, expected=10, requests=lambda: 4, per_page=3, interval=3600.0, done="checked")
    assert sum(1 for _ in progress.wrap(range(10))) == 10
    assert lines.text("info") == ""  # no line before the interval has passed
    progress.report()
    assert lines.text("info").startswith("checked 10 of 10 logs, 4 pages, 4 API requests")
    assert "ETA" not in lines.text("info")
