"""Open cost reservations in memory: the estimated cost of each call that
passed a budget check, held against its agent's budgets until a usage
report replaces it or it expires.

Budget checks read them on the hot path, so the sum per agent is kept
running; a window that starts after an agent's oldest open reservation
(only just after a day or month begins) is summed entry by entry.
Deadlines are on the monotonic clock."""

from __future__ import annotations

import heapq
from typing import NamedTuple

__all__ = ["Reservation", "Reservations"]


class Reservation(NamedTuple):
    """One open reservation. ``at`` is when it was made (calendar time,
    microseconds since the epoch); ``deadline`` when it expires (monotonic
    seconds)."""

    request_id: str
    agent_id: str
    amount: int  # micro-USD
    at: int
    deadline: float


class _Agent:
    __slots__ = ("by_request", "oldest", "total")

    def __init__(self) -> None:
        self.by_request: dict[str, Reservation] = {}
        self.total = 0
        self.oldest = 0


class Reservations:
    """Open reservations by agent and request id."""

    def __init__(self) -> None:
        self._agents: dict[str, _Agent] = {}
        self._by_request: dict[str, Reservation] = {}
        self._deadlines: list[tuple[float, str]] = []  # a heap; stale entries skipped

    def __len__(self) -> int:
        return len(self._by_request)

    def get(self, request_id: str) -> Reservation | None:
        return self._by_request.get(request_id)

    def total_since(self, agent_id: str, since: int) -> int:
        """Micro-USD reserved by ``agent_id`` at or after ``since`` (µs)."""
        agent = self._agents.get(agent_id)
        if agent is None:
            return 0
        if since <= agent.oldest:
            return agent.total
        return sum(r.amount for r in agent.by_request.values() if r.at >= since)

    def put(self, reservation: Reservation) -> Reservation | None:
        """Adds ``reservation``, replacing (and returning) the one its
        request id held."""
        replaced = self.remove(reservation.request_id)
        agent = self._agents.get(reservation.agent_id)
        if agent is None:
            agent = self._agents[reservation.agent_id] = _Agent()
            agent.oldest = reservation.at
        agent.by_request[reservation.request_id] = reservation
        agent.total += reservation.amount
        agent.oldest = min(agent.oldest, reservation.at)
        self._by_request[reservation.request_id] = reservation
        heapq.heappush(self._deadlines, (reservation.deadline, reservation.request_id))
        return replaced

    def remove(self, request_id: str, only: Reservation | None = None) -> Reservation | None:
        """Removes the reservation of ``request_id`` (only if it is ``only``,
        when given) and returns it."""
        reservation = self._by_request.get(request_id)
        if reservation is None or (only is not None and reservation != only):
            return None
        del self._by_request[request_id]
        agent = self._agents[reservation.agent_id]
        del agent.by_request[request_id]
        if not agent.by_request:
            del self._agents[reservation.agent_id]
            return reservation
        agent.total -= reservation.amount
        if reservation.at == agent.oldest:
            agent.oldest = min(r.at for r in agent.by_request.values())
        return reservation

    def expired(self, now: float) -> list[Reservation]:
        """The reservations whose deadline is ``now`` (monotonic) or earlier,
        oldest deadline first. They stay open until removed."""
        heap = self._deadlines
        out: list[Reservation] = []
        seen: set[str] = set()
        while heap and heap[0][0] <= now:
            deadline, request_id = heapq.heappop(heap)
            reservation = self._by_request.get(request_id)
            # A replaced reservation left its old deadline behind: skip it.
            live = reservation is not None and reservation.deadline == deadline
            if live and request_id not in seen:
                assert reservation is not None
                seen.add(request_id)
                out.append(reservation)
        # Still open until the caller settles them: due again next time.
        for reservation in out:
            heapq.heappush(self._deadlines, (reservation.deadline, reservation.request_id))
        return out
