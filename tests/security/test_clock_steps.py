"""A step of the machine's wall clock neither resets nor doubles a budget,
nor empties or freezes a window of calls, nor fakes or hides staleness.

Calendar periods (the day of a daily budget) follow the wall clock in UTC,
but calendar time never steps back: stepped back an hour, it stands still
until the wall clock catches up. Durations (rate-limit windows, staleness,
reservation expiries) are measured on the monotonic clock. Each test runs
a real sidecar over gRPC on a clock the test moves: ``advance`` is time
passing (both clocks), ``step`` moves the wall clock only."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest

from pdp.engine import SteadyClock, utc_now
from pdp.v1 import policy_decision_service_pb2 as pb
from tests._clock import ManualClock
from tests._policies import daily_budget, document, rate_limit
from tests.conftest import RunningSidecar, StartSidecar, example_document

DAY_ONE_NOON = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def budget_only() -> dict[str, Any]:
    return document(daily_budget(10.0))


def limit_only() -> dict[str, Any]:
    return document(rate_limit(3, 60))


async def enforce(sidecar: RunningSidecar, cost: float = 0.0) -> pb.EnforceResponse:
    request = pb.EnforceRequest(agent_id="chatbot", input="hi", estimated_cost_usd=cost)
    resp: pb.EnforceResponse = await sidecar.stub.Enforce(request)
    return resp


async def report(sidecar: RunningSidecar, cost: float, request_id: str) -> None:
    await sidecar.stub.ReportUsage(
        pb.ReportUsageRequest(agent_id="chatbot", cost_usd=cost, request_id=request_id)
    )


async def spent_today(sidecar: RunningSidecar) -> float:
    status = await sidecar.stub.AgentStatus(pb.AgentStatusRequest(agent_id="chatbot"))
    (daily,) = status.state.budgets
    return float(daily.spent_usd)


async def test_a_step_back_over_midnight_does_not_count_yesterday_again(
    start_sidecar: StartSidecar,
) -> None:
    clock = ManualClock(DAY_ONE_NOON)
    sidecar = await start_sidecar(budget_only(), clock=clock)
    await report(sidecar, 9.0, "yesterday")
    clock.advance(hours=12, minutes=10)  # 00:10 on day two
    await report(sidecar, 8.0, "today")

    clock.step(hours=-1)  # the wall clock says 23:10 on day one again

    # Today's spend is 8: a call of 1.50 fits the budget of 10. Read on the
    # wall clock alone, the day would be day one again, with 17 spent.
    assert await spent_today(sidecar) == 8.0
    assert (await enforce(sidecar, 1.5)).decision == pb.DECISION_ALLOW
    assert (await enforce(sidecar, 1.0)).decision == pb.DECISION_BLOCK


async def test_a_step_back_within_the_day_does_not_reset_the_budget(
    start_sidecar: StartSidecar,
) -> None:
    clock = ManualClock(DAY_ONE_NOON)
    sidecar = await start_sidecar(budget_only(), clock=clock)
    await report(sidecar, 9.5, "spent")

    clock.step(hours=-1)
    await report(sidecar, 0.25, "after-the-step")

    assert await spent_today(sidecar) == 9.75
    assert (await enforce(sidecar, 0.5)).decision == pb.DECISION_BLOCK
    # When the wall clock catches up with calendar time, it moves on from there.
    clock.advance(hours=1, minutes=1)
    assert await spent_today(sidecar) == 9.75


async def test_a_step_back_does_not_hold_calls_in_the_window(start_sidecar: StartSidecar) -> None:
    clock = ManualClock(DAY_ONE_NOON)
    sidecar = await start_sidecar(limit_only(), clock=clock)
    for _ in range(3):
        assert (await enforce(sidecar)).decision == pb.DECISION_ALLOW
    assert (await enforce(sidecar)).decision == pb.DECISION_BLOCK

    clock.step(hours=-1)
    clock.advance(seconds=61)

    # A minute went by: the window admits calls again (on the wall clock
    # alone, the three calls would look an hour in the future for an hour).
    assert (await enforce(sidecar)).decision == pb.DECISION_ALLOW


async def test_a_step_forward_does_not_empty_the_window(start_sidecar: StartSidecar) -> None:
    clock = ManualClock(DAY_ONE_NOON)
    sidecar = await start_sidecar(limit_only(), clock=clock)
    for _ in range(3):
        assert (await enforce(sidecar)).decision == pb.DECISION_ALLOW

    clock.step(hours=1)

    blocked = await enforce(sidecar)
    assert blocked.decision == pb.DECISION_BLOCK
    assert 0 < blocked.violations[0].retry_after_ms <= 60_000


async def test_a_step_forward_does_not_make_the_snapshot_stale(
    start_sidecar: StartSidecar,
) -> None:
    clock = ManualClock(utc_now())
    sidecar = await start_sidecar(example_document(), max_staleness=30, clock=clock)
    sidecar.snapshot_path.unlink()  # the source stops answering
    await sidecar.wait_for(lambda: sidecar.sidecar.holder.unreachable is not None)

    clock.step(hours=1)
    hello = pb.EnforceRequest(agent_id="my-chatbot", input="hello")
    assert (await sidecar.stub.Enforce(hello)).decision == pb.DECISION_ALLOW

    clock.step(hours=-2)
    clock.advance(seconds=31)  # silence is measured on the monotonic clock
    with pytest.raises(grpc.aio.AioRpcError) as stale:
        await sidecar.stub.Enforce(hello)
    assert stale.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_a_step_forward_does_not_expire_reservations(start_sidecar: StartSidecar) -> None:
    clock = ManualClock(DAY_ONE_NOON)
    sidecar = await start_sidecar(budget_only(), clock=clock, reservation_ttl=600)
    held = await enforce(sidecar, 4.0)
    assert held.decision == pb.DECISION_ALLOW

    clock.step(minutes=30)
    await sidecar.sidecar.settle_expired()

    # Still open after 30 wall-clock minutes (and no monotonic time): the
    # report replaces it with the actual cost.
    await report(sidecar, 1.0, held.request_id)
    assert await spent_today(sidecar) == 1.0


def test_the_machine_clock_reads_utc_now_and_steady_seconds() -> None:
    # What a sidecar without an injected clock runs on (read through C calls).
    clock = SteadyClock()
    before = datetime.now(UTC)
    now = clock()
    after = datetime.now(UTC)
    assert now.utcoffset() == timedelta(0)
    assert before <= now <= after
    assert abs(clock.steady() - time.time()) < 1.0
    first = clock.monotonic()
    assert clock.monotonic() >= first
    assert clock() >= now
