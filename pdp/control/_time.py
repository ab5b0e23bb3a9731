"""RFC 3339 timestamps as the API writes and reads them: always UTC with a
``Z``, parsed strictly (``datetime.fromisoformat`` alone also takes forms
RFC 3339 does not, such as ``20251231T235959``)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

__all__ = ["format_time", "parse_rfc3339", "utc_now"]

_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:[Zz]|[+-]\d{2}:\d{2})",
    re.ASCII,
)


def utc_now() -> datetime:
    return datetime.now(UTC)


def format_time(moment: datetime) -> str:
    """``2026-11-26T15:04:05Z``, or with microseconds when it has them."""
    moment = moment.astimezone(UTC)
    if moment.microsecond:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_rfc3339(value: str) -> datetime | None:
    """The moment ``value`` names, timezone-aware; None if it is not RFC 3339."""
    if not _RFC3339.fullmatch(value):
        return None
    text = value.upper().replace("Z", "+00:00")
    head, dot, rest = text.partition(".")
    if dot:
        # Python reads at most six fractional digits; RFC 3339 allows more.
        digits = re.match(r"\d+", rest)
        assert digits is not None
        text = f"{head}.{digits.group()[:6].ljust(6, '0')}{rest[digits.end() :]}"
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None
