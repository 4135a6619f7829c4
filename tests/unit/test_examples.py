"""The example DAGs' helpers: copying them into a DAGs folder, and the archive DAGs' start date."""

from __future__ import annotations

import datetime as dt

import pytest

from airflow_provider_aigw import examples


def test_copy_example_dags_copies_then_keeps_edited_files(tmp_path, capsys):
    dags = tmp_path / "dags"
    assert examples.main(["--to", str(dags)]) == 0
    copied = sorted(p.name for p in dags.iterdir())
    assert copied == [p.name for p in examples.example_dag_files()]
    for path in examples.example_dag_files():
        assert (dags / path.name).read_bytes() == path.read_bytes()

    edited = dags / "aigw_feedback.py"
    edited.write_text("# my edits\n")
    assert examples.main(["--to", str(dags)]) == 1  # an edited file is not overwritten silently
    assert edited.read_text() == "# my edits\n"
    assert "kept" in capsys.readouterr().err
    assert examples.main(["--to", str(dags), "--force"]) == 0
    assert edited.read_bytes() == (examples.example_dags_dir() / "aigw_feedback.py").read_bytes()


def test_copy_example_dags_defaults_to_the_configured_dags_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("AIRFLOW__CORE__DAGS_FOLDER", str(tmp_path / "configured"))
    assert examples.main([]) == 0
    assert sorted(p.name for p in (tmp_path / "configured").iterdir()) == [p.name for p in examples.example_dag_files()]


def test_archive_start_catches_up_only_from_a_day_the_environment_names():
    assert examples.archive_start({}) == (examples.DEFAULT_START_DATE, False)
    assert examples.archive_start({"AIGW_ARCHIVE_START_DATE": " "}) == (examples.DEFAULT_START_DATE, False)
    day = dt.datetime(2026, 12, 1, tzinfo=dt.timezone.utc)
    assert examples.archive_start({"AIGW_ARCHIVE_START_DATE": "2026-12-01"}) == (day, True)
    for value in ("1 Dec 2026", "2026-13-01", "2026-12-01T00:00:00"):
        with pytest.raises(ValueError, match=f"AIGW_ARCHIVE_START_DATE='{value}' is not a day: .* YYYY-MM-DD"):
            examples.archive_start({"AIGW_ARCHIVE_START_DATE": value})
