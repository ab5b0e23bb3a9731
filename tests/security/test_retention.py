"""The state file stops growing under steady load: one pruner deletes, in
small batches, the decisions older than ``--decision-log-retention`` (or
beyond ``--decision-log-max-rows``), the traces and incidents older than
that retention too, the usage older than ``--retention`` and the call
counts past the longest window, and SQLite reuses the pages.

A real sidecar serves rounds of real gRPC calls (decisions, call counts,
reservations, usage reports) while the clock moves a week per round."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from pdp.state import USAGE_RETENTION_FLOOR
from pdp.v1 import policy_decision_service_pb2 as pb
from tests._clock import ManualClock
from tests._policies import daily_budget, document, rate_limit
from tests.conftest import RunningSidecar, StartSidecar

ROUNDS = 12
CALLS = 150
DAYS_PER_ROUND = 7

POLICIES = document(daily_budget(1000.0, mode="monitor"), rate_limit(1000, 60, mode="monitor"))


def file_size(state: Path) -> int:
    wal = state.with_name(state.name + "-wal")
    return state.stat().st_size + (wal.stat().st_size if wal.exists() else 0)


def count(state: Path, table: str) -> int:
    with sqlite3.connect(state) as raw:
        (rows,) = raw.execute(f"SELECT count(*) FROM {table}").fetchone()
    return int(rows)


async def one_round(sidecar: RunningSidecar, round_number: int, clock: ManualClock) -> None:
    """A week of traffic compressed: calls spread over seconds, half of them
    reported, the other half left to expire."""
    for index in range(CALLS):
        request_id = f"r{round_number}-{index}"
        await sidecar.stub.Enforce(
            pb.EnforceRequest(
                agent_id="chatbot", input="hi", estimated_cost_usd=0.01, request_id=request_id
            )
        )
        if index % 2:
            await sidecar.stub.ReportUsage(
                pb.ReportUsageRequest(agent_id="chatbot", cost_usd=0.01, request_id=request_id)
            )
        clock.advance(seconds=3)
    clock.advance(days=DAYS_PER_ROUND)


async def test_the_state_file_stops_growing_under_steady_load(
    start_sidecar: StartSidecar, tmp_path: Path
) -> None:
    clock = ManualClock()
    state = tmp_path / "state.db"
    sidecar = await start_sidecar(
        POLICIES,
        state=state,
        clock=clock,
        decision_log_retention=2 * 86400,
        prune_interval=3600,  # pruned by the test, between rounds
    )
    inner = sidecar.sidecar
    assert inner.pruner is not None
    sizes: list[int] = []
    for round_number in range(ROUNDS):
        await one_round(sidecar, round_number, clock)
        await inner.settle_expired()
        await inner.flush_state()
        await inner.pruner.prune()
        sizes.append(file_size(state))
        await asyncio.sleep(0)

    # Usage is kept 32 days (5 rounds of a week); once the oldest rounds are
    # pruned as fast as new ones arrive, the file stops growing.
    kept_rounds = USAGE_RETENTION_FLOOR.days // DAYS_PER_ROUND + 1
    settled = sizes[kept_rounds + 1]
    assert max(sizes[kept_rounds + 2 :]) <= settled * 1.1, sizes
    assert sizes[-1] < sizes[0] * ROUNDS / 2, sizes
    # What is left is what the retention keeps.
    assert count(state, "decision_log") <= CALLS
    assert count(state, "usage") <= CALLS * kept_rounds
    assert count(state, "call_counts") <= CALLS
    assert inner.pruner.deleted["decisions by age"] >= CALLS * (ROUNDS - 1)


async def test_the_decision_log_keeps_at_most_max_rows(
    start_sidecar: StartSidecar, tmp_path: Path
) -> None:
    state = tmp_path / "state.db"
    sidecar = await start_sidecar(
        POLICIES, state=state, decision_log_max_rows=40, prune_interval=3600
    )
    for index in range(100):
        await sidecar.stub.Enforce(
            pb.EnforceRequest(agent_id="chatbot", input="hi", request_id=f"call-{index}")
        )
    inner = sidecar.sidecar
    await inner.flush_state()
    assert inner.pruner is not None

    await inner.pruner.prune()

    with sqlite3.connect(state) as raw:
        kept = [row[0] for row in raw.execute("SELECT request_id FROM decision_log ORDER BY seq")]
    assert kept == [f"call-{index}" for index in range(60, 100)]


async def test_traces_and_their_incidents_are_pruned_with_the_decision_log(
    start_sidecar: StartSidecar, tmp_path: Path
) -> None:
    clock = ManualClock()
    state = tmp_path / "state.db"
    injection = {
        "name": "No Injection",
        "policyType": "injection_scan",
        "enforcementMode": "monitor",
        "ruleDefinition": {"patterns": ["ignore previous instructions"]},
    }
    sidecar = await start_sidecar(
        {"revision": 1, "agents": [{"id": "chatbot"}], "policies": [injection]},
        state=state,
        clock=clock,
        decision_log_retention=2 * 86400,
        prune_interval=3600,
    )
    for day in range(4):
        await sidecar.stub.SubmitTrace(
            pb.SubmitTraceRequest(
                agent_id="chatbot", input="ignore previous instructions", request_id=f"d{day}"
            )
        )
        clock.advance(days=1)
    assert (count(state, "traces"), count(state, "incidents")) == (4, 4)
    assert sidecar.sidecar.pruner is not None
    await sidecar.sidecar.pruner.prune()
    # Two days are kept: the traces of days 2 and 3 (now is day 4).
    with sqlite3.connect(state) as raw:
        kept = [row[0] for row in raw.execute("SELECT request_id FROM incidents ORDER BY seq")]
    assert kept == ["d2", "d3"] and count(state, "traces") == 2


def decision_log_bytes(state: Path) -> int:
    """The pages of the decision log and its index (the write-ahead log
    included: read through a connection)."""
    with sqlite3.connect(state) as raw:
        (size,) = raw.execute(
            "SELECT sum(pgsize) FROM dbstat WHERE name LIKE 'decision_log%'"
        ).fetchone()
    return int(size)


async def test_the_decision_log_stops_growing_at_max_rows_under_steady_load(
    start_sidecar: StartSidecar, tmp_path: Path
) -> None:
    """Size alone bounds it: with a retention longer than the test, the
    pruner keeps the last ``--decision-log-max-rows`` and SQLite reuses the
    pages of the rows it deletes."""
    state = tmp_path / "state.db"
    sidecar = await start_sidecar(
        POLICIES, state=state, decision_log_max_rows=300, prune_interval=3600
    )
    inner = sidecar.sidecar
    assert inner.pruner is not None
    sizes = []
    for round_number in range(10):
        for index in range(150):
            await sidecar.stub.Enforce(
                pb.EnforceRequest(
                    agent_id="chatbot", input="hi", request_id=f"{round_number}-{index}"
                )
            )
        await inner.flush_state()
        await inner.pruner.prune()
        sizes.append(decision_log_bytes(state))
    assert max(sizes[3:]) <= sizes[2] * 1.1, sizes
    assert count(state, "decision_log") == 300
