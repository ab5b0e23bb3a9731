"""The decision log: one row per decision, written in batches off the hot path.

``append`` only queues the record in memory; a background task writes what is
queued every ``flush_interval`` seconds (sooner once ``max_batch`` records
wait). A record holds ids, the decision, fired policy ids and PII types with
counts: never request text and never a PII value.

Records wait as they were appended: the call that appends one does no
conversion (run once per call, between two calls' worth of other work, it
ran with cold caches). A batch becomes rows in one pass on the event loop
when it is written, and goes to SQLite without any Python work per row on
the database's thread, which holds the GIL (which the event loop needs) as
briefly as possible.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from functools import partial
from typing import Any, NamedTuple

from pdp.state._database import Database, from_micros, to_micros
from pdp.state._errors import StateError
from pdp.state._flusher import Flusher

__all__ = ["DecisionLog", "DecisionRecord"]

_INSERT = (
    "INSERT INTO decision_log (decision_id, decided_at_us, agent_id, decision,"
    " policies_fired_json, pii_counts_json, snapshot_revision, request_id, approval_id)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_SELECT = (
    "SELECT decision_id, decided_at_us, agent_id, decision, policies_fired_json,"
    " pii_counts_json, snapshot_revision, request_id, approval_id FROM decision_log"
)

# One encoder for every row (json.dumps with options builds a new one per
# call); most decisions fire nothing and skip it altogether.
_encode_json = json.JSONEncoder(separators=(",", ":"), sort_keys=True).encode

_Row = tuple[str, int, str, str, str, str, int, str, str]


class DecisionRecord(NamedTuple):
    """One decision as logged. ``decision`` is the decision kind's name
    ("ALLOW", "BLOCK", ...); ``policies_fired`` holds policy ids;
    ``pii_counts`` maps a PII type to how many were found (e.g. {"ssn": 1}).

    Built on every decision, so a named tuple: immutable, and a third of
    the cost of a frozen dataclass. Build it by keyword."""

    decision_id: str
    decided_at: datetime
    agent_id: str
    decision: str
    policies_fired: tuple[str, ...]
    pii_counts: Mapping[str, int]
    snapshot_revision: int
    request_id: str
    approval_id: str


class DecisionLog:
    """Decisions queued in memory and written to the state database in batches.

    At most ``max_pending`` records wait in memory; beyond that the oldest is
    dropped and counted in :attr:`dropped`, so a stalled disk never grows
    memory without bound or slows a decision. A batch that fails to write
    goes back to the queue and is retried.
    """

    def __init__(
        self,
        db: Database,
        *,
        flush_interval: float = 0.05,
        max_batch: int = 1000,
        max_pending: int = 100_000,
        also: Callable[[DecisionRecord], None] | None = None,
    ) -> None:
        """``also`` is told of every record appended (shared decision counts)."""
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, got {max_batch}")
        if max_pending < 1:
            raise ValueError(f"max_pending must be at least 1, got {max_pending}")
        self._flusher = Flusher(self.flush, flush_interval, "decision log")
        self._db = db
        self._max_batch = max_batch
        self._max_pending = max_pending
        self._pending: deque[DecisionRecord] = deque()
        self._dropped = 0
        self._stopping = False
        self._closed = False
        self._drain: asyncio.Task[None] | None = None
        self._also = also

    @property
    def dropped(self) -> int:
        """Records dropped because ``max_pending`` were already waiting."""
        return self._dropped

    @property
    def pending(self) -> int:
        """Records appended but not yet written."""
        return len(self._pending)

    async def start(self) -> None:
        """Start the background flusher."""
        if self._closed or self._stopping:
            raise StateError("decision log is closed")
        self._flusher.start()

    def append(self, record: DecisionRecord) -> None:
        """Queue one record. Synchronous and O(1): the hot path calls it."""
        if self._closed:
            raise StateError("decision log is closed")
        if self._also is not None:
            self._also(record)
        # Checked here: a bad record (a naive time) must fail its caller,
        # not a batch. Converted to a row when its batch is written.
        if record.decided_at.utcoffset() is None:
            to_micros(record.decided_at, "decided_at")  # raises, naming the field
        pending = self._pending
        if len(pending) >= self._max_pending:
            pending.popleft()
            self._dropped += 1
        pending.append(record)
        if len(pending) >= self._max_batch:
            self._flusher.wake()

    async def flush(self) -> None:
        """Write every record appended before this call; raises
        :class:`StateError` if the database refuses (the records stay queued)."""
        # One drain at a time, shared by every caller and shielded from their
        # cancellation: a batch is never half-abandoned and never written twice.
        # A drain writes what was queued when it started, so a drain already
        # running may not cover this caller's records: wait, then start one.
        while True:
            drain = self._drain
            if drain is not None and not drain.done():
                await asyncio.shield(drain)
                continue
            if not self._pending:
                return
            drain = self._drain = asyncio.ensure_future(self._drain_pending(len(self._pending)))
            await asyncio.shield(drain)
            return

    async def close(self) -> None:
        """Stop the flusher after a final flush. Later appends raise."""
        if self._closed:
            return
        self._stopping = True
        await self._flusher.stop()
        await self.flush()
        self._closed = True

    async def recent(self, limit: int = 100, agent_id: str | None = None) -> list[DecisionRecord]:
        """The last ``limit`` records (of ``agent_id`` if given), most recently
        appended first. Flushes first, so it includes what is still queued."""
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        await self.flush()
        parameters: tuple[object, ...]
        if agent_id is None:
            query, parameters = f"{_SELECT} ORDER BY seq DESC LIMIT ?", (limit,)
        else:
            query = f"{_SELECT} WHERE agent_id = ? ORDER BY seq DESC LIMIT ?"
            parameters = (agent_id, limit)
        async with self._db.connection.execute(query, parameters) as cursor:
            rows = await cursor.fetchall()
        return [_from_row(row) for row in rows]

    async def _drain_pending(self, count: int) -> None:
        """Writes the first ``count`` queued records. Records queued meanwhile
        wait for the next flush: draining until the queue is empty would, under
        load, chase new records with back-to-back small transactions (each a
        few round trips to the database thread, each contending for the GIL
        with the event loop) instead of one batch per interval."""
        pending = self._pending
        while count > 0 and pending:
            batch = [pending.popleft() for _ in range(min(self._max_batch, count, len(pending)))]
            count -= len(batch)
            batch, rows = self._rows(batch)
            try:
                await self._db.write(partial(_insert, rows))
            except Exception:
                # Not written: put the batch back in front, in order. (A
                # cancelled caller leaves the write to finish: not here.)
                pending.extendleft(reversed(batch))
                while len(pending) > self._max_pending:
                    pending.popleft()
                    self._dropped += 1
                raise

    def _rows(self, batch: list[DecisionRecord]) -> tuple[list[DecisionRecord], list[_Row]]:
        """The records of ``batch`` that make rows, and their rows. One
        that does not (a PII count keyed by other than text: not what the
        engine makes) is dropped and counted, not retried forever."""
        kept: list[DecisionRecord] = []
        rows: list[_Row] = []
        for record in batch:
            try:
                row = _row(record)
            except (TypeError, ValueError):
                self._dropped += 1
                continue
            kept.append(record)
            rows.append(row)
        return kept, rows


def _row(record: DecisionRecord) -> _Row:
    fired, pii = record.policies_fired, record.pii_counts
    return (
        record.decision_id,
        to_micros(record.decided_at, "decided_at"),
        record.agent_id,
        record.decision,
        _encode_json(list(fired)) if fired else "[]",
        _encode_json(dict(pii)) if pii else "{}",
        record.snapshot_revision,
        record.request_id,
        record.approval_id,
    )


def _insert(batch: list[_Row], connection: sqlite3.Connection) -> None:
    connection.executemany(_INSERT, batch)


def _from_row(row: Iterable[Any]) -> DecisionRecord:
    (
        decision_id,
        decided_at_us,
        agent_id,
        decision,
        policies_fired_json,
        pii_counts_json,
        snapshot_revision,
        request_id,
        approval_id,
    ) = row
    return DecisionRecord(
        decision_id=decision_id,
        decided_at=from_micros(decided_at_us),
        agent_id=agent_id,
        decision=decision,
        policies_fired=tuple(json.loads(policies_fired_json)),
        pii_counts=dict(json.loads(pii_counts_json)),
        snapshot_revision=snapshot_revision,
        request_id=request_id,
        approval_id=approval_id,
    )
