"""Approvals at the control plane, as a sidecar reports them
(``approval.requested`` events) and reviewers decide them through the REST
API: decided once, by the key's owner, only with the reviewer (or admin)
role; expiry denies, also while the control plane is down; a sidecar
consumes an approved one once, for the request it was given for."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest

from pdp.engine import format_time, utc_now
from tests._wait import until
from tests.control._harness import ControlPlaneHarness
from tests.control._helpers import error_of

# The same API on both control-plane backends.
pytestmark = pytest.mark.control_databases

DIGEST = "ab" * 32


async def report(
    control_plane: ControlPlaneHarness, *, expires_in: float = 600, agent: str = "agent-a"
) -> str:
    """Reports a new approval as sidecar ``edge-1`` would; returns its id."""
    approval_id = uuid.uuid4().hex
    event = {
        "id": str(uuid.uuid4()),
        "type": "approval.requested",
        "time": format_time(utc_now()),
        "data": {
            "approvalId": approval_id,
            "agentId": agent,
            "digest": DIGEST,
            "policies": [
                {
                    "id": "p1",
                    "name": "Shell Needs Approval",
                    "type": "expression",
                    "mode": "require_approval",
                },
                {"id": "p2", "name": "Note", "type": "expression", "mode": "warn"},
            ],
            "maskedExcerpt": "rm -rf for ***-**-6789",
            "expiresAt": format_time(utc_now() + timedelta(seconds=expires_in)),
            "requestId": "req-1",
        },
    }
    key = await control_plane.create_key("edge-1", "sidecar")
    async with control_plane.client(key) as client:
        response = await client.post(
            "/sidecar/events", json={"sidecarId": "edge-1", "events": [event]}
        )
        assert response.status_code == 200, response.text
    return approval_id


@pytest.fixture
async def reviewer(control_plane: ControlPlaneHarness) -> AsyncIterator[httpx.AsyncClient]:
    key = await control_plane.create_key("alice", "reviewer")
    async with control_plane.client(key) as client:
        yield client


async def test_a_reviewer_sees_and_decides_an_approval_once(
    control_plane: ControlPlaneHarness, reviewer: httpx.AsyncClient
) -> None:
    decided = control_plane.record("approval.decided")
    async with control_plane.client() as admin:
        await admin.post("/agents", json={"name": "agent-a"})
    approval_id = await report(control_plane)
    listed = (await reviewer.get("/approvals", params={"status": "pending"})).json()["approvals"]
    (one,) = listed
    assert one["id"] == approval_id and one["status"] == "pending"
    assert one["agentName"] == "agent-a" and one["sidecarId"] == "edge-1"
    assert [p["name"] for p in one["policies"]] == ["Shell Needs Approval", "Note"]
    assert one["maskedExcerpt"] == "rm -rf for ***-**-6789"
    assert 590 < one["expiresInSeconds"] <= 600
    assert one["reviewer"] is None and one["decidedAt"] is None

    response = await reviewer.post(f"/approvals/{approval_id}/approve", json={"comment": "fine"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["status"], body["reviewer"], body["comment"]) == ("approved", "alice", "fine")
    assert body["expiresInSeconds"] is None and body["decidedAt"]
    for verb in ("approve", "deny"):
        error = error_of(await reviewer.post(f"/approvals/{approval_id}/{verb}"), 409)
        assert error["code"] == "approval_decided"
        assert "already approved by alice" in error["message"]
    assert (await reviewer.get("/approvals", params={"status": "pending"})).json() == {
        "approvals": []
    }
    assert [e.data.model_dump()["status"] for e in decided] == ["approved"]
    assert decided[0].data.model_dump()["reviewer"] == "alice"


async def test_only_reviewers_and_admins_decide(
    control_plane: ControlPlaneHarness, reviewer: httpx.AsyncClient
) -> None:
    approval_id = await report(control_plane)
    sidecar = await control_plane.create_key("edge-2", "sidecar")
    async with control_plane.client(sidecar) as client:
        error = error_of(await client.post(f"/approvals/{approval_id}/approve"), 403)
        assert "role admin or reviewer" in error["message"]
        error_of(await client.get("/approvals"), 403)
        assert (await client.get(f"/approvals/{approval_id}")).status_code == 200
    async with control_plane.client() as admin:
        denied = await admin.post(f"/approvals/{approval_id}/deny", json={"comment": "no"})
        assert denied.json()["reviewer"] == "tests"  # the admin key's owner
    assert (await reviewer.get(f"/approvals/{approval_id}")).json()["status"] == "denied"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"comment": 5}, "comment"),
        ({"comment": "x" * 2001}, "comment"),
        ({"reviewer": "mallory"}, "reviewer"),
        ([], None),
    ],
)
async def test_a_malformed_decision_is_refused_and_changes_nothing(
    control_plane: ControlPlaneHarness, reviewer: httpx.AsyncClient, body: Any, field: str | None
) -> None:
    approval_id = await report(control_plane)
    error = error_of(await reviewer.post(f"/approvals/{approval_id}/approve", json=body), 422)
    assert error["field"] == field, error
    assert (await reviewer.get(f"/approvals/{approval_id}")).json()["status"] == "pending"
    ok = await reviewer.post(f"/approvals/{approval_id}/approve", json={"comment": None})
    assert ok.status_code == 200 and ok.json()["comment"] is None


async def test_unknown_ids_and_statuses(reviewer: httpx.AsyncClient) -> None:
    for response in (
        await reviewer.get("/approvals/nope"),
        await reviewer.post("/approvals/nope/approve"),
        await reviewer.post("/approvals/nope/deny", json={"comment": "x"}),
    ):
        error = error_of(response, 404)
        assert "nope" in error["message"]
    assert (
        error_of(await reviewer.get("/approvals", params={"status": "maybe"}), 422)["field"]
        == "status"
    )
    assert error_of(await reviewer.get("/approvals", params={"limit": 0}), 422)["field"] == "limit"


async def test_expiry_denies_and_is_recorded(
    control_plane: ControlPlaneHarness, reviewer: httpx.AsyncClient
) -> None:
    decided = control_plane.record("approval.decided")
    approval_id = await report(control_plane, expires_in=0.5)
    started = time.monotonic()
    waited = await reviewer.get(f"/approvals/{approval_id}", params={"wait": 30})
    assert waited.json()["status"] == "expired"
    assert time.monotonic() - started < 15
    error = error_of(await reviewer.post(f"/approvals/{approval_id}/approve"), 409)
    assert error["code"] == "approval_expired" and "expired at" in error["message"]
    await until(lambda: len(decided) == 1, what="approval.decided for the expiry")
    assert decided[0].data.model_dump()["status"] == "expired"
    listed = await reviewer.get("/approvals", params={"status": "expired"})
    assert [a["id"] for a in listed.json()["approvals"]] == [approval_id]


async def test_an_approval_that_expires_while_the_control_plane_is_down(
    control_plane: ControlPlaneHarness,
) -> None:
    approval_id = await report(control_plane, expires_in=0.5)
    await control_plane.stop()
    await asyncio.sleep(0.7)
    await control_plane.restart()

    async def stored_state() -> str:
        rows = await control_plane.rows("SELECT state FROM approvals WHERE id = ?", (approval_id,))
        return str(rows[0][0])

    for _ in range(250):
        if await stored_state() == "expired":
            break
        await asyncio.sleep(0.02)
    assert await stored_state() == "expired", "the sweep at start-up"
    async with control_plane.client() as admin:
        error_of(await admin.post(f"/approvals/{approval_id}/approve"), 409)


async def test_a_long_poll_answers_when_the_reviewer_decides(
    control_plane: ControlPlaneHarness, reviewer: httpx.AsyncClient
) -> None:
    approval_id = await report(control_plane)
    sidecar = await control_plane.create_key("edge-1b", "sidecar")
    async with control_plane.client(sidecar) as client:
        waiting = asyncio.ensure_future(
            client.get(f"/approvals/{approval_id}", params={"wait": 30})
        )
        await asyncio.sleep(0.3)
        assert not waiting.done()
        started = time.monotonic()
        await reviewer.post(f"/approvals/{approval_id}/deny")
        answer = await waiting
        assert time.monotonic() - started < 15  # not the wait's 30 s
    assert answer.json()["status"] == "denied"
    assert (
        error_of(await reviewer.get(f"/approvals/{approval_id}", params={"wait": 61}), 422)["field"]
        == "wait"
    )


async def test_an_approval_is_consumed_once_for_its_request(
    control_plane: ControlPlaneHarness, reviewer: httpx.AsyncClient
) -> None:
    approval_id = await report(control_plane)
    sidecar = await control_plane.create_key("edge-1c", "sidecar")
    consume = f"/approvals/{approval_id}/consume"
    right = {"digest": DIGEST, "sidecarId": "a"}
    async with control_plane.client(sidecar) as client:
        pending = error_of(await client.post(consume, json=right), 409)
        assert pending["code"] == "approval_not_approved"
        await reviewer.post(f"/approvals/{approval_id}/approve")
        other = error_of(await client.post(consume, json=right | {"digest": "cd" * 32}), 409)
        assert other["code"] == "digest_mismatch"
        error_of(await client.post(consume, json=right | {"digest": "zz"}), 422)
        answers = await asyncio.gather(
            *(
                client.post(consume, json={"digest": DIGEST, "sidecarId": f"s{i}"})
                for i in range(10)
            )
        )
        assert sorted(a.status_code for a in answers) == [200] + [409] * 9
        (used,) = [a.json() for a in answers if a.status_code == 200]
        assert used["consumedAt"] and used["consumedBy"].startswith("s")
        assert {a.json()["error"]["code"] for a in answers if a.status_code == 409} == {
            "approval_used"
        }
        error_of(
            await client.post("/approvals/nope/consume", json={"digest": DIGEST, "sidecarId": "a"}),
            404,
        )
    async with control_plane.client(await control_plane.create_key("bob", "reviewer")) as bob:
        error_of(await bob.post(consume, json=right), 403)
