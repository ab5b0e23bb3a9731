"""A sidecar's copy, in memory, of the usage kept in Redis: what the engine
reads on the hot path (spend, open reservations, call counts), kept up to
date from the change stream every sidecar's writes append to.

The copy may lag the other sidecars by the stream's delivery (about a
millisecond on one host); that never lets a budget or a limit be exceeded,
because every charge is checked again in Redis, atomically, and a refused
charge waits for the copy to catch up before the call is decided again.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from pdp.engine import CounterKey
from pdp.state._counters import decode_key
from pdp.state._reservations import Reservation, Reservations
from pdp.state._windows import Windows

__all__ = ["Mirror", "parse_event_id"]

_MICROS = 1_000_000


def parse_event_id(event_id: str | bytes) -> tuple[int, int]:
    """A stream entry id ("1700000000000-3") as a comparable pair."""
    text = event_id.decode() if isinstance(event_id, bytes) else event_id
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)


def _list(value: Any) -> list[Any]:
    # Lua's JSON encoder writes an empty array as {}.
    return value if isinstance(value, list) else []


class Mirror:
    """Spend, reservations and call counts as the stream says they are.
    ``deadline`` converts a reservation's steady expiry into this process's
    monotonic clock."""

    def __init__(self) -> None:
        self.spend: Windows[str] = Windows()
        self.reservations = Reservations()
        self.calls: Windows[CounterKey] = Windows()
        self.last = (0, 0)

    @classmethod
    def load(cls, document: str, *, steady: float, monotonic: float) -> Mirror:
        """A copy from the LOAD script's JSON document."""
        data = json.loads(document)
        mirror = cls()
        mirror.last = parse_event_id(data["last"])
        for agent, total, members in _list(data.get("spend")):
            for second, amount in _series(int(total), _list(members)):
                mirror.spend.add(agent, amount, second * _MICROS)
        for agent, flat in _list(data.get("reservations")):
            flat = _list(flat)
            for request_id, value in zip(flat[::2], flat[1::2], strict=True):
                amount, at, expires = json.loads(value)
                deadline = monotonic + float(expires) - steady
                mirror.reservations.put(
                    Reservation(request_id, agent, int(amount), int(at), deadline)
                )
        for text, total, members in _list(data.get("calls")):
            key = decode_key(text)
            if key is None:
                continue
            for second, count in _series(int(total), _list(members)):
                mirror.calls.add(key, count, second)
        return mirror

    def apply(self, event: Sequence[Any], *, steady: float, monotonic: float) -> None:
        """Applies one change from the stream (see _redis_scripts)."""
        kind = event[0]
        if kind == "s":
            _, agent, amount, at = event
            self.spend.add(agent, int(amount), int(at))
        elif kind == "r":
            _, agent, request_id, amount, at, expires = event
            deadline = monotonic + float(expires) - steady
            self.reservations.put(Reservation(request_id, agent, int(amount), int(at), deadline))
        elif kind == "x":
            self.reservations.remove(event[2])
        elif kind == "c":
            key = decode_key(event[1])
            if key is not None:
                self.calls.add(key, int(event[3]), int(event[2]))


def _series(total: int, members: list[str]) -> list[tuple[int, int]]:
    """(second, amount) of a series from its members "second:total before"."""
    points = [
        (int(second), int(before)) for second, _, before in (m.partition(":") for m in members)
    ]
    out: list[tuple[int, int]] = []
    for index, (second, before) in enumerate(points):
        after = points[index + 1][1] if index + 1 < len(points) else total
        if after > before:
            out.append((second, after - before))
    return out
