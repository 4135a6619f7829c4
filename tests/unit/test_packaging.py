"""The wheel's contents: every subpackage listed in pyproject.toml, the example DAGs shipped once."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from airflow_provider_aigw import examples

ROOT = Path(__file__).resolve().parents[2]

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    tomllib = pytest.importorskip("tomli")


def setuptools_config() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]


def test_every_subpackage_is_listed_for_the_wheel():
    # The list is explicit (for the example_dags mapping): a new subpackage must be added to it.
    found = {
        ".".join(path.parent.relative_to(ROOT).parts)
        for path in (ROOT / "airflow_provider_aigw").rglob("__init__.py")
        if "__pycache__" not in path.parts
    }
    listed = set(setuptools_config()["packages"])
    assert found | {"airflow_provider_aigw.example_dags"} == listed


def test_example_dags_ship_from_the_top_level_folder():
    assert setuptools_config()["package-dir"] == {"airflow_provider_aigw.example_dags": "example_dags"}
    assert not (ROOT / "airflow_provider_aigw" / "example_dags").exists()  # one copy of each file
    names = [p.name for p in examples.example_dag_files()]
    assert names == sorted(p.name for p in (ROOT / "example_dags").glob("aigw_*.py")) and len(names) == 4


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
    assert sorted(p.name for p in (tmp_path / "configured").iterdir()) == [
        p.name for p in examples.example_dag_files()
    ]
