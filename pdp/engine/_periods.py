"""Budget period boundaries: days and reset-day months in a time zone."""

from __future__ import annotations

import calendar
from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = ["day_start", "load_timezone", "month_start"]


def load_timezone(name: str) -> tzinfo | None:
    """The IANA zone ``name``, or None when it does not exist."""
    if name.upper() == "UTC":
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def day_start(now: datetime, tz: tzinfo) -> datetime:
    """Start of ``now``'s day in ``tz``, as an aware UTC datetime."""
    local = now.astimezone(tz)
    midnight = datetime(local.year, local.month, local.day, tzinfo=tz)
    return midnight.astimezone(UTC)


def _reset_in(year: int, month: int, reset_day: int, tz: tzinfo) -> datetime:
    # A reset day past the month's end falls on its last day (31 -> Feb 28/29).
    day = min(reset_day, calendar.monthrange(year, month)[1])
    return datetime(year, month, day, tzinfo=tz)


def month_start(now: datetime, reset_day: int, tz: tzinfo) -> datetime:
    """Start of the monthly period containing ``now`` whose boundary is
    ``reset_day`` at midnight in ``tz``, as an aware UTC datetime."""
    local = now.astimezone(tz)
    start = _reset_in(local.year, local.month, reset_day, tz)
    if local < start:
        year, month = (local.year, local.month - 1) if local.month > 1 else (local.year - 1, 12)
        start = _reset_in(year, month, reset_day, tz)
    return start.astimezone(UTC)
