"""The CEL variables: every declared variable is bound, typed and read as
documented, seen through a real expression policy."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pdp.engine import CompiledSnapshot, Decision, EnforceInput, compile_snapshot
from pdp.engine._variables import VARIABLES, Variable
from tests.engine._case_loader import SpendRecord
from tests.engine._docs import assert_generated_table
from tests.engine._memory_usage import MemoryUsage

BEGIN = "<!-- CEL variables: from pdp/engine/_variables.py, checked by a test -->"
END = "<!-- end of CEL variables -->"

NOW = datetime(2026, 3, 15, 12, 0, tzinfo=UTC)
SPEND = MemoryUsage(
    {
        "agent-1": (
            SpendRecord(datetime(2026, 3, 2, 9, 0, tzinfo=UTC), 4.0),
            SpendRecord(datetime(2026, 3, 15, 8, 0, tzinfo=UTC), 3.0),
        )
    }
)
# True for SAMPLE; false for OTHER, which differs in every field.
SAMPLE = EnforceInput(
    agent_id="bot",
    input="hello",
    estimated_cost_usd=2.5,
    model="gpt-x",
    tool="search",
    metadata={"env": "prod"},
    request_id="req-7",
)
OTHER = EnforceInput(
    agent_id="stranger",
    output="bye",
    model="m2",
    tool="t2",
    metadata={"env": "dev"},
    request_id="req-8",
)
EXPRESSIONS = {
    "agent.id": 'agent.id == "agent-1"',
    "agent.name": 'agent.name == "bot"',
    "agent.known": "agent.known",
    "request.input": 'request.input == "hello"',
    "request.output": 'request.output == ""',
    "request.model": 'request.model == "gpt-x"',
    "request.tool": 'request.tool == "search"',
    "request.request_id": 'request.request_id == "req-7"',
    "request.side": 'request.side == "input"',
    "request.metadata": 'request.metadata["env"] == "prod"',
    "request.estimated_cost_usd": "request.estimated_cost_usd == 2.5",
    "usage.daily_spend_usd": "usage.daily_spend_usd == 3",
    "usage.monthly_spend_usd": "usage.monthly_spend_usd == 7.0",
    "now": 'now == timestamp("2026-03-15T12:00:00Z")',
}


def test_every_declared_variable_has_an_expression_here() -> None:
    assert set(EXPRESSIONS) == {v.name for v in VARIABLES}


def _snapshot(expression: str) -> CompiledSnapshot:
    policy = {
        "name": "p",
        "policyType": "expression",
        "enforcementMode": "block",
        "ruleDefinition": {"expression": expression},
    }
    # unknownAgents allow: OTHER's agent is unlisted, and must still be evaluated.
    return compile_snapshot(
        {
            "agents": [{"id": "agent-1", "name": "bot"}],
            "policies": [policy],
            "unknownAgents": "allow",
        }
    )


def _fires(snapshot: CompiledSnapshot, request: EnforceInput) -> bool:
    decision = snapshot.enforce(request, SPEND, NOW)
    assert isinstance(decision, Decision)
    assert all("could not be evaluated" not in v.message for v in decision.violations)
    return bool(decision.violations)


@pytest.mark.parametrize("variable", VARIABLES, ids=[v.name for v in VARIABLES])
def test_a_variable_is_read_from_the_request(variable: Variable) -> None:
    name = variable.name
    snapshot = _snapshot(EXPRESSIONS[name])
    # Twice each way on one compiled policy: a remembered result must follow
    # the variable's value.
    assert _fires(snapshot, SAMPLE)
    if name != "now":
        assert not _fires(snapshot, OTHER)
        assert _fires(snapshot, SAMPLE)
        assert not _fires(snapshot, OTHER)


def test_the_docs_table_of_variables_is_the_declaration() -> None:
    rows = ["| name | type | value |", "|---|---|---|"]
    rows += [f"| `{v.name}` | {v.type.value} | {v.doc} |" for v in VARIABLES]
    assert_generated_table(BEGIN, rows, END)
