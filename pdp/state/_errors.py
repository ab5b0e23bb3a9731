"""Errors raised by the state package.

Exception tree::

    StateError               the state database cannot be opened, read or written
    └── UsageConflictError   a request_id was already recorded with a different
                             agent or amount; ``.request_id`` names it
"""

from __future__ import annotations

__all__ = ["StateError", "UsageConflictError"]


class StateError(Exception):
    """Base of every error the state package raises."""


class UsageConflictError(StateError):
    """A usage report reused a request_id with a different agent or amount.

    Reports are idempotent by request_id, so the same id must always describe
    the same usage; the first report stands and this one is refused.
    """

    def __init__(self, request_id: str, message: str) -> None:
        self.request_id = request_id
        super().__init__(message)
