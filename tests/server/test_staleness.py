"""--max-staleness: a sidecar that has not heard from its snapshot source for
that long fails closed and reports NOT_SERVING, and recovers when it hears
again."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from pdp.v1 import policy_decision_service_pb2 as pb
from tests.conftest import StartSidecar, example_document, write_atomically


async def health_status(channel: grpc.aio.Channel) -> int:
    resp = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
    return int(resp.status)


async def test_silent_source_fails_closed_then_recovers(start_sidecar: StartSidecar) -> None:
    sidecar = await start_sidecar(example_document(), max_staleness=0.3)
    request = pb.EnforceRequest(agent_id="my-chatbot", input="hello")
    assert (await sidecar.stub.Enforce(request)).decision == pb.DECISION_ALLOW

    sidecar.snapshot_path.unlink()  # the source stops answering
    await asyncio.sleep(0.8)
    assert await health_status(sidecar.channel) == health_pb2.HealthCheckResponse.NOT_SERVING
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await sidecar.stub.Enforce(request)
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "stale" in (err.value.details() or "")

    write_atomically(sidecar.snapshot_path, example_document())
    for _ in range(100):
        if await health_status(sidecar.channel) == health_pb2.HealthCheckResponse.SERVING:
            break
        await asyncio.sleep(0.02)
    assert await health_status(sidecar.channel) == health_pb2.HealthCheckResponse.SERVING
    assert (await sidecar.stub.Enforce(request)).decision == pb.DECISION_ALLOW


async def test_without_max_staleness_a_silent_source_keeps_serving(
    start_sidecar: StartSidecar,
) -> None:
    sidecar = await start_sidecar(example_document())
    sidecar.snapshot_path.unlink()
    await asyncio.sleep(0.5)
    resp = await sidecar.stub.Enforce(pb.EnforceRequest(agent_id="my-chatbot", input="hello"))
    assert resp.decision == pb.DECISION_ALLOW
    assert await health_status(sidecar.channel) == health_pb2.HealthCheckResponse.SERVING
