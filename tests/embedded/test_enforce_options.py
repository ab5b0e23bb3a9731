"""``EmbeddedClient.enforce_policy`` names the SDK's options itself (no
dict of them on the hot path): it takes exactly the SDK's options, refuses
others as the SDK does, and waits for approvals through the SDK's loop."""

from __future__ import annotations

import asyncio
import inspect
from pathlib import Path

import pytest
import yaml
from pdp_client import AsyncClient, Decision, InvalidRequestError
from pdp_client._bulk import EnforceOptions

from pdp.embedded import EmbeddedClient
from pdp.engine import ApprovalState, utc_now
from pdp.state import Database, decide_approval, list_approvals

SNAPSHOT = {
    "agents": [{"id": "bot"}],
    "policies": [
        {
            "name": "Shell Needs Approval",
            "policyType": "expression",
            "enforcementMode": "require_approval",
            "ruleDefinition": {"expression": 'request.tool == "shell"', "approval_timeout_s": 60},
        },
    ],
}


async def _approve_next(state: Path) -> str:
    """Approves the next pending approval in the state database, as ``pdp
    approvals`` does; returns its id."""
    db = await Database.open(state)
    try:
        for _ in range(500):
            pending = await list_approvals(db, ApprovalState.PENDING, utc_now())
            if pending:
                await decide_approval(db, pending[0].id, True, "alice", "", utc_now())
                return pending[0].id
            await asyncio.sleep(0.02)
    finally:
        await db.close()
    pytest.fail("no pending approval appeared")


def _options(method: object) -> set[str]:
    parameters = inspect.signature(method).parameters.values()  # type: ignore[arg-type]
    return {p.name for p in parameters if p.kind is inspect.Parameter.KEYWORD_ONLY}


def test_it_takes_the_sdks_options_and_no_others() -> None:
    named = _options(EmbeddedClient.enforce_policy) - _options(AsyncClient.enforce_policy)
    assert named == set(EnforceOptions.__annotations__)


async def test_a_held_call_is_waited_for_and_an_unknown_option_refused(tmp_path: Path) -> None:
    snapshot = tmp_path / "policies.yaml"
    snapshot.write_text(yaml.safe_dump(SNAPSHOT))
    state = tmp_path / "state.db"
    async with await EmbeddedClient.open(str(snapshot), state=str(state)) as pdp:
        with pytest.raises(TypeError, match="enforce_policy\\(\\) got an unexpected keyword"):
            await pdp.enforce_policy("bot", "hello", colour="red")  # type: ignore[call-arg]
        with pytest.raises(InvalidRequestError, match="model must be a string"):
            await pdp.enforce_policy("bot", "hello", model=3)  # type: ignore[arg-type]
        waiting = asyncio.ensure_future(
            pdp.enforce_policy("bot", "restart nginx", tool="shell", wait_for_approval=10)
        )
        approval_id = await _approve_next(state)
        result = await asyncio.wait_for(waiting, 10)
        assert result.decision is Decision.ALLOW
        assert result.approval_id == approval_id
        # Without a wait, the call is held and answered at once.
        held = await pdp.enforce_policy("bot", "restart the database", tool="shell")
        assert held.decision is Decision.PENDING_APPROVAL
        assert held.approval_id not in (None, approval_id)
