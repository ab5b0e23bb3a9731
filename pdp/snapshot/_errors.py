"""Errors of the snapshot package.

Exception tree::

    SourceError    a snapshot location that cannot be watched (a malformed URL)
"""

from __future__ import annotations

__all__ = ["SourceError"]


class SourceError(ValueError):
    """A snapshot location that no source can watch; the message says why."""
