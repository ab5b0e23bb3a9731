"""A slow validator delays only the decisions that wait for it: other
agents' decisions, made meanwhile on the same sidecar, keep their latency.
The bound is generous (half the validator's delay, on a busy machine);
bench/bench_validators.py measures the precise ratio."""

from __future__ import annotations

import asyncio
import statistics
import time

from pdp.v1 import policy_decision_service_pb2 as pb
from tests._https import Delay, HttpsServer, reply_json
from tests.conftest import StartSidecar
from tests.server._validators import validator_snapshot

SLOW_S = 2.0
ALLOW = reply_json({"allow": True})
INJECTION_SCAN = {
    "name": "Block Prompt Injection",
    "policyType": "injection_scan",
    "enforcementMode": "block",
    "ruleDefinition": {"patterns": ["ignore previous instructions"]},
}


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98]


async def timed(call: asyncio.Future[pb.EnforceResponse]) -> tuple[float, pb.EnforceResponse]:
    started = time.monotonic()
    response = await call
    return time.monotonic() - started, response


async def test_a_slow_validator_does_not_stall_other_agents(start_sidecar: StartSidecar) -> None:
    async with HttpsServer(ALLOW) as validator:
        snapshot = validator_snapshot(
            validator.url, ca_file=validator.ca_file, extra_policies=[INJECTION_SCAN]
        )
        snapshot["agents"] += [{"id": f"agent-{i}"} for i in range(10)]
        sidecar = await start_sidecar(snapshot)
        stub = sidecar.stub

        def other(i: int) -> pb.EnforceRequest:
            return pb.EnforceRequest(agent_id=f"agent-{i % 10}", input=f"summarise report {i}")

        async def hundred_calls() -> tuple[list[float], list[float]]:
            """100 calls at once: 30 wait on billing-bot's validator, 70 are
            other agents'. The latencies of both."""
            checked = [
                asyncio.ensure_future(
                    timed(stub.Enforce(pb.EnforceRequest(agent_id="billing-bot")))
                )
                for _ in range(30)
            ]
            others = await asyncio.gather(*(timed(stub.Enforce(other(i))) for i in range(70)))
            done = await asyncio.gather(*checked)
            assert all(r.decision == pb.DECISION_ALLOW for _, r in [*others, *done])
            return [t for t, _ in others], [t for t, _ in done]

        await hundred_calls()  # warm up: connections, caches
        fast_others, _ = await hundred_calls()
        validator.respond_with(Delay(SLOW_S, ALLOW))
        slow_others, slow_checked = await hundred_calls()

    assert min(slow_checked) >= SLOW_S
    assert p99(slow_others) < SLOW_S / 2, (
        f"other agents' p99 {p99(slow_others) * 1000:.0f} ms while a validator takes "
        f"{SLOW_S:g} s (with the validator answering at once: {p99(fast_others) * 1000:.0f} ms)"
    )
