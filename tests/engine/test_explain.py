"""Explanation mode: the decision ``enforce`` gives, and every policy's result
with its reason."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pdp.engine import NO_USAGE, EnforceInput, Outcome, compile_snapshot

NOW = datetime(2026, 3, 15, 12, 0, tzinfo=UTC)


def _policy(name: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "policyType": "injection_scan",
        "enforcementMode": "block",
        "ruleDefinition": {"patterns": [name.lower()]},
        **extra,
    }


DOCUMENT: dict[str, Any] = {
    "revision": 3,
    "agents": [
        {"id": "a1", "name": "bot"},
        {"id": "a2", "name": "other"},
        {"id": "a3", "name": "sleepy", "paused": True, "pauseReason": "maintenance"},
    ],
    "policies": [
        _policy("Alpha"),
        _policy("Beta", prerequisites=[{"policy": "Alpha", "when": "not_fired"}]),
        _policy("Gamma", appliesToAgents=["other"]),
        _policy("Delta", isActive=False),
        _policy("Warn Only", enforcementMode="warn"),
    ],
}


def _results(agent: str, text: str) -> dict[str, tuple[Outcome, str]]:
    snapshot = compile_snapshot(DOCUMENT)
    request = EnforceInput(agent_id=agent, input=text)
    explanation = snapshot.explain(request, NO_USAGE, NOW)
    assert explanation.decision == snapshot.enforce(request, NO_USAGE, NOW)
    return {p.policy_name: (p.outcome, p.reason) for p in explanation.policies}


def test_every_policy_has_a_result_and_a_reason() -> None:
    results = _results("bot", "alpha and warn only")
    assert results["Alpha"][0] is Outcome.FIRED and "alpha" in results["Alpha"][1]
    assert results["Beta"] == (Outcome.SKIPPED, "prerequisite not met: 'Alpha' fired")
    assert results["Gamma"][0] is Outcome.NOT_APPLICABLE and "'bot'" in results["Gamma"][1]
    assert results["Delta"] == (Outcome.INACTIVE, "isActive is false")
    assert results["Warn Only"][0] is Outcome.FIRED
    assert list(results) == ["Alpha", "Beta", "Gamma", "Warn Only", "Delta"]


def test_a_policy_that_ran_and_found_nothing_is_not_fired() -> None:
    results = _results("bot", "hello")
    assert results["Alpha"][0] is Outcome.NOT_FIRED
    assert results["Beta"][0] is Outcome.NOT_FIRED  # its prerequisite held: it ran


def test_a_paused_agent_evaluates_nothing() -> None:
    results = _results("sleepy", "alpha")
    assert results["Alpha"] == (Outcome.NOT_EVALUATED, "agent 'sleepy' is paused: no policy runs")


def test_the_json_form_names_the_decision_and_every_policy() -> None:
    snapshot = compile_snapshot(DOCUMENT)
    data = snapshot.explain(EnforceInput(agent_id="bot", input="alpha"), NO_USAGE, NOW).as_dict()
    assert data["decision"] == "BLOCK" and data["revision"] == 3
    assert data["violations"][0]["policyName"] == "Alpha"
    fired = data["policies"][0]
    assert (fired["result"], fired["severity"]) == ("fired", "high")
    assert fired["violationMode"] == "block"
    assert [p["result"] for p in data["policies"]] == [
        "fired",
        "skipped",
        "not_applicable",
        "not_fired",
        "inactive",
    ]


def test_explaining_leaves_the_snapshot_as_it_was() -> None:
    snapshot = compile_snapshot(DOCUMENT)
    request = EnforceInput(agent_id="bot", input="alpha")
    before = snapshot.enforce(request, NO_USAGE, NOW)
    snapshot.explain(request, NO_USAGE, NOW)
    assert snapshot.enforce(request, NO_USAGE, NOW) == before
    assert all(type(p.check).__name__ != "_Recording" for p in snapshot.policies)
