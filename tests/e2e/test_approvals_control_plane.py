"""Approvals with a real control plane and real sidecars following it: the
sidecar reports what it holds, a reviewer decides through the REST API,
AwaitApproval answers, and the approved call goes through once across
replicas; approvals survive restarts of either side, and expiry denies
while the control plane is away."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from google.protobuf.duration_pb2 import Duration

from pdp.v1 import policy_decision_service_pb2 as pb
from tests._process import run_pdp
from tests._wait import until
from tests.conftest import RunningSidecar, StartSidecar
from tests.control._harness import ControlPlaneHarness

SHELL_POLICY = {
    "name": "No Shell In Production",
    "policyType": "expression",
    "enforcementMode": "require_approval",
    "ruleDefinition": {
        "expression": 'request.tool == "shell" && request.metadata["env"] == "prod"',
        "approval_timeout_s": 60,
    },
}


def shell(approval_id: str = "", text: str = "restart the api") -> pb.EnforceRequest:
    return pb.EnforceRequest(
        agent_id="my-chatbot",
        input=text,
        tool="shell",
        metadata={"env": "prod"},
        approval_id=approval_id,
    )


async def await_approval(
    sidecar: RunningSidecar, approval_id: str, seconds: int = 10
) -> pb.AwaitApprovalResponse:
    answer: pb.AwaitApprovalResponse = await sidecar.stub.AwaitApproval(
        pb.AwaitApprovalRequest(approval_id=approval_id, timeout=Duration(seconds=seconds)),
        timeout=seconds + 10,
    )
    return answer


@pytest.fixture
async def reviewer(control_plane: ControlPlaneHarness) -> AsyncIterator[httpx.AsyncClient]:
    async with control_plane.client() as admin:
        (await admin.post("/agents", json={"name": "my-chatbot"})).raise_for_status()
        (await admin.post("/policies", json=SHELL_POLICY)).raise_for_status()
    key = await control_plane.create_key("alice", "reviewer")
    async with control_plane.client(key) as client:
        yield client


async def follow(
    start_sidecar: StartSidecar, control_plane: ControlPlaneHarness, name: str, **kw: Any
) -> RunningSidecar:
    key = await control_plane.create_key(f"{name}-key", "sidecar")
    return await start_sidecar(source=control_plane.snapshot_url, api_key=key, name=name, **kw)


async def pending_ids(reviewer: httpx.AsyncClient) -> list[str]:
    listed = await reviewer.get("/approvals", params={"status": "pending"})
    return [a["id"] for a in listed.json()["approvals"]]


async def reported(reviewer: httpx.AsyncClient, approval_id: str, *, pending: bool = True) -> None:
    """Waits until the control plane has the sidecar's approval (pending, or
    in any state: a short one may have expired by the time it is seen)."""

    async def there() -> bool:
        if pending:
            return approval_id in await pending_ids(reviewer)
        return (await reviewer.get(f"/approvals/{approval_id}")).status_code == 200

    deadline = asyncio.get_running_loop().time() + 15.0
    while not await there():
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"approval {approval_id} never reached the control plane")
        await asyncio.sleep(0.02)


async def test_a_reviewer_approves_through_the_control_plane(
    control_plane: ControlPlaneHarness, reviewer: httpx.AsyncClient, start_sidecar: StartSidecar
) -> None:
    sidecar = await follow(start_sidecar, control_plane, "edge")
    held = await sidecar.stub.Enforce(shell(text="restart the api, card 4111 1111 1111 1111"))
    assert held.decision == pb.DECISION_PENDING_APPROVAL
    waiting = asyncio.ensure_future(await_approval(sidecar, held.approval_id, 30))
    await reported(reviewer, held.approval_id)
    one = (await reviewer.get(f"/approvals/{held.approval_id}")).json()
    assert one["agentName"] == "my-chatbot" and "4111" not in one["maskedExcerpt"]
    assert one["sidecarId"] == sidecar.sidecar.uplink.sidecar_id  # type: ignore[union-attr]
    assert not waiting.done()
    started = time.monotonic()
    approved = await reviewer.post(f"/approvals/{held.approval_id}/approve", json={"comment": "ok"})
    assert approved.status_code == 200, approved.text
    answer = await waiting
    assert time.monotonic() - started < 15  # woken by the decision, not the wait's 30 s
    assert (answer.state, answer.reviewer, answer.comment) == (
        pb.APPROVAL_STATE_APPROVED,
        "alice",
        "ok",
    )
    request = shell(held.approval_id, "restart the api, card 4111 1111 1111 1111")
    assert (await sidecar.stub.Enforce(request)).decision == pb.DECISION_ALLOW
    again = await sidecar.stub.Enforce(request)
    assert again.decision == pb.DECISION_BLOCK and "already used" in again.violations[0].message
    stored = (await reviewer.get(f"/approvals/{held.approval_id}")).json()
    assert stored["consumedAt"] and stored["consumedBy"] == one["sidecarId"]


async def test_replicas_let_an_approved_call_through_once(
    control_plane: ControlPlaneHarness, reviewer: httpx.AsyncClient, start_sidecar: StartSidecar
) -> None:
    replicas = [await follow(start_sidecar, control_plane, f"r{i}") for i in range(2)]
    held = await replicas[0].stub.Enforce(shell())
    await reported(reviewer, held.approval_id)
    await reviewer.post(f"/approvals/{held.approval_id}/approve")
    # The other replica never saw this approval: it asks the control plane.
    answers = await asyncio.gather(
        *(r.stub.Enforce(shell(held.approval_id)) for r in replicas for _ in range(8))
    )
    assert sorted(a.decision for a in answers) == [pb.DECISION_ALLOW] + [pb.DECISION_BLOCK] * 15
    # A changed request is refused at either replica, even approved.
    other = await replicas[1].stub.Enforce(shell(held.approval_id, "drop the database"))
    assert other.decision == pb.DECISION_BLOCK and "another request" in other.violations[0].message


async def test_pending_approvals_survive_restarts_of_both_sides(
    control_plane: ControlPlaneHarness,
    reviewer: httpx.AsyncClient,
    start_sidecar: StartSidecar,
    tmp_path: Any,
) -> None:
    state = tmp_path / "edge-state.db"
    sidecar = await follow(start_sidecar, control_plane, "edge", state=state)
    held = await sidecar.stub.Enforce(shell())
    await reported(reviewer, held.approval_id)
    await sidecar.close()
    await control_plane.restart()
    key = await control_plane.create_key("alice-2", "reviewer")
    async with control_plane.client(key) as again:
        assert held.approval_id in await pending_ids(again)
        await again.post(f"/approvals/{held.approval_id}/deny", json={"comment": "not now"})
    restarted = await follow(start_sidecar, control_plane, "edge-again", state=state)
    answer = await await_approval(restarted, held.approval_id)
    assert (answer.state, answer.reviewer, answer.comment) == (
        pb.APPROVAL_STATE_DENIED,
        "alice-2",
        "not now",
    )
    blocked = await restarted.stub.Enforce(shell(held.approval_id))
    assert blocked.decision == pb.DECISION_BLOCK
    assert "denied by alice-2: not now" in blocked.violations[0].message


async def test_expiry_denies_while_the_control_plane_is_down(
    control_plane: ControlPlaneHarness, reviewer: httpx.AsyncClient, start_sidecar: StartSidecar
) -> None:
    async with control_plane.client() as admin:
        short = SHELL_POLICY["ruleDefinition"] | {"approval_timeout_s": 1}  # type: ignore[operator]
        patched = await admin.patch(
            f"/policies/{SHELL_POLICY['name']}", json={"ruleDefinition": short}
        )
        assert patched.status_code == 200, patched.text
    sidecar = await follow(start_sidecar, control_plane, "edge")
    await until(lambda: sidecar.revision == 3, what="the patched policy")
    held = await sidecar.stub.Enforce(shell())
    await reported(reviewer, held.approval_id, pending=False)  # it expires in 1 s
    await control_plane.stop()
    answer = await await_approval(sidecar, held.approval_id, 10)
    assert answer.state == pb.APPROVAL_STATE_EXPIRED
    blocked = await sidecar.stub.Enforce(shell(held.approval_id))
    assert blocked.decision == pb.DECISION_BLOCK and "expired" in blocked.violations[0].message
    await control_plane.restart()
    async with control_plane.client() as admin:
        refused = await admin.post(f"/approvals/{held.approval_id}/approve")
        assert refused.status_code == 409 and refused.json()["error"]["code"] == "approval_expired"


async def test_the_cli_refuses_a_sidecar_that_follows_a_control_plane(
    control_plane: ControlPlaneHarness, reviewer: httpx.AsyncClient, start_sidecar: StartSidecar
) -> None:
    sidecar = await follow(start_sidecar, control_plane, "edge")
    held = await sidecar.stub.Enforce(shell())
    done = await asyncio.to_thread(
        run_pdp, "approvals", "approve", held.approval_id, "--state", str(sidecar.state_path)
    )
    assert done.returncode == 1
    assert control_plane.base_url in done.stderr and "decided there" in done.stderr
    await reported(reviewer, held.approval_id)  # still pending, at the control plane
