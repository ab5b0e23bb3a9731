"""The outbox: events for the control plane that must not be lost, kept in
the state database until the control plane has taken them, and the
sidecar's own id, kept there too so that it survives restarts."""

from __future__ import annotations

import json
import socket
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import aiosqlite

from pdp.state._database import Database, from_micros, to_micros

__all__ = ["Outbox", "OutboxEvent", "sidecar_id"]

_INSERT = "INSERT OR IGNORE INTO outbox (event_id, type, time_us, data_json) VALUES (?, ?, ?, ?)"


@dataclass(frozen=True, slots=True)
class OutboxEvent:
    """One event: a UUID ``event_id`` (the control plane takes each id
    once), its ``type``, when it happened and its JSON ``data``. ``seq`` is
    its place in the outbox (0 until stored)."""

    event_id: str
    type: str
    time: datetime
    data: Mapping[str, Any] = field(default_factory=dict)
    seq: int = 0


def _row(event: OutboxEvent) -> tuple[str, str, int, str]:
    data = json.dumps(dict(event.data), ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return (event.event_id, event.type, to_micros(event.time, "time"), data)


class Outbox:
    """Events waiting for the control plane, oldest first."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(self, events: Iterable[OutboxEvent]) -> None:
        """Stores ``events`` in one transaction (an id already stored is kept once)."""
        rows = [_row(e) for e in events]
        async with self._db.transaction() as connection:
            await connection.executemany(_INSERT, rows)

    @staticmethod
    async def add_within(connection: aiosqlite.Connection, events: Iterable[OutboxEvent]) -> None:
        """Stores ``events`` inside a transaction the caller holds, so that
        they commit with what the caller writes (an approval and its event)."""
        await connection.executemany(_INSERT, [_row(e) for e in events])

    async def peek(self, limit: int) -> list[OutboxEvent]:
        """The oldest ``limit`` events, left in place."""
        async with self._db.connection.execute(
            "SELECT seq, event_id, type, time_us, data_json FROM outbox ORDER BY seq LIMIT ?",
            (limit,),
        ) as cursor:
            rows = await cursor.fetchall()
        return [
            OutboxEvent(event_id, kind, from_micros(time_us), json.loads(data), seq)
            for seq, event_id, kind, time_us, data in rows
        ]

    async def remove(self, seqs: Iterable[int]) -> None:
        """Forgets events the control plane took (or refused for good)."""
        async with self._db.transaction() as connection:
            await connection.executemany("DELETE FROM outbox WHERE seq = ?", [(s,) for s in seqs])

    async def count(self) -> int:
        async with self._db.connection.execute("SELECT COUNT(*) FROM outbox") as cursor:
            row = await cursor.fetchone()
        return int(row[0]) if row else 0


async def sidecar_id(db: Database) -> str:
    """This sidecar's id: made once (host name and random characters) and
    kept in the state database, so a restarted sidecar keeps it."""
    candidate = f"{socket.gethostname()[:60]}-{uuid.uuid4().hex[:12]}"
    async with db.transaction() as connection:
        await connection.execute(
            "INSERT OR IGNORE INTO sidecar_meta (key, value) VALUES ('sidecar_id', ?)",
            (candidate,),
        )
        async with connection.execute(
            "SELECT value FROM sidecar_meta WHERE key = 'sidecar_id'"
        ) as cursor:
            row = await cursor.fetchone()
    assert row is not None
    return str(row[0])
