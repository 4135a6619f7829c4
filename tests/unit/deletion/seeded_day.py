"""The day the delete tests work on: 60 logs in ``[START, END)`` of gateway ``GW``, 10 after it."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from airflow_provider_aigw.query import LogQuery

UTC = timezone.utc
GW = "del-gateway"
START = datetime(2026, 1, 9, tzinfo=UTC)
END = datetime(2026, 1, 10, tzinfo=UTC)
#: The day's logs, and the 10 of the two hours after it.
DAY = LogQuery.of(start=START, end=END)
AFTER = (END, END + timedelta(hours=2))
