from __future__ import annotations

import datetime as dt

import pendulum
import pytest

from airflow_provider_aigw.exceptions import AIGatewayInputError
from airflow_provider_aigw.export import formats
from airflow_provider_aigw.timestamps import format_time, parse_created_at, parse_time

UTC = dt.timezone.utc


def test_times_from_strings_pendulum_and_offsets_become_utc():
    assert parse_time("2026-11-26T02:00:00+02:00", param="start") == pendulum.datetime(2026, 11, 26, 0, 0)
    assert parse_time("2026-11-26T00:00:00Z", param="start") == pendulum.datetime(2026, 11, 26)
    assert parse_time(pendulum.datetime(2026, 11, 26, tz="Europe/Paris"), param="start") == pendulum.datetime(
        2026, 11, 25, 23
    )
    assert format_time(dt.datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)) == "2026-01-02T03:04:05.678Z"
    assert parse_created_at("2026-01-02T03:04:05.678Z") == dt.datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)


def test_one_created_at_parser_for_the_listing_the_export_and_the_delete() -> None:
    assert formats.parse_created_at is parse_created_at
    expected = dt.datetime(2026, 1, 2, 3, 4, 5, 123400, tzinfo=UTC)
    assert parse_created_at("2026-01-02T03:04:05.1234Z") == expected  # 4 digits: Python 3.10 too
    assert parse_created_at(" 2026-01-02T04:04:05.1234+0100 ") == expected
    assert parse_created_at(expected.replace(tzinfo=None)) == expected
    with pytest.raises(AIGatewayInputError, match="not ISO 8601"):
        parse_created_at("yesterday")
