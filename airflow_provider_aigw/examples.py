"""Copy the example DAGs shipped in the package into a DAGs folder.

``python -m airflow_provider_aigw.examples`` copies them into Airflow's configured DAGs folder
(``[core] dags_folder``); ``--to DIR`` picks another folder, ``--list`` only names them. A file
that already exists with other content is left alone unless ``--force`` is given.
"""

from __future__ import annotations

import argparse
import filecmp
import shutil
import sys
from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent


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
