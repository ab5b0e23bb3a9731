"""The SQLite spend ledger: how it stores amounts and what it keeps in memory.
What every usage backend must do is in test_usage_contract.py."""

from __future__ import annotations

import asyncio
import math
import sqlite3
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from pdp.state import Database, SpendLedger
from tests._clock import START, ManualClock


@pytest.fixture
async def ledger(db: Database, clock: ManualClock) -> SpendLedger:
    return await SpendLedger.open(db, clock=clock)


async def test_amounts_round_half_even_to_micro_dollars(ledger: SpendLedger) -> None:
    low = await ledger.record("agent-a", 0.0000005, "half-down")  # 0.5 µUSD -> 0
    high = await ledger.record("agent-a", 0.0000015, "half-up")  # 1.5 µUSD -> 2
    assert (low.cost_usd, high.cost_usd) == (0.0, 0.000002)
    assert ledger.spent_since("agent-a", START) == 0.000002


@pytest.mark.parametrize(
    ("agent_id", "cost_usd", "request_id", "field"),
    [
        ("agent-a", math.nan, "req-1", "cost_usd"),
        ("agent-a", math.inf, "req-1", "cost_usd"),
        ("agent-a", -math.inf, "req-1", "cost_usd"),
        ("agent-a", -0.01, "req-1", "cost_usd"),
        ("agent-a", 1e300, "req-1", "cost_usd"),
        ("", 1.0, "req-1", "agent_id"),
        ("agent-a", 1.0, "", "request_id"),
    ],
)
async def test_bad_reports_are_rejected_naming_the_field(
    ledger: SpendLedger, db: Database, agent_id: str, cost_usd: float, request_id: str, field: str
) -> None:
    with pytest.raises(ValueError, match=field):
        await ledger.record(agent_id, cost_usd, request_id)

    async with db.connection.execute("SELECT count(*) FROM usage") as cursor:
        row = await cursor.fetchone()
    assert row is not None
    assert row[0] == 0


async def test_concurrent_distinct_reports_all_count(ledger: SpendLedger, db: Database) -> None:
    await asyncio.gather(
        *(ledger.record(f"agent-{index % 3}", 0.5, f"req-{index}") for index in range(90))
    )

    for agent in range(3):
        assert ledger.spent_since(f"agent-{agent}", START) == 15.0
    async with db.connection.execute("SELECT count(*) FROM usage") as cursor:
        row = await cursor.fetchone()
    assert row is not None
    assert row[0] == 90


async def test_reopen_loads_only_the_retention_window(db_path: Path, clock: ManualClock) -> None:
    db = await Database.open(db_path)
    ledger = await SpendLedger.open(db, clock=clock)
    await ledger.record("agent-a", 1.0, "old")
    clock.advance(days=20)
    await ledger.record("agent-a", 2.0, "new")
    await db.close()

    reopened = await Database.open(db_path)
    restored = await SpendLedger.open(reopened, clock=clock, retention=timedelta(days=10))
    # The old row is still known for idempotency, but no longer summed.
    old_again = await restored.record("agent-a", 1.0, "old")
    await reopened.close()

    assert restored.spent_since("agent-a", START - timedelta(days=1)) == 2.0
    assert old_again.duplicate


async def test_history_older_than_retention_is_forgotten_in_memory(
    db: Database, clock: ManualClock
) -> None:
    ledger = await SpendLedger.open(db, clock=clock, retention=timedelta(days=1))
    for index in range(10):
        await ledger.record("agent-a", 1.0, f"early-{index}")
    clock.advance(days=3)
    for index in range(10):
        await ledger.record("agent-a", 0.5, f"late-{index}")

    # Windows inside retention stay exact; a window reaching further back
    # sees only the retained history (memory stays bounded).
    assert ledger.spent_since("agent-a", START + timedelta(days=3)) == 5.0
    assert ledger.spent_since("agent-a", START + timedelta(days=2, hours=12)) == 5.0
    assert ledger.spent_since("agent-a", START - timedelta(days=1)) == 5.0


async def test_clock_stepping_back_keeps_sums_consistent(
    ledger: SpendLedger, clock: ManualClock
) -> None:
    await ledger.record("agent-a", 1.0, "req-1")
    clock.advance(seconds=-30)
    await ledger.record("agent-a", 2.0, "req-2")

    assert ledger.spent_since("agent-a", START - timedelta(minutes=1)) == 3.0
    assert ledger.spent_since("agent-a", START) == 3.0


async def test_naive_clock_is_refused(db: Database) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        await SpendLedger.open(db, clock=ManualClock(datetime(2025, 1, 1)))


async def test_amounts_are_stored_as_integer_micro_dollars(
    ledger: SpendLedger, db_path: Path
) -> None:
    await ledger.record("agent-a", 12.345678, "req-1")
    with sqlite3.connect(db_path) as raw:
        row = raw.execute("SELECT amount_micro_usd, typeof(amount_micro_usd) FROM usage").fetchone()
    assert row == (12_345_678, "integer")
