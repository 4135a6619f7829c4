"""Long reliability cases, run by ``make soak`` only.

``make test`` does not even collect them: the test modules here are ignored unless
``AIGW_SOAK=1`` is set. Figures (times, request counts, peak RSS) are printed at the end.
"""

from __future__ import annotations

import os
from typing import Any

if os.environ.get("AIGW_SOAK") != "1":
    collect_ignore_glob = ["test_*.py"]

#: (case, figure, value) rows printed in the terminal summary.
FIGURES: list[tuple[str, str, str]] = []


def pytest_configure(config: Any) -> None:
    config.addinivalue_line("markers", "soak: long reliability case (make soak)")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not FIGURES:
        return
    terminalreporter.section("soak figures")
    width = max(len(f"{case}: {name}") for case, name, _ in FIGURES)
    for case, name, value in FIGURES:
        terminalreporter.write_line(f"{f'{case}: {name}':<{width}}  {value}")
