"""What the YAML cases of custom_validator do not show: Standard Webhooks
signing, the compile option for loopback http, the question the engine
asks, and the consultation's contract."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from pdp.engine import (
    NO_USAGE,
    Consultation,
    Decision,
    DecisionKind,
    EnforceInput,
    Outcome,
    SnapshotError,
    ValidatorAnswer,
    ValidatorFailure,
    compile_snapshot,
    sign_webhook,
    signing_key,
)

NOW = datetime(2026, 3, 15, 12, tzinfo=UTC)
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def test_the_standard_webhooks_known_answer() -> None:
    key = signing_key(SECRET)
    assert len(key) == 24
    body = b'{"test": 2432232314}'
    signature = sign_webhook(key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body)
    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_a_raw_secret_is_its_utf8_bytes() -> None:
    assert signing_key("a-raw-secret-of-24-bytes!!") == b"a-raw-secret-of-24-bytes!!"
    assert signing_key("ключ-из-двадцати-байт") == "ключ-из-двадцати-байт".encode()


def policy(url: str, **rule: Any) -> dict[str, Any]:
    return {
        "name": "Entitlements",
        "policyType": "custom_validator",
        "enforcementMode": "block",
        "ruleDefinition": {"url": url, "secret": SECRET, **rule},
    }


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:8080/check", "http://127.9.9.9/", "http://[::1]:9/", "http://localhost/"],
)
def test_loopback_http_compiles_only_with_the_option(url: str) -> None:
    document = {"policies": [policy(url)]}
    with pytest.raises(SnapshotError) as raised:
        compile_snapshot(document)
    (error,) = raised.value.errors
    assert error.path == "policies[0].ruleDefinition.url"
    (validator,) = compile_snapshot(document, allow_insecure_validators=True).validators
    assert validator.insecure and validator.url == url


@pytest.mark.parametrize("url", ["http://10.0.0.1/", "http://validator.example/", "http://[::2]/"])
def test_http_to_anything_but_loopback_never_compiles(url: str) -> None:
    with pytest.raises(SnapshotError, match="loopback"):
        compile_snapshot({"policies": [policy(url)]}, allow_insecure_validators=True)


def test_the_validators_of_a_snapshot_are_its_active_ones_once_each() -> None:
    same = policy("https://v.example/")
    document = {
        "policies": [
            same,
            {**same, "name": "Again"},
            {**policy("https://w.example/"), "name": "Off", "isActive": False},
        ]
    }
    (validator,) = compile_snapshot(document).validators
    assert validator.url == "https://v.example/"
    assert SECRET.removeprefix("whsec_") not in repr(validator)
    assert repr(signing_key(SECRET)) not in repr(validator)


def test_the_question_is_the_request_context_with_the_agent_resolved() -> None:
    snapshot = compile_snapshot(
        {
            "agents": [{"id": "agent-1", "name": "billing-bot"}],
            "policies": [{**policy("https://v.example/"), "id": "ent"}],
        }
    )
    request = EnforceInput(
        agent_id="billing-bot", output="answer", tool="refunds", metadata={"k": "v"}
    )
    outcome = snapshot.enforce(request, NO_USAGE, NOW)
    assert isinstance(outcome, Consultation)
    (call,) = outcome.calls
    assert (call.policy_id, call.policy_name) == ("ent", "Entitlements")
    assert call.payload == {
        "policyId": "ent",
        "policyName": "Entitlements",
        "agent": {"id": "agent-1", "name": "billing-bot"},
        "input": None,
        "output": "answer",
        "model": "",
        "tool": "refunds",
        "metadata": {"k": "v"},
        "estimatedCostUsd": None,
        "context": [],
    }


def test_a_consultation_is_resumed_once_with_every_answer() -> None:
    snapshot = compile_snapshot({"policies": [{**policy("https://v.example/"), "id": "ent"}]})
    request = EnforceInput(agent_id="a", input="x")
    outcome = snapshot.enforce(request, NO_USAGE, NOW)
    assert isinstance(outcome, Consultation)
    with pytest.raises(ValueError, match="ent"):
        outcome.resume({})
    decision = outcome.resume({"ent": ValidatorFailure("answered HTTP 500")})
    assert isinstance(decision, Decision) and decision.kind is DecisionKind.BLOCK
    with pytest.raises(RuntimeError, match="already resumed"):
        outcome.resume({"ent": ValidatorAnswer(True)})


def test_answers_at_hand_decide_without_asking() -> None:
    snapshot = compile_snapshot({"policies": [{**policy("https://v.example/"), "id": "ent"}]})
    request = EnforceInput(agent_id="a", input="x")
    decision = snapshot.enforce(request, NO_USAGE, NOW, {"ent": ValidatorAnswer(False, "no")})
    assert isinstance(decision, Decision)
    assert [v.message for v in decision.violations] == ["no"]


def test_an_explanation_calls_nothing_and_says_why_each_validator_decided() -> None:
    snapshot = compile_snapshot(
        {
            "policies": [
                {**policy("https://v.example/"), "id": "given", "name": "Given"},
                {**policy("https://w.example/", fail_mode="open"), "id": "open", "name": "Open"},
                {**policy("https://x.example/"), "id": "closed", "name": "Closed"},
            ]
        }
    )
    request = EnforceInput(agent_id="a", input="x")
    explanation = snapshot.explain(request, NO_USAGE, NOW, {"given": ValidatorAnswer(True)})
    results = {r.policy_id: (r.outcome, r.reason) for r in explanation.policies}
    assert results["given"] == (
        Outcome.NOT_FIRED,
        "evaluated: the custom validator allowed the request",
    )
    assert results["open"][0] is Outcome.NOT_FIRED
    assert "not called: an explanation makes no calls" in results["open"][1]
    assert "failing open" in results["open"][1]
    assert results["closed"][0] is Outcome.FIRED
    assert "not called" in results["closed"][1] and "failing closed" in results["closed"][1]
    assert explanation.decision.kind is DecisionKind.BLOCK


def test_an_explanation_says_a_validator_is_not_asked_once_a_policy_blocks() -> None:
    snapshot = compile_snapshot(
        {
            "policies": [
                {**policy("https://v.example/"), "id": "ent"},
                {
                    "name": "Too Expensive",
                    "policyType": "cost_limit",
                    "enforcementMode": "block",
                    "ruleDefinition": {"max_cost_per_execution": 1},
                },
            ]
        }
    )
    request = EnforceInput(agent_id="a", input="x", estimated_cost_usd=5)
    results = {r.policy_id: r for r in snapshot.explain(request, NO_USAGE, NOW).policies}
    assert results["ent"].outcome is Outcome.SKIPPED
    assert "another policy blocks" in results["ent"].reason
