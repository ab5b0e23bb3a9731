"""Retention: one background task deletes what the state database no longer
needs (old usage records, call counts past the longest window, old decision
log records, delivered outbox events), by age and, for the decision log,
by count, in small batches.

Each batch is one short transaction, and the task yields between batches,
so the writers of the hot path (decisions, counts, reservations) never wait
long for the write lock. SQLite reuses the pages a delete frees, so under
steady load the file stops growing once the oldest records are pruned as
fast as new ones arrive; the write-ahead log is truncated after each
checkpoint (see :class:`~pdp.state.Database`).

A table joins by adding a :class:`PruneRule`: what to delete in one batch
(at most ``limit`` rows older than ``cutoff``), and how its cutoff is
computed from the clock.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta

import aiosqlite

from pdp.engine import CALL_WINDOW_MAX_SECONDS, SteadyClock
from pdp.state._database import Database, to_micros
from pdp.state._errors import StateError

__all__ = [
    "DEFAULT_DECISION_LOG_MAX_ROWS",
    "DEFAULT_DECISION_LOG_RETENTION",
    "DEFAULT_RETENTION",
    "USAGE_RETENTION_FLOOR",
    "PruneRule",
    "Pruner",
    "sidecar_rules",
]

_LOG = logging.getLogger("pdp.state")

DEFAULT_RETENTION = timedelta(days=35)
DEFAULT_DECISION_LOG_RETENTION = timedelta(days=7)
DEFAULT_DECISION_LOG_MAX_ROWS = 1_000_000
# Monthly budgets read up to 31 days of spend (plus a time zone's offset):
# usage records are kept at least this long whatever the retention.
USAGE_RETENTION_FLOOR = timedelta(days=32)


Cutoff = Callable[[aiosqlite.Connection], Awaitable[int | None]]


@dataclass(frozen=True, slots=True)
class PruneRule:
    """One table's retention. ``statement`` deletes at most ``?2`` rows
    that ``?1`` (the cutoff) makes old; ``cutoff`` computes the cutoff now
    (it may read the database), or None when nothing is to be deleted."""

    what: str
    statement: str
    cutoff: Cutoff


class Pruner:
    """Runs every rule every ``interval`` seconds, ``batch`` rows per
    transaction. Start with :meth:`start`, stop with :meth:`stop`;
    :meth:`prune` runs once (tests, and the sidecar at start)."""

    def __init__(
        self,
        db: Database,
        rules: Sequence[PruneRule],
        *,
        interval: float = 60.0,
        batch: int = 1000,
    ) -> None:
        if not interval > 0:
            raise ValueError(f"prune interval must be positive, got {interval}")
        if batch < 1:
            raise ValueError(f"prune batch must be at least 1, got {batch}")
        self._db = db
        self._rules = tuple(rules)
        self._interval = interval
        self._batch = batch
        self._task: asyncio.Task[None] | None = None
        self.deleted: dict[str, int] = {rule.what: 0 for rule in self._rules}

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="pdp-state-pruner")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def prune(self) -> int:
        """Deletes, batch by batch, what every rule makes old; returns how
        many rows."""
        total = 0
        for rule in self._rules:
            cutoff = await rule.cutoff(self._db.connection)
            if cutoff is None:
                continue
            while True:
                async with self._db.transaction() as connection:
                    cursor = await connection.execute(rule.statement, (cutoff, self._batch))
                    deleted = cursor.rowcount
                    await cursor.close()
                self.deleted[rule.what] += deleted
                total += deleted
                if deleted < self._batch:
                    break
                await asyncio.sleep(0)  # let the hot path's writers in
        return total

    async def _run(self) -> None:
        failing = False
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.prune()
            except StateError:
                if not failing:
                    _LOG.exception("pruning the state database failed; retrying")
                failing = True
            else:
                failing = False


_USAGE = (
    "DELETE FROM usage WHERE rowid IN (SELECT rowid FROM usage WHERE recorded_at_us < ?1 LIMIT ?2)"
)
_CALL_COUNTS = (
    "DELETE FROM call_counts WHERE (counter_key, second) IN"
    " (SELECT counter_key, second FROM call_counts WHERE second < ?1 LIMIT ?2)"
)
# Decisions are appended in time order (seq grows, and calendar time never
# steps back), so the old ones are the first by seq: a batch looks at the
# first rows only, never scanning the table for old ones that are not there.
_DECISIONS_BY_AGE = (
    "DELETE FROM decision_log WHERE seq IN (SELECT seq FROM"
    " (SELECT seq, decided_at_us FROM decision_log ORDER BY seq LIMIT ?2)"
    " WHERE decided_at_us < ?1)"
)
# ?1 is the first seq to keep: the last max_rows of them are kept.
_DECISIONS_BY_COUNT = (
    "DELETE FROM decision_log WHERE seq IN"
    " (SELECT seq FROM decision_log WHERE seq < ?1 ORDER BY seq LIMIT ?2)"
)


# Approvals whose time passed long ago, whatever became of them.
_TRACES = (
    "DELETE FROM traces WHERE trace_id IN"
    " (SELECT trace_id FROM traces WHERE recorded_at_us < ?1 LIMIT ?2)"
)
_INCIDENTS = (
    "DELETE FROM incidents WHERE seq IN"
    " (SELECT seq FROM incidents WHERE created_at_us < ?1 LIMIT ?2)"
)
_APPROVALS = (
    "DELETE FROM approvals WHERE id IN (SELECT id FROM approvals WHERE expires_at_us < ?1 LIMIT ?2)"
)


def sidecar_rules(
    clock: SteadyClock,
    *,
    retention: timedelta = DEFAULT_RETENTION,
    decision_log_retention: timedelta = DEFAULT_DECISION_LOG_RETENTION,
    decision_log_max_rows: int = DEFAULT_DECISION_LOG_MAX_ROWS,
    usage: bool = True,
) -> list[PruneRule]:
    """The retention of a sidecar's state database: usage records older
    than ``retention`` (at least :data:`USAGE_RETENTION_FLOOR`; ``usage``
    False when spend is kept elsewhere), call counts past the longest
    window, decisions older than ``decision_log_retention`` or beyond the
    last ``decision_log_max_rows``, approvals that expired longer ago than
    ``decision_log_retention``, and traces and their incidents older than
    that too."""
    if decision_log_max_rows < 1:
        raise ValueError(f"decision_log_max_rows must be at least 1, got {decision_log_max_rows}")
    keep_usage = max(retention, USAGE_RETENTION_FLOOR) // timedelta(microseconds=1)
    keep_decisions = decision_log_retention // timedelta(microseconds=1)

    def calendar_cutoff(keep_micros: int) -> Cutoff:
        async def cutoff(_: aiosqlite.Connection) -> int:
            return to_micros(clock(), "clock()") - keep_micros

        return cutoff

    async def counts_cutoff(_: aiosqlite.Connection) -> int:
        return int(clock.steady()) - CALL_WINDOW_MAX_SECONDS

    async def first_seq_to_keep(connection: aiosqlite.Connection) -> int | None:
        # seq is the rowid, deleted only from the front: the rows are the
        # seqs from min to max (O(log n) to read, where count(*) scans).
        async with connection.execute("SELECT max(seq) FROM decision_log") as cursor:
            row = await cursor.fetchone()
        last = row[0] if row is not None else None
        return None if last is None else last - decision_log_max_rows + 1

    rules = [
        PruneRule("call counts", _CALL_COUNTS, counts_cutoff),
        PruneRule("decisions by age", _DECISIONS_BY_AGE, calendar_cutoff(keep_decisions)),
        PruneRule("decisions by count", _DECISIONS_BY_COUNT, first_seq_to_keep),
        PruneRule("approvals", _APPROVALS, calendar_cutoff(keep_decisions)),
        PruneRule("traces", _TRACES, calendar_cutoff(keep_decisions)),
        PruneRule("incidents", _INCIDENTS, calendar_cutoff(keep_decisions)),
    ]
    if usage:
        rules.insert(0, PruneRule("usage", _USAGE, calendar_cutoff(keep_usage)))
    return rules
