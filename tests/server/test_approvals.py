"""Approvals on a standalone sidecar (a snapshot file): a require_approval
policy holds the call; ``pdp approvals`` (a real process, on the running
sidecar's state file) decides; AwaitApproval answers when the decision
lands; a retry with the approval id goes through once, only for the same
request; expiry denies, also across a restart."""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
import time
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration

from pdp.v1 import policy_decision_service_pb2 as pb
from tests._clock import ManualClock
from tests._process import run_pdp
from tests._wait import until
from tests.conftest import RunningSidecar, StartSidecar
from tests.observe._scrape import scrape, value

SHELL = {"tool": "shell", "input": "rm -rf /tmp/cache for 123-45-6789"}


def snapshot(timeout_s: float = 60) -> dict[str, Any]:
    return {
        "revision": 1,
        "agents": [{"id": "bot"}],
        "policies": [
            {
                "name": "Shell Needs Approval",
                "policyType": "expression",
                "enforcementMode": "require_approval",
                "ruleDefinition": {
                    "expression": 'request.tool == "shell"',
                    "approval_timeout_s": timeout_s,
                },
            },
            {
                "name": "Note Long Inputs",
                "policyType": "expression",
                "enforcementMode": "warn",
                "ruleDefinition": {"expression": "size(request.input) > 10"},
            },
        ],
    }


def enforce_request(approval_id: str = "", **changes: Any) -> pb.EnforceRequest:
    fields: dict[str, Any] = {"agent_id": "bot", **SHELL, **changes}
    return pb.EnforceRequest(approval_id=approval_id, **fields)


def stored(state: Path | str, approval_id: str) -> bool:
    with closing(sqlite3.connect(state)) as conn:
        row = conn.execute("SELECT 1 FROM approvals WHERE id = ?", (approval_id,)).fetchone()
    return row is not None


async def hold(sidecar: RunningSidecar, **changes: Any) -> pb.EnforceResponse:
    """A held call, once its approval is in the state file: a background
    writer stores it, and ``pdp approvals`` (another process) reads it there."""
    response: pb.EnforceResponse = await sidecar.stub.Enforce(enforce_request(**changes))
    assert response.decision == pb.DECISION_PENDING_APPROVAL, response
    assert re.fullmatch(r"[0-9a-f]{32}", response.approval_id)
    await until(lambda: stored(sidecar.state_path, response.approval_id), what="stored approval")
    return response


async def await_approval(
    sidecar: RunningSidecar, approval_id: str, seconds: float = 10.0
) -> pb.AwaitApprovalResponse:
    answer: pb.AwaitApprovalResponse = await sidecar.stub.AwaitApproval(
        pb.AwaitApprovalRequest(
            approval_id=approval_id, timeout=Duration(seconds=int(seconds), nanos=0)
        ),
        timeout=seconds + 5,
    )
    return answer


def approvals_cli(*args: str) -> tuple[int, str, str]:
    """``pdp approvals ARGS`` as a real process."""
    done = run_pdp("approvals", *args)
    return done.returncode, done.stdout, done.stderr


async def cli(*args: str) -> tuple[int, str, str]:
    return await asyncio.to_thread(approvals_cli, *args)


async def test_a_held_call_runs_once_after_approval(start_sidecar: StartSidecar) -> None:
    sidecar = await start_sidecar(snapshot(60))
    before = datetime.now(UTC)
    held = await hold(sidecar)
    expires = held.approval_expires_at.ToDatetime(tzinfo=UTC)
    assert 55 <= (expires - before).total_seconds() <= 65
    assert [v.enforcement_mode for v in held.violations] == [
        pb.ENFORCEMENT_MODE_REQUIRE_APPROVAL,
        pb.ENFORCEMENT_MODE_WARN,
    ]
    # Asking again with the id while it is pending: the same approval, no new one.
    again = await sidecar.stub.Enforce(enforce_request(held.approval_id))
    assert (again.decision, again.approval_id) == (pb.DECISION_PENDING_APPROVAL, held.approval_id)

    waiting = asyncio.ensure_future(await_approval(sidecar, held.approval_id))
    await asyncio.sleep(0.3)
    assert not waiting.done()
    started = time.monotonic()
    code, out, err = await cli(
        "approve", held.approval_id, "--state", str(sidecar.state_path),
        "--reviewer", "alice", "--comment", "looked at it",
    )  # fmt: skip
    assert code == 0, err
    assert f"approved {held.approval_id} (agent bot) as alice" in out
    answer = await waiting
    assert time.monotonic() - started < 5.0  # generous: the sidecar looks every 0.1 s
    assert answer.state == pb.APPROVAL_STATE_APPROVED
    assert (answer.reviewer, answer.comment) == ("alice", "looked at it")
    assert answer.HasField("decided_at") and answer.expires_at == held.approval_expires_at

    through = await sidecar.stub.Enforce(enforce_request(held.approval_id))
    assert through.decision == pb.DECISION_ALLOW_WITH_WARNINGS  # the warn policy still fires
    assert through.approval_id == held.approval_id
    assert not through.HasField("approval_expires_at")
    used = await sidecar.stub.Enforce(enforce_request(held.approval_id))
    assert used.decision == pb.DECISION_BLOCK
    assert "already used" in used.violations[0].message
    assert used.violations[0].enforcement_mode == pb.ENFORCEMENT_MODE_BLOCK


async def test_a_denial_blocks_with_the_reviewer_and_comment(start_sidecar: StartSidecar) -> None:
    sidecar = await start_sidecar(snapshot())
    held = await hold(sidecar)
    code, _, err = await cli(
        "deny", held.approval_id, "--state", str(sidecar.state_path), "--comment", "not today"
    )
    assert code == 0, err
    answer = await await_approval(sidecar, held.approval_id)
    assert answer.state == pb.APPROVAL_STATE_DENIED and answer.comment == "not today"
    assert answer.reviewer  # the OS user by default
    blocked = await sidecar.stub.Enforce(enforce_request(held.approval_id))
    assert blocked.decision == pb.DECISION_BLOCK
    message = blocked.violations[0].message
    assert "denied by" in message and answer.reviewer in message and "not today" in message
    # Decided once: a second decision is refused and changes nothing.
    code, _, err = await cli("approve", held.approval_id, "--state", str(sidecar.state_path))
    assert code == 1 and "already denied" in err
    assert (await await_approval(sidecar, held.approval_id, 0)).state == pb.APPROVAL_STATE_DENIED


async def test_an_approval_nobody_decides_expires_and_denies(start_sidecar: StartSidecar) -> None:
    sidecar = await start_sidecar(snapshot(timeout_s=1))
    held = await hold(sidecar)
    started = time.monotonic()
    answer = await await_approval(sidecar, held.approval_id, 10)
    assert answer.state == pb.APPROVAL_STATE_EXPIRED
    assert time.monotonic() - started < 8.0
    assert answer.decided_at == answer.expires_at
    code, _, err = await cli("approve", held.approval_id, "--state", str(sidecar.state_path))
    assert code == 1 and "expired" in err
    blocked = await sidecar.stub.Enforce(enforce_request(held.approval_id))
    assert blocked.decision == pb.DECISION_BLOCK and "expired" in blocked.violations[0].message


async def test_an_approval_is_for_that_request_only(start_sidecar: StartSidecar) -> None:
    sidecar = await start_sidecar(snapshot())
    held = await hold(sidecar)
    code, _, err = await cli("approve", held.approval_id, "--state", str(sidecar.state_path))
    assert code == 0, err
    await await_approval(sidecar, held.approval_id)
    for changed in (
        {"input": SHELL["input"] + " and /home"},
        {"metadata": {"env": "prod"}},
        {"estimated_cost_usd": 0.5},
        {"model": "other"},
        {"context": [pb.ContextItem(kind=pb.CONTEXT_KIND_EMAIL, content="fwd")]},
    ):
        other = await sidecar.stub.Enforce(enforce_request(held.approval_id, **changed))
        assert other.decision == pb.DECISION_BLOCK, changed
        assert "another request" in other.violations[0].message
    # The mismatches used nothing: the request it was given for goes through.
    same = await sidecar.stub.Enforce(enforce_request(held.approval_id))
    assert same.decision == pb.DECISION_ALLOW_WITH_WARNINGS


async def test_concurrent_retries_go_through_exactly_once(start_sidecar: StartSidecar) -> None:
    sidecar = await start_sidecar(snapshot())
    held = await hold(sidecar)
    code, _, err = await cli("approve", held.approval_id, "--state", str(sidecar.state_path))
    assert code == 0, err
    await await_approval(sidecar, held.approval_id)
    answers = await asyncio.gather(
        *(sidecar.stub.Enforce(enforce_request(held.approval_id)) for _ in range(20))
    )
    decisions = sorted(a.decision for a in answers)
    assert decisions == [pb.DECISION_ALLOW_WITH_WARNINGS] + [pb.DECISION_BLOCK] * 19


async def test_approvals_survive_a_restart_of_the_sidecar(
    start_sidecar: StartSidecar, tmp_path: Path
) -> None:
    state = tmp_path / "state.db"
    first = await start_sidecar(snapshot(), state=state)
    held = await hold(first)
    await first.close()  # one sidecar at a time on a state file
    short = await start_sidecar(snapshot(timeout_s=1), state=state, name="short")
    expiring = await hold(short)
    await short.close()
    # Decided while no sidecar runs; the other one expires meanwhile.
    code, _, err = await cli("approve", held.approval_id, "--state", str(state))
    assert code == 0, err
    await asyncio.sleep(1.2)
    again = await start_sidecar(snapshot(), state=state, name="again")
    assert (await await_approval(again, held.approval_id, 0)).state == pb.APPROVAL_STATE_APPROVED
    assert (await again.stub.Enforce(enforce_request(held.approval_id))).decision == (
        pb.DECISION_ALLOW_WITH_WARNINGS
    )
    late = await await_approval(again, expiring.approval_id, 0)
    assert late.state == pb.APPROVAL_STATE_EXPIRED


async def test_bad_approval_requests_name_the_field(start_sidecar: StartSidecar) -> None:
    sidecar = await start_sidecar(snapshot())
    for request, field in (
        (enforce_request("0" * 32), "approval_id"),
        (enforce_request("x" * 300), "approval_id"),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await sidecar.stub.Enforce(request)
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert str(raised.value.details()).startswith(f"{field}:"), raised.value.details()
    for wait, field in ((Duration(seconds=1), "approval_id"), (Duration(seconds=-1), "timeout")):
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await sidecar.stub.AwaitApproval(
                pb.AwaitApprovalRequest(approval_id="0" * 32, timeout=wait)
            )
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert str(raised.value.details()).startswith(f"{field}:")
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await sidecar.stub.AwaitApproval(pb.AwaitApprovalRequest())
    assert str(raised.value.details()).startswith("approval_id:")
    # An approval id on a request no require_approval policy holds changes nothing.
    plain = await sidecar.stub.Enforce(enforce_request("0" * 32, tool="search"))
    assert plain.decision == pb.DECISION_ALLOW_WITH_WARNINGS and plain.approval_id == ""
    assert (await hold(sidecar)).approval_id  # still serving


async def test_the_cli_lists_masked_excerpts_and_refuses_bad_input(
    start_sidecar: StartSidecar,
) -> None:
    sidecar = await start_sidecar(snapshot())
    held = await hold(sidecar)
    state = str(sidecar.state_path)
    code, out, err = await cli("list", "--state", state)
    assert code == 0, err
    assert held.approval_id in out and "Shell Needs Approval" in out
    assert "***-**-6789" in out and "123-45-6789" not in out
    code, out, _ = await cli("list", "--state", state, "--json")
    (listed,) = json.loads(out)["approvals"]
    assert listed["id"] == held.approval_id and listed["status"] == "pending"
    assert 0 < listed["expiresInSeconds"] <= 60
    assert [p["mode"] for p in listed["policies"]] == ["require_approval", "warn"]

    assert (await cli("approve", "nope", "--state", state))[0] == 1
    assert (await cli("approve", held.approval_id, "--state", state, "--reviewer", " "))[0] == 2
    long_comment = "x" * 2001
    assert (await cli("deny", held.approval_id, "--state", state, "--comment", long_comment))[
        0
    ] == 2
    assert (await cli("list", "--state", str(Path(state).with_name("none.db"))))[0] == 1
    other = Path(state).with_name("other.db")  # a SQLite file that is not a sidecar's
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE notes (text TEXT)")
    code, _, err = await cli("list", "--state", str(other))
    assert code == 1 and "not a pdp sidecar's state database" in err
    with sqlite3.connect(other) as conn:  # left as it was
        assert conn.execute("SELECT name FROM sqlite_master").fetchall() == [("notes",)]
    # Nothing of that was recorded.
    with sqlite3.connect(state) as conn:
        assert conn.execute("SELECT state FROM approvals").fetchall() == [("pending",)]
    assert (await await_approval(sidecar, held.approval_id, 0)).state == pb.APPROVAL_STATE_PENDING


async def test_pending_approvals_are_a_metric(start_sidecar: StartSidecar) -> None:
    sidecar = await start_sidecar(snapshot(), metrics_listen="127.0.0.1:0")
    await hold(sidecar)
    await hold(sidecar)
    samples = await scrape(sidecar.sidecar.metrics_url)
    assert value(samples, "pdp_approvals_pending") == 2
    assert value(samples, "pdp_uplink_events_sent_total") is None  # standalone: no uplink


async def test_old_approvals_are_pruned(start_sidecar: StartSidecar, tmp_path: Path) -> None:
    clock = ManualClock()
    state = tmp_path / "pruned.db"
    sidecar = await start_sidecar(
        snapshot(60), state=state, clock=clock, decision_log_retention=86400, prune_interval=3600
    )
    await hold(sidecar)
    inner = sidecar.sidecar
    assert inner.approvals is not None and inner.pruner is not None
    await inner.approvals.flush()
    await inner.pruner.prune()
    with sqlite3.connect(state) as conn:
        assert conn.execute("SELECT COUNT(*) FROM approvals").fetchone() == (1,)
    clock.advance(days=2)
    await inner.pruner.prune()
    with sqlite3.connect(state) as conn:
        assert conn.execute("SELECT COUNT(*) FROM approvals").fetchone() == (0,)
