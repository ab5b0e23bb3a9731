"""Shared test data and checks for the control plane tests."""

from __future__ import annotations

from typing import Any

import httpx

from pdp.engine import CompiledSnapshot, compile_snapshot

__all__ = ["REFERENCE_POLICIES", "error_of", "make_agent", "published"]

# The reference page's four policy bodies, verbatim.
REFERENCE_POLICIES: list[dict[str, Any]] = [
    {
        "name": "Block Prompt Injection",
        "policyType": "injection_scan",
        "enforcementMode": "block",
        "ruleDefinition": {
            "patterns": ["ignore previous instructions", "system prompt"],
            "action": "block",
            "scan_input": True,
            "scan_output": True,
        },
        "appliesToAgents": [],
        "isActive": True,
    },
    {
        "name": "PII Protection",
        "policyType": "pii_access",
        "enforcementMode": "monitor",
        "ruleDefinition": {
            "denied_pii_types": ["ssn", "credit_card"],
            "mask_output": True,
            "log_access": True,
        },
        "appliesToAgents": [],
        "isActive": True,
    },
    {
        "name": "Daily Cost Limit",
        "policyType": "cost_limit",
        "enforcementMode": "block",
        "ruleDefinition": {"max_cost_per_execution": 5.0, "daily_budget": 50.0},
        "appliesToAgents": [],
        "isActive": True,
    },
    {
        "name": "Monthly Budget Cap",
        "policyType": "budget_cap",
        "enforcementMode": "block",
        "ruleDefinition": {"monthly_cap_usd": 1000.0, "warning_threshold_pct": 80, "reset_day": 1},
        "appliesToAgents": [],
        "isActive": True,
    },
]


async def published(client: httpx.AsyncClient) -> tuple[dict[str, Any], CompiledSnapshot]:
    """The published snapshot document, compiled as a sidecar would."""
    response = await client.get("/snapshot")
    assert response.status_code == 200, response.text
    document = response.json()
    assert response.headers["ETag"] == f'"{document["revision"]}"'
    return document, compile_snapshot(document)


async def make_agent(client: httpx.AsyncClient, name: str) -> dict[str, Any]:
    response = await client.post("/agents", json={"name": name})
    assert response.status_code == 201, response.text
    agent: dict[str, Any] = response.json()
    return agent


def error_of(response: httpx.Response, status: int) -> dict[str, Any]:
    """The error object of a refused request, checked for shape and status."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    error: dict[str, Any] = body["error"]
    assert {"code", "message", "field"} <= set(error)
    assert isinstance(error["message"], str) and error["message"]
    return error
