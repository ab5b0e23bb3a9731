"""The engine's usage view over plain records in memory, for engine tests:
spend as recorded in a case file, and calls counted by applying decisions'
charges as a state backend does."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from pdp.engine import Charge, CounterKey
from tests.engine._case_loader import SpendRecord

__all__ = ["MemoryUsage"]


class MemoryUsage:
    def __init__(self, spend: Mapping[str, Sequence[SpendRecord]] | None = None) -> None:
        self.spend = dict(spend or {})
        self.calls: dict[CounterKey, list[int]] = {}  # seconds of counted calls, in order

    def spent_since(self, agent_id: str, since: datetime) -> float:
        return sum(r.usd for r in self.spend.get(agent_id, ()) if r.at >= since)

    def calls_since(self, key: CounterKey, since: int) -> int:
        return sum(1 for second in self.calls.get(key, ()) if second >= since)

    def nth_call_since(self, key: CounterKey, since: int, n: int) -> int | None:
        seconds = [second for second in self.calls.get(key, ()) if second >= since]
        return seconds[n - 1] if len(seconds) >= n else None

    def apply(self, charges: Sequence[Charge]) -> tuple[Charge, ...]:
        """Counts the charges when every limit holds (all or none); returns
        the refused ones."""
        refused = tuple(
            charge
            for charge in charges
            if any(self.calls_since(charge.key, since) >= most for since, most in charge.limits)
        )
        if not refused:
            for charge in charges:
                self.calls.setdefault(charge.key, []).append(charge.second)
        return refused
