"""The last good snapshot, kept so a restarted sidecar serves at once, before
its snapshot source answers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pdp.state._database import Database, from_micros, to_micros

__all__ = ["SnapshotStore", "StoredSnapshot"]


@dataclass(frozen=True, slots=True)
class StoredSnapshot:
    """A snapshot document as it was activated: its text, its revision, where
    it came from (a file path or URL) and when it became active."""

    document: str
    revision: int
    source: str
    activated_at: datetime


class SnapshotStore:
    """Holds one snapshot: each save replaces the previous one atomically."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def save(self, document: str, revision: int, source: str, activated_at: datetime) -> None:
        activated_at_us = to_micros(activated_at, "activated_at")
        async with self._db.transaction() as connection:
            await connection.execute(
                "INSERT INTO last_good_snapshot"
                " (id, document, revision, source, activated_at_us) VALUES (1, ?, ?, ?, ?)"
                " ON CONFLICT (id) DO UPDATE SET document = excluded.document,"
                " revision = excluded.revision, source = excluded.source,"
                " activated_at_us = excluded.activated_at_us",
                (document, revision, source, activated_at_us),
            )

    async def load(self) -> StoredSnapshot | None:
        """The saved snapshot, or None if none was ever saved."""
        async with self._db.connection.execute(
            "SELECT document, revision, source, activated_at_us FROM last_good_snapshot"
            " WHERE id = 1"
        ) as cursor:
            row = await cursor.fetchone()
        if row is None:
            return None
        document, revision, source, activated_at_us = row
        return StoredSnapshot(document, revision, source, from_micros(activated_at_us))
