"""Every curl body of the reference product page, sent verbatim (only the
host, the key and the UUID placeholders differ), does what the page says."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import httpx

from pdp.engine import compile_snapshot
from tests.control._helpers import REFERENCE_POLICIES, make_agent, published

JSON = {"Content-Type": "application/json"}

# The four -d bodies of "Instant setup", character for character.
PAGE_POLICY_BODIES = [
    """{    "name": "Block Prompt Injection",    "policyType": "injection_scan",    "enforcementMode": "block",    "ruleDefinition": { "patterns": ["ignore previous instructions", "system prompt"], "action": "block", "scan_input": true, "scan_output": true },    "appliesToAgents": [],    "isActive": true  }""",  # noqa: E501
    """{    "name": "PII Protection",    "policyType": "pii_access",    "enforcementMode": "monitor",    "ruleDefinition": { "denied_pii_types": ["ssn", "credit_card"], "mask_output": true, "log_access": true },    "appliesToAgents": [],    "isActive": true  }""",  # noqa: E501
    """{    "name": "Daily Cost Limit",    "policyType": "cost_limit",    "enforcementMode": "block",    "ruleDefinition": { "max_cost_per_execution": 5.0, "daily_budget": 50.0 },    "appliesToAgents": [],    "isActive": true  }""",  # noqa: E501
    """{    "name": "Monthly Budget Cap",    "policyType": "budget_cap",    "enforcementMode": "block",    "ruleDefinition": { "monthly_cap_usd": 1000.0, "warning_threshold_pct": 80, "reset_day": 1 },    "appliesToAgents": [],    "isActive": true  }""",  # noqa: E501
]
PAGE_PAUSE_BODY = """{"reason": "Detected harmful outputs in production"}"""
PAGE_GRANT_BODY = """{    "targetAgentId": "AGENT_B_UUID",    "allowedActions": ["execute", "read"],    "expiresAt": "2025-12-31T23:59:59Z"  }"""  # noqa: E501
PAGE_WEBHOOK_BODY = """{    "url": "https://your-app.com/execlave-webhook",    "events": ["policy.violated", "agent.paused"],    "secret": "whsec_your_signing_secret"  }"""  # noqa: E501
# "Available events", as the page lists them.
PAGE_WEBHOOK_EVENTS = [
    "policy.violated",
    "agent.paused",
    "agent.resumed",
    "trace.anomaly",
    "cost.threshold",
]
PAGE_AUTHORIZE_BODY = (
    """{    "sourceAgentId": "agent-a",    "targetAgentId": "agent-b",    "action": "execute"  }"""
)


async def test_the_four_baseline_policies_are_stored_as_sent(client: httpx.AsyncClient) -> None:
    for text, expected in zip(PAGE_POLICY_BODIES, REFERENCE_POLICIES, strict=True):
        assert json.loads(text) == expected  # the copies above are the page's bodies
        response = await client.post("/policies", content=text, headers=JSON)
        assert response.status_code == 201, response.text
        policy = response.json()
        assert {k: policy[k] for k in expected} == expected
        assert response.headers["Location"] == f"/api/v1/policies/{policy['id']}"
        assert policy["createdAt"].endswith("Z") and policy["updatedAt"] == policy["createdAt"]

    document, compiled = await published(client)
    assert document["revision"] == 4
    assert [p["name"] for p in document["policies"]] == [p["name"] for p in REFERENCE_POLICIES]
    assert [p.name for p in compiled.policies] == [p["name"] for p in REFERENCE_POLICIES]


async def test_kill_switch_pause_with_reason_and_resume_without_a_body(
    client: httpx.AsyncClient,
) -> None:
    agent = await make_agent(client, "my-chatbot")

    response = await client.patch(
        f"/agents/{agent['id']}/pause", content=PAGE_PAUSE_BODY, headers=JSON
    )
    assert response.status_code == 200, response.text
    paused = response.json()
    assert paused["paused"] is True
    assert paused["pauseReason"] == "Detected harmful outputs in production"
    assert paused["pausedAt"].endswith("Z")
    _, compiled = await published(client)
    info = compiled.resolve_agent("my-chatbot")
    assert info.paused and info.pause_reason == "Detected harmful outputs in production"

    # The page's resume sends only the key: no body, no Content-Type.
    response = await client.patch(f"/agents/{agent['id']}/resume")
    assert response.status_code == 200, response.text
    assert response.json()["paused"] is False
    assert response.json()["pauseReason"] is None
    _, compiled = await published(client)
    assert not compiled.resolve_agent(agent["id"]).paused


async def test_grant_from_the_page_has_expired_and_authorize_says_so(
    client: httpx.AsyncClient,
) -> None:
    agent_a = await make_agent(client, "agent-a")
    agent_b = await make_agent(client, "agent-b")
    body = PAGE_GRANT_BODY.replace("AGENT_B_UUID", agent_b["id"])
    response = await client.post(f"/agents/{agent_a['id']}/grants", content=body, headers=JSON)
    assert response.status_code == 201, response.text
    grant = response.json()
    assert grant["sourceAgentId"] == agent_a["id"]
    assert grant["targetAgentId"] == agent_b["id"]
    assert grant["allowedActions"] == ["execute", "read"]
    assert grant["expiresAt"] == "2025-12-31T23:59:59Z"

    # 2025-12-31 is in the past: the page's authorize call, by agent name, is denied.
    response = await client.post("/agents/authorize", content=PAGE_AUTHORIZE_BODY, headers=JSON)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["allowed"] is False
    assert answer["denial"] == "grant_expired"
    assert "expired" in answer["reason"]

    # A grant that lasts longer allows the same call.
    until = (datetime.now(UTC) + timedelta(days=30)).replace(microsecond=0)
    future = json.loads(body) | {"expiresAt": until.isoformat().replace("+00:00", "Z")}
    response = await client.post("/agents/agent-a/grants", json=future)
    assert response.status_code == 201, response.text
    response = await client.post("/agents/authorize", content=PAGE_AUTHORIZE_BODY, headers=JSON)
    answer = response.json()
    assert answer["allowed"] is True
    assert answer["denial"] is None
    assert answer["grantExpiresAt"] == future["expiresAt"]

    document, _ = await published(client)
    assert len(document["grants"]) == 2
    compile_snapshot(document)


async def test_webhook_registration_from_the_page(client: httpx.AsyncClient) -> None:
    # The page's secret is a placeholder: after whsec_ the scheme wants the
    # base64 of a key, so the body sent as it is says so, naming the field.
    response = await client.post("/webhooks", content=PAGE_WEBHOOK_BODY, headers=JSON)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["field"] == "secret" and "base64" in error["message"]
    assert (await client.get("/webhooks")).json()["webhooks"] == []

    # With a real secret in its place, it is registered as sent.
    secret = "whsec_" + base64.b64encode(b"k" * 32).decode()
    body = PAGE_WEBHOOK_BODY.replace("whsec_your_signing_secret", secret)
    response = await client.post("/webhooks", content=body, headers=JSON)
    assert response.status_code == 201, response.text
    hook = response.json()
    assert hook["url"] == "https://your-app.com/execlave-webhook"
    assert hook["events"] == ["policy.violated", "agent.paused"]
    assert hook["secret"] == secret
    assert response.headers["Location"] == f"/api/v1/webhooks/{hook['id']}"

    # Every event the page lists can be subscribed to.
    every = {"url": "https://your-app.com/all", "events": PAGE_WEBHOOK_EVENTS}
    response = await client.post("/webhooks", json=every)
    assert response.status_code == 201, response.text
    assert response.json()["events"] == PAGE_WEBHOOK_EVENTS
