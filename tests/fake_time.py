"""An injectable clock and sleep for unit tests: sleeping advances the clock, nothing really waits."""

from __future__ import annotations


class FakeTime:
    """Injectable clock + sleep: sleeping advances the clock, nothing really waits."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
