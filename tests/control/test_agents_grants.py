"""Agents (register, list, get by id or name, pause, resume), grants (create,
list, revoke) and Authorize, which answers exactly as the engine does on the
published snapshot."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.control._helpers import error_of, make_agent, published

# The same API on both control-plane backends.
pytestmark = pytest.mark.control_databases


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


async def grant(
    client: httpx.AsyncClient, source: str, target: str, actions: list[str], expires: str | None
) -> dict[str, Any]:
    body: dict[str, Any] = {"targetAgentId": target, "allowedActions": actions}
    if expires is not None:
        body["expiresAt"] = expires
    response = await client.post(f"/agents/{source}/grants", json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def test_register_list_and_get_by_id_or_name(client: httpx.AsyncClient) -> None:
    response = await client.post("/agents", json={"name": "agent-a", "description": "planner"})
    assert response.status_code == 201, response.text
    agent_a = response.json()
    assert uuid.UUID(agent_a["id"])
    assert agent_a["name"] == "agent-a" and agent_a["description"] == "planner"
    assert agent_a["paused"] is False and agent_a["pauseReason"] is None
    assert response.headers["Location"] == f"/api/v1/agents/{agent_a['id']}"
    agent_b = await make_agent(client, "agent-b")

    listed = (await client.get("/agents")).json()["agents"]
    assert [a["id"] for a in listed] == [agent_a["id"], agent_b["id"]]
    # GET of one agent adds the sidecars following the feed (none here).
    assert (await client.get(f"/agents/{agent_a['id']}")).json() == {**agent_a, "sidecars": []}
    assert (await client.get("/agents/agent-a")).json() == {**agent_a, "sidecars": []}

    document, compiled = await published(client)
    assert document["agents"][0] == {
        "id": agent_a["id"],
        "name": "agent-a",
        "paused": False,
        "pauseReason": None,
        "pausedAt": None,
        "callerTokens": [],
    }
    assert compiled.resolve_agent("agent-b").id == agent_b["id"]


async def test_agent_names_are_unique_across_ids_and_names(client: httpx.AsyncClient) -> None:
    agent = await make_agent(client, "agent-a")
    assert error_of(await client.post("/agents", json={"name": "agent-a"}), 409)["field"] == "name"
    assert (
        error_of(await client.post("/agents", json={"name": agent["id"]}), 409)["field"] == "name"
    )
    assert error_of(await client.post("/agents", json={"name": " "}), 422)["field"] == "name"
    assert error_of(await client.post("/agents", json={"name": 5}), 422)["field"] == "name"
    assert error_of(await client.get("/agents/agent-z"), 404)["code"] == "not_found"


async def test_pause_reason_must_be_a_string(client: httpx.AsyncClient) -> None:
    await make_agent(client, "agent-a")
    for body in ({"reason": 42}, {"reason": None}, {"why": "x"}):
        error = error_of(await client.patch("/agents/agent-a/pause", json=body), 422)
        assert error["field"] in ("reason", "why"), error
    error = error_of(await client.patch("/agents/agent-a/pause", json={"reason": "x" * 3000}), 422)
    assert error["field"] == "reason"
    assert error_of(await client.patch("/agents/agent-z/pause", json={}), 404)
    assert error_of(await client.patch("/agents/agent-z/resume"), 404)


async def test_pause_without_a_body_and_pause_again(client: httpx.AsyncClient) -> None:
    await make_agent(client, "agent-a")
    first = (await client.patch("/agents/agent-a/pause")).json()
    assert first["paused"] is True and first["pauseReason"] == ""
    again = (await client.patch("/agents/agent-a/pause", json={"reason": "still bad"})).json()
    assert again["pauseReason"] == "still bad"
    assert again["pausedAt"] == first["pausedAt"]  # paused since the first time


async def test_grants_list_and_revoke(client: httpx.AsyncClient) -> None:
    a = await make_agent(client, "agent-a")
    b = await make_agent(client, "agent-b")
    first = await grant(client, "agent-a", "agent-b", ["execute"], None)
    second = await grant(client, a["id"], b["id"], ["Read", "query"], "2031-01-01T00:00:00+02:00")
    assert second["allowedActions"] == ["read", "query"]
    assert second["expiresAt"] == "2030-12-31T22:00:00Z"  # normalised to UTC
    assert first["revokedAt"] is None
    await grant(client, "agent-b", "agent-a", ["read"], None)

    listed = (await client.get("/agents/agent-a/grants")).json()["grants"]
    assert [g["id"] for g in listed] == [first["id"], second["id"]]

    response = await client.delete(f"/agents/agent-a/grants/{first['id']}")
    assert response.status_code == 200, response.text
    revoked = response.json()
    assert revoked["id"] == first["id"] and revoked["revokedAt"].endswith("Z")
    listed = (await client.get(f"/agents/{a['id']}/grants")).json()["grants"]
    assert [g["id"] for g in listed] == [second["id"]]
    document, _ = await published(client)
    assert first["id"] not in [g["id"] for g in document["grants"]]
    revision = document["revision"]

    # Revoking again answers the same and publishes nothing new.
    again = await client.delete(f"/agents/agent-a/grants/{first['id']}")
    assert again.status_code == 200 and again.json() == revoked
    assert (await published(client))[0]["revision"] == revision
    # A grant is revoked through its source agent only.
    assert error_of(await client.delete(f"/agents/agent-b/grants/{second['id']}"), 404)
    assert error_of(await client.delete("/agents/agent-a/grants/nope"), 404)


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        (
            {"targetAgentId": "agent-b", "allowedActions": ["execute", "fly"]},
            422,
            "allowedActions[1]",
        ),
        ({"targetAgentId": "agent-b", "allowedActions": ["execute", 3]}, 422, "allowedActions[1]"),
        ({"targetAgentId": "agent-b", "allowedActions": []}, 422, "allowedActions"),
        ({"targetAgentId": "agent-b", "allowedActions": "execute"}, 422, "allowedActions"),
        (
            {"targetAgentId": "agent-b", "allowedActions": ["read"], "expiresAt": "2025-12-31"},
            422,
            "expiresAt",
        ),
        (
            {"targetAgentId": "agent-b", "allowedActions": ["read"], "expiresAt": "tomorrow"},
            422,
            "expiresAt",
        ),
        (
            {
                "targetAgentId": "agent-b",
                "allowedActions": ["read"],
                "expiresAt": "20251231T235959Z",
            },
            422,
            "expiresAt",
        ),
        ({"targetAgentId": "agent-z", "allowedActions": ["read"]}, 404, "targetAgentId"),
        ({"allowedActions": ["read"]}, 422, "targetAgentId"),
        ({"targetAgentId": "agent-b", "allowedActions": ["read"], "scope": "all"}, 422, "scope"),
    ],
)
async def test_invalid_grant_names_the_field_and_stores_nothing(
    client: httpx.AsyncClient, body: dict[str, Any], status: int, field: str
) -> None:
    await make_agent(client, "agent-a")
    await make_agent(client, "agent-b")
    before, _ = await published(client)
    error = error_of(await client.post("/agents/agent-a/grants", json=body), status)
    assert error["field"] == field, error
    if field == "allowedActions[1]" and body["allowedActions"][1] == "fly":
        assert "'fly'" in error["message"]
    assert (await published(client))[0] == before


async def test_grant_from_an_unknown_agent_is_404(client: httpx.AsyncClient) -> None:
    await make_agent(client, "agent-b")
    body = {"targetAgentId": "agent-b", "allowedActions": ["read"]}
    assert (
        "agent-z"
        in error_of(await client.post("/agents/agent-z/grants", json=body), 404)["message"]
    )


async def test_authorize_matches_the_engine_on_the_published_snapshot(
    client: httpx.AsyncClient,
) -> None:
    now = datetime.now(UTC)
    for name in ("a", "b", "c", "paused-source", "paused-target"):
        await make_agent(client, name)
    await grant(client, "a", "b", ["execute", "read"], rfc3339(now + timedelta(days=1)))
    await grant(client, "a", "b", ["execute"], None)
    await grant(client, "a", "c", ["read"], rfc3339(now - timedelta(days=1)))
    await grant(client, "paused-source", "b", ["execute"], None)
    await grant(client, "a", "paused-target", ["execute"], None)
    await client.patch("/agents/paused-source/pause", json={"reason": "incident 7"})
    await client.patch("/agents/paused-target/pause")

    cases = [
        ("a", "b", "read", None),
        ("a", "b", "execute", None),
        ("b", "a", "execute", "no_grant"),
        ("a", "c", "read", "grant_expired"),
        ("a", "b", "delete", "action_not_granted"),
        ("paused-source", "b", "execute", "source_paused"),
        ("a", "paused-target", "execute", "target_paused"),
    ]
    document, compiled = await published(client)
    ids = {a["name"]: a["id"] for a in document["agents"]}
    for source, target, action, denial in cases:
        # The page names agents both ways; both answer the same.
        for src, tgt in ((source, target), (ids[source], ids[target])):
            response = await client.post(
                "/agents/authorize",
                json={"sourceAgentId": src, "targetAgentId": tgt, "action": action},
            )
            assert response.status_code == 200, response.text
            answer = response.json()
            expected = compiled.authorize(src, tgt, action, datetime.now(UTC))
            assert answer["denial"] == denial, (source, target, action, answer)
            assert answer["allowed"] is expected.allowed is (denial is None)
            assert answer["denial"] == (expected.denial and expected.denial.value)
            assert answer["reason"] == expected.reason
            expires = expected.grant_expires_at
            assert answer["grantExpiresAt"] == (expires and rfc3339(expires))
            assert answer["revision"] == document["revision"]
    allowed = (
        await client.post(
            "/agents/authorize", json={"sourceAgentId": "a", "targetAgentId": "b", "action": "read"}
        )
    ).json()
    assert allowed["reason"] and allowed["grantExpiresAt"].endswith("Z")
    assert "incident 7" in compiled.authorize("paused-source", "b", "execute", now).reason


async def test_authorize_unknown_agent_or_action(client: httpx.AsyncClient) -> None:
    await make_agent(client, "agent-a")
    body = {"sourceAgentId": "agent-x", "targetAgentId": "agent-a", "action": "execute"}
    error = error_of(await client.post("/agents/authorize", json=body), 404)
    assert error["field"] == "sourceAgentId" and "agent-x" in error["message"]
    body = {"sourceAgentId": "agent-a", "targetAgentId": "agent-y", "action": "execute"}
    assert (
        error_of(await client.post("/agents/authorize", json=body), 404)["field"] == "targetAgentId"
    )
    body = {"sourceAgentId": "agent-a", "targetAgentId": "agent-a", "action": "teleport"}
    assert error_of(await client.post("/agents/authorize", json=body), 422)["field"] == "action"
    body = {"sourceAgentId": "agent-a", "targetAgentId": "agent-a"}
    assert error_of(await client.post("/agents/authorize", json=body), 422)["field"] == "action"
