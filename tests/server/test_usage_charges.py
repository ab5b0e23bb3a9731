"""How the servicer applies a decision's charges through the usage port when
the backend refuses one: the case of a backend shared by replicas, where
another replica took the last place in a window after this one read it.

The replica here is the real SQLite port seen through a view that lags
behind the calls "another replica" counted, as a shared backend's local view
can; the refusal itself comes from the real port."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
import yaml

from pdp.engine import CallCharge, Charge, CounterKey, UsageRecord, UsageReport
from pdp.server._servicer import PolicyDecisionServicer
from pdp.server._translate import Limits
from pdp.server._validators import ValidatorCaller
from pdp.snapshot import NewDocument, SnapshotHolder
from pdp.state import Database, DecisionLog, SqliteUsage
from pdp.v1 import policy_decision_service_pb2 as pb
from pdp.v1 import policy_decision_service_pb2_grpc as pb_grpc
from tests.server.test_rate_limit import LIMITED

KEY = ("agent", "agent-1")


class LaggingReplica:
    """The port with reads that miss the last ``lag`` calls counted under a
    key until a charge is refused (then the replica has caught up), unless
    ``catches_up`` is False."""

    def __init__(self, shared: SqliteUsage, lag: int, catches_up: bool = True) -> None:
        self.shared = shared
        self.lag = lag
        self.catches_up = catches_up
        self.refusals = 0
        self.spent_since = shared.spent_since
        self.nth_call_since = shared.nth_call_since

    def calls_since(self, key: CounterKey, since: int) -> int:
        return max(0, self.shared.calls_since(key, since) - self.lag)

    async def record(self, report: UsageReport) -> UsageRecord:
        return await self.shared.record(report)

    async def charge(self, charges: Sequence[Charge]) -> tuple[Charge, ...]:
        refused = await self.shared.charge(charges)
        if refused:
            self.refusals += 1
            if self.catches_up:
                self.lag = 0
        return refused


@dataclass
class Replica:
    stub: pb_grpc.PolicyDecisionServiceStub
    usage: LaggingReplica
    decisions: DecisionLog


StartReplica = Callable[..., Awaitable[Replica]]


@pytest.fixture
async def start_replica(tmp_path: Path) -> AsyncIterator[StartReplica]:
    """Serves the rate-limited snapshot over a real server and SQLite file,
    through a LaggingReplica of the port."""
    db = await Database.open(tmp_path / "state.db")
    shared = await SqliteUsage.open(db)
    decisions = DecisionLog(db)
    holder = SnapshotHolder()
    assert await holder.report(NewDocument("test", yaml.safe_dump(LIMITED).encode()))
    server = grpc.aio.server()
    channels: list[grpc.aio.Channel] = []

    async def start(lag: int, catches_up: bool = True) -> Replica:
        replica = LaggingReplica(shared, lag, catches_up)
        servicer = PolicyDecisionServicer(holder, replica, decisions, Limits(), ValidatorCaller())
        server.add_generic_rpc_handlers((servicer.handler(),))
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        channels.append(grpc.aio.insecure_channel(f"127.0.0.1:{port}"))
        return Replica(pb_grpc.PolicyDecisionServiceStub(channels[-1]), replica, decisions)

    yield start
    for channel in channels:
        await channel.close(None)
    await server.stop(None)
    await decisions.close()
    await shared.close()
    await db.close()


def now_second() -> int:
    return int(time.time())


async def test_a_call_that_lost_the_last_place_is_decided_again_and_blocked(
    start_replica: StartReplica,
) -> None:
    replica = await start_replica(lag=3)
    # Another replica let three calls through; this one has not seen them.
    for _ in range(3):
        assert await replica.usage.shared.charge([CallCharge(KEY, now_second())]) == ()

    resp = await replica.stub.Enforce(pb.EnforceRequest(agent_id="chatbot", input="hi"))

    assert replica.usage.refusals == 1
    assert resp.decision == pb.DECISION_BLOCK
    (violation,) = resp.violations
    assert violation.policy_type == "rate_limit" and violation.retry_after_ms > 0
    assert replica.usage.shared.calls_since(KEY, now_second() - 59) == 3
    (logged,) = await replica.decisions.recent(limit=1)
    assert (logged.decision_id, logged.decision) == (resp.decision_id, "BLOCK")


async def test_a_call_that_fits_is_counted_once(start_replica: StartReplica) -> None:
    replica = await start_replica(lag=0)
    resp = await replica.stub.Enforce(pb.EnforceRequest(agent_id="chatbot", input="hi"))
    assert resp.decision == pb.DECISION_ALLOW
    assert replica.usage.refusals == 0
    assert replica.usage.shared.calls_since(KEY, now_second() - 59) == 1


async def test_a_backend_that_keeps_refusing_aborts_the_call(
    start_replica: StartReplica,
) -> None:
    replica = await start_replica(lag=3, catches_up=False)
    for _ in range(3):
        assert await replica.usage.shared.charge([CallCharge(KEY, now_second())]) == ()

    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await replica.stub.Enforce(pb.EnforceRequest(agent_id="chatbot", input="hi"))

    assert raised.value.code() == grpc.StatusCode.ABORTED
    assert "could not be counted" in (raised.value.details() or "")
    assert replica.usage.refusals == 3
    assert replica.usage.shared.calls_since(KEY, now_second() - 59) == 3
