"""Approvals in the state database, and the sidecar's view of them in memory.

A new approval is recorded in memory at once and written within
milliseconds by a background task, in one transaction with its outbox
events, so that the Enforce that holds a call never waits on the disk.
What a kill -9 can lose is an approval created in those milliseconds: its
id then answers "unknown" and the agent asks again. Decisions, expiry and
consumption are conditional updates (``WHERE state = 'pending'``...), so
two writers (the sidecar and ``pdp approvals`` in another process) never
decide one approval twice; ``changed_seq`` grows with every change so the
sidecar finds what another process changed since it last looked."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

import aiosqlite

from pdp.engine import Approval, ApprovalState, FiredPolicy, utc_now
from pdp.state._database import Database, from_micros, to_micros
from pdp.state._errors import ApprovalDecidedError, ApprovalNotFoundError, StateError
from pdp.state._flusher import Flusher
from pdp.state._outbox import Outbox, OutboxEvent

__all__ = [
    "APPROVAL_COLUMNS",
    "NEXT_CHANGE",
    "ApprovalStore",
    "OnConnection",
    "Reads",
    "Writes",
    "approval_from_row",
    "approval_row",
    "approvals_authority",
    "decide_approval",
    "decide_within",
    "expire_within",
    "list_approvals",
    "read_approval",
    "read_within",
    "set_approvals_authority",
    "status_filter",
]

log = logging.getLogger("pdp.state")

APPROVAL_COLUMNS = (
    "id, agent_id, digest, policies_json, masked_excerpt, request_id, created_at_us,"
    " expires_at_us, state, reviewer, comment, decided_at_us, consumed_at_us, changed_seq"
)
# The value of changed_seq for a change (within the writing transaction).
NEXT_CHANGE = "(SELECT COALESCE(MAX(changed_seq), 0) + 1 FROM approvals)"
# Decided approvals stay in memory this long, then are read from the database.
_KEEP_IN_MEMORY = timedelta(days=1)
_AUTHORITY_KEY = "approvals_authority"


def _policies_json(policies: Iterable[FiredPolicy]) -> str:
    items = [p.as_json() for p in policies]
    return json.dumps(items, ensure_ascii=False, separators=(",", ":"))


def _micros(moment: datetime | None) -> int | None:
    return None if moment is None else to_micros(moment, "time")


def approval_from_row(row: Sequence[Any]) -> tuple[Approval, int]:
    """An approval from the :data:`APPROVAL_COLUMNS` of a row, and its changed_seq."""
    (
        approval_id,
        agent_id,
        digest,
        policies_json,
        excerpt,
        request_id,
        created_us,
        expires_us,
        state,
        reviewer,
        comment,
        decided_us,
        consumed_us,
        seq,
    ) = row
    policies = tuple(FiredPolicy.from_json(p) for p in json.loads(policies_json))
    approval = Approval(
        id=approval_id,
        agent_id=agent_id,
        digest=digest,
        policies=policies,
        masked_excerpt=excerpt,
        request_id=request_id,
        created_at=from_micros(created_us),
        expires_at=from_micros(expires_us),
        state=ApprovalState(state),
        reviewer=reviewer,
        comment=comment,
        decided_at=None if decided_us is None else from_micros(decided_us),
        consumed_at=None if consumed_us is None else from_micros(consumed_us),
    )
    return approval, int(seq)


def approval_row(approval: Approval) -> tuple[Any, ...]:
    """The values of :data:`APPROVAL_COLUMNS` but changed_seq (see NEXT_CHANGE)."""
    return (
        approval.id,
        approval.agent_id,
        approval.digest,
        _policies_json(approval.policies),
        approval.masked_excerpt,
        approval.request_id,
        to_micros(approval.created_at, "created_at"),
        to_micros(approval.expires_at, "expires_at"),
        approval.state.value,
        approval.reviewer,
        approval.comment,
        _micros(approval.decided_at),
        _micros(approval.consumed_at),
    )


class Reads(Protocol):
    """What the shared approval functions read through: a transaction of the
    state database (:class:`OnConnection`) or the control plane's store."""

    async def fetchall(self, sql: str, parameters: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...


class Writes(Reads, Protocol):
    async def execute(self, sql: str, parameters: Sequence[Any] = ()) -> int:
        """Runs one statement; returns the number of rows it changed."""
        ...


class OnConnection:
    """:class:`Writes` over an aiosqlite connection (inside a transaction)."""

    def __init__(self, connection: aiosqlite.Connection) -> None:
        self._connection = connection

    async def fetchall(self, sql: str, parameters: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        async with self._connection.execute(sql, parameters) as cursor:
            return [tuple(row) for row in await cursor.fetchall()]

    async def execute(self, sql: str, parameters: Sequence[Any] = ()) -> int:
        cursor = await self._connection.execute(sql, parameters)
        return cursor.rowcount


async def read_within(reads: Reads, approval_id: str) -> Approval | None:
    rows = await reads.fetchall(
        f"SELECT {APPROVAL_COLUMNS} FROM approvals WHERE id = ?", (approval_id,)
    )
    return approval_from_row(rows[0])[0] if rows else None


async def read_approval(connection: aiosqlite.Connection, approval_id: str) -> Approval | None:
    return await read_within(OnConnection(connection), approval_id)


def status_filter(state: ApprovalState | None, now: datetime) -> tuple[str, tuple[Any, ...]]:
    """The WHERE clause (and its parameters) of approvals whose state at
    ``now`` is ``state`` (a pending one past its expiry is expired)."""
    now_us = to_micros(now, "now")
    if state is None:
        return "", ()
    if state is ApprovalState.PENDING:
        return "WHERE state = 'pending' AND expires_at_us > ?", (now_us,)
    if state is ApprovalState.EXPIRED:
        return "WHERE state = 'expired' OR (state = 'pending' AND expires_at_us <= ?)", (now_us,)
    return "WHERE state = ?", (state.value,)


async def list_approvals(
    db: Database, state: ApprovalState | None, now: datetime, limit: int = 1000
) -> list[Approval]:
    """Approvals newest first; ``state`` filters on the state at ``now``."""
    where, parameters = status_filter(state, now)
    async with db.connection.execute(
        f"SELECT {APPROVAL_COLUMNS} FROM approvals {where} ORDER BY created_at_us DESC LIMIT ?",
        (*parameters, limit),
    ) as cursor:
        rows = await cursor.fetchall()
    return [approval_from_row(row)[0] for row in rows]


async def decide_within(
    tx: Writes, approval_id: str, approve: bool, reviewer: str, comment: str, now: datetime
) -> tuple[Approval, Approval]:
    """Approves or denies a pending approval as ``reviewer``, inside ``tx``;
    one past its expiry is recorded as expired instead. Returns it before
    and after (the same when it was decided already). Raises
    ApprovalNotFoundError."""
    before = await read_within(tx, approval_id)
    if before is None:
        raise ApprovalNotFoundError(approval_id)
    if before.state_at(now) is ApprovalState.PENDING:
        new_state = ApprovalState.APPROVED if approve else ApprovalState.DENIED
        await tx.execute(
            "UPDATE approvals SET state = ?, reviewer = ?, comment = ?, decided_at_us = ?,"
            f" changed_seq = {NEXT_CHANGE} WHERE id = ? AND state = 'pending'",
            (new_state.value, reviewer, comment, to_micros(now, "now"), approval_id),
        )
    elif before.state is ApprovalState.PENDING:
        await expire_within(tx, [approval_id], now)
    after = await read_within(tx, approval_id)
    assert after is not None
    return before, after


async def expire_within(tx: Writes, ids: Sequence[str], now: datetime) -> list[Approval]:
    """Records as expired those of ``ids`` that are pending past their
    expiry, inside ``tx``; returns them."""
    now_us = to_micros(now, "now")
    expired: list[Approval] = []
    for approval_id in ids:
        changed = await tx.execute(
            "UPDATE approvals SET state = 'expired', decided_at_us = expires_at_us,"
            f" changed_seq = {NEXT_CHANGE}"
            " WHERE id = ? AND state = 'pending' AND expires_at_us <= ?",
            (approval_id, now_us),
        )
        approval = await read_within(tx, approval_id) if changed else None
        if approval is not None:
            expired.append(approval)
    return expired


async def decide_approval(
    db: Database, approval_id: str, approve: bool, reviewer: str, comment: str, now: datetime
) -> Approval:
    """Approves or denies a pending approval, as ``reviewer``. Raises
    ApprovalNotFoundError, or ApprovalDecidedError when it was already
    decided or has expired (an expired one is recorded as such)."""
    async with db.transaction() as connection:
        before, after = await decide_within(
            OnConnection(connection), approval_id, approve, reviewer, comment, now
        )
    if before.state_at(now) is not ApprovalState.PENDING:
        raise ApprovalDecidedError(after)
    return after


async def approvals_authority(db: Database) -> str | None:
    """The control plane that decides this sidecar's approvals (its URL), or
    None when the sidecar keeps them itself (a snapshot file)."""
    async with db.connection.execute(
        "SELECT value FROM sidecar_meta WHERE key = ?", (_AUTHORITY_KEY,)
    ) as cursor:
        row = await cursor.fetchone()
    return None if row is None else str(row[0])


async def set_approvals_authority(db: Database, url: str | None) -> None:
    async with db.transaction() as connection:
        if url is None:
            await connection.execute("DELETE FROM sidecar_meta WHERE key = ?", (_AUTHORITY_KEY,))
        else:
            await connection.execute(
                "INSERT OR REPLACE INTO sidecar_meta (key, value) VALUES (?, ?)",
                (_AUTHORITY_KEY, url),
            )


class ApprovalStore:
    """The sidecar's approvals: recent ones in memory, all in the database.

    ``create`` is synchronous (the hot path's) and the write follows at
    once; the other changes are written before they return. Waiters are
    woken by every change, including those :meth:`watch` finds that another
    process made. ``on_written`` runs after each batch of new approvals is
    on disk (their outbox events are shipped then)."""

    def __init__(
        self,
        db: Database,
        *,
        on_written: Callable[[], None] | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._db = db
        self._on_written = on_written
        self._clock = clock
        self._memory: dict[str, Approval] = {}
        self._pending: set[str] = set()  # ids in memory whose stored state is pending
        self._unwritten: dict[str, list[OutboxEvent]] = {}
        self._changed: dict[str, asyncio.Event] = {}
        self._flusher = Flusher(self.flush, 0.05, "approvals")
        self._data_version: int | None = None
        self._seen_seq = 0
        self._closed = False

    async def start(self) -> None:
        """Loads pending and recently decided approvals, then starts writing."""
        since = to_micros(self._clock() - _KEEP_IN_MEMORY, "since")
        async with self._db.connection.execute(
            f"SELECT {APPROVAL_COLUMNS} FROM approvals WHERE state = 'pending'"
            " OR COALESCE(decided_at_us, expires_at_us) > ?",
            (since,),
        ) as cursor:
            rows = await cursor.fetchall()
        for row in rows:
            approval, seq = approval_from_row(row)
            self._remember(approval)
            self._seen_seq = max(self._seen_seq, seq)
        self._data_version = await self._read_data_version()
        self._flusher.start()

    @property
    def pending(self) -> int:
        """Approvals waiting for a reviewer (those whose time has just passed
        included, until the next :meth:`expire_due`)."""
        return len(self._pending)

    def create(self, approval: Approval, events: Sequence[OutboxEvent] = ()) -> None:
        """Records a new approval (and outbox events that report it) in
        memory; the background writer stores them together at once."""
        if self._closed:
            raise StateError("the approval store is closed")
        self._remember(approval)
        self._unwritten[approval.id] = list(events)
        self._flusher.wake()

    def get(self, approval_id: str) -> Approval | None:
        """The approval as known in memory (recent ones)."""
        return self._memory.get(approval_id)

    async def lookup(self, approval_id: str, *, fresh: bool = False) -> Approval | None:
        """The approval, from memory or else the database. ``fresh`` reads a
        pending one again from the database, where another process may have
        decided it since :meth:`watch` last looked."""
        known = self._memory.get(approval_id)
        if known is not None and not (fresh and known.state is ApprovalState.PENDING):
            return known
        found = await read_approval(self._db.connection, approval_id)
        if found is None:
            return known  # not on disk yet (being written): nobody else can have decided it
        if found != known:
            self._changed_to(found)
        return found

    async def flush(self) -> None:
        """Writes new approvals (as they are now) with their outbox events."""
        if not self._unwritten:
            return
        batch, self._unwritten = self._unwritten, {}
        try:
            async with self._db.transaction() as connection:
                await connection.executemany(
                    f"INSERT OR IGNORE INTO approvals ({APPROVAL_COLUMNS})"
                    f" VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, {NEXT_CHANGE})",
                    [approval_row(self._memory[approval_id]) for approval_id in batch],
                )
                await Outbox.add_within(
                    connection, [e for events in batch.values() for e in events]
                )
        except BaseException:
            self._unwritten = {**batch, **self._unwritten}
            raise
        if self._on_written is not None:
            self._on_written()

    async def decide(
        self, approval_id: str, approve: bool, reviewer: str, comment: str
    ) -> Approval:
        """Decides a pending approval here (a sidecar without a control plane)."""
        await self.flush()
        try:
            decided = await decide_approval(
                self._db, approval_id, approve, reviewer, comment, self._clock()
            )
        except ApprovalDecidedError as exc:
            self._changed_to(exc.approval)
            raise
        self._changed_to(decided)
        return decided

    async def adopt(self, approval: Approval) -> None:
        """Records the state the control plane gives (it decides approvals
        of a sidecar that follows it)."""
        known = self._memory.get(approval.id)
        if known == approval:
            return
        await self.flush()
        async with self._db.transaction() as connection:
            await connection.execute(
                "UPDATE approvals SET state = ?, reviewer = ?, comment = ?, decided_at_us = ?,"
                f" consumed_at_us = ?, changed_seq = {NEXT_CHANGE} WHERE id = ?",
                (
                    approval.state.value,
                    approval.reviewer,
                    approval.comment,
                    _micros(approval.decided_at),
                    _micros(approval.consumed_at),
                    approval.id,
                ),
            )
            if known is None:
                await connection.execute(
                    f"INSERT OR IGNORE INTO approvals ({APPROVAL_COLUMNS})"
                    f" VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, {NEXT_CHANGE})",
                    approval_row(approval),
                )
        self._changed_to(approval)

    async def consume(self, approval_id: str) -> Approval | None:
        """Marks an approved, unused approval as used, atomically (one
        conditional update); None when it was not approved or already used."""
        await self.flush()
        now = self._clock()
        async with self._db.transaction() as connection:
            cursor = await connection.execute(
                "UPDATE approvals SET consumed_at_us = ?, changed_seq = "
                f"{NEXT_CHANGE} WHERE id = ? AND state = 'approved' AND consumed_at_us IS NULL",
                (to_micros(now, "now"), approval_id),
            )
            used = cursor.rowcount == 1
            current = await read_approval(connection, approval_id)
        if current is not None:
            self._changed_to(current)
        return current if used else None

    async def expire_due(self) -> list[Approval]:
        """Records as expired the pending approvals in memory whose time has
        passed; returns them."""
        now = self._clock()
        memory = self._memory
        due = [i for i in self._pending if memory[i].expires_at <= now]
        if not due:
            return []
        await self.flush()
        async with self._db.transaction() as connection:
            expired = await expire_within(OnConnection(connection), due, now)
        for approval in expired:
            self._changed_to(approval)
        return expired

    def forget_old(self) -> None:
        """Drops decided approvals from memory a day after (they stay stored)."""
        cutoff = self._clock() - _KEEP_IN_MEMORY
        for approval_id, a in list(self._memory.items()):
            old = a.state is not ApprovalState.PENDING and (a.decided_at or a.expires_at) < cutoff
            if old and approval_id not in self._unwritten and approval_id not in self._changed:
                del self._memory[approval_id]

    async def watch(self) -> int:
        """Reads what another process changed since the last look (cheap
        when nothing did: one PRAGMA); returns how many approvals changed."""
        version = await self._read_data_version()
        if version == self._data_version:
            return 0
        self._data_version = version
        async with self._db.connection.execute(
            f"SELECT {APPROVAL_COLUMNS} FROM approvals WHERE changed_seq > ? ORDER BY changed_seq",
            (self._seen_seq,),
        ) as cursor:
            rows = list(await cursor.fetchall())
        for row in rows:
            approval, seq = approval_from_row(row)
            self._seen_seq = max(self._seen_seq, seq)
            self._changed_to(approval)
        return len(rows)

    async def wait(self, approval_id: str, seconds: float) -> None:
        """Returns when the approval changes, its expiry passes, or after
        ``seconds``, whichever comes first."""
        known = self._memory.get(approval_id)
        if known is not None:
            to_expiry = (known.expires_at - self._clock()).total_seconds()
            seconds = min(seconds, max(to_expiry, 0.0))
        if seconds <= 0:
            return
        event = self._changed.setdefault(approval_id, asyncio.Event())
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await event.wait()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self._flusher.stop()
        await self.flush()

    def _remember(self, approval: Approval) -> None:
        self._memory[approval.id] = approval
        if approval.state is ApprovalState.PENDING:
            self._pending.add(approval.id)
        else:
            self._pending.discard(approval.id)

    def _changed_to(self, approval: Approval) -> None:
        self._remember(approval)
        event = self._changed.pop(approval.id, None)
        if event is not None:
            event.set()

    async def _read_data_version(self) -> int:
        async with self._db.connection.execute("PRAGMA data_version") as cursor:
            row = await cursor.fetchone()
        return int(row[0]) if row else 0
