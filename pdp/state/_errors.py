"""Errors raised by the state package.

Exception tree::

    StateError               the state database cannot be opened, read or written
    ├── UsageConflictError   a request_id was already recorded with a different
    │                        agent or amount; ``.request_id`` names it
    ├── ApprovalNotFoundError   no approval has this id; ``.approval_id``
    └── ApprovalDecidedError    the approval was already decided or has expired;
                                ``.approval`` is it as it stands
"""

from __future__ import annotations

from pdp.engine import Approval, already_decided, utc_now

__all__ = ["ApprovalDecidedError", "ApprovalNotFoundError", "StateError", "UsageConflictError"]


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


class ApprovalNotFoundError(StateError):
    def __init__(self, approval_id: str) -> None:
        self.approval_id = approval_id
        super().__init__(f"no approval with id {approval_id!r}")


class ApprovalDecidedError(StateError):
    """An approval is decided once: this one already was, or has expired."""

    def __init__(self, approval: Approval) -> None:
        self.approval = approval
        super().__init__(already_decided(approval, utc_now()))
