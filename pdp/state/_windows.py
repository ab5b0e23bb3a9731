"""Amounts per key on a time axis, summed over any window ending now in
O(log n): times and running totals kept side by side, bisected.

Both the spend ledger (micro-dollars by microsecond) and the call counters
(calls by second) keep their in-memory view here; the hot path reads it."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Hashable
from typing import Generic, TypeVar

__all__ = ["Windows"]

K = TypeVar("K", bound=Hashable)

# Prune a key's history only once the expired part is at least this share
# of it, so pruning (a list slice) costs amortised O(1) per entry.
_PRUNE_FRACTION = 0.5


class _Series:
    """One key's entries: times (non-decreasing) and running totals,
    appended together. ``totals[i]`` is ``base`` plus every amount up to and
    including entry i; ``base`` is the sum of pruned entries."""

    __slots__ = ("base", "times", "totals")

    def __init__(self) -> None:
        self.times: list[int] = []
        self.totals: list[int] = []
        self.base = 0


class Windows(Generic[K]):
    """Non-negative integer amounts per key, at integer times."""

    def __init__(self) -> None:
        self._series: dict[K, _Series] = {}

    def add(self, key: K, amount: int, at: int) -> None:
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = _Series()
        times, totals = series.times, series.totals
        if times and at <= times[-1]:
            # Same time as the last entry, or the clock stepped back: add to
            # the last entry, keeping the times sorted. Storage keeps the
            # real time.
            totals[-1] += amount
            return
        times.append(at)
        totals.append((totals[-1] if totals else series.base) + amount)

    def total_since(self, key: K, since: int) -> int:
        """The sum of the amounts at times ``since`` or later."""
        series = self._series.get(key)
        if series is None or not series.times:
            return 0
        first = bisect_left(series.times, since)
        if first == len(series.times):
            return 0
        before = series.totals[first - 1] if first else series.base
        return series.totals[-1] - before

    def nth_since(self, key: K, since: int, n: int) -> int | None:
        """The time at which the amounts from ``since`` on reach ``n`` in
        total; None when they never do."""
        series = self._series.get(key)
        if series is None or not series.times:
            return None
        first = bisect_left(series.times, since)
        before = series.totals[first - 1] if first else series.base
        found = bisect_left(series.totals, before + n, lo=first)
        return series.times[found] if found < len(series.times) else None

    def prune(self, key: K, before: int) -> None:
        """Forget the key's entries older than ``before`` once they are a
        large enough share of its history."""
        series = self._series.get(key)
        if series is None or not series.times or series.times[0] >= before:
            return
        expired = bisect_left(series.times, before)
        if expired < len(series.times) * _PRUNE_FRACTION:
            return
        series.base = series.totals[expired - 1]
        del series.times[:expired]
        del series.totals[:expired]

    def sweep(self, before: int) -> None:
        """Forget every entry older than ``before``, and keys left empty."""
        for key in list(self._series):
            series = self._series[key]
            if series.times and series.times[-1] < before:
                del self._series[key]
                continue
            expired = bisect_left(series.times, before)
            if expired:
                series.base = series.totals[expired - 1]
                del series.times[:expired]
                del series.totals[:expired]
