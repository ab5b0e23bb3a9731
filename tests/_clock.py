"""A clock the test moves by hand, for code that takes ``clock=``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

__all__ = ["START", "ManualClock"]

START = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


class ManualClock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)
