"""A clock the test moves by hand, for code that takes ``clock=``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

__all__ = ["START", "ManualClock"]

START = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


class ManualClock:
    """A clock the test moves by hand: the wall clock when called, and a
    monotonic clock (:meth:`monotonic`). :meth:`advance` moves both, as
    time passing does; :meth:`step` and setting ``now`` move only the wall
    clock, as an operator or NTP stepping it does."""

    def __init__(self, now: datetime = START) -> None:
        self.now = now
        self._monotonic = 1000.0

    def __call__(self) -> datetime:
        return self.now

    def monotonic(self) -> float:
        return self._monotonic

    def advance(self, **delta: float) -> None:
        step = timedelta(**delta)
        self.now += step
        self._monotonic += step.total_seconds()

    def step(self, **delta: float) -> None:
        self.now += timedelta(**delta)
