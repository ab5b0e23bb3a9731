"""Redis killed and started again under load, with two sidecars sharing it:
no report is lost once Redis is back and none is counted twice, calls fail
closed while it is away, and the sidecars recover by themselves. The
fail-closed window (from the kill to the first refused call, and from the
restart to the first admitted one) is measured and printed.

Redis runs with its append-only file fsynced on every write, as a
production server keeps what it acknowledged."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import grpc
from redis.asyncio import Redis

from pdp.v1 import policy_decision_service_pb2 as pb
from tests._redis import RedisServer
from tests.conftest import RunningSidecar, StartSidecar
from tests.server.test_budgets import BUDGETED

CALLERS = 8
COST = 0.01
MICROS = 10_000  # COST in micro-USD


@dataclass
class Load:
    admitted: set[str] = field(default_factory=set)
    reported: set[str] = field(default_factory=set)
    closed_at: list[float] = field(default_factory=list)
    reopened_at: list[float] = field(default_factory=list)
    stop: bool = False


async def caller(sidecar: RunningSidecar, name: str, load: Load, killed: asyncio.Event) -> None:
    """Enforce, then report (retrying until Redis takes it), as an agent does."""
    index = 0
    while not load.stop:
        request_id = f"{name}-{index}"
        index += 1
        answer = await sidecar.stub.Enforce(
            pb.EnforceRequest(
                agent_id="chatbot", input="hi", estimated_cost_usd=COST, request_id=request_id
            )
        )
        if answer.decision != pb.DECISION_ALLOW:
            if killed.is_set() and not load.closed_at:
                load.closed_at.append(time.monotonic())
            await asyncio.sleep(0.01)
            continue
        if load.closed_at and not load.reopened_at:
            load.reopened_at.append(time.monotonic())
        load.admitted.add(request_id)
        while True:
            try:
                await sidecar.stub.ReportUsage(
                    pb.ReportUsageRequest(agent_id="chatbot", cost_usd=COST, request_id=request_id)
                )
            except grpc.aio.AioRpcError as exc:
                if exc.code() != grpc.StatusCode.UNAVAILABLE:
                    raise
                await asyncio.sleep(0.05)
                continue
            load.reported.add(request_id)
            break


async def test_redis_restarted_under_load(
    start_sidecar: StartSidecar, redis_server: RedisServer
) -> None:
    document = {**BUDGETED, "policies": BUDGETED["policies"][:1]}
    document["policies"] = [
        {**document["policies"][0], "ruleDefinition": {"daily_budget": 1_000_000.0}}
    ]
    sidecars = [
        await start_sidecar(document, state=redis_server.url, name=f"replica-{index}")
        for index in range(2)
    ]
    load, killed = Load(), asyncio.Event()
    callers = [
        asyncio.create_task(caller(sidecars[i % 2], f"c{i}", load, killed)) for i in range(CALLERS)
    ]
    await asyncio.sleep(0.5)
    before = len(load.reported)

    redis_server.stop()
    killed_at = time.monotonic()
    killed.set()
    deadline = killed_at + 15
    while not load.closed_at:  # down long enough for a call to fail closed
        assert time.monotonic() < deadline, "no call failed closed while Redis was down"
        await asyncio.sleep(0.05)
    redis_server.start()
    restarted_at = time.monotonic()
    deadline = restarted_at + 15
    while not load.reopened_at or len(load.reported) < before + 50:
        assert time.monotonic() < deadline, "the sidecars did not recover within 15 s"
        await asyncio.sleep(0.05)
    load.stop = True
    await asyncio.gather(*callers)

    assert load.closed_at, "no call failed closed while Redis was down"
    print(
        f"\nfail-closed window: first refusal {load.closed_at[0] - killed_at:.3f}s after the"
        f" kill; first admission {load.reopened_at[0] - restarted_at:.3f}s after the restart"
    )
    client = Redis(port=redis_server.port, decode_responses=True)
    try:
        settled = int(await client.get("pdp:v1:spend:agent-1:total") or 0)
        open_reservations = await client.hkeys("pdp:v1:res:agent-1")
    finally:
        await client.aclose()
    # Every report that was answered is counted once; nothing else settled.
    assert settled == len(load.reported) * MICROS
    assert load.reported == load.admitted
    # A charge Redis ran but whose answer was lost with the connection is
    # still held (the call was refused: counted, never undercounted).
    assert not set(open_reservations) & load.reported
    assert len(open_reservations) <= CALLERS
