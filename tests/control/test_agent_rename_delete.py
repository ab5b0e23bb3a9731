"""Renaming and deleting agents through the API: a rename keeps the policies
and grants that point at the agent (and its pause), in one revision that
compiles; a name taken is a 409; a delete takes the agent's grants with it
and is refused while a policy names the agent."""

from __future__ import annotations

import httpx

from pdp.engine import NO_USAGE, Decision, DecisionKind, EnforceInput, utc_now
from tests.control._helpers import error_of, make_agent, published

INJECTION = {
    "name": "Block Injection",
    "policyType": "injection_scan",
    "enforcementMode": "block",
    "ruleDefinition": {"patterns": ["ignore previous instructions"]},
}


async def test_a_rename_keeps_policies_grants_and_the_pause(client: httpx.AsyncClient) -> None:
    bot = await make_agent(client, "billing-bot")
    helper = await make_agent(client, "helper-bot")
    policy = {**INJECTION, "appliesToAgents": ["billing-bot"]}
    (await client.post("/policies", json=policy)).raise_for_status()
    grant = {"targetAgentId": "helper-bot", "allowedActions": ["invoke"]}
    (await client.post("/agents/billing-bot/grants", json=grant)).raise_for_status()
    (await client.patch("/agents/billing-bot/pause", json={"reason": "audit"})).raise_for_status()
    before, _ = await published(client)

    renamed = await client.patch("/agents/billing-bot", json={"name": "invoice-bot"})
    assert renamed.status_code == 200, renamed.text
    agent = renamed.json()
    assert (agent["id"], agent["name"], agent["paused"]) == (bot["id"], "invoice-bot", True)
    assert agent["pauseReason"] == "audit"
    document, compiled = await published(client)
    assert document["revision"] == before["revision"] + 1  # one write
    stored = (await client.get("/policies/Block Injection")).json()
    assert stored["appliesToAgents"] == ["invoice-bot"]
    assert (await client.get("/agents/billing-bot")).status_code == 404
    (await client.patch("/agents/invoice-bot/resume")).raise_for_status()
    _, compiled = await published(client)
    # The policy applies to the renamed agent; the grant still lets it call.
    asked = EnforceInput(agent_id="invoice-bot", input="ignore previous instructions")
    decided = compiled.enforce(asked, NO_USAGE, utc_now())
    assert isinstance(decided, Decision) and decided.kind is DecisionKind.BLOCK
    allowed = compiled.authorize("invoice-bot", helper["id"], "invoke", utc_now())
    assert allowed.allowed


async def test_a_taken_name_is_a_conflict(client: httpx.AsyncClient) -> None:
    first = await make_agent(client, "first")
    await make_agent(client, "second")
    clash = await client.patch("/agents/second", json={"name": "first"})
    assert error_of(clash, 409)["field"] == "name"
    by_id = await client.patch("/agents/second", json={"name": first["id"]})
    assert error_of(by_id, 409)["field"] == "name"
    empty = await client.patch("/agents/second", json={"name": "  "})
    assert error_of(empty, 422)["field"] == "name"
    same = await client.patch("/agents/second", json={"name": "second"})
    assert same.status_code == 200 and same.json()["name"] == "second"


async def test_a_delete_revokes_grants_and_waits_for_policies(client: httpx.AsyncClient) -> None:
    doomed = await make_agent(client, "doomed")
    await make_agent(client, "other")
    for source, target in (("doomed", "other"), ("other", "doomed")):
        body = {"targetAgentId": target, "allowedActions": ["read"]}
        (await client.post(f"/agents/{source}/grants", json=body)).raise_for_status()
    naming = {**INJECTION, "appliesToAgents": [doomed["id"]]}
    (await client.post("/policies", json=naming)).raise_for_status()
    held = await client.delete("/agents/doomed")
    assert "Block Injection" in error_of(held, 409)["message"]
    (await client.delete("/policies/Block Injection")).raise_for_status()

    deleted = await client.delete("/agents/doomed")
    assert deleted.status_code == 200 and deleted.json()["id"] == doomed["id"]
    document, _ = await published(client)
    assert [a["name"] for a in document["agents"]] == ["other"]
    assert document["grants"] == []
    assert (await client.get("/agents/other/grants")).json()["grants"] == []
    # The name is free again.
    assert (await client.post("/agents", json={"name": "doomed"})).status_code == 201


async def test_a_rename_takes_the_canonical_form_and_refuses_look_alikes(
    client: httpx.AsyncClient,
) -> None:
    await make_agent(client, "planner")
    writer = (await make_agent(client, "writer"))["id"]
    for name in ("PLANNER", "pl\u0430nner"):  # case; a Cyrillic "a"
        clash = error_of(await client.patch(f"/agents/{writer}", json={"name": name}), 409)
        assert "look-alike" in clash["message"] and clash["field"] == "name"
    for name in (" writer2", "writer\u200d2", "writer\x002"):
        refused = error_of(await client.patch(f"/agents/{writer}", json={"name": name}), 422)
        assert refused["field"] == "name"
    renamed = await client.patch(f"/agents/{writer}", json={"name": "\uff57riter2"})
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["name"] == "writer2"  # NFKC: a full-width w
