"""The SQLite call counters: counted in memory at once, written in the
background, swept past the retention, durable across a kill -9 once written.
What every usage backend does is in test_usage_contract.py."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pdp.state import CallCounters, Database, StateError
from tests._clock import START, ManualClock

T0 = int(START.timestamp())
KEY = ("agent", "agent-a")


def stored(db_path: Path) -> list[tuple[str, int, int]]:
    with sqlite3.connect(db_path) as raw:
        rows = raw.execute("SELECT counter_key, second, count FROM call_counts ORDER BY 1, 2")
        return list(rows)


async def test_counts_are_visible_at_once_and_written_in_the_background(
    db: Database, db_path: Path, clock: ManualClock
) -> None:
    counters = await CallCounters.open(db, clock=clock, flush_interval=0.01)
    counters.start()
    for _ in range(3):
        counters.add(KEY, T0)
    counters.add(("agent_tool", "agent-a", "wéb"), T0 + 1)

    assert counters.calls_since(KEY, T0) == 3
    for _ in range(200):
        if len(stored(db_path)) == 2:
            break
        await asyncio.sleep(0.01)
    assert stored(db_path) == [
        ('["agent","agent-a"]', T0, 3),
        ('["agent_tool","agent-a","wéb"]', T0 + 1, 1),
    ]
    counters.add(KEY, T0)
    await counters.close()
    assert stored(db_path)[0] == ('["agent","agent-a"]', T0, 4)


async def test_counts_past_the_retention_leave_memory(
    db: Database, db_path: Path, clock: ManualClock
) -> None:
    counters = await CallCounters.open(db, clock=clock, retention=3600)
    counters.add(KEY, T0)
    counters.add(("agent", "agent-b"), T0 + 10)
    await counters.flush()
    clock.advance(hours=1, seconds=15)
    counters.add(KEY, T0 + 3615)
    await counters.flush()

    # The rows stay until the state's pruner deletes them (test_pruner.py).
    assert len(stored(db_path)) == 3
    assert counters.calls_since(KEY, 0) == 1
    assert counters.calls_since(("agent", "agent-b"), 0) == 0
    await counters.close()


async def test_rows_this_version_did_not_write_are_ignored(
    db: Database, db_path: Path, clock: ManualClock
) -> None:
    async with db.transaction() as connection:
        await connection.executemany(
            "INSERT INTO call_counts (counter_key, second, count) VALUES (?, ?, ?)",
            [("not json", T0, 1), ('{"a": 1}', T0, 1), ('["agent","agent-a"]', T0, 2)],
        )
    counters = await CallCounters.open(db, clock=clock)
    assert counters.calls_since(KEY, T0) == 2
    await counters.close()


async def test_closed_counters_refuse_counts(db: Database, clock: ManualClock) -> None:
    counters = await CallCounters.open(db, clock=clock)
    await counters.close()
    with pytest.raises(StateError, match="closed"):
        counters.add(KEY, T0)


async def test_a_failed_write_keeps_the_counts_queued(
    db: Database, db_path: Path, clock: ManualClock
) -> None:
    counters = await CallCounters.open(db, clock=clock)
    async with db.transaction() as connection:
        await connection.execute(
            "CREATE TRIGGER full BEFORE INSERT ON call_counts"
            " BEGIN SELECT RAISE(ABORT, 'disk full'); END"
        )
    counters.add(KEY, T0)
    with pytest.raises(StateError, match="disk full"):
        await counters.flush()
    counters.add(KEY, T0)
    async with db.transaction() as connection:
        await connection.execute("DROP TRIGGER full")

    await counters.flush()

    assert stored(db_path) == [('["agent","agent-a"]', T0, 2)]
    assert counters.calls_since(KEY, T0) == 2
    await counters.close()


# Counts calls through the usage port, waits past the flush interval, says
# "done", then waits to be killed: nothing closes the database.
_CHILD = """
import asyncio, sys, time
from pdp.engine import CallCharge
from pdp.state import Database, SqliteUsage

async def main() -> None:
    db = await Database.open(sys.argv[1])
    usage = await SqliteUsage.open(db)
    usage.start()
    second = int(time.time())
    for _ in range(int(sys.argv[2])):
        await usage.charge([CallCharge(("agent", "agent-a"), second)])
    await asyncio.sleep(0.3)
    print("done", flush=True)
    await asyncio.sleep(3600)

asyncio.run(main())
"""


async def test_written_counts_survive_kill_9(db_path: Path) -> None:
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _CHILD,
        str(db_path),
        "150",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert child.stdout is not None and child.stderr is not None
    try:
        line = await child.stdout.readline()
    finally:
        child.send_signal(signal.SIGKILL)
        errors = await child.stderr.read()
        await child.stdout.read()
        await child.wait()
    assert line == b"done\n", errors.decode(errors="replace")

    db = await Database.open(db_path)
    counters = await CallCounters.open(db)
    await counters.close()
    await db.close()
    day_ago = int((datetime.now(UTC) - timedelta(days=1)).timestamp())
    assert counters.calls_since(KEY, day_ago) == 150
