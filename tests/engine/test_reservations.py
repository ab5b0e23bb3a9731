"""What a decision charges for budgets (one cost reservation with the limits
it was admitted under), and how policies that read usage behave when the
usage cannot be read (``on_state_error``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from pdp.engine import (
    CallCharge,
    CostCharge,
    CounterKey,
    DecisionKind,
    EnforceInput,
    SnapshotError,
    StateUnavailableError,
    compile_snapshot,
)
from tests._policies import policy
from tests.engine._memory_usage import MemoryUsage

NOW = datetime(2026, 3, 15, 12, 0, tzinfo=UTC)
DAY = datetime(2026, 3, 15, tzinfo=UTC)
MONTH = datetime(2026, 3, 1, tzinfo=UTC)


def snapshot(*policies: Any) -> Any:
    return compile_snapshot({"agents": [{"id": "agent-1"}], "policies": list(policies)})


def call(cost: float | None = 2.0, request_id: str = "req-1") -> EnforceInput:
    return EnforceInput(
        agent_id="agent-1", input="hi", estimated_cost_usd=cost, request_id=request_id
    )


DAILY = policy("daily", "cost_limit", {"daily_budget": 10})
MONTHLY = policy("monthly", "budget_cap", {"monthly_cap_usd": 100})


def test_a_call_within_its_budgets_reserves_its_estimate_under_both() -> None:
    decision = snapshot(DAILY, MONTHLY).enforce(call(), MemoryUsage(), NOW)

    assert decision.kind is DecisionKind.ALLOW
    assert decision.charges == (CostCharge("agent-1", "req-1", 2.0, ((DAY, 10.0), (MONTH, 100.0))),)


def test_a_blocked_call_reserves_nothing() -> None:
    decision = snapshot(DAILY).enforce(call(11.0), MemoryUsage(), NOW)
    assert decision.kind is DecisionKind.BLOCK
    assert decision.charges == ()


def test_a_monitor_budget_over_its_limit_reserves_without_a_condition() -> None:
    lenient = policy("daily", "cost_limit", {"daily_budget": 10}, mode="monitor")
    decision = snapshot(lenient).enforce(call(11.0), MemoryUsage(), NOW)
    assert decision.kind is DecisionKind.ALLOW
    assert decision.charges == (CostCharge("agent-1", "req-1", 11.0, ()),)


@pytest.mark.parametrize("cost", [None, 0.0])
def test_a_call_without_an_estimate_reserves_nothing(cost: float | None) -> None:
    assert snapshot(DAILY).enforce(call(cost), MemoryUsage(), NOW).charges == ()


def test_reservations_count_as_spend_for_the_next_decision() -> None:
    usage, rules = MemoryUsage(), snapshot(DAILY)
    for index in range(5):
        decision = rules.enforce(call(2.0, f"req-{index}"), usage, NOW)
        assert decision.kind is DecisionKind.ALLOW
        assert not usage.apply(decision.charges)
    assert rules.enforce(call(0.5, "req-6"), usage, NOW).kind is DecisionKind.BLOCK


class Unreachable:
    """A usage view whose backend cannot be reached."""

    def spent_since(self, agent_id: str, since: datetime) -> float:
        raise StateUnavailableError("Redis at redis://10.0.0.5:6379/0 is unreachable")

    def calls_since(self, key: CounterKey, since: int) -> int:
        raise StateUnavailableError("Redis at redis://10.0.0.5:6379/0 is unreachable")

    def nth_call_since(self, key: CounterKey, since: int, n: int) -> int | None:
        raise StateUnavailableError("Redis at redis://10.0.0.5:6379/0 is unreachable")


RATE = {"max_requests": 5, "per_seconds": 60}


@pytest.mark.parametrize(
    "usage_policy",
    [
        DAILY,
        MONTHLY,
        policy("rate", "rate_limit", RATE),
        policy("expr", "expression", {"expression": "usage.daily_spend_usd > 5.0"}),
    ],
    ids=["cost_limit", "budget_cap", "rate_limit", "expression"],
)
def test_a_policy_that_cannot_read_usage_fails_closed_by_default(usage_policy: Any) -> None:
    other = policy("shell", "expression", {"expression": 'request.tool == "shell"'})
    decision = snapshot(usage_policy, other).enforce(call(), Unreachable(), NOW)

    assert decision.kind is DecisionKind.BLOCK
    (violation,) = decision.violations
    assert violation.policy_name == usage_policy["name"]
    assert violation.message.startswith("usage cannot be read, failing closed")
    assert "10.0.0.5" in violation.message
    assert decision.charges == ()


def test_on_state_error_open_lets_the_call_through_charging_nothing() -> None:
    lenient = policy("rate", "rate_limit", {**RATE, "on_state_error": "open"})
    daily = policy("daily", "cost_limit", {"daily_budget": 10, "on_state_error": "open"})
    decision = snapshot(lenient, daily).enforce(call(), Unreachable(), NOW)
    assert decision.kind is DecisionKind.ALLOW
    assert decision.charges == ()


def test_a_readable_usage_still_charges_with_on_state_error_open() -> None:
    lenient = policy("rate", "rate_limit", {**RATE, "on_state_error": "open"})
    decision = snapshot(lenient).enforce(call(None), MemoryUsage(), NOW)
    assert [type(charge) for charge in decision.charges] == [CallCharge]


def test_on_state_error_takes_open_or_closed_only_and_only_where_usage_is_read() -> None:
    with pytest.raises(SnapshotError) as bad_value:
        snapshot(policy("rate", "rate_limit", {**RATE, "on_state_error": "ignore"}))
    (error,) = bad_value.value.errors
    assert error.path == "policies[0].ruleDefinition.on_state_error"
    assert "closed, open" in error.message

    with pytest.raises(SnapshotError) as not_here:
        snapshot(
            policy("pii", "pii_access", {"denied_pii_types": ["ssn"], "on_state_error": "open"})
        )
    assert not_here.value.errors[0].path == "policies[0].ruleDefinition.on_state_error"
