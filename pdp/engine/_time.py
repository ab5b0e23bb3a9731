"""Time as every layer reads and writes it: the current moment in UTC, and
RFC 3339 timestamps parsed strictly and written in UTC with a ``Z``.

One parser serves the snapshot reader, the REST API and the CLI, so a
timestamp one of them accepts, the others accept too. Strict, because
``datetime.fromisoformat`` alone also takes forms RFC 3339 does not (a date
alone, ``20251231T235959``, a space instead of ``T``, no time zone).

Two kinds of time: calendar time (which day or month a spend belongs to)
is the wall clock in UTC; durations (windows of calls, staleness,
reservation expiries) are measured on the monotonic clock, which a step of
the wall clock does not move. :class:`SteadyClock` gives both."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from typing import Protocol

__all__ = ["Clock", "SteadyClock", "SystemClock", "format_time", "parse_rfc3339", "utc_now"]

_RFC3339 = re.compile(
    r"(\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?([Zz]|[+-]\d{2}:\d{2})",
    re.ASCII,
)


def utc_now() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


class Clock(Protocol):
    """A source of time: the wall clock (UTC) when called, and a monotonic
    clock in seconds. Tests substitute one they move by hand."""

    def __call__(self) -> datetime: ...

    def monotonic(self) -> float: ...


class SystemClock:
    """The machine's clocks."""

    __slots__ = ()

    def __call__(self) -> datetime:
        return datetime.now(UTC)

    # The C function itself: read on every decision, no Python frame.
    monotonic = staticmethod(time.monotonic)


class SteadyClock:
    """Calendar time that never steps back, and steady seconds for durations.

    Called, it answers the wall clock in UTC, but never earlier than an
    answer it gave before: when the wall clock is stepped back, calendar
    time stands still until the wall clock catches up, so a budget's day or
    month neither starts again nor counts the same spend twice. A step
    forward is taken as it is (the calendar is the wall clock's).

    :meth:`steady` is seconds on a timeline that only the monotonic clock
    moves, starting at the Unix time of the clock's creation: windows of
    calls, staleness and reservation expiries are measured on it, so a step
    of the wall clock, either way, neither empties nor stretches them."""

    __slots__ = ("_anchor", "_last", "_monotonic", "_wall")

    def __init__(self, clock: Clock | None = None) -> None:
        clock = clock or SystemClock()
        # The machine's wall clock read by C calls alone (read on every decision).
        self._wall: Callable[[], datetime] = (
            partial(datetime.now, UTC) if type(clock) is SystemClock else clock
        )
        self._monotonic: Callable[[], float] = clock.monotonic
        self._last = self._wall()
        if self._last.utcoffset() is None:
            raise ValueError(f"clock() must return timezone-aware datetimes, got {self._last!r}")
        self._anchor = self._last.timestamp() - self._monotonic()

    def __call__(self) -> datetime:
        now = self._wall()
        if now < self._last:
            return self._last
        self._last = now
        return now

    def monotonic(self) -> float:
        return self._monotonic()

    def steady(self) -> float:
        """Seconds since the Unix epoch as the wall clock read them when this
        clock was made, advanced by the monotonic clock since."""
        return self._anchor + self._monotonic()


def format_time(moment: datetime) -> str:
    """``2026-11-26T15:04:05Z``, or with microseconds when it has them."""
    moment = moment.astimezone(UTC)
    if moment.microsecond:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_rfc3339(value: str) -> datetime | None:
    """The moment ``value`` names, timezone-aware; None if it is not an RFC
    3339 date-time (``2025-12-31T23:59:59Z``, ``...59.5+02:00``). Fractions
    past microseconds are truncated; leap seconds (``:60``) are refused."""
    match = _RFC3339.fullmatch(value)
    if match is None:
        return None
    head, fraction, offset = match.groups()
    # Python reads at most six fractional digits; RFC 3339 allows more.
    micros = f".{fraction[:6].ljust(6, '0')}" if fraction else ""
    offset = "+00:00" if offset in ("Z", "z") else offset
    try:
        return datetime.fromisoformat(f"{head.upper()}{micros}{offset}")
    except ValueError:  # a month 13, a February 30th, an hour 24, an offset +25:00
        return None
