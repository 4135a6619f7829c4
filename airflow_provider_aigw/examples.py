"""Copy the example DAGs shipped in the package into a DAGs folder; the archive DAGs' start.

``python -m airflow_provider_aigw.examples`` copies them into Airflow's configured DAGs folder
(``[core] dags_folder``); ``--to DIR`` picks another folder, ``--list`` only names them. A file
that already exists with other content is left alone unless ``--force`` is given.

:func:`archive_start` reads ``AIGW_ARCHIVE_START_DATE``, the first day the archiving example
DAGs archive, when the DAG file is parsed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import filecmp
import os
import re
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent

#: The environment variable holding the first day (UTC, ``YYYY-MM-DD``) the archive DAGs archive.
START_DATE_ENV = "AIGW_ARCHIVE_START_DATE"
#: The archive DAGs' ``start_date`` while ``AIGW_ARCHIVE_START_DATE`` is unset. Without catch-up
#: it only bounds the days a run can be triggered for: Airflow creates no task for a logical
#: date before the start date.
DEFAULT_START_DATE = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)


def archive_start(environ: Mapping[str, str] | None = None) -> tuple[dt.datetime, bool]:
    """``(start_date, catchup)`` of the archiving example DAGs, from ``AIGW_ARCHIVE_START_DATE``.

    Unset (or empty): ``(DEFAULT_START_DATE, False)``. Unpausing the DAG then runs only the last
    complete day, at once; a day missed while the scheduler was down is not run later (archive it
    with ``airflow backfill create``). Set to a UTC day ``YYYY-MM-DD``: ``(that day, True)``, every
    day since is archived, oldest first, including days missed later. A fixed value, so the DAG is
    the same at every parse (Airflow advises against a start date computed from the clock).

    :raises ValueError: the value is not a ``YYYY-MM-DD`` day (the DAG then fails to import).
    """
    value = (os.environ if environ is None else environ).get(START_DATE_ENV, "").strip()
    if not value:
        return DEFAULT_START_DATE, False
    try:
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            raise ValueError(value)
        day = dt.date.fromisoformat(value)
    except ValueError:
        raise ValueError(
            f"{START_DATE_ENV}={value!r} is not a day: give the first UTC day to archive as YYYY-MM-DD, "
            "e.g. 2026-12-01, or unset it to archive from yesterday on without catch-up"
        ) from None
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.timezone.utc), True


def example_dags_dir() -> Path:
    """The folder holding the example DAG files.

    A wheel installs the top-level ``example_dags/`` as ``airflow_provider_aigw/example_dags/``;
    in a clone (an editable install included) it is ``example_dags/`` next to the package.
    """
    for candidate in (_PACKAGE_DIR / "example_dags", _PACKAGE_DIR.parent / "example_dags"):
        if any(candidate.glob("aigw_*.py")):
            return candidate
    raise FileNotFoundError(f"no example DAGs next to {_PACKAGE_DIR}: the installation is incomplete")


def example_dag_files() -> list[Path]:
    """The example DAG files, sorted by name."""
    return sorted(example_dags_dir().glob("aigw_*.py"))


def copy_example_dags(dest: Path, *, force: bool = False) -> dict[str, list[str]]:
    """Copy every example DAG into ``dest`` (created if missing).

    :return: file names by outcome: ``copied``, ``unchanged`` (identical file already there) and
        ``kept`` (a different file of that name exists and ``force`` is off).
    """
    dest.mkdir(parents=True, exist_ok=True)
    outcome: dict[str, list[str]] = {"copied": [], "unchanged": [], "kept": []}
    for source in example_dag_files():
        target = dest / source.name
        if target.exists() and filecmp.cmp(source, target, shallow=False):
            outcome["unchanged"].append(source.name)
        elif target.exists() and not force:
            outcome["kept"].append(source.name)
        else:
            shutil.copyfile(source, target)
            outcome["copied"].append(source.name)
    return outcome


def _configured_dags_folder() -> Path:
    from airflow_provider_aigw.compat import conf

    return Path(conf.get("core", "dags_folder")).expanduser()


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(
        prog="python -m airflow_provider_aigw.examples",
        description="Copy the provider's example DAGs into a DAGs folder.",
    )
    parser.add_argument("--to", type=Path, help="target folder (default: Airflow's [core] dags_folder)")
    parser.add_argument("--force", action="store_true", help="overwrite files of the same name that differ")
    parser.add_argument("--list", action="store_true", help="only print the example DAG files")
    args = parser.parse_args(argv)
    if args.list:
        for path in example_dag_files():
            print(path)
        return 0
    dest = args.to or _configured_dags_folder()
    outcome = copy_example_dags(dest, force=args.force)
    for name in outcome["copied"]:
        print(f"copied     {dest / name}")
    for name in outcome["unchanged"]:
        print(f"unchanged  {dest / name}")
    for name in outcome["kept"]:
        print(f"kept       {dest / name} (differs from the example; --force overwrites it)", file=sys.stderr)
    return 1 if outcome["kept"] else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
