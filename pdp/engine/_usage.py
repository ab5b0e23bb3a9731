"""The usage port: what the engine reads about an agent's usage (spend in a
window, calls counted in a window) and what a decision charges to it.

The engine only reads, synchronously, on the hot path: implementations answer
reads from memory. A decision that lets a call proceed carries its charges
(:attr:`Decision.charges`); the server applies them through the port, and
records usage reports there. One protocol, implemented by each state backend
(the SQLite ledger today) and checked by one contract test suite.

A charge carries the limits it was admitted under, so that a backend can
apply it atomically with a re-check of those limits (one step of the event
loop in SQLite, one script in Redis): a call that lost the race for the last
place in a window or the last dollars of a budget is refused, and the server
decides it again on the backend's numbers.

Two kinds of charge: a call counted for rate limits (:class:`CallCharge`),
and a cost *reservation* (:class:`CostCharge`): a call that passed a budget
check holds its estimated cost against the budget until ``ReportUsage``
with the same request id replaces it with the actual cost. A reservation
nobody reports expires and is then settled at its estimate: it counts, it
is not forgotten. Spend read through the view includes open reservations.

A backend that cannot be reached raises :class:`StateUnavailableError` from
its reads and writes; each policy that reads usage then fails closed or
open (its ``on_state_error``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple, Protocol

__all__ = [
    "CALL_WINDOW_MAX_SECONDS",
    "MAX_COST_USD",
    "NO_USAGE",
    "CallCharge",
    "Charge",
    "CostCharge",
    "CounterKey",
    "UsagePort",
    "UsageRecord",
    "UsageReport",
    "UsageView",
]

# The longest window calls are counted over; backends keep counts this long.
CALL_WINDOW_MAX_SECONDS = 86_400

# What calls are counted under, e.g. ("agent", agent id) or ("agent_tool",
# agent id, tool); the check that counts decides. Opaque to backends.
CounterKey = tuple[str, ...]


class CallCharge(NamedTuple):
    """One call counted under ``key`` in second ``second`` (Unix time). Each
    ``(since, most)`` of ``limits`` is a condition the call was admitted
    under: fewer than ``most`` calls counted under ``key`` from second
    ``since`` on. No limits: counted unconditionally (a call a non-blocking
    policy let through over its limit). A named tuple: built on the hot path."""

    key: CounterKey
    second: int
    limits: tuple[tuple[int, int], ...] = ()


class CostCharge(NamedTuple):
    """A reservation of ``amount_usd`` (the call's estimated cost) against
    the budgets of ``agent_id``, keyed by ``request_id``. Each
    ``(since, limit_usd)`` of ``limits`` is a condition it was admitted
    under: the spend from ``since`` on (open reservations included, this
    request's own earlier reservation excluded) plus ``amount_usd`` stays
    within ``limit_usd``. No limits: reserved unconditionally (a call a
    non-blocking policy let through over its budget). A reservation under a
    request id that already has one replaces it: a call retried with its
    id is counted once."""

    agent_id: str
    request_id: str
    amount_usd: float
    limits: tuple[tuple[datetime, float], ...] = ()


# Everything a decision may charge.
Charge = CallCharge | CostCharge


# The largest cost one call may estimate or report (USD). Budgets are kept
# in integer micro-dollars: far below this bound sums stay exact and within
# 64 bits, so a cost of 1e13 is a bad request, not an overflow.
MAX_COST_USD = 1_000_000.0


@dataclass(frozen=True, slots=True)
class UsageReport:
    """The actual cost of one call, reported after it ran. ``request_id`` is
    the idempotency key."""

    agent_id: str
    cost_usd: float
    request_id: str


@dataclass(frozen=True, slots=True)
class UsageRecord:
    """One usage report as stored. ``duplicate`` is True when the request_id
    was already recorded: the stored record is returned and nothing is added."""

    request_id: str
    agent_id: str
    cost_usd: float
    recorded_at: datetime
    duplicate: bool


class UsageView(Protocol):
    """The reads the engine makes. Implementations answer from memory: the
    engine calls them on the hot path."""

    def spent_since(self, agent_id: str, since: datetime) -> float:
        """USD spent by ``agent_id`` (canonical id) from ``since`` until now."""
        ...

    def calls_since(self, key: CounterKey, since: int) -> int:
        """Calls counted under ``key`` from second ``since`` (Unix time) on."""
        ...

    def nth_call_since(self, key: CounterKey, since: int, n: int) -> int | None:
        """The second of the ``n``-th call (1 is the oldest) counted under
        ``key`` from second ``since`` on; None when fewer were counted."""
        ...


class UsagePort(UsageView, Protocol):
    """Usage kept by a state backend: the reads of :class:`UsageView`, and
    the writes the server makes through it."""

    async def record(self, report: UsageReport) -> UsageRecord:
        """Records the cost of one call, durably, then counts it, replacing
        the call's reservation (same request id) if it has one. Idempotent
        by ``request_id``: the same report again returns the stored record
        with ``duplicate=True``; the same id with another agent or amount
        (a reservation settled at its estimate included) raises the
        backend's conflict error. A NaN, infinite, negative or non-numeric
        cost, or an empty id, raises ValueError naming the field."""
        ...

    async def charge(self, charges: Sequence[Charge]) -> tuple[Charge, ...]:
        """Applies the charges of a call that proceeds, all or none: when the
        limits of every charge still hold they are all applied and nothing is
        returned; otherwise none is applied and the charges whose limits no
        longer hold are returned."""
        ...


class _NoUsage:
    """A usage view with nothing recorded: for evaluating a snapshot where no
    state backend runs (offline checks, reports, tests)."""

    __slots__ = ()

    def spent_since(self, agent_id: str, since: datetime) -> float:
        return 0.0

    def calls_since(self, key: CounterKey, since: int) -> int:
        return 0

    def nth_call_since(self, key: CounterKey, since: int, n: int) -> int | None:
        return None


NO_USAGE: UsageView = _NoUsage()
