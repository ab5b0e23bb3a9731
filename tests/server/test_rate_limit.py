"""rate_limit over gRPC: the calls let through are counted in the state
database, a blocked call says when to retry (message and retry_after_ms),
and the counts survive a restart of the sidecar."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pdp.v1 import policy_decision_service_pb2 as pb
from tests.conftest import RunningSidecar, StartSidecar

LIMITED: dict[str, Any] = {
    "revision": 1,
    "agents": [{"id": "agent-1", "name": "chatbot"}],
    "policies": [
        {
            "name": "Chatbot Rate Limit",
            "policyType": "rate_limit",
            "enforcementMode": "block",
            "ruleDefinition": {"max_requests": 3, "per_seconds": 60, "scope": "agent"},
        },
        {
            "name": "No Shell",
            "policyType": "expression",
            "enforcementMode": "block",
            "ruleDefinition": {"expression": 'request.tool == "shell"'},
        },
    ],
}


async def enforce(sidecar: RunningSidecar, tool: str = "") -> pb.EnforceResponse:
    request = pb.EnforceRequest(agent_id="chatbot", input="hi", tool=tool)
    resp: pb.EnforceResponse = await sidecar.stub.Enforce(request)
    return resp


async def test_the_call_past_the_limit_is_blocked_with_a_retry_time(
    start_sidecar: StartSidecar,
) -> None:
    sidecar = await start_sidecar(LIMITED)
    blocked_by_another_policy = await enforce(sidecar, tool="shell")
    assert blocked_by_another_policy.violations[0].policy_name == "No Shell"
    for _ in range(3):
        assert (await enforce(sidecar)).decision == pb.DECISION_ALLOW

    resp = await enforce(sidecar)

    assert resp.decision == pb.DECISION_BLOCK
    (violation,) = resp.violations
    assert (violation.policy_type, violation.policy_name) == ("rate_limit", "Chatbot Rate Limit")
    assert 58_000 < violation.retry_after_ms <= 60_000
    assert "3 calls in the last 60 s" in violation.message
    assert f"retry after {-(-violation.retry_after_ms // 1000)} s" in violation.message


async def test_counts_survive_a_restart(start_sidecar: StartSidecar, tmp_path: Path) -> None:
    state = tmp_path / "state.db"
    first = await start_sidecar(LIMITED, state=state, name="first")
    for _ in range(2):
        assert (await enforce(first)).decision == pb.DECISION_ALLOW
    await first.close()

    second = await start_sidecar(LIMITED, state=state, name="second")

    assert (await enforce(second)).decision == pb.DECISION_ALLOW
    assert (await enforce(second)).decision == pb.DECISION_BLOCK
