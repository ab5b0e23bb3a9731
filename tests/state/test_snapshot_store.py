"""The last good snapshot: saved, replaced, and found again after a restart."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pdp.state import Database, SnapshotStore, StoredSnapshot

ACTIVATED = datetime(2025, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
DOCUMENT = "revision: 3\nagents: []\npolicies: []\n# ünïcödé survives\n"


async def test_load_before_any_save_is_none(db: Database) -> None:
    assert await SnapshotStore(db).load() is None


async def test_save_then_load(db: Database) -> None:
    store = SnapshotStore(db)
    await store.save(DOCUMENT, 3, "file:///etc/pdp/snapshot.yaml", ACTIVATED)

    assert await store.load() == StoredSnapshot(
        DOCUMENT, 3, "file:///etc/pdp/snapshot.yaml", ACTIVATED
    )


async def test_save_replaces_the_previous_snapshot(db: Database) -> None:
    store = SnapshotStore(db)
    await store.save(DOCUMENT, 3, "file:///a.yaml", ACTIVATED)
    later = ACTIVATED + timedelta(minutes=5)
    await store.save("revision: 4\n", 4, "https://control.example/v1/snapshot", later)

    loaded = await store.load()
    with sqlite3.connect(db.path) as raw:
        (rows,) = raw.execute("SELECT count(*) FROM last_good_snapshot").fetchone()

    assert loaded == StoredSnapshot(
        "revision: 4\n", 4, "https://control.example/v1/snapshot", later
    )
    assert rows == 1


async def test_saved_snapshot_survives_reopen(db_path: Path) -> None:
    db = await Database.open(db_path)
    await SnapshotStore(db).save(DOCUMENT, 3, "file:///a.yaml", ACTIVATED)
    await db.close()

    reopened = await Database.open(db_path)
    loaded = await SnapshotStore(reopened).load()
    await reopened.close()

    assert loaded == StoredSnapshot(DOCUMENT, 3, "file:///a.yaml", ACTIVATED)
    assert loaded.activated_at.tzinfo is not None


async def test_naive_activation_time_is_refused(db: Database) -> None:
    store = SnapshotStore(db)
    with pytest.raises(ValueError, match="activated_at"):
        await store.save(DOCUMENT, 3, "file:///a.yaml", datetime(2025, 3, 1, 12, 0))
    assert await store.load() is None
