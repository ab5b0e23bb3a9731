"""Budget period boundaries: days and reset-day months in a time zone."""

from __future__ import annotations

import calendar
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, tzinfo
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


def _local_midnight(year: int, month: int, day: int, tz: tzinfo) -> datetime:
    return datetime(year, month, day, tzinfo=tz).astimezone(UTC)


def _reset_in(year: int, month: int, reset_day: int, tz: tzinfo) -> datetime:
    # A reset day past the month's end falls on its last day (31 -> Feb 28/29).
    day = min(reset_day, calendar.monthrange(year, month)[1])
    return _local_midnight(year, month, day, tz)


def _month_after(year: int, month: int) -> tuple[int, int]:
    return (year + 1, 1) if month == 12 else (year, month + 1)


def _month_before(year: int, month: int) -> tuple[int, int]:
    return (year - 1, 12) if month == 1 else (year, month - 1)


def _day_bounds(now: datetime, tz: tzinfo, _: int) -> tuple[datetime, datetime]:
    local = now.astimezone(tz).date()
    following = local + timedelta(days=1)
    return (
        _local_midnight(local.year, local.month, local.day, tz),
        _local_midnight(following.year, following.month, following.day, tz),
    )


def _month_bounds(now: datetime, tz: tzinfo, reset_day: int) -> tuple[datetime, datetime]:
    local = now.astimezone(tz)
    start = _reset_in(local.year, local.month, reset_day, tz)
    if now < start:
        end = start
        start = _reset_in(*_month_before(local.year, local.month), reset_day, tz)
    else:
        end = _reset_in(*_month_after(local.year, local.month), reset_day, tz)
    return start, end


# Boundaries move once a day or a month: keep the current period per kind and
# zone, so the hot path compares two datetimes instead of doing calendar work.
_Bounds = Callable[[datetime, tzinfo, int], tuple[datetime, datetime]]
_current: dict[tuple[_Bounds, tzinfo, int], tuple[datetime, datetime]] = {}


def _period_start(bounds: _Bounds, now: datetime, tz: tzinfo, reset_day: int) -> datetime:
    key = (bounds, tz, reset_day)
    period = _current.get(key)
    if period is None or not period[0] <= now < period[1]:
        period = _current[key] = bounds(now, tz, reset_day)
    return period[0]


def day_start(now: datetime, tz: tzinfo) -> datetime:
    """Start of ``now``'s day in ``tz``, as an aware UTC datetime."""
    return _period_start(_day_bounds, now, tz, 0)


def month_start(now: datetime, reset_day: int, tz: tzinfo) -> datetime:
    """Start of the monthly period containing ``now`` whose boundary is
    ``reset_day`` at midnight in ``tz``, as an aware UTC datetime."""
    return _period_start(_month_bounds, now, tz, reset_day)
