"""A logger that keeps its lines: stands in for a task's logger (Airflow 3 task loggers bypass caplog)."""

from __future__ import annotations

from typing import Any


class LogLines:
    """Records ``info`` and ``warning`` lines, formatted."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []

    def _add(self, level: str, msg: str, *args: Any) -> None:
        self.lines.append((level, msg % args if args else msg))

    def info(self, msg: str, *args: Any) -> None:
        self._add("info", msg, *args)

    def warning(self, msg: str, *args: Any) -> None:
        self._add("warning", msg, *args)

    def text(self, level: str) -> str:
        """The lines of ``level``, without Airflow's warning that execute() runs outside its task runner
        (the tests' doing: "outside of the Task Runner" on 3.x, "cannot be called outside TaskInstance" on 2.x).
        """
        return "\n".join(
            line
            for lvl, line in self.lines
            if lvl == level and "outside of the Task Runner" not in line and "outside TaskInstance" not in line
        )
