"""Snapshot documents for the tests of budgets, rate limits and state:
one agent (``agent-1``, named ``chatbot``) and the policies a test names."""

from __future__ import annotations

from typing import Any

__all__ = ["budget_cap", "daily_budget", "document", "policy", "rate_limit"]


def policy(
    name: str, policy_type: str, rule: dict[str, Any], mode: str = "block"
) -> dict[str, Any]:
    return {
        "name": name,
        "policyType": policy_type,
        "enforcementMode": mode,
        "ruleDefinition": rule,
    }


def daily_budget(usd: float, mode: str = "block", **rule: Any) -> dict[str, Any]:
    return policy("Daily Budget", "cost_limit", {"daily_budget": usd, **rule}, mode)


def budget_cap(usd: float, mode: str = "block", **rule: Any) -> dict[str, Any]:
    return policy("Monthly Cap", "budget_cap", {"monthly_cap_usd": usd, **rule}, mode)


def rate_limit(most: int, per_seconds: int, mode: str = "block") -> dict[str, Any]:
    rule = {"max_requests": most, "per_seconds": per_seconds}
    return policy("Rate Limit", "rate_limit", rule, mode)


def document(*policies: dict[str, Any]) -> dict[str, Any]:
    """A snapshot listing ``agent-1`` (``chatbot``) with ``policies``."""
    return {
        "revision": 1,
        "agents": [{"id": "agent-1", "name": "chatbot"}],
        "policies": list(policies),
    }
