"""--max-staleness: a sidecar that has not heard from its snapshot source for
that long fails closed and reports NOT_SERVING, and recovers when it hears
again. Time is the sidecar's injected clock, moved by the test."""

from __future__ import annotations

import asyncio
import time

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from pdp.engine import utc_now
from pdp.v1 import policy_decision_service_pb2 as pb
from tests._clock import ManualClock
from tests.conftest import RunningSidecar, StartSidecar, example_document, write_atomically

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
HELLO = pb.EnforceRequest(agent_id="my-chatbot", input="hello")


async def health_status(channel: grpc.aio.Channel) -> int:
    resp = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
    return int(resp.status)


async def until_health(sidecar: RunningSidecar, want: int, within: float = 5.0) -> None:
    """Health follows the holder's clock without a request (its watcher
    looks a few times a second); waits, boundedly, until it says ``want``."""
    deadline = time.monotonic() + within
    while await health_status(sidecar.channel) != want:
        if time.monotonic() > deadline:
            pytest.fail(f"health is not {want} within {within}s")
        await asyncio.sleep(0.01)


async def test_silent_source_fails_closed_then_recovers(start_sidecar: StartSidecar) -> None:
    clock = ManualClock(utc_now())
    sidecar = await start_sidecar(example_document(), max_staleness=30, clock=clock)
    holder = sidecar.sidecar.holder
    assert (await sidecar.stub.Enforce(HELLO)).decision == pb.DECISION_ALLOW

    sidecar.snapshot_path.unlink()  # the source stops answering
    await sidecar.wait_for(lambda: holder.unreachable is not None)
    clock.advance(seconds=29)
    assert (await sidecar.stub.Enforce(HELLO)).decision == pb.DECISION_ALLOW
    status = await sidecar.stub.AgentStatus(pb.AgentStatusRequest(agent_id="my-chatbot"))
    assert status.state.snapshot.staleness.seconds == 29
    assert await health_status(sidecar.channel) == SERVING

    clock.advance(seconds=2)
    # Decisions fail closed as soon as the clock passes the limit...
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await sidecar.stub.Enforce(HELLO)
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "stale" in (err.value.details() or "")
    # ...and health follows without a request.
    await until_health(sidecar, NOT_SERVING)

    write_atomically(sidecar.snapshot_path, example_document())
    await until_health(sidecar, SERVING)
    assert (await sidecar.stub.Enforce(HELLO)).decision == pb.DECISION_ALLOW
    assert holder.unreachable is None


async def test_an_answering_source_never_goes_stale(start_sidecar: StartSidecar) -> None:
    clock = ManualClock(utc_now())
    sidecar = await start_sidecar(example_document(), max_staleness=30, clock=clock)
    holder = sidecar.sidecar.holder
    for _ in range(3):
        clock.advance(seconds=20)
        contact = clock.now
        # The file is unchanged: each poll is an answer, and counts as contact.
        await sidecar.wait_for(lambda c=contact: holder.last_contact == c)  # type: ignore[misc]
        assert (await sidecar.stub.Enforce(HELLO)).decision == pb.DECISION_ALLOW
    assert await health_status(sidecar.channel) == SERVING


async def test_without_max_staleness_a_silent_source_keeps_serving(
    start_sidecar: StartSidecar,
) -> None:
    clock = ManualClock(utc_now())
    sidecar = await start_sidecar(example_document(), clock=clock)
    holder = sidecar.sidecar.holder
    sidecar.snapshot_path.unlink()
    await sidecar.wait_for(lambda: holder.unreachable is not None)
    clock.advance(days=365)
    assert not holder.stale
    assert (await sidecar.stub.Enforce(HELLO)).decision == pb.DECISION_ALLOW
    assert await holder.refresh()
    assert await health_status(sidecar.channel) == SERVING
