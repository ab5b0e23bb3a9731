"""The spend ledger: durable, idempotent usage records and in-memory sums."""

from __future__ import annotations

import asyncio
import math
import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from pdp.state import Database, SpendLedger, UsageConflictError, UsageRecord
from tests._clock import START, ManualClock

if TYPE_CHECKING:
    # Checked by mypy only: the ledger must satisfy the engine's protocol.
    from pdp.engine._types import SpendView


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def ledger(db: Database, clock: ManualClock) -> SpendLedger:
    return await SpendLedger.open(db, clock=clock)


async def test_ledger_is_a_spend_view(ledger: SpendLedger) -> None:
    view: SpendView = ledger
    assert view.spent_since("nobody", START - timedelta(days=1)) == 0.0


async def test_record_returns_the_stored_record(ledger: SpendLedger) -> None:
    record = await ledger.record("agent-a", 1.5, "req-1")

    assert record == UsageRecord("req-1", "agent-a", 1.5, START, duplicate=False)
    assert record.recorded_at.tzinfo is not None
    assert ledger.spent_since("agent-a", START) == 1.5


async def test_duplicate_report_is_not_counted_twice(
    ledger: SpendLedger, clock: ManualClock
) -> None:
    await ledger.record("agent-a", 2.0, "req-1")
    clock.advance(minutes=5)

    again = await ledger.record("agent-a", 2.0, "req-1")

    # The stored record (with its original time) comes back, marked duplicate.
    assert again == UsageRecord("req-1", "agent-a", 2.0, START, duplicate=True)
    assert ledger.spent_since("agent-a", START) == 2.0


@pytest.mark.parametrize(("agent_id", "cost_usd"), [("agent-b", 2.0), ("agent-a", 2.5)])
async def test_same_request_id_with_other_agent_or_amount_conflicts(
    ledger: SpendLedger, agent_id: str, cost_usd: float
) -> None:
    await ledger.record("agent-a", 2.0, "req-1")

    with pytest.raises(UsageConflictError, match="req-1") as caught:
        await ledger.record(agent_id, cost_usd, "req-1")

    assert caught.value.request_id == "req-1"
    assert ledger.spent_since("agent-a", START) == 2.0
    assert ledger.spent_since("agent-b", START) == 0.0


async def test_spent_since_sums_only_the_window(ledger: SpendLedger, clock: ManualClock) -> None:
    # Spend at 12:00, 13:00, 14:00 (day 1) and 12:00 the next day.
    for index, cost in enumerate([1.0, 2.0, 4.0]):
        await ledger.record("agent-a", cost, f"day1-{index}")
        clock.advance(hours=1)
    clock.now = START + timedelta(days=1)
    await ledger.record("agent-a", 8.0, "day2")
    await ledger.record("agent-b", 100.0, "other-agent")

    assert ledger.spent_since("agent-a", START - timedelta(days=30)) == 15.0
    assert ledger.spent_since("agent-a", START) == 15.0  # since is inclusive
    assert ledger.spent_since("agent-a", START + timedelta(microseconds=1)) == 14.0
    assert ledger.spent_since("agent-a", START + timedelta(hours=1)) == 14.0
    assert ledger.spent_since("agent-a", START + timedelta(hours=2, minutes=30)) == 8.0
    assert ledger.spent_since("agent-a", START + timedelta(days=1)) == 8.0
    assert ledger.spent_since("agent-a", START + timedelta(days=2)) == 0.0
    assert ledger.spent_since("agent-b", START) == 100.0
    assert ledger.spent_since("agent-c", START) == 0.0


async def test_spent_since_accepts_any_timezone(ledger: SpendLedger, clock: ManualClock) -> None:
    await ledger.record("agent-a", 3.0, "req-1")
    clock.advance(hours=2)
    await ledger.record("agent-a", 4.0, "req-2")
    # 13:00 UTC written as 15:00 at UTC+2.
    since = datetime(2025, 3, 1, 15, 0, tzinfo=timezone(timedelta(hours=2)))
    assert ledger.spent_since("agent-a", since) == 4.0


async def test_sums_are_exact_in_micro_dollars(ledger: SpendLedger) -> None:
    for index in range(10):
        await ledger.record("agent-a", 0.1, f"req-{index}")
    # A float sum would give 0.9999999999999999.
    assert ledger.spent_since("agent-a", START) == 1.0


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


async def test_zero_cost_is_accepted(ledger: SpendLedger) -> None:
    record = await ledger.record("agent-a", 0, "free")
    assert record.cost_usd == 0.0
    assert not record.duplicate


async def test_concurrent_duplicates_count_once(ledger: SpendLedger) -> None:
    results = await asyncio.gather(*(ledger.record("agent-a", 0.75, "req-1") for _ in range(50)))

    assert sum(not result.duplicate for result in results) == 1
    assert {result.recorded_at for result in results} == {START}
    assert ledger.spent_since("agent-a", START) == 0.75


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


async def test_cancelled_caller_still_gets_its_usage_counted(ledger: SpendLedger) -> None:
    task = asyncio.create_task(ledger.record("agent-a", 1.0, "req-1"))
    await asyncio.sleep(0)  # let the write start
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    # The write finishes regardless; a retry of the same report is a duplicate.
    again = await ledger.record("agent-a", 1.0, "req-1")
    assert again.duplicate
    assert ledger.spent_since("agent-a", START) == 1.0


async def test_ledger_survives_close_and_reopen(db_path: Path, clock: ManualClock) -> None:
    db = await Database.open(db_path)
    ledger = await SpendLedger.open(db, clock=clock)
    for index in range(20):
        await ledger.record(f"agent-{index % 2}", 0.05 * index, f"req-{index}")
        clock.advance(minutes=30)
    windows = [START + timedelta(hours=hours) for hours in (0, 2, 5, 9)]
    before = {
        (agent, since): ledger.spent_since(agent, since)
        for agent in ("agent-0", "agent-1")
        for since in windows
    }
    await db.close()

    reopened = await Database.open(db_path)
    restored = await SpendLedger.open(reopened, clock=clock)
    after = {key: restored.spent_since(*key) for key in before}
    duplicate = await restored.record("agent-1", 0.05, "req-1")
    await reopened.close()

    assert after == before
    assert before["agent-0", START] == pytest.approx(4.5)
    assert duplicate.duplicate


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
        await SpendLedger.open(db, clock=lambda: datetime(2025, 1, 1))


async def test_amounts_are_stored_as_integer_micro_dollars(
    ledger: SpendLedger, db_path: Path
) -> None:
    await ledger.record("agent-a", 12.345678, "req-1")
    with sqlite3.connect(db_path) as raw:
        row = raw.execute("SELECT amount_micro_usd, typeof(amount_micro_usd) FROM usage").fetchone()
    assert row == (12_345_678, "integer")
