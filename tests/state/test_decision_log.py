"""The decision log: sync append on the hot path, batched durable writes."""

from __future__ import annotations

import asyncio
import inspect
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pdp.state import Database, DecisionLog, DecisionRecord, SpendLedger, StateError

START = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def make_record(index: int, agent_id: str = "agent-a", **changes: object) -> DecisionRecord:
    fields: dict[str, object] = {
        "decision_id": f"dec-{index}",
        "decided_at": START + timedelta(milliseconds=index),
        "agent_id": agent_id,
        "decision": "ALLOW",
        "policies_fired": (),
        "pii_counts": {},
        "snapshot_revision": 7,
        "request_id": f"req-{index}",
        "approval_id": "",
    }
    fields.update(changes)
    return DecisionRecord(**fields)  # type: ignore[arg-type]


def stored_count(path: Path) -> int:
    with sqlite3.connect(path) as raw:
        (count,) = raw.execute("SELECT count(*) FROM decision_log").fetchone()
    return int(count)


@pytest.fixture
async def log(db: Database) -> AsyncIterator[DecisionLog]:
    decision_log = DecisionLog(db)
    yield decision_log
    await decision_log.close()


def test_append_is_synchronous() -> None:
    assert not inspect.iscoroutinefunction(DecisionLog.append)


async def test_append_queues_and_flush_writes(log: DecisionLog, db: Database) -> None:
    result = log.append(make_record(1))  # type: ignore[func-returns-value]

    assert result is None
    assert log.pending == 1
    assert stored_count(db.path) == 0
    await log.flush()
    assert log.pending == 0
    assert stored_count(db.path) == 1


async def test_close_flushes_what_is_pending(db: Database) -> None:
    log = DecisionLog(db)
    await log.start()
    for index in range(25):
        log.append(make_record(index))
    await log.close()

    assert stored_count(db.path) == 25


async def test_started_log_writes_without_explicit_flush(db: Database) -> None:
    log = DecisionLog(db, flush_interval=0.01)
    await log.start()
    log.append(make_record(1))
    # Wait for the flusher's own write (bounded by the test timeout).
    while log.pending or stored_count(db.path) == 0:  # noqa: ASYNC110
        await asyncio.sleep(0.01)
    await log.close()

    assert stored_count(db.path) == 1


async def test_records_round_trip(log: DecisionLog) -> None:
    blocked = make_record(
        1,
        decision="BLOCK",
        policies_fired=("pol-pii", "pol-cost"),
        pii_counts={"ssn": 1, "credit_card": 2},
        approval_id="appr-9",
    )
    log.append(blocked)

    (stored,) = await log.recent()

    assert stored == blocked
    assert stored.decided_at.tzinfo is not None
    assert dict(stored.pii_counts) == {"ssn": 1, "credit_card": 2}


async def test_recent_is_newest_first_with_limit_and_agent_filter(log: DecisionLog) -> None:
    for index in range(10):
        log.append(make_record(index, agent_id="agent-a" if index % 2 else "agent-b"))

    newest = await log.recent(limit=3)
    only_a = await log.recent(agent_id="agent-a")

    assert [r.decision_id for r in newest] == ["dec-9", "dec-8", "dec-7"]
    assert [r.decision_id for r in only_a] == ["dec-9", "dec-7", "dec-5", "dec-3", "dec-1"]
    assert await log.recent(agent_id="agent-z") == []


async def test_schema_has_no_column_for_request_text_or_pii_values(db: Database) -> None:
    # Only ids, the decision, times, counts and policy ids: nothing that could
    # carry prompt text, tool arguments or a PII value.
    with sqlite3.connect(db.path) as raw:
        columns = {row[1]: row[2] for row in raw.execute("PRAGMA table_info(decision_log)")}
    assert columns == {
        "seq": "INTEGER",
        "decision_id": "TEXT",
        "decided_at_us": "INTEGER",
        "agent_id": "TEXT",
        "decision": "TEXT",
        "policies_fired_json": "TEXT",
        "pii_counts_json": "TEXT",
        "snapshot_revision": "INTEGER",
        "request_id": "TEXT",
        "approval_id": "TEXT",
    }


async def test_pii_types_and_counts_are_stored_not_values(log: DecisionLog, db: Database) -> None:
    log.append(make_record(1, decision="BLOCK", pii_counts={"ssn": 2, "email": 1}))
    await log.flush()

    with sqlite3.connect(db.path) as raw:
        (pii_json,) = raw.execute("SELECT pii_counts_json FROM decision_log").fetchone()
    assert pii_json == '{"email":1,"ssn":2}'


async def test_beyond_max_pending_the_oldest_are_dropped_and_counted(db: Database) -> None:
    log = DecisionLog(db, max_pending=5)
    for index in range(12):
        log.append(make_record(index))

    assert log.dropped == 7
    assert log.pending == 5
    stored = await log.recent()
    await log.close()
    assert [r.decision_id for r in stored] == [f"dec-{index}" for index in range(11, 6, -1)]


async def test_flush_writes_in_batches_of_max_batch(db: Database) -> None:
    log = DecisionLog(db, max_batch=7)
    for index in range(50):
        log.append(make_record(index))
    await log.close()

    assert stored_count(db.path) == 50
    assert log.dropped == 0


async def test_failed_write_keeps_records_queued(db_path: Path) -> None:
    db = await Database.open(db_path)
    log = DecisionLog(db)
    log.append(make_record(1))
    log.append(make_record(2))
    await db.close()

    with pytest.raises(StateError, match="closed"):
        await log.flush()

    assert log.pending == 2
    assert log.dropped == 0
    assert stored_count(db_path) == 0


async def test_append_after_close_raises(db: Database) -> None:
    log = DecisionLog(db)
    await log.close()
    with pytest.raises(StateError, match="closed"):
        log.append(make_record(1))


async def test_naive_decided_at_is_refused_at_append(log: DecisionLog) -> None:
    with pytest.raises(ValueError, match="decided_at"):
        log.append(make_record(1, decided_at=datetime(2025, 3, 1, 12, 0)))
    assert log.pending == 0


async def test_log_and_ledger_write_concurrently_without_loss(db: Database) -> None:
    log = DecisionLog(db, flush_interval=0.001, max_batch=10)
    await log.start()
    ledger = await SpendLedger.open(db)

    async def report(index: int) -> None:
        log.append(make_record(index))
        await ledger.record("agent-a", 0.01, f"req-{index}")
        log.append(make_record(1000 + index))

    await asyncio.gather(*(report(index) for index in range(200)))
    await log.close()

    assert stored_count(db.path) == 400
    since = START - timedelta(days=365 * 100)
    assert ledger.spent_since("agent-a", since) == 2.0


async def test_a_record_that_makes_no_row_is_dropped_and_counted_not_retried(
    log: DecisionLog,
) -> None:
    # PII counts keyed by other than text have no JSON object in a stable
    # order: that record is dropped, the rest of its batch is written.
    log.append(make_record(1))
    log.append(make_record(2, pii_counts={1: 1, "ssn": 2}))
    log.append(make_record(3))
    await log.flush()

    assert [r.decision_id for r in await log.recent()] == ["dec-3", "dec-1"]
    assert log.dropped == 1
    assert log.pending == 0
