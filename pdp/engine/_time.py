"""Time as every layer reads and writes it: the current moment in UTC, and
RFC 3339 timestamps parsed strictly and written in UTC with a ``Z``.

One parser serves the snapshot reader, the REST API and the CLI, so a
timestamp one of them accepts, the others accept too. Strict, because
``datetime.fromisoformat`` alone also takes forms RFC 3339 does not (a date
alone, ``20251231T235959``, a space instead of ``T``, no time zone)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

__all__ = ["format_time", "parse_rfc3339", "utc_now"]

_RFC3339 = re.compile(
    r"(\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?([Zz]|[+-]\d{2}:\d{2})",
    re.ASCII,
)


def utc_now() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


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
