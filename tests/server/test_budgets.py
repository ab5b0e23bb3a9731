"""Budgets under concurrency, over gRPC against a real sidecar, with SQLite
state and with Redis state: a call that passes a budget check reserves its
estimated cost in the same step, so 200 concurrent calls near a daily
budget admit exactly what fits; ReportUsage (same request id) replaces the
reservation with the actual cost."""

from __future__ import annotations

import asyncio

import pytest

from pdp.v1 import policy_decision_service_pb2 as pb
from tests._policies import budget_cap, daily_budget, document
from tests._redis import RedisServer
from tests.conftest import RunningSidecar, StartSidecar

BUDGETED = document(daily_budget(10.0), budget_cap(100.0))


@pytest.fixture(params=["sqlite", "redis"])
async def budgeted(request: pytest.FixtureRequest, start_sidecar: StartSidecar) -> RunningSidecar:
    state: str | None = None
    if request.param == "redis":
        server: RedisServer = request.getfixturevalue("redis_server")
        state = server.url
    return await start_sidecar(BUDGETED, state=state)


async def enforce(sidecar: RunningSidecar, cost: float, request_id: str = "") -> pb.EnforceResponse:
    request = pb.EnforceRequest(
        agent_id="chatbot", input="hi", estimated_cost_usd=cost, request_id=request_id
    )
    resp: pb.EnforceResponse = await sidecar.stub.Enforce(request)
    return resp


async def daily_spend(sidecar: RunningSidecar) -> float:
    status = await sidecar.stub.AgentStatus(pb.AgentStatusRequest(agent_id="chatbot"))
    (daily,) = [b for b in status.state.budgets if b.period == "daily"]
    return float(daily.spent_usd)


async def test_200_concurrent_calls_never_pass_the_budget(budgeted: RunningSidecar) -> None:
    answers = await asyncio.gather(*(enforce(budgeted, 0.5, f"call-{i}") for i in range(200)))

    admitted = [a for a in answers if a.decision == pb.DECISION_ALLOW]
    blocked = [a for a in answers if a.decision == pb.DECISION_BLOCK]
    assert len(admitted) * 0.5 <= 10.0
    assert len(admitted) == 20 and len(blocked) == 180
    assert await daily_spend(budgeted) == 10.0
    assert "exceeds the daily budget" in blocked[0].violations[0].message


async def test_a_report_replaces_the_reservation(budgeted: RunningSidecar) -> None:
    first = await enforce(budgeted, 6.0, "call-1")
    assert first.decision == pb.DECISION_ALLOW and first.request_id == "call-1"
    # 6 of 10 reserved: a second call of 6 does not fit.
    assert (await enforce(budgeted, 6.0, "call-2")).decision == pb.DECISION_BLOCK

    report = await budgeted.stub.ReportUsage(
        pb.ReportUsageRequest(agent_id="chatbot", cost_usd=1.5, request_id="call-1")
    )

    assert (report.duplicate, report.daily_spend_usd) == (False, 1.5)
    assert (await enforce(budgeted, 6.0, "call-3")).decision == pb.DECISION_ALLOW
    assert await daily_spend(budgeted) == 7.5


async def test_a_call_without_a_request_id_gets_one_to_report_with(
    budgeted: RunningSidecar,
) -> None:
    answer = await enforce(budgeted, 4.0)
    assert len(answer.request_id) == 32

    await budgeted.stub.ReportUsage(
        pb.ReportUsageRequest(agent_id="chatbot", cost_usd=2.0, request_id=answer.request_id)
    )

    assert await daily_spend(budgeted) == 2.0
    assert (await enforce(budgeted, 1.0)).request_id != answer.request_id


async def test_a_retried_call_holds_one_reservation(budgeted: RunningSidecar) -> None:
    for _ in range(3):
        assert (await enforce(budgeted, 4.0, "same-call")).decision == pb.DECISION_ALLOW
    assert await daily_spend(budgeted) == 4.0
