"""What holding a call for approval costs, in-process against a real sidecar
(grpc.aio on loopback, a real SQLite file): Enforce answered PENDING_APPROVAL
(a new approval recorded in memory, written right after) against an Enforce
that is allowed, and what writing each approval durably before answering
would add (one committed transaction with its outbox event, measured alone).

    .venv/bin/python bench/bench_approvals.py

The figures are medians of one run and their ratio; absolute times move with
the machine's load.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

if str(Path(__file__).resolve().parent.parent) not in sys.path:  # run as a script
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import grpc
import yaml

from pdp.engine import Approval, FiredPolicy, utc_now
from pdp.server import ServeOptions, Sidecar
from pdp.state import ApprovalStore, Database, OutboxEvent
from pdp.v1 import policy_decision_service_pb2 as pb
from pdp.v1 import policy_decision_service_pb2_grpc as pb_grpc

SNAPSHOT = {
    "policies": [
        {
            "name": "Shell Needs Approval",
            "policyType": "expression",
            "enforcementMode": "require_approval",
            "ruleDefinition": {"expression": 'request.tool == "shell"'},
        }
    ]
}
ROUNDS = 2000


async def _median_us(call: object, rounds: int) -> float:
    times: list[float] = []
    for _ in range(rounds):
        start = time.perf_counter()
        await call()  # type: ignore[operator]
        times.append((time.perf_counter() - start) * 1e6)
    return statistics.median(times)


async def enforce_latencies(directory: Path) -> tuple[float, float]:
    snapshot = directory / "policies.yaml"
    snapshot.write_text(yaml.safe_dump(SNAPSHOT))
    options = ServeOptions(
        snapshot=str(snapshot), listen="127.0.0.1:0", state=str(directory / "state.db")
    )
    sidecar = Sidecar(options)
    await sidecar.start()
    try:
        async with grpc.aio.insecure_channel(sidecar.address) as channel:
            stub = pb_grpc.PolicyDecisionServiceStub(channel)
            allow = pb.EnforceRequest(agent_id="bot", input="list the files", tool="search")
            hold = pb.EnforceRequest(agent_id="bot", input="list the files", tool="shell")
            for request in (allow, hold):  # warm up
                for _ in range(200):
                    await stub.Enforce(request)
            allowed = await _median_us(lambda: stub.Enforce(allow), ROUNDS)
            held = await _median_us(lambda: stub.Enforce(hold), ROUNDS)
    finally:
        await sidecar.stop(grace=0)
    return allowed, held


def _approval() -> tuple[Approval, OutboxEvent]:
    now = utc_now()
    approval = Approval(
        id=uuid.uuid4().hex,
        agent_id="bot",
        digest="ab" * 32,
        policies=(FiredPolicy("p", "P", "expression", "require_approval"),),
        masked_excerpt="list the files",
        request_id="",
        created_at=now,
        expires_at=now + timedelta(minutes=15),
    )
    event = OutboxEvent(str(uuid.uuid4()), "approval.requested", now, {"approvalId": approval.id})
    return approval, event


async def durable_write_us(directory: Path) -> tuple[float, float]:
    """Median µs of recording an approval in memory, and of recording it and
    waiting until it is committed."""
    db = await Database.open(directory / "writes.db")
    store = ApprovalStore(db)
    await store.start()
    try:

        async def in_memory() -> None:
            approval, event = _approval()
            store.create(approval, [event])

        async def committed() -> None:
            approval, event = _approval()
            store.create(approval, [event])
            await store.flush()

        memory = await _median_us(in_memory, ROUNDS)
        await store.flush()
        durable = await _median_us(committed, ROUNDS)
    finally:
        await store.close()
        await db.close()
    return memory, durable


async def run() -> None:
    with tempfile.TemporaryDirectory(prefix="pdp-bench-") as tmp:
        directory = Path(tmp)
        allowed, held = await enforce_latencies(directory)
        memory, durable = await durable_write_us(directory)
    print(f"Enforce, median of {ROUNDS} sequential calls over loopback gRPC")
    print(f"  allowed:                      {allowed:8.1f} us")
    print(f"  held (PENDING_APPROVAL):      {held:8.1f} us   ratio {held / allowed:.2f}x")
    print("recording one approval")
    print(f"  in memory (what Enforce waits for): {memory:8.1f} us")
    print(f"  committed with its outbox event:    {durable:8.1f} us")
    print(
        f"  writing before answering would add ~{durable - memory:.0f} us to a held call "
        f"({(held + durable - memory) / allowed:.2f}x an allowed one)"
    )


def main() -> None:
    asyncio.run(run())


if __name__ == "__main__":
    main()
