"""Approvals at the control plane: sidecars report them
(``approval.requested``), reviewers decide them, sidecars wait for the
decision and consume an approved one, once, whichever replica asks.

Every change is one side transaction (the store serialises them, so two
reviewers or two replicas never both win), followed by waking the long polls
waiting on that approval. A sweeper records expiries as they fall due, and
at start-up those that fell due while the control plane was down; each
decision and expiry is emitted as ``approval.decided`` to the handlers of
the event registry."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

from pdp.engine import (
    Approval,
    ApprovalState,
    FiredPolicy,
    already_decided,
    format_time,
    parse_rfc3339,
    utc_now,
)
from pdp.state import (
    APPROVAL_COLUMNS,
    NEXT_CHANGE,
    ApprovalNotFoundError,
    approval_from_row,
    approval_row,
    decide_within,
    expire_within,
    read_within,
    status_filter,
    to_micros,
)

from ._errors import ConflictError, DatabaseUnavailableError, NotFoundError
from ._event_types import APPROVAL_REQUESTED, ApprovalRequestedData
from ._events import Event, EventRegistry
from ._store import SideTransaction, Store

__all__ = [
    "APPROVAL_DECIDED",
    "APPROVAL_NOTICE",
    "ApprovalDecidedData",
    "Approvals",
    "StoredApproval",
]

log = logging.getLogger("pdp.control")

APPROVAL_DECIDED = "approval.decided"
_SWEEP_SECONDS = 1.0
# The notice a decision or use sends to the other control planes on the
# database: "approval ID" (their long polls on it answer).
APPROVAL_NOTICE = "approval"
_SELECT = f"SELECT {APPROVAL_COLUMNS}, sidecar_id, consumed_by FROM approvals"


class ApprovalDecidedData(BaseModel):
    """``approval.decided``: a reviewer decided, or nobody did in time."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    approvalId: str
    agentId: str
    status: Literal["approved", "denied", "expired"]
    reviewer: str | None
    comment: str | None
    decidedAt: str
    policies: list[dict[str, str]]


@dataclass(frozen=True, slots=True)
class StoredApproval:
    """An approval with what only the control plane knows: the sidecar that
    asked and the one that used it."""

    approval: Approval
    sidecar_id: str
    consumed_by: str | None


def _stored(row: tuple[object, ...]) -> StoredApproval:
    approval, _ = approval_from_row(row[:-2])
    sidecar_id, consumed_by = row[-2], row[-1]
    return StoredApproval(
        approval=approval,
        sidecar_id=str(sidecar_id),
        consumed_by=None if consumed_by is None else str(consumed_by),
    )


class Approvals:
    def __init__(
        self, store: Store, events: EventRegistry, *, clock: Callable[[], datetime] = utc_now
    ) -> None:
        self._store = store
        self._events = events
        self.clock = clock  # what "now" is, for expiry
        self._waiters: dict[str, asyncio.Event] = {}
        self._sweeper: asyncio.Task[None] | None = None
        self._closing = False
        events.define(APPROVAL_DECIDED, ApprovalDecidedData)
        events.on_event(APPROVAL_REQUESTED, self._on_requested)

    # Reads -------------------------------------------------------------------

    async def get(self, approval_id: str) -> StoredApproval:
        rows = await self._store.fetchall(f"{_SELECT} WHERE id = ?", (approval_id,))
        if not rows:
            raise NotFoundError(f"no approval with id {approval_id!r}")
        return _stored(rows[0])

    async def by_status(self, status: ApprovalState | None, limit: int) -> list[StoredApproval]:
        """Newest first; ``status`` is the state now (pending past its expiry
        is expired, even before the sweeper records it)."""
        where, parameters = status_filter(status, self.clock())
        rows = await self._store.fetchall(
            f"{_SELECT} {where} ORDER BY created_at_us DESC LIMIT ?", (*parameters, limit)
        )
        return [_stored(row) for row in rows]

    async def wait_decided(self, approval_id: str, seconds: float) -> None:
        """Returns once the approval is no longer pending, or after
        ``seconds`` (at most until it expires)."""
        approval = (await self.get(approval_id)).approval
        if approval.decided(self.clock()) or self._closing:
            return
        to_expiry = (approval.expires_at - self.clock()).total_seconds()
        event = self._waiters.setdefault(approval_id, asyncio.Event())
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max(0.0, min(seconds, to_expiry))):
                await event.wait()

    # Writes ------------------------------------------------------------------

    async def decide(
        self, approval_id: str, approve: bool, reviewer: str, comment: str
    ) -> StoredApproval:
        """Approves or denies a pending approval as ``reviewer``: 404 for an
        unknown id, 409 when it was decided already or has expired."""
        now = self.clock()
        async with self._store.side_transaction() as tx:
            try:
                before, after = await decide_within(
                    tx, approval_id, approve, reviewer, comment, now
                )
            except ApprovalNotFoundError:
                raise NotFoundError(f"no approval with id {approval_id!r}") from None
            if after != before:
                await self._decided(tx, after)
        if before.state_at(now) is not ApprovalState.PENDING:
            expired = after.state is ApprovalState.EXPIRED
            raise ConflictError(
                already_decided(after, now),
                code="approval_expired" if expired else "approval_decided",
            )
        return await self.get(approval_id)

    async def consume(self, approval_id: str, digest: str, sidecar_id: str) -> StoredApproval:
        """Uses an approved approval for the request with ``digest``, once:
        404 for an unknown id; 409 when it is not approved (``approval_not_
        approved``), was used (``approval_used``) or was given for another
        request (``digest_mismatch``)."""
        async with self._store.side_transaction() as tx:
            current = await self._read(tx, approval_id)
            now = self.clock()
            state = current.state_at(now)
            if current.digest != digest:
                raise ConflictError(
                    f"approval {approval_id} was given for another request", code="digest_mismatch"
                )
            if state is not ApprovalState.APPROVED:
                raise ConflictError(
                    f"approval {approval_id} is {state.value}, not approved",
                    code="approval_not_approved",
                )
            used = await tx.execute(
                f"UPDATE approvals SET consumed_at_us = ?, consumed_by = ?, changed_seq = "
                f"{NEXT_CHANGE} WHERE id = ? AND state = 'approved' AND consumed_at_us IS NULL",
                (to_micros(now, "now"), sidecar_id, approval_id),
            )
            if not used:
                when = format_time(current.consumed_at) if current.consumed_at else "before"
                raise ConflictError(
                    f"approval {approval_id} was already used at {when}", code="approval_used"
                )
            await tx.notify(f"{APPROVAL_NOTICE} {approval_id}")
            tx.after_commit(lambda: self._wake(approval_id))
        return await self.get(approval_id)

    async def sweep(self) -> int:
        """Records the expiry of pending approvals whose time has passed;
        returns how many."""
        now = self.clock()
        due = "SELECT id FROM approvals WHERE state = 'pending' AND expires_at_us <= ?"
        if not await self._store.fetchall(f"{due} LIMIT 1", (to_micros(now, "now"),)):
            return 0  # the usual case: a read, no write transaction
        async with self._store.side_transaction() as tx:
            rows = await tx.fetchall(due, (to_micros(now, "now"),))
            expired = await expire_within(tx, [str(row[0]) for row in rows], now)
            for approval in expired:
                await self._decided(tx, approval)
        return len(expired)

    async def _on_requested(self, tx: SideTransaction, event: Event) -> None:
        data = event.data
        assert isinstance(data, ApprovalRequestedData)
        expires = parse_rfc3339(data.expiresAt)
        assert expires is not None  # checked when the event was read
        approval = Approval(
            id=data.approvalId,
            agent_id=data.agentId,
            digest=data.digest,
            policies=tuple(FiredPolicy(p.id, p.name, p.type, p.mode) for p in data.policies),
            masked_excerpt=data.maskedExcerpt,
            request_id=data.requestId,
            created_at=event.time,
            expires_at=expires,
        )
        await tx.execute(
            f"INSERT OR IGNORE INTO approvals ({APPROVAL_COLUMNS}, sidecar_id) VALUES "
            f"(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, {NEXT_CHANGE}, ?)",
            (*approval_row(approval), event.sidecar_id),
        )
        tx.after_commit(lambda: self._wake(approval.id))

    async def _read(self, tx: SideTransaction, approval_id: str) -> Approval:
        approval = await read_within(tx, approval_id)
        if approval is None:
            raise NotFoundError(f"no approval with id {approval_id!r}")
        return approval

    async def _decided(self, tx: SideTransaction, approval: Approval) -> None:
        await self._events.emit(
            tx,
            APPROVAL_DECIDED,
            ApprovalDecidedData(
                approvalId=approval.id,
                agentId=approval.agent_id,
                status=approval.state.value,  # type: ignore[arg-type]
                reviewer=approval.reviewer or None,
                comment=approval.comment or None,
                decidedAt=format_time(approval.decided_at or approval.expires_at),
                policies=[p.as_json() for p in approval.policies],
            ),
        )
        await tx.notify(f"{APPROVAL_NOTICE} {approval.id}")
        tx.after_commit(lambda: self._wake(approval.id))

    def _wake(self, approval_id: str) -> None:
        event = self._waiters.pop(approval_id, None)
        if event is not None:
            event.set()

    def wake(self, approval_id: str) -> None:
        """Ends the long polls on ``approval_id`` (another control plane on
        the database changed it); they read it again."""
        self._wake(approval_id)

    def wake_all(self) -> None:
        """Ends every long poll (notices may have been missed); each reads
        its approval again and, still pending, answers as pending."""
        for approval_id in list(self._waiters):
            self._wake(approval_id)

    # Lifecycle -----------------------------------------------------------------

    def start(self) -> None:
        """Starts the sweeper (it first records what expired while down)."""
        if self._sweeper is None:
            self._sweeper = asyncio.create_task(self._sweep_forever(), name="approval-sweeper")

    def begin_shutdown(self) -> None:
        """Ends every long poll now."""
        self._closing = True
        for approval_id in list(self._waiters):
            self._wake(approval_id)

    async def stop(self) -> None:
        self.begin_shutdown()
        task, self._sweeper = self._sweeper, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _sweep_forever(self) -> None:
        while True:
            try:
                await self.sweep()
            except DatabaseUnavailableError:
                pass  # the control plane's status says so; the sweep runs again when it answers
            except Exception:
                log.exception("recording approval expiries failed; trying again")
            await asyncio.sleep(_SWEEP_SECONDS)
