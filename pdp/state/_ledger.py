"""The spend ledger: durable usage records plus an in-memory view of them.

Budget checks run on the hot path and must not wait on SQLite, so they read
per-agent timestamps and prefix sums in memory (:class:`Windows`). The ledger
writes each usage to SQLite first and counts it in memory only once the write
is committed, so memory never shows spend a crash could lose. It is the spend
half of the SQLite usage backend (``SqliteUsage``).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal

from pdp.engine import UsageRecord
from pdp.state._database import Database, from_micros, to_micros, utc_now
from pdp.state._errors import UsageConflictError
from pdp.state._windows import Windows

__all__ = ["SpendLedger"]

_EPOCH = from_micros(0)
_ONE_MICROSECOND = timedelta(microseconds=1)
_MICROS_PER_USD = 1_000_000
# SQLite integers are signed 64-bit.
_MAX_MICRO_USD = 2**63 - 1
_LOAD_CHUNK_ROWS = 10_000


class SpendLedger:
    """Usage records, durable in the state database, summed from memory.

    Create with :meth:`open`.
    Windows within ``retention`` of now are exact; one reaching further back
    may miss the part older than that (it is not kept in memory).
    """

    def __init__(
        self,
        db: Database,
        windows: Windows[str],
        *,
        clock: Callable[[], datetime],
        retention: timedelta,
    ) -> None:
        self._db = db
        self._windows = windows
        self._clock = clock
        self._retention_micros = retention // timedelta(microseconds=1)
        # Writes run as tasks shielded from the caller's cancellation (see
        # record); strong references keep them alive until they finish.
        self._writes: set[asyncio.Task[UsageRecord]] = set()

    @classmethod
    async def open(
        cls,
        db: Database,
        *,
        clock: Callable[[], datetime] = utc_now,
        retention: timedelta = timedelta(days=400),
    ) -> SpendLedger:
        """Load the usage recorded within ``retention`` of now into memory."""
        if retention <= timedelta(0):
            raise ValueError(f"retention must be positive, got {retention}")
        windows: Windows[str] = Windows()
        ledger = cls(db, windows, clock=clock, retention=retention)
        cutoff = to_micros(clock(), "clock()") - ledger._retention_micros
        async with db.connection.execute(
            "SELECT agent_id, amount_micro_usd, recorded_at_us FROM usage"
            " WHERE recorded_at_us >= ? ORDER BY recorded_at_us, rowid",
            (cutoff,),
        ) as cursor:
            # Large chunks: one thread hop per chunk, not per 64 rows.
            while rows := await cursor.fetchmany(_LOAD_CHUNK_ROWS):
                for agent_id, amount, at_micros in rows:
                    windows.add(agent_id, amount, at_micros)
        return ledger

    def spent_since(self, agent_id: str, since: datetime) -> float:
        """USD spent by ``agent_id`` from ``since`` (inclusive) until now.
        ``since`` must be timezone-aware. Never touches SQLite."""
        since_micros = (since - _EPOCH) // _ONE_MICROSECOND
        return self._windows.total_since(agent_id, since_micros) / _MICROS_PER_USD

    async def record(self, agent_id: str, cost_usd: float, request_id: str) -> UsageRecord:
        """Record the usage of one request, durably, then count it.

        Idempotent by ``request_id``: the same report again returns the stored
        record with ``duplicate=True`` and adds nothing; the same id with a
        different agent or amount raises :class:`UsageConflictError`.
        Amounts are kept as whole micro-dollars (rounded half to even).
        """
        if not isinstance(agent_id, str) or not agent_id:
            raise ValueError("agent_id must be a non-empty string")
        if not isinstance(request_id, str) or not request_id:
            raise ValueError("request_id must be a non-empty string")
        amount = _to_micro_usd(cost_usd)
        # Once the write is under way it finishes (and is counted) even if the
        # caller is cancelled: a committed row must never be missing from memory.
        write = asyncio.ensure_future(self._write(agent_id, amount, request_id))
        self._writes.add(write)
        write.add_done_callback(self._writes.discard)
        return await asyncio.shield(write)

    async def _write(self, agent_id: str, amount: int, request_id: str) -> UsageRecord:
        async with self._db.transaction() as connection:
            # Read the clock inside the write lock, so records are committed
            # (and counted) in time order.
            at_micros = to_micros(self._clock(), "clock()")
            cursor = await connection.execute(
                "INSERT INTO usage (request_id, agent_id, amount_micro_usd, recorded_at_us)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (request_id) DO NOTHING",
                (request_id, agent_id, amount, at_micros),
            )
            inserted = cursor.rowcount == 1
            await cursor.close()
            if inserted:
                existing = None
            else:
                async with connection.execute(
                    "SELECT agent_id, amount_micro_usd, recorded_at_us FROM usage"
                    " WHERE request_id = ?",
                    (request_id,),
                ) as select:
                    existing = await select.fetchone()
        if existing is None:
            # Committed: now it may count.
            self._windows.add(agent_id, amount, at_micros)
            self._windows.prune(agent_id, at_micros - self._retention_micros)
            return UsageRecord(
                request_id, agent_id, amount / _MICROS_PER_USD, from_micros(at_micros), False
            )
        stored_agent, stored_amount, stored_at = existing
        if stored_agent != agent_id or stored_amount != amount:
            raise UsageConflictError(
                request_id,
                f"request_id {request_id!r} was already recorded for agent {stored_agent!r}"
                f" with cost_usd {stored_amount / _MICROS_PER_USD}; this report has agent"
                f" {agent_id!r} with cost_usd {amount / _MICROS_PER_USD}",
            )
        return UsageRecord(
            request_id, stored_agent, stored_amount / _MICROS_PER_USD, from_micros(stored_at), True
        )


def _to_micro_usd(cost_usd: float) -> int:
    """Validate an amount in USD and convert it to whole micro-dollars."""
    if isinstance(cost_usd, bool) or not isinstance(cost_usd, int | float):
        raise ValueError(f"cost_usd must be a number, got {type(cost_usd).__name__}")
    if isinstance(cost_usd, float) and not math.isfinite(cost_usd):
        raise ValueError(f"cost_usd must be a finite number, got {cost_usd}")
    if cost_usd < 0:
        raise ValueError(f"cost_usd must not be negative, got {cost_usd}")
    # repr() gives the shortest decimal that round-trips, i.e. the amount the
    # caller wrote (0.1, not 0.1000000000000000055...).
    exact = Decimal(cost_usd) if isinstance(cost_usd, int) else Decimal(repr(cost_usd))
    micros = int((exact * _MICROS_PER_USD).to_integral_value(rounding=ROUND_HALF_EVEN))
    if micros > _MAX_MICRO_USD:
        raise ValueError(f"cost_usd is too large, got {cost_usd}")
    return micros
