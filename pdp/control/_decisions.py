"""Decisions at the control plane: what sidecars ship (``decision`` events:
ids, the decision and the policies that fired, never request text) is kept
in the ``decisions`` table, read by ``GET /api/v1/decisions``, and pruned in
the background by age and by count.

Rows are read by ``seq`` (AUTOINCREMENT: never reused, so a page's cursor
stays valid while older rows are pruned), newest received first."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pdp.engine import format_time, utc_now
from pdp.state import decision_cloudevent, from_micros, to_micros

from ._errors import StoreError
from ._event_types import DECISION, DecisionData
from ._events import Event, EventRegistry
from ._store import SideTransaction, Store

__all__ = [
    "DEFAULT_DECISIONS_MAX_ROWS",
    "DEFAULT_DECISIONS_RETENTION",
    "DecisionQuery",
    "Decisions",
    "StoredDecision",
]

log = logging.getLogger("pdp.control")

DEFAULT_DECISIONS_RETENTION = timedelta(days=7)
DEFAULT_DECISIONS_MAX_ROWS = 1_000_000
_BATCH = 1000

_COLUMNS = (
    "seq, decision_id, sidecar_id, decided_at_us, received_at_us, agent_id, decision,"
    " policies_json, revision, request_id, approval_id"
)
_BY_AGE = (
    "DELETE FROM decisions WHERE seq IN (SELECT seq FROM decisions WHERE decided_at_us < ? LIMIT ?)"
)
_BY_COUNT = "DELETE FROM decisions WHERE seq IN (SELECT seq FROM decisions WHERE seq < ? LIMIT ?)"


@dataclass(frozen=True, slots=True)
class StoredDecision:
    seq: int
    decision_id: str
    sidecar_id: str
    decided_at: datetime
    received_at: datetime
    agent_id: str
    decision: str
    policies: list[dict[str, Any]]
    snapshot_revision: int
    request_id: str
    approval_id: str

    def as_json(self) -> dict[str, Any]:
        return {
            "decisionId": self.decision_id,
            "decidedAt": format_time(self.decided_at),
            "agentId": self.agent_id,
            "decision": self.decision,
            "policies": self.policies,
            "snapshotRevision": self.snapshot_revision,
            "requestId": self.request_id,
            "approvalId": self.approval_id,
            "sidecarId": self.sidecar_id,
            "receivedAt": format_time(self.received_at),
        }

    def as_cloudevent(self) -> dict[str, Any]:
        source = f"urn:pdp:sidecar:{self.sidecar_id}"
        return decision_cloudevent(
            self.decision_id, self.decided_at, source, self.agent_id, self.as_json()
        )


@dataclass(frozen=True, slots=True)
class DecisionQuery:
    """Filters of a page; ``agent_ids`` matches any of them (an agent's id
    and the name a sidecar may have been asked with)."""

    agent_ids: tuple[str, ...] = ()
    decision: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    before_seq: int | None = None
    limit: int = 100


class Decisions:
    """The ``decision`` event handler, the reads, and the pruner."""

    def __init__(
        self, store: Store, events: EventRegistry, *, clock: Callable[[], datetime] = utc_now
    ) -> None:
        self._store = store
        self._clock = clock
        self._pruner: asyncio.Task[None] | None = None
        self.retention = DEFAULT_DECISIONS_RETENTION
        self.max_rows = DEFAULT_DECISIONS_MAX_ROWS
        self.deleted = 0
        events.on_event(DECISION, self._on_decision)

    async def _on_decision(self, tx: SideTransaction, event: Event) -> None:
        data = event.data
        assert isinstance(data, DecisionData)
        policies = json.dumps(
            [p.model_dump(exclude_none=True) for p in data.policies],
            ensure_ascii=False,
            separators=(",", ":"),
        )
        await tx.execute(
            f"INSERT INTO decisions ({_COLUMNS.removeprefix('seq, ')})"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                data.decisionId,
                event.sidecar_id,
                to_micros(event.time, "time"),
                to_micros(self._clock(), "received_at"),
                data.agentId,
                data.decision,
                policies,
                data.snapshotRevision,
                data.requestId,
                data.approvalId,
            ),
        )

    async def page(self, query: DecisionQuery) -> tuple[list[StoredDecision], int | None]:
        """Up to ``limit`` matching decisions, newest received first, and the
        cursor of the next page (None on the last)."""
        clauses: list[str] = []
        parameters: list[object] = []
        if query.agent_ids:
            clauses.append(f"agent_id IN ({', '.join('?' * len(query.agent_ids))})")
            parameters.extend(query.agent_ids)
        if query.decision is not None:
            clauses.append("decision = ?")
            parameters.append(query.decision)
        if query.since is not None:
            clauses.append("decided_at_us >= ?")
            parameters.append(to_micros(query.since, "since"))
        if query.until is not None:
            clauses.append("decided_at_us < ?")
            parameters.append(to_micros(query.until, "until"))
        if query.before_seq is not None:
            clauses.append("seq < ?")
            parameters.append(query.before_seq)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = await self._store.fetchall(
            f"SELECT {_COLUMNS} FROM decisions{where} ORDER BY seq DESC LIMIT ?",
            (*parameters, query.limit + 1),
        )
        found = [_stored(row) for row in rows[: query.limit]]
        more = len(rows) > query.limit
        return found, (found[-1].seq if more and found else None)

    # Retention ---------------------------------------------------------------

    def start(
        self,
        *,
        retention: timedelta = DEFAULT_DECISIONS_RETENTION,
        max_rows: int = DEFAULT_DECISIONS_MAX_ROWS,
        interval: float = 60.0,
    ) -> None:
        """Prunes every ``interval`` seconds what is older than ``retention``
        or beyond the newest ``max_rows``."""
        if max_rows < 1:
            raise ValueError(f"max_rows must be at least 1, got {max_rows}")
        self.retention, self.max_rows = retention, max_rows
        if self._pruner is None:
            self._pruner = asyncio.create_task(self._prune_every(interval), name="decisions-pruner")

    async def stop(self) -> None:
        task, self._pruner = self._pruner, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def prune(self) -> int:
        """Deletes, a batch per transaction, what retention makes old; returns
        how many rows."""
        total = 0
        cutoff = to_micros(self._clock() - self.retention, "cutoff")
        total += await self._delete(_BY_AGE, cutoff)
        rows = await self._store.fetchall("SELECT max(seq) FROM decisions")
        last = rows[0][0] if rows else None
        if last is not None:
            total += await self._delete(_BY_COUNT, int(last) - self.max_rows + 1)
        self.deleted += total
        return total

    async def _delete(self, statement: str, cutoff: int) -> int:
        total = 0
        while True:
            async with self._store.side_transaction() as tx:
                deleted = await tx.execute(statement, (cutoff, _BATCH))
            total += deleted
            if deleted < _BATCH:
                return total
            await asyncio.sleep(0)  # let event batches in between

    async def _prune_every(self, interval: float) -> None:
        failing = False
        while True:
            try:
                await self.prune()
            except StoreError:
                if not failing:
                    log.exception("pruning the decisions failed; retrying")
                failing = True
            else:
                failing = False
            await asyncio.sleep(interval)


def _stored(row: tuple[Any, ...]) -> StoredDecision:
    (
        seq,
        decision_id,
        sidecar,
        decided,
        received,
        agent,
        decision,
        policies,
        revision,
        req,
        appr,
    ) = row
    return StoredDecision(
        seq=int(seq),
        decision_id=str(decision_id),
        sidecar_id=str(sidecar),
        decided_at=from_micros(decided),
        received_at=from_micros(received),
        agent_id=str(agent),
        decision=str(decision),
        policies=list(json.loads(policies)),
        snapshot_revision=int(revision),
        request_id=str(req),
        approval_id=str(appr),
    )
