"""The SDK's approvals against a real ``pdp serve``: ``enforce_policy(...,
wait_for_approval=S)`` returns the decision of the approved call, raises
PolicyBlockedError with the reviewer and comment on a denial or an expiry,
and returns the held result when nobody decided in time; ``await_approval``
is one bounded wait. A reviewer decides in the sidecar's state database, as
``pdp approvals`` does, from this process while the sidecar runs."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from pdp_client import (
    ApprovalState,
    AsyncClient,
    Client,
    Decision,
    InvalidRequestError,
    PolicyBlockedError,
)

from pdp.engine import ApprovalState as StoredState
from pdp.engine import utc_now
from pdp.state import Database, decide_approval, list_approvals
from tests.client.conftest import AnyClient, Connect, Sidecar, call, run_pdp_serve

pytestmark = pytest.mark.sidecar

SNAPSHOT = {
    "agents": [{"id": "bot"}],
    "policies": [
        {
            "name": "Shell Needs Approval",
            "policyType": "expression",
            "enforcementMode": "require_approval",
            "ruleDefinition": {"expression": 'request.tool == "shell"', "approval_timeout_s": 60},
        },
        {
            "name": "Deploys Need Quick Approval",
            "policyType": "expression",
            "enforcementMode": "require_approval",
            "ruleDefinition": {"expression": 'request.tool == "deploy"', "approval_timeout_s": 1},
        },
    ],
}


@pytest.fixture(scope="module")
def approvals_sidecar(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Sidecar, Path]]:
    directory = tmp_path_factory.mktemp("approvals")
    snapshot = directory / "policies.yaml"
    snapshot.write_text(yaml.safe_dump(SNAPSHOT))
    state = directory / "state.db"
    running = run_pdp_serve("127.0.0.1:0", state, snapshot)
    yield running, state
    running.stop()


def in_background(client: AnyClient, method: str, *args: Any, **kwargs: Any) -> asyncio.Future[Any]:
    """Starts a call that blocks until a reviewer decides (a thread for the
    sync client)."""
    running: asyncio.Future[Any]
    if isinstance(client, AsyncClient):
        running = asyncio.ensure_future(getattr(client, method)(*args, **kwargs))
    else:
        running = asyncio.ensure_future(asyncio.to_thread(getattr(client, method), *args, **kwargs))
    return running


async def decide_next(state: Path, approve: bool, comment: str = "") -> str:
    """Waits for a pending approval in the sidecar's state and decides it as
    alice; returns its id."""
    db = await Database.open(state)
    try:
        for _ in range(500):
            pending = await list_approvals(db, StoredState.PENDING, utc_now())
            if pending:
                approval = pending[0]
                await decide_approval(db, approval.id, approve, "alice", comment, utc_now())
                return approval.id
            await asyncio.sleep(0.02)
    finally:
        await db.close()
    pytest.fail("no pending approval appeared")


def shell(client: AnyClient, **kwargs: Any) -> Any:
    return client.enforce_policy("bot", "restart nginx", tool="shell", **kwargs)


async def test_an_approved_call_returns_the_retried_decision(
    connect: Connect, approvals_sidecar: tuple[Sidecar, Path]
) -> None:
    sidecar, state = approvals_sidecar
    client = connect(sidecar.target)
    waiting = in_background(client, "enforce_policy", "bot", "restart nginx", tool="shell",
                            wait_for_approval=30)  # fmt: skip
    approval_id = await decide_next(state, approve=True, comment="ok")
    result = await waiting
    assert result.decision == Decision.ALLOW and result.approval_id == approval_id
    assert [v.enforcement_mode for v in result.violations] == ["require_approval"]
    with pytest.raises(PolicyBlockedError) as used:
        await call(client, "enforce_policy", "bot", "restart nginx", tool="shell",
                   approval_id=approval_id)  # fmt: skip
    assert "already used" in used.value.violations[0].message
    answer = await call(client, "await_approval", approval_id, wait=0)
    assert (answer.state, answer.reviewer, answer.comment) == (
        ApprovalState.APPROVED,
        "alice",
        "ok",
    )


async def test_a_denial_raises_with_the_reviewer_and_comment(
    connect: Connect, approvals_sidecar: tuple[Sidecar, Path]
) -> None:
    sidecar, state = approvals_sidecar
    client = connect(sidecar.target)
    waiting = in_background(client, "enforce_policy", "bot", "drop table", tool="shell",
                            wait_for_approval=30)  # fmt: skip
    await decide_next(state, approve=False, comment="not in prod")
    with pytest.raises(PolicyBlockedError) as raised:
        await waiting
    error = raised.value
    assert error.approval is not None and error.approval.state == ApprovalState.DENIED
    assert (error.reviewer, error.comment) == ("alice", "not in prod")
    assert "denied by alice: not in prod" in str(error)
    assert [v.policy_name for v in error.violations] == ["Shell Needs Approval"]


async def test_an_expiry_raises(connect: Connect, approvals_sidecar: tuple[Sidecar, Path]) -> None:
    sidecar, _ = approvals_sidecar
    client = connect(sidecar.target)
    with pytest.raises(PolicyBlockedError) as raised:
        await call(client, "enforce_policy", "bot", "ship it", tool="deploy", wait_for_approval=20)
    assert raised.value.approval is not None
    assert raised.value.approval.state == ApprovalState.EXPIRED
    assert raised.value.reviewer == ""


async def test_an_agent_comes_back_later_with_the_approval_id(
    connect: Connect, approvals_sidecar: tuple[Sidecar, Path]
) -> None:
    sidecar, state = approvals_sidecar
    client = connect(sidecar.target)
    held = await call(client, "enforce_policy", "bot", "rotate keys", tool="shell",
                      wait_for_approval=0.3)  # fmt: skip
    assert held.decision == Decision.PENDING_APPROVAL and held.approval_id
    assert held.approval_expires_at is not None and held.approval_expires_at > utc_now()
    pending = await call(client, "await_approval", held.approval_id, wait=0.2)
    assert pending.state == ApprovalState.PENDING and pending.expires_at == held.approval_expires_at
    await decide_next(state, approve=True)
    later = await call(client, "enforce_policy", "bot", "rotate keys", tool="shell",
                       approval_id=held.approval_id)  # fmt: skip
    assert later.decision == Decision.ALLOW


async def test_bad_approval_arguments(
    connect: Connect, approvals_sidecar: tuple[Sidecar, Path]
) -> None:
    sidecar, _ = approvals_sidecar
    client = connect(sidecar.target)
    for wait in (0, -1, float("nan"), "soon"):
        with pytest.raises(ValueError, match="wait_for_approval"):
            await call(client, "enforce_policy", "bot", "x", tool="shell", wait_for_approval=wait)
    with pytest.raises(InvalidRequestError) as local:
        await call(client, "await_approval", " ")
    assert (local.value.field, local.value.code) == ("approval_id", None)
    with pytest.raises(ValueError, match="wait"):
        await call(client, "await_approval", "abc", wait=-1)
    with pytest.raises(InvalidRequestError) as remote:
        await call(client, "await_approval", "0" * 32, wait=0.1)
    assert remote.value.field == "approval_id" and remote.value.code is not None
    with pytest.raises(InvalidRequestError) as unknown:
        await call(client, "enforce_policy", "bot", "x", tool="shell", approval_id="0" * 32)
    assert unknown.value.field == "approval_id"


def test_the_sync_client_waits_in_one_call(approvals_sidecar: tuple[Sidecar, Path]) -> None:
    sidecar, state = approvals_sidecar
    with Client(sidecar.target) as client:
        held = shell(client)
        assert held.decision == Decision.PENDING_APPROVAL
        asyncio.run(decide_next(state, approve=True))
        assert shell(client, approval_id=held.approval_id, wait_for_approval=5).decision == (
            Decision.ALLOW
        )
