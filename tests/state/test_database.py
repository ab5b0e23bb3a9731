"""The state database file: schema, migrations, WAL, clear errors."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from pdp.state import Database, SpendLedger, StateError
from pdp.state._database import SCHEMA_VERSION


def _raw(path: Path) -> sqlite3.Connection:
    # A plain sqlite3 connection, to see the file as another program would.
    return sqlite3.connect(path)


def _tables(path: Path) -> set[str]:
    with _raw(path) as raw:
        rows = raw.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    return {name for (name,) in rows}


async def test_open_creates_schema_and_sets_user_version(db_path: Path) -> None:
    db = await Database.open(db_path)
    await db.close()

    assert {"usage", "decision_log", "last_good_snapshot"} <= _tables(db_path)
    with _raw(db_path) as raw:
        (version,) = raw.execute("PRAGMA user_version").fetchone()
    assert version == SCHEMA_VERSION >= 1


async def test_database_is_in_wal_mode(db: Database) -> None:
    assert db.path.is_file()
    with _raw(db.path) as raw:
        (mode,) = raw.execute("PRAGMA journal_mode").fetchone()
    assert mode == "wal"


async def test_reopen_keeps_data_and_schema(db_path: Path) -> None:
    db = await Database.open(db_path)
    ledger = await SpendLedger.open(db)
    await ledger.record("agent-a", 1.25, "req-1")
    await db.close()

    for _ in range(2):
        reopened = await Database.open(db_path)
        ledger = await SpendLedger.open(reopened)
        await reopened.close()
        with _raw(db_path) as raw:
            (version,) = raw.execute("PRAGMA user_version").fetchone()
            (count,) = raw.execute("SELECT count(*) FROM usage").fetchone()
        assert version == SCHEMA_VERSION
        assert count == 1


async def test_missing_directory_is_a_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-dir"
    with pytest.raises(StateError, match="does not exist") as caught:
        await Database.open(missing / "state.db")
    assert str(missing) in str(caught.value)
    assert not missing.exists()


async def test_newer_schema_is_refused(db_path: Path) -> None:
    with _raw(db_path) as raw:
        raw.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")
    with pytest.raises(StateError, match="newer than this version"):
        await Database.open(db_path)


def _write_garbage(path: Path) -> None:
    path.write_bytes(b"this is not a sqlite database, just some bytes" * 100)


async def test_a_file_that_is_not_a_database_is_refused(db_path: Path) -> None:
    _write_garbage(db_path)
    with pytest.raises(StateError, match=str(db_path)):
        await Database.open(db_path)


async def test_failed_transaction_rolls_back_and_the_next_one_works(db: Database) -> None:
    async def insert_then_fail() -> None:
        async with db.transaction() as connection:
            await connection.execute(
                "INSERT INTO usage (request_id, agent_id, amount_micro_usd, recorded_at_us)"
                " VALUES ('req-1', 'agent-a', 5, 0)"
            )
            await connection.execute("INSERT INTO no_such_table VALUES (1)")

    with pytest.raises(StateError, match="write failed"):
        await insert_then_fail()
    async with db.transaction() as connection:
        await connection.execute(
            "INSERT INTO usage (request_id, agent_id, amount_micro_usd, recorded_at_us)"
            " VALUES ('req-2', 'agent-a', 5, 0)"
        )
    async with db.connection.execute("SELECT request_id FROM usage") as cursor:
        rows = [tuple(row) for row in await cursor.fetchall()]
    assert rows == [("req-2",)]


async def test_closed_database_is_a_state_error(db_path: Path) -> None:
    db = await Database.open(db_path)
    await db.close()
    await db.close()  # twice is harmless
    assert db.closed
    with pytest.raises(StateError, match="closed"):
        _ = db.connection


async def test_writes_queued_together_fail_alone(db: Database) -> None:
    # Queued in one step, the three share a transaction; the one that breaks
    # a constraint fails its caller only, and the others are committed.
    def insert(request_id: str) -> Callable[[sqlite3.Connection], int]:
        def work(connection: sqlite3.Connection) -> int:
            cursor = connection.execute(
                "INSERT INTO usage (request_id, agent_id, amount_micro_usd, recorded_at_us)"
                " VALUES (?, 'agent-a', 1, 0)",
                (request_id,),
            )
            return cursor.rowcount

        return work

    await db.write(insert("req-taken"))
    results = await asyncio.gather(
        db.write(insert("req-1")),
        db.write(insert("req-taken")),
        db.write(insert("req-2")),
        return_exceptions=True,
    )

    assert results[0] == 1 and results[2] == 1
    assert isinstance(results[1], StateError)
    assert "UNIQUE constraint failed" in str(results[1])
    with _raw(db.path) as raw:
        rows = raw.execute("SELECT request_id FROM usage ORDER BY request_id").fetchall()
    assert rows == [("req-1",), ("req-2",), ("req-taken",)]


async def test_a_write_is_made_when_its_caller_is_cancelled_and_the_database_closes(
    db_path: Path,
) -> None:
    db = await Database.open(db_path)

    def insert(connection: sqlite3.Connection) -> None:
        connection.execute(
            "INSERT INTO usage (request_id, agent_id, amount_micro_usd, recorded_at_us)"
            " VALUES ('req-1', 'agent-a', 1, 0)"
        )

    caller = asyncio.ensure_future(db.write(insert))
    await asyncio.sleep(0)  # queued
    caller.cancel()
    await db.close()

    assert caller.cancelled()
    with _raw(db_path) as raw:
        assert raw.execute("SELECT count(*) FROM usage").fetchone() == (1,)
