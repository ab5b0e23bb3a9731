"""A policy cannot stop the sidecar: a CEL expression's cost is bounded
before it runs, a costly evaluation runs off the event loop under a
wall-clock limit, running out follows the policy's ``on_error``, and what is
too costly whatever the request is refused where it is published and where
it is loaded.

The expression of the report, ``[0..98].exists(a, [0..98].exists(b,
request.input.matches('z{2}')))``, is written out below: CEL has no range
literal, so ``[0..98]`` is the list of 0 to 98."""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from pdp.engine import NO_USAGE, Decision, EnforceInput, compile_snapshot, utc_now
from pdp.v1 import policy_decision_service_pb2 as pb
from pdp.v1 import policy_decision_service_pb2_grpc as pb_grpc
from tests._process import run_python
from tests.conftest import RunningSidecar, SidecarProcess, StartSidecar
from tests.control._helpers import error_of, published

RANGE = "[" + ", ".join(str(i) for i in range(99)) + "]"
PATHOLOGICAL = f"{RANGE}.exists(a, {RANGE}.exists(b, request.input.matches('z{{2}}')))"
ONE_MIB = "a" * (1024 * 1024)
# Over the budget whatever the request: each `matches` compiles its pattern.
STATICALLY_COSTLY = (
    f"{RANGE}.exists(a, {RANGE}.exists(b, "
    "request.input.matches('(?i)ignore (all )?previous instructions')))"
)
# Its iterations grow with the caller's metadata: past what the runtime allows.
CUBED_METADATA = (
    "request.metadata.all(a, request.metadata.all(b, request.metadata.all(c, a != b || b != c)))"
)
# Within the budget but too costly to evaluate in place for a long input:
# 99 regex scans of it.
SLOW = f"{RANGE}.exists(a, request.input.matches('z{{2}}'))"
SLOW_INPUT = "a" * (200 * 1024)


def expression(name: str, source: str, agent: str, **rule: Any) -> dict[str, Any]:
    return {
        "name": name,
        "policyType": "expression",
        "enforcementMode": "block",
        "appliesToAgents": [agent],
        "ruleDefinition": {"expression": source, **rule},
    }


SNAPSHOT: dict[str, Any] = {
    "revision": 1,
    "agents": [{"id": "heavy"}, {"id": "lenient"}, {"id": "slow"}, {"id": "other"}],
    "policies": [
        expression("Pathological", PATHOLOGICAL, "heavy"),
        expression("Lenient Pathological", PATHOLOGICAL, "lenient", on_error="skip"),
        expression("Slow Scan", SLOW, "slow"),
        expression("No Shell", 'request.tool == "shell"', "other"),
    ],
}


async def health_latencies(
    channel: grpc.aio.Channel, stop: asyncio.Event, seconds: float | None = None
) -> list[float]:
    """Health check latencies until ``stop`` (or for ``seconds``)."""
    stub = health_pb2_grpc.HealthStub(channel)
    latencies: list[float] = []
    end = None if seconds is None else time.monotonic() + seconds
    while not stop.is_set() and (end is None or time.monotonic() < end):
        start = time.perf_counter()
        response = await stub.Check(health_pb2.HealthCheckRequest())
        latencies.append(time.perf_counter() - start)
        assert response.status == health_pb2.HealthCheckResponse.SERVING
        await asyncio.sleep(0.01)
    return latencies


async def enforce(sidecar: RunningSidecar, agent: str, **fields: Any) -> pb.EnforceResponse:
    response: pb.EnforceResponse = await sidecar.stub.Enforce(
        pb.EnforceRequest(agent_id=agent, **fields)
    )
    return response


# The costly calls come from another process, so that building 1 MiB
# requests does not hold up the loop measuring the sidecar's answers.
LOAD = """
import json, os, sys, threading, time
import grpc
from pdp.v1 import policy_decision_service_pb2 as pb
from pdp.v1 import policy_decision_service_pb2_grpc as pb_grpc

os.nice(10)  # the sidecar is measured, not this load
stub = pb_grpc.PolicyDecisionServiceStub(grpc.insecure_channel(sys.argv[1]))
calls = [("heavy", "a" * 1048576)] * 6 + [("lenient", "a" * 1048576)] * 6
calls += [("slow", "a" * 204800)] * 6
results = []

def call(agent, text):
    start = time.perf_counter()
    response = stub.Enforce(pb.EnforceRequest(agent_id=agent, input=text), timeout=60)
    messages = [v.message for v in response.violations]
    results.append([agent, response.decision, time.perf_counter() - start, messages])

threads = [threading.Thread(target=call, args=c) for c in calls]
for t in threads:
    t.start()
    time.sleep(0.05)
for t in threads:
    t.join()
print(json.dumps(results))
"""


async def _first_call(
    stub: pb_grpc.PolicyDecisionServiceStub, request: pb.EnforceRequest
) -> pb.EnforceResponse:
    """The first Enforce on a new channel, asked again once if the
    connection itself failed (UNAVAILABLE before any answer: a gRPC client
    retries that; it once came from the HTTP/2 handshake on a CI host)."""
    response: pb.EnforceResponse
    try:
        response = await stub.Enforce(request, wait_for_ready=True, timeout=60)
    except grpc.aio.AioRpcError as exc:
        if exc.code() is not grpc.StatusCode.UNAVAILABLE:
            raise
        response = await stub.Enforce(request, wait_for_ready=True, timeout=60)
    return response


async def test_pathological_policy_does_not_stop_the_sidecar(
    spawn_sidecar: Callable[..., SidecarProcess], tmp_path: Path
) -> None:
    snapshot = tmp_path / "policies.yaml"
    snapshot.write_text(json.dumps(SNAPSHOT))
    # A generous time limit: this test is about the event loop, the next
    # one about the limit.
    sidecar = spawn_sidecar(
        *("--snapshot", str(snapshot), "--listen", "127.0.0.1:0"),
        *("--state", str(tmp_path / "s.db"), "--cel-time-limit", "30"),
    )
    async with grpc.aio.insecure_channel(sidecar.address) as channel:
        stub = pb_grpc.PolicyDecisionServiceStub(channel)
        # The workers start with the snapshot that needs them; the first
        # costly evaluation may wait for one to load, the measured ones not.
        warm = await _first_call(stub, pb.EnforceRequest(agent_id="slow", input="fizz buzz"))
        assert warm.decision == pb.DECISION_BLOCK
        # What the machine itself adds when it is busy (a shared CI host).
        quiet = await health_latencies(channel, asyncio.Event(), seconds=3.0)

        stop = asyncio.Event()
        health = asyncio.create_task(health_latencies(channel, stop))
        other_latencies: list[float] = []

        async def other() -> None:
            i = 0
            while not stop.is_set():
                start = time.perf_counter()
                tool = "shell" if i % 2 else "search"
                response = await stub.Enforce(
                    pb.EnforceRequest(agent_id="other", input="hello", tool=tool)
                )
                other_latencies.append(time.perf_counter() - start)
                want = pb.DECISION_BLOCK if tool == "shell" else pb.DECISION_ALLOW
                assert response.decision == want
                i += 1
                await asyncio.sleep(0.01)

        others = asyncio.create_task(other())
        load = await asyncio.to_thread(run_python, "-c", LOAD, sidecar.address, timeout=120)
        stop.set()
        latencies = await health
        await others

    assert load.returncode == 0, load.stderr
    results = json.loads(load.stdout)
    by_agent: dict[str, list[tuple[int, float, list[str]]]] = {}
    for agent, decision, seconds, messages in results:
        by_agent.setdefault(agent, []).append((decision, seconds, messages))
    # Refused by its cost estimate before it runs (it ran 12-25 s before):
    # a policy error; fire blocks, skip lets through.
    for decision, seconds, messages in by_agent["heavy"]:
        assert decision == pb.DECISION_BLOCK
        assert seconds < 5.0
        assert "exceeds the budget" in messages[0]
    assert all(d == pb.DECISION_ALLOW for d, _, _ in by_agent["lenient"])
    # Evaluated for real, in the workers: about 0.1 s of CEL each.
    assert all(d == pb.DECISION_ALLOW for d, _, _ in by_agent["slow"]), by_agent["slow"]

    # Health and other agents never wait on CEL: answered within 100 ms,
    # beyond the worst the machine showed without any CEL load.
    noise = max(quiet)
    assert len(latencies) > 10
    assert max(latencies) < 0.1 + noise, f"health: {max(latencies) * 1000:.0f} ms"
    assert max(other_latencies) < 0.1 + noise, f"Enforce: {max(other_latencies) * 1000:.0f} ms"
    assert statistics.median(other_latencies) < 0.02 + statistics.median(quiet)


async def test_an_evaluation_over_the_time_limit_is_stopped_and_follows_on_error(
    start_sidecar: StartSidecar,
) -> None:
    snapshot = {
        "revision": 1,
        "agents": [{"id": "strict"}, {"id": "lenient"}],
        "policies": [
            expression("Slow Scan", SLOW, "strict"),
            expression("Lenient Slow Scan", SLOW, "lenient", on_error="skip"),
        ],
    }
    sidecar = await start_sidecar(snapshot, cel_time_limit=0.005)
    pool = sidecar.sidecar.cel
    quiet = await health_latencies(sidecar.channel, asyncio.Event(), seconds=1.0)
    stop = asyncio.Event()
    health = asyncio.create_task(health_latencies(sidecar.channel, stop))

    strict = await enforce(sidecar, "strict", input=SLOW_INPUT)
    lenient = await enforce(sidecar, "lenient", input=SLOW_INPUT)
    stop.set()
    latencies = await health

    assert strict.decision == pb.DECISION_BLOCK
    [violation] = strict.violations
    assert "took longer than the 5 ms limit" in violation.message
    assert lenient.decision == pb.DECISION_ALLOW
    assert pool.timed_out == 2
    assert max(latencies) < 0.1 + max(quiet)
    # The stopped workers were replaced: with time to answer, they do.
    pool.time_limit = 10.0
    quick = await enforce(sidecar, "strict", input="no match here")
    assert quick.decision == pb.DECISION_ALLOW
    assert pool.evaluated == 1


async def test_too_costly_expression_is_refused_by_the_snapshot_loader(
    start_sidecar: StartSidecar,
) -> None:
    sidecar = await start_sidecar(SNAPSHOT)
    refused = {
        **SNAPSHOT,
        "revision": 2,
        "policies": [*SNAPSHOT["policies"], expression("Costly Regex", STATICALLY_COSTLY, "other")],
    }
    await sidecar.write_snapshot(refused)
    errors: list[pb.FieldError] = []
    for _ in range(200):
        status = await sidecar.stub.AgentStatus(pb.AgentStatusRequest(agent_id="other"))
        errors = list(status.state.snapshot.last_rejection.errors)
        if errors:
            break
        await asyncio.sleep(0.02)
    [error] = errors
    assert error.path == "policies[4].ruleDefinition.expression"
    assert "policy 'Costly Regex': expression too costly" in error.message
    assert sidecar.revision == 1  # the last good snapshot keeps serving


@pytest.mark.parametrize(
    ("source", "reason"),
    [(STATICALLY_COSTLY, "the budget is"), (CUBED_METADATA, "comprehension iterations")],
    ids=["costly", "iterations"],
)
async def test_too_costly_expression_is_refused_at_publish(
    client: httpx.AsyncClient, source: str, reason: str
) -> None:
    body = {
        "name": "Costly",
        "policyType": "expression",
        "enforcementMode": "block",
        "ruleDefinition": {"expression": source, "on_error": "skip"},
    }
    before, _ = await published(client)
    error = error_of(await client.post("/policies", json=body), 422)
    assert error["field"] == "ruleDefinition.expression"
    assert "policy 'Costly': expression too costly" in error["message"]
    assert reason in error["message"]
    after, _ = await published(client)
    assert after == before


async def test_the_pathological_expression_is_published_and_bounded_at_run_time(
    client: httpx.AsyncClient,
) -> None:
    """Its cost depends on the input: accepted, then bounded per request."""
    body = expression("Pathological", PATHOLOGICAL, "x")
    del body["appliesToAgents"]
    response = await client.post("/policies", json=body)
    assert response.status_code == 201, response.text


def test_no_caller_can_push_an_admitted_expression_past_the_runtime_limit() -> None:
    """Iterations are bounded with the most metadata a request can carry:
    an expression admitted (two levels over the metadata) stays within the
    runtime's limit for the largest metadata, where three levels (refused
    above) went past it and failed the whole Enforce with UNKNOWN."""
    pairs = "request.metadata.all(a, request.metadata.all(b, a == b || a != b))"
    snapshot = compile_snapshot(
        {"agents": [{"id": "x"}], "policies": [expression("Pairs", pairs, "x")]}
    )
    metadata = {f"k{i}": "v" for i in range(64)}
    decision = snapshot.enforce(
        EnforceInput(agent_id="x", input="hi", metadata=metadata), NO_USAGE, utc_now()
    )
    assert isinstance(decision, Decision)
    [violation] = decision.violations
    assert violation.message.startswith("the expression is true") or "true" in violation.message


async def test_range_shorthand_is_not_cel(client: httpx.AsyncClient) -> None:
    body = expression("Shorthand", "[0..98].exists(a, true)", "x")
    del body["appliesToAgents"]
    error = error_of(await client.post("/policies", json=body), 422)
    assert "invalid CEL" in error["message"]


async def test_the_largest_request_gets_a_prompt_decision_from_every_costly_policy(
    start_sidecar: StartSidecar,
) -> None:
    sidecar = await start_sidecar(SNAPSHOT)
    metadata = {f"k{i}": "v" * 4096 for i in range(64)}
    wanted = {"heavy": pb.DECISION_BLOCK, "lenient": pb.DECISION_ALLOW, "slow": pb.DECISION_BLOCK}
    for agent, want in wanted.items():
        start = time.perf_counter()
        response = await enforce(sidecar, agent, input=ONE_MIB, metadata=metadata)
        assert time.perf_counter() - start < 5.0
        assert response.decision == want
        for violation in response.violations:
            assert "exceeds the budget" in violation.message


def test_costs_are_bounded_with_the_sizes_the_sidecar_admits() -> None:
    from pdp.engine import _variables as engine
    from pdp.server import _translate as wire

    assert wire.Limits().max_input_bytes == engine.MAX_TEXT_CHARS
    assert engine.MAX_ID_CHARS == wire.MAX_ID_CHARS
    assert engine.MAX_METADATA_ENTRIES == wire.MAX_METADATA_ENTRIES
    assert engine.MAX_METADATA_VALUE_CHARS == wire.MAX_METADATA_VALUE_CHARS
