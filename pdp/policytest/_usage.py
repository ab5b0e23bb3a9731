"""The engine's usage view over plain records in memory: spend recorded
before a test (or an engine case), and calls counted by applying decisions'
charges as a state backend does."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Protocol

from pdp.engine import Charge, CounterKey

__all__ = ["MemoryUsage", "SpendEntry"]


class SpendEntry(Protocol):
    """One amount spent at a time."""

    @property
    def at(self) -> datetime: ...
    @property
    def usd(self) -> float: ...


class MemoryUsage:
    """``spend`` maps a canonical agent id to what it spent."""

    def __init__(self, spend: Mapping[str, Iterable[SpendEntry]] | None = None) -> None:
        self.spend = {agent: tuple(entries) for agent, entries in (spend or {}).items()}
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
