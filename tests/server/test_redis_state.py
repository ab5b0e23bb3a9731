"""Redis state over gRPC: several real sidecars on one real Redis share one
daily budget and count their decisions together; when Redis cannot be
reached, policies that read usage fail closed (or open, per
``on_state_error``), AgentStatus and health say so, and the sidecar
recovers by itself when Redis answers again."""

from __future__ import annotations

import asyncio
import copy
import time
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from redis.asyncio import Redis

from pdp.engine import utc_now
from pdp.server import STATE_HEALTH_SERVICE
from pdp.v1 import policy_decision_service_pb2 as pb
from tests._redis import RedisServer
from tests.conftest import RunningSidecar, StartSidecar
from tests.server.test_budgets import BUDGETED

SIDECARS = 10


async def enforce(
    sidecar: RunningSidecar, cost: float, request_id: str = "", agent: str = "chatbot"
) -> pb.EnforceResponse:
    request = pb.EnforceRequest(
        agent_id=agent, input="hi", estimated_cost_usd=cost, request_id=request_id
    )
    resp: pb.EnforceResponse = await sidecar.stub.Enforce(request)
    return resp


async def health(sidecar: RunningSidecar, service: str) -> int:
    stub = health_pb2_grpc.HealthStub(sidecar.channel)
    answer = await stub.Check(health_pb2.HealthCheckRequest(service=service))
    return int(answer.status)


async def state_backend(sidecar: RunningSidecar) -> pb.StateBackendStatus:
    status = await sidecar.stub.AgentStatus(pb.AgentStatusRequest(agent_id="chatbot"))
    backend: pb.StateBackendStatus = status.state.state_backend
    return backend


async def test_ten_sidecars_share_one_daily_budget(
    start_sidecar: StartSidecar, redis_server: RedisServer
) -> None:
    sidecars = [
        await start_sidecar(BUDGETED, state=redis_server.url, name=f"replica-{index}")
        for index in range(SIDECARS)
    ]

    answers = await asyncio.gather(
        *(enforce(sidecars[i % SIDECARS], 0.5, f"call-{i}") for i in range(200))
    )

    admitted = sum(answer.decision == pb.DECISION_ALLOW for answer in answers)
    assert admitted == 20
    # Every replica sees the one budget (its copy follows the others').
    for sidecar in sidecars:
        assert (await enforce(sidecar, 0.01)).decision == pb.DECISION_BLOCK
    status = await sidecars[3].stub.AgentStatus(pb.AgentStatusRequest(agent_id="chatbot"))
    assert status.state.state_backend.backend == "redis"
    assert [b.spent_usd for b in status.state.budgets] == [10.0, 10.0]


async def test_a_report_on_one_sidecar_frees_budget_on_another(
    start_sidecar: StartSidecar, redis_server: RedisServer
) -> None:
    first = await start_sidecar(BUDGETED, state=redis_server.url, name="one")
    second = await start_sidecar(BUDGETED, state=redis_server.url, name="two")
    assert (await enforce(first, 9.0, "big")).decision == pb.DECISION_ALLOW
    assert (await enforce(second, 2.0, "next")).decision == pb.DECISION_BLOCK

    await first.stub.ReportUsage(
        pb.ReportUsageRequest(agent_id="chatbot", cost_usd=1.0, request_id="big")
    )

    async def fits() -> bool:
        return (await enforce(second, 2.0, "next")).decision == pb.DECISION_ALLOW

    deadline = time.monotonic() + 5
    while not await fits():
        assert time.monotonic() < deadline, "the report never reached the other sidecar"
        await asyncio.sleep(0.01)


def with_open_budget() -> dict[str, Any]:
    document = copy.deepcopy(BUDGETED)
    document["agents"].append({"id": "agent-2", "name": "lenient"})
    document["policies"][0]["appliesToAgents"] = ["chatbot"]
    document["policies"][1]["appliesToAgents"] = ["chatbot"]
    document["policies"].append(
        {
            "name": "Lenient Budget",
            "policyType": "cost_limit",
            "enforcementMode": "block",
            "ruleDefinition": {"daily_budget": 5.0, "on_state_error": "open"},
            "appliesToAgents": ["lenient"],
        }
    )
    return document


async def test_redis_down_fails_closed_says_so_and_recovers(
    start_sidecar: StartSidecar, redis_server: RedisServer
) -> None:
    sidecar = await start_sidecar(with_open_budget(), state=redis_server.url)
    assert (await enforce(sidecar, 1.0, "before")).decision == pb.DECISION_ALLOW
    assert (await state_backend(sidecar)).healthy

    redis_server.stop()
    down_at = time.monotonic()
    closed = await enforce(sidecar, 1.0, "during")
    while closed.decision != pb.DECISION_BLOCK:  # the first call may find Redis gone
        assert time.monotonic() - down_at < 5
        closed = await enforce(sidecar, 1.0, "during")

    (violation,) = {v.message for v in closed.violations}
    assert "usage cannot be read, failing closed" in violation
    assert "unreachable" in violation
    lenient = await enforce(sidecar, 1.0, "open", agent="lenient")
    assert lenient.decision == pb.DECISION_ALLOW  # on_state_error: open
    backend = await state_backend(sidecar)
    assert (backend.backend, backend.healthy) == ("redis", False)
    assert "unreachable" in backend.message
    assert await health(sidecar, STATE_HEALTH_SERVICE) == health_pb2.HealthCheckResponse.NOT_SERVING
    assert await health(sidecar, "") == health_pb2.HealthCheckResponse.SERVING
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await sidecar.stub.ReportUsage(
            pb.ReportUsageRequest(agent_id="chatbot", cost_usd=0.5, request_id="before")
        )
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "retry with the same request_id" in (refused.value.details() or "")

    redis_server.start()
    await sidecar.wait_for(lambda: sidecar.sidecar.state_status().healthy, within=10)

    assert (await state_backend(sidecar)).healthy
    assert await health(sidecar, STATE_HEALTH_SERVICE) == health_pb2.HealthCheckResponse.SERVING
    report = await sidecar.stub.ReportUsage(
        pb.ReportUsageRequest(agent_id="chatbot", cost_usd=0.5, request_id="before")
    )
    assert (report.duplicate, report.daily_spend_usd) == (False, 0.5)
    assert (await enforce(sidecar, 9.5, "after")).decision == pb.DECISION_ALLOW


async def test_decisions_are_counted_per_day_across_sidecars(
    start_sidecar: StartSidecar, redis_server: RedisServer
) -> None:
    sidecars = [
        await start_sidecar(BUDGETED, state=redis_server.url, name=f"counting-{index}")
        for index in range(2)
    ]
    for index in range(6):
        await enforce(sidecars[index % 2], 3.0, f"call-{index}")  # 3 fit in 10, 3 do not

    for sidecar in sidecars:
        await sidecar.sidecar.flush_state()

    client = Redis(port=redis_server.port, decode_responses=True)
    try:
        counts = await client.hgetall(f"pdp:v1:decisions:{utc_now().date().isoformat()}")
    finally:
        await client.aclose()
    assert counts == {"agent-1|ALLOW": "3", "agent-1|BLOCK": "3"}
