"""One export process for tests/integration/test_export_commit_stores.py.

Usage: python export_commit_worker.py URL N [--gate] [--die-before-commit] [--owner OWNER]

Exports logs 0..N-1 of the test window. With ``--gate`` it prints ``LOCKED`` once it holds the
window's lock and has written some parts, then waits for a line on stdin before going on. Exit
status: 0 committed (the summary is printed as JSON), 3 refused by the window lock or the commit
check, 9 killed on purpose between the part writes and the manifest.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from airflow_provider_aigw.exceptions import AIGatewayExportConflictError
from airflow_provider_aigw.export import commit, export_logs
from tests.export_helpers import END, START, spread_logs


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("n", type=int)
    parser.add_argument("--gate", action="store_true")
    parser.add_argument("--die-before-commit", action="store_true")
    parser.add_argument("--owner")
    args = parser.parse_args()

    def logs() -> Iterator[dict]:
        for i, log in enumerate(spread_logs(args.n)):
            if args.gate and i == args.n // 2:
                print("LOCKED", flush=True)
                sys.stdin.readline()
            yield log

    if args.die_before_commit:

        def die(*_: object, **__: object) -> None:
            os._exit(9)

        commit.check_unchanged = die  # type: ignore[assignment]
    try:
        result = export_logs(
            logs(), args.url, gateway_id="gw-1", start=START, end=END, rows_per_part=7, owner=args.owner
        )
    except AIGatewayExportConflictError as err:
        print(f"CONFLICT {err}", flush=True)
        return 3
    print(json.dumps(result.summary()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
