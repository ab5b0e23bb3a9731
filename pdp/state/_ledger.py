"""The spend ledger: durable usage records and open cost reservations, plus
an in-memory view of them.

Budget checks run on the hot path and must not wait on SQLite, so they read
per-agent timestamps and prefix sums in memory (:class:`Windows`) and the
open reservations (:class:`Reservations`). The ledger writes each usage to
SQLite first and counts it in memory only once the write is committed, so
memory never shows spend a crash could lose.

A reservation is made in memory in the step of the event loop that checked
the budget (so concurrent calls see each other's), and written in the
background within ``flush_interval``; a crash forgets at most the
reservations of the last interval (their calls' reports still count). A
report replaces its call's reservation in the transaction that records it.
A reservation unreported for ``reservation_ttl`` seconds (monotonic) is
settled at its estimate: a usage record like a report's.

It is the spend half of the SQLite usage backend (``SqliteUsage``).
"""

from __future__ import annotations

import asyncio
import math
import sqlite3
from datetime import datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from functools import partial

from pdp.engine import Clock, CostCharge, SteadyClock, UsageRecord
from pdp.state._database import Database, from_micros, to_micros
from pdp.state._errors import UsageConflictError
from pdp.state._flusher import Flusher
from pdp.state._reservations import Reservation, Reservations
from pdp.state._windows import Windows

__all__ = ["DEFAULT_RESERVATION_TTL", "SpendLedger", "to_micro_usd"]

DEFAULT_RESERVATION_TTL = 600.0

_EPOCH = from_micros(0)
_ONE_MICROSECOND = timedelta(microseconds=1)
_MICROS_PER_USD = 1_000_000
# SQLite integers are signed 64-bit.
_MAX_MICRO_USD = 2**63 - 1
_LOAD_CHUNK_ROWS = 10_000
# Distinct period starts converted and kept (time zones times kinds of period).
_SINCE_CACHE_LIMIT = 64


class SpendLedger:
    """Usage records, durable in the state database, summed from memory
    with the open reservations.

    Create with :meth:`open`; :meth:`start` the background writer (which
    also settles expired reservations), :meth:`close` before closing the
    database. Windows within ``retention`` of now are exact; one reaching
    further back may miss the part older than that (it is not kept in
    memory).
    """

    def __init__(
        self,
        db: Database,
        windows: Windows[str],
        *,
        clock: SteadyClock,
        retention: timedelta,
        reservation_ttl: float,
        flush_interval: float,
    ) -> None:
        self._db = db
        self._windows = windows
        self._clock = clock
        self._retention_micros = retention // timedelta(microseconds=1)
        self._ttl = reservation_ttl
        self.reservations = Reservations()
        # Reservations made in memory and not yet written, by request id.
        self._unwritten: dict[str, Reservation] = {}
        # Period starts in microseconds: the engine passes the same few
        # datetimes (a day's, a month's start) on every call.
        self._since_micros: dict[datetime, int] = {}
        self._flusher = Flusher(self.flush, flush_interval, "reservation")
        self._flush_lock = asyncio.Lock()
        # Writes run as tasks shielded from the caller's cancellation (see
        # record); strong references keep them alive until they finish.
        self._writes: set[asyncio.Task[UsageRecord]] = set()

    @classmethod
    async def open(
        cls,
        db: Database,
        *,
        clock: Clock | None = None,
        retention: timedelta = timedelta(days=400),
        reservation_ttl: float = DEFAULT_RESERVATION_TTL,
        flush_interval: float = 0.05,
    ) -> SpendLedger:
        """Load the usage recorded within ``retention`` of now and the open
        reservations into memory; reservations that expired while no
        sidecar ran are settled at their estimate."""
        if retention <= timedelta(0):
            raise ValueError(f"retention must be positive, got {retention}")
        if not reservation_ttl > 0:
            raise ValueError(f"reservation_ttl must be positive, got {reservation_ttl}")
        steady = clock if isinstance(clock, SteadyClock) else SteadyClock(clock)
        windows: Windows[str] = Windows()
        ledger = cls(
            db,
            windows,
            clock=steady,
            retention=retention,
            reservation_ttl=reservation_ttl,
            flush_interval=flush_interval,
        )
        cutoff = to_micros(steady(), "clock()") - ledger._retention_micros
        async with db.connection.execute(
            "SELECT agent_id, amount_micro_usd, recorded_at_us FROM usage"
            " WHERE recorded_at_us >= ? ORDER BY recorded_at_us, rowid",
            (cutoff,),
        ) as cursor:
            # Large chunks: one thread hop per chunk, not per 64 rows.
            while rows := await cursor.fetchmany(_LOAD_CHUNK_ROWS):
                for agent_id, amount, at_micros in rows:
                    windows.add(agent_id, amount, at_micros)
        await ledger._load_reservations()
        return ledger

    async def _load_reservations(self) -> None:
        now = to_micros(self._clock(), "clock()")
        monotonic = self._clock.monotonic()
        async with self._db.connection.execute(
            "SELECT request_id, agent_id, amount_micro_usd, reserved_at_us, expires_at_us"
            " FROM reservations ORDER BY reserved_at_us"
        ) as cursor:
            rows = await cursor.fetchall()
        for request_id, agent_id, amount, at, expires in rows:
            # The deadline was written in calendar time: what is left of it
            # now, at most a whole time to live.
            left = min(self._ttl, max(0.0, (expires - now) / _MICROS_PER_SECOND))
            self.reservations.put(Reservation(request_id, agent_id, amount, at, monotonic + left))
        await self._settle_expired()

    def start(self) -> None:
        """Starts writing reservations and settling expired ones in the
        background."""
        self._flusher.start()

    async def close(self) -> None:
        """Writes what is queued and stops the writer."""
        await self._flusher.stop()
        await self.flush()

    def spent_since(self, agent_id: str, since: datetime) -> float:
        """USD spent by ``agent_id`` from ``since`` (inclusive) until now,
        open reservations included. ``since`` must be timezone-aware.
        Never touches SQLite."""
        return self._spent_micros(agent_id, self._micros(since)) / _MICROS_PER_USD

    def _micros(self, since: datetime) -> int:
        micros = self._since_micros.get(since)
        if micros is None:
            if len(self._since_micros) >= _SINCE_CACHE_LIMIT:
                self._since_micros.clear()
            micros = self._since_micros[since] = (since - _EPOCH) // _ONE_MICROSECOND
        return micros

    def _spent_micros(self, agent_id: str, since_micros: int) -> int:
        return self._windows.total_since(agent_id, since_micros) + self.reservations.total_since(
            agent_id, since_micros
        )

    def admits(self, charge: CostCharge) -> bool:
        """Whether every limit of ``charge`` holds now (see CostCharge)."""
        if not charge.limits:
            return True
        amount = _fast_micro_usd(charge.amount_usd)
        held = self.reservations.get(charge.request_id)
        own = held.amount if held is not None and held.agent_id == charge.agent_id else 0
        for since, limit_usd in charge.limits:
            spent = self._spent_micros(charge.agent_id, self._micros(since)) - own
            if spent + amount > _fast_micro_usd(limit_usd):
                return False
        return True

    def reserve(self, charge: CostCharge) -> None:
        """Holds ``charge``'s amount against its agent's budgets, in memory
        now and in the database at the next flush. Synchronous: the check
        (:meth:`admits`) and the reservation happen in one step."""
        reservation = Reservation(
            charge.request_id,
            charge.agent_id,
            _fast_micro_usd(charge.amount_usd),
            to_micros(self._clock(), "clock()"),
            self._clock.monotonic() + self._ttl,
        )
        self.reservations.put(reservation)
        self._unwritten[charge.request_id] = reservation

    async def flush(self) -> None:
        """Writes the reservations made before this call and settles the
        expired ones; raises StateError if the database refuses (what was
        not written stays queued)."""
        async with self._flush_lock:
            await self._write_reservations()
            await self._settle_expired()

    async def _write_reservations(self) -> None:
        batch, self._unwritten = self._unwritten, {}
        if not batch:
            return
        # The deadline is monotonic; it is written in calendar time, for a
        # restart (when the monotonic clock starts again).
        now = to_micros(self._clock(), "clock()")
        monotonic = self._clock.monotonic()
        rows = [
            (
                r.request_id,
                r.agent_id,
                r.amount,
                r.at,
                now + round((r.deadline - monotonic) * _MICROS_PER_SECOND),
                r.request_id,
            )
            for r in batch.values()
        ]
        try:
            paid = await self._db.write(partial(_insert_reservations, rows))
        except Exception:  # not written (a cancelled caller's write goes on)
            for request_id, reservation in batch.items():
                self._unwritten.setdefault(request_id, reservation)
            raise
        # An id already recorded was paid for by an earlier report: the
        # reservation made under it again has nothing left to hold.
        for request_id in paid:
            self.reservations.remove(request_id, only=batch[request_id])

    async def _settle_expired(self) -> None:
        expired = self.reservations.expired(self._clock.monotonic())
        if not expired:
            return
        clock_now = to_micros(self._clock(), "clock()")
        settled = [(r.request_id, r.agent_id, r.amount, clock_now) for r in expired]
        await self._db.write(partial(_settle, settled))
        for reservation in expired:
            # Unless a report replaced it meanwhile, it now counts as usage.
            if self.reservations.remove(reservation.request_id, only=reservation) is not None:
                self._unwritten.pop(reservation.request_id, None)
                self._windows.add(reservation.agent_id, reservation.amount, clock_now)

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
        amount = to_micro_usd(cost_usd)
        held = self.reservations.get(request_id)
        if held is not None and held.agent_id != agent_id:
            raise UsageConflictError(
                request_id,
                f"request_id {request_id!r} holds a reservation for agent {held.agent_id!r};"
                f" this report has agent {agent_id!r}",
            )
        # Once the write is under way it finishes (and is counted) even if the
        # caller is cancelled: a committed row must never be missing from memory.
        write = asyncio.ensure_future(self._write(agent_id, amount, request_id))
        self._writes.add(write)
        write.add_done_callback(self._writes.discard)
        return await asyncio.shield(write)

    async def _write(self, agent_id: str, amount: int, request_id: str) -> UsageRecord:
        # The clock is read as the write is queued: writes commit in the
        # order they are queued, so records are committed (and counted) in
        # time order.
        at_micros = to_micros(self._clock(), "clock()")
        existing = await self._db.write(
            partial(_insert_usage, (request_id, agent_id, amount, at_micros))
        )
        if existing is None:
            # Committed: now it may count, in place of the call's reservation.
            if self.reservations.remove(request_id) is not None:
                self._unwritten.pop(request_id, None)
            self._windows.add(agent_id, amount, at_micros)
            self._windows.prune(agent_id, at_micros - self._retention_micros)
            return UsageRecord(
                request_id, agent_id, amount / _MICROS_PER_USD, from_micros(at_micros), False
            )
        stored_agent, stored_amount, stored_at, settled = existing
        if stored_agent != agent_id or stored_amount != amount:
            how = (
                "settled at its estimate when its reservation expired"
                if settled == _SETTLED_EXPIRED
                else "already recorded"
            )
            raise UsageConflictError(
                request_id,
                f"request_id {request_id!r} was {how} for agent {stored_agent!r}"
                f" with cost_usd {stored_amount / _MICROS_PER_USD}; this report has agent"
                f" {agent_id!r} with cost_usd {amount / _MICROS_PER_USD}",
            )
        return UsageRecord(
            request_id, stored_agent, stored_amount / _MICROS_PER_USD, from_micros(stored_at), True
        )


_MICROS_PER_SECOND = 1_000_000
_SETTLED_EXPIRED = "expired_reservation"
_INSERT_RESERVATION = (
    "INSERT INTO reservations"
    " (request_id, agent_id, amount_micro_usd, reserved_at_us, expires_at_us)"
    " SELECT ?, ?, ?, ?, ? WHERE NOT EXISTS (SELECT 1 FROM usage WHERE request_id = ?)"
    " ON CONFLICT (request_id) DO UPDATE SET agent_id = excluded.agent_id,"
    " amount_micro_usd = excluded.amount_micro_usd, reserved_at_us = excluded.reserved_at_us,"
    " expires_at_us = excluded.expires_at_us"
)
_SETTLE = (
    "INSERT INTO usage (request_id, agent_id, amount_micro_usd, recorded_at_us, settled)"
    f" VALUES (?, ?, ?, ?, '{_SETTLED_EXPIRED}') ON CONFLICT (request_id) DO NOTHING"
)
# Request ids per query: well under SQLite's limit of bound parameters.
_IDS_PER_QUERY = 500


_INSERT_USAGE = (
    "INSERT INTO usage (request_id, agent_id, amount_micro_usd, recorded_at_us)"
    " VALUES (?, ?, ?, ?) ON CONFLICT (request_id) DO NOTHING"
)
_SELECT_USAGE = (
    "SELECT agent_id, amount_micro_usd, recorded_at_us, settled FROM usage WHERE request_id = ?"
)
_DELETE_RESERVATION = "DELETE FROM reservations WHERE request_id = ?"

# The writes below run on the database's thread, each inside a transaction
# (Database.write).


def _insert_usage(
    row: tuple[str, str, int, int], connection: sqlite3.Connection
) -> tuple[str, int, int, str] | None:
    """Records one usage in place of its reservation; an id already
    recorded returns the stored row instead."""
    request_id = row[0]
    if connection.execute(_INSERT_USAGE, row).rowcount == 1:
        connection.execute(_DELETE_RESERVATION, (request_id,))
        return None
    found: tuple[str, int, int, str] | None = connection.execute(
        _SELECT_USAGE, (request_id,)
    ).fetchone()
    return found


def _insert_reservations(
    rows: list[tuple[str, str, int, int, int, str]], connection: sqlite3.Connection
) -> list[str]:
    """Writes reservations; returns the request ids already recorded."""
    written = connection.executemany(_INSERT_RESERVATION, rows).rowcount
    if written == len(rows):  # each row inserted or replaced: none was recorded
        return []
    request_ids = [row[0] for row in rows]
    found: list[str] = []
    for start in range(0, len(request_ids), _IDS_PER_QUERY):
        chunk = request_ids[start : start + _IDS_PER_QUERY]
        marks = ",".join("?" * len(chunk))
        cursor = connection.execute(
            f"SELECT request_id FROM usage WHERE request_id IN ({marks})", chunk
        )
        found.extend(row[0] for row in cursor.fetchall())
    return found


def _settle(rows: list[tuple[str, str, int, int]], connection: sqlite3.Connection) -> None:
    connection.executemany(_SETTLE, rows)
    connection.executemany(_DELETE_RESERVATION, [(row[0],) for row in rows])


def _fast_micro_usd(usd: float) -> int:
    """``to_micro_usd`` for amounts the engine already checked (finite, not
    negative): a multiplication, exact for the amounts people write."""
    if usd < 1e9:
        return round(usd * _MICROS_PER_USD)
    return to_micro_usd(usd)


def to_micro_usd(cost_usd: float) -> int:
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
