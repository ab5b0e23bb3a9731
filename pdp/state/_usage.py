"""The usage port on the state database: the spend ledger and the call
counters behind the engine's :class:`~pdp.engine.UsagePort`.

Reads come from memory. A charge is checked against its limits and counted
in memory in one step (no await in between), so within this process the
check and the count are atomic; the counts reach the database in the
background (see :mod:`pdp.state._counters`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from pdp.engine import CallCharge, Charge, UsageRecord, UsageReport
from pdp.state._counters import CallCounters
from pdp.state._database import Database, utc_now
from pdp.state._ledger import SpendLedger

__all__ = ["SqliteUsage"]


class SqliteUsage:
    """Spend and call counts of the agents of one sidecar, in its state
    database. Create with :meth:`open`, :meth:`start` the background writer,
    :meth:`close` before closing the database."""

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
        clock: Callable[[], datetime] = utc_now,
        flush_interval: float = 0.05,
    ) -> SqliteUsage:
        """Loads recorded spend and recent call counts into memory."""
        ledger = await SpendLedger.open(db, clock=clock)
        counters = await CallCounters.open(db, clock=clock, flush_interval=flush_interval)
        return cls(ledger, counters)

    def start(self) -> None:
        """Starts writing call counts in the background."""
        self.counters.start()

    async def close(self) -> None:
        """Writes the call counts not yet written and stops the writer."""
        await self.counters.close()

    async def record(self, report: UsageReport) -> UsageRecord:
        return await self.ledger.record(report.agent_id, report.cost_usd, report.request_id)

    async def charge(self, charges: Sequence[Charge]) -> tuple[Charge, ...]:
        # No await before the counts are added: nothing runs in between.
        refused = tuple(charge for charge in charges if not self._admits(charge))
        if refused:
            return refused
        for charge in charges:
            self.counters.add(charge.key, charge.second)
        return ()

    def _admits(self, charge: CallCharge) -> bool:
        counters = self.counters
        return all(counters.calls_since(charge.key, since) < most for since, most in charge.limits)
