"""The usage port on the state database: the spend ledger and the call
counters behind the engine's :class:`~pdp.engine.UsagePort`.

Reads come from memory. A charge is checked against its limits and applied
in memory in one step (no await in between: the call counted, the cost
reserved), so within this process the check and the charge are atomic; they
reach the database in the background (see :mod:`pdp.state._counters` and
:mod:`pdp.state._ledger`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from pdp.engine import CallCharge, Charge, Clock, SteadyClock, UsageRecord, UsageReport
from pdp.state._counters import CallCounters
from pdp.state._database import Database
from pdp.state._ledger import DEFAULT_RESERVATION_TTL, SpendLedger
from pdp.state._status import SQLITE_STATUS, StateStatus

__all__ = ["SqliteUsage"]


class SqliteUsage:
    """Spend, reservations and call counts of the agents of one sidecar, in
    its state database. Create with :meth:`open`, :meth:`start` the
    background writers, :meth:`close` before closing the database."""

    def __init__(self, ledger: SpendLedger, counters: CallCounters) -> None:
        self.ledger = ledger
        self.counters = counters
        # The reads, bound once: the engine calls them on the hot path, and a
        # forwarding method would cost a call frame each time.
        self.spent_since = ledger.spent_since
        self.calls_since = counters.calls_since
        self.nth_call_since = counters.nth_call_since

    @classmethod
    async def open(
        cls,
        db: Database,
        *,
        clock: Clock | None = None,
        flush_interval: float = 0.05,
        reservation_ttl: float = DEFAULT_RESERVATION_TTL,
        retention: timedelta = timedelta(days=400),
    ) -> SqliteUsage:
        """Loads recorded spend, open reservations and recent call counts
        into memory."""
        steady = clock if isinstance(clock, SteadyClock) else SteadyClock(clock)
        ledger = await SpendLedger.open(
            db,
            clock=steady,
            retention=retention,
            reservation_ttl=reservation_ttl,
            flush_interval=flush_interval,
        )
        counters = await CallCounters.open(db, clock=steady, flush_interval=flush_interval)
        return cls(ledger, counters)

    def status(self) -> StateStatus:
        """Always healthy: the database is local (a write that fails is an
        error of its own call)."""
        return SQLITE_STATUS

    def start(self) -> None:
        """Starts writing call counts and reservations in the background."""
        self.counters.start()
        self.ledger.start()

    async def close(self) -> None:
        """Writes the call counts and reservations not yet written and stops
        the writers."""
        await self.counters.close()
        await self.ledger.close()

    async def settle_expired(self) -> None:
        """Writes the reservations made so far and settles, at their
        estimate, the ones that expired (done every ``flush_interval`` in
        the background)."""
        await self.ledger.flush()

    async def record(self, report: UsageReport) -> UsageRecord:
        return await self.ledger.record(report.agent_id, report.cost_usd, report.request_id)

    async def charge(self, charges: Sequence[Charge]) -> tuple[Charge, ...]:
        # No await before the charges are applied: nothing runs in between.
        admits = self._admits
        for charge in charges:
            if not admits(charge):
                return tuple(charge for charge in charges if not admits(charge))
        for charge in charges:
            if isinstance(charge, CallCharge):
                self.counters.add(charge.key, charge.second)
            else:
                self.ledger.reserve(charge)
        return ()

    def _admits(self, charge: Charge) -> bool:
        if isinstance(charge, CallCharge):
            counters = self.counters
            return all(
                counters.calls_since(charge.key, since) < most for since, most in charge.limits
            )
        return self.ledger.admits(charge)
