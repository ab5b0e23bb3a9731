"""The engine's part of approvals: how long a reviewer has (a rule field of
every type), deciding with approved policies, the digest that binds an
approval to one request, the masked excerpt, and the refusal."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from pdp.engine import (
    NO_USAGE,
    POLICY_TYPES,
    Approval,
    ApprovalState,
    CompiledSnapshot,
    Consultation,
    ContextItem,
    ContextKind,
    Decision,
    DecisionKind,
    EnforceInput,
    FiredPolicy,
    Mode,
    SnapshotError,
    UsageView,
    ValidatorAnswer,
    approval_from_json,
    approval_json,
    approval_refusal,
    compile_snapshot,
    masked_excerpt,
    request_digest,
)

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def held_by(expression: str, timeout: Any = None, **extra: Any) -> dict[str, Any]:
    rule: dict[str, Any] = {"expression": expression}
    if timeout is not None:
        rule["approval_timeout_s"] = timeout
    return {
        "name": extra.pop("name", expression),
        "policyType": "expression",
        "enforcementMode": extra.pop("mode", "require_approval"),
        "ruleDefinition": rule,
        **extra,
    }


def decide(
    snapshot: CompiledSnapshot,
    request: EnforceInput,
    usage: UsageView,
    now: datetime,
    *,
    approved: frozenset[str] = frozenset(),
) -> Decision:
    """A decision of a snapshot without custom validators."""
    decision = snapshot.enforce(request, usage, now, approved=approved)
    assert isinstance(decision, Decision)
    return decision


def shell(**fields: Any) -> EnforceInput:
    return EnforceInput(**{"agent_id": "bot", "input": "ls", "tool": "shell", **fields})


def test_a_reviewer_has_the_shortest_timeout_of_the_policies_holding_the_call() -> None:
    snapshot = compile_snapshot(
        {
            "policies": [
                held_by('request.tool == "shell"', name="default"),
                held_by('request.input == "ls"', 120, name="short"),
                held_by("true", 5, name="blocks", mode="block"),
            ]
        }
    )
    only_default = decide(
        snapshot, shell(input="pwd"), NO_USAGE, NOW, approved=frozenset({"blocks"})
    )
    assert only_default.kind is DecisionKind.BLOCK  # an approval never lifts a block
    two = compile_snapshot({"policies": [held_by('request.tool == "shell"', name="default")]})
    assert decide(two, shell(), NO_USAGE, NOW).approval_timeout_s == 900
    both = compile_snapshot(
        {
            "policies": [
                held_by('request.tool == "shell"', name="default"),
                held_by('request.input == "ls"', 120, name="short"),
            ]
        }
    )
    decision = decide(both, shell(), NO_USAGE, NOW)
    assert decision.kind is DecisionKind.PENDING_APPROVAL
    assert decision.approval_timeout_s == 120
    # With "short" approved, "default" alone holds the call.
    rest = decide(both, shell(), NO_USAGE, NOW, approved=frozenset({"short"}))
    assert (rest.kind, rest.approval_timeout_s) == (DecisionKind.PENDING_APPROVAL, 900)


@pytest.mark.parametrize("policy_type", POLICY_TYPES)
def test_every_type_takes_approval_timeout_s(policy_type: str) -> None:
    document = {
        "policies": [
            {
                "name": "p",
                "policyType": policy_type,
                "enforcementMode": "require_approval",
                "ruleDefinition": {"approval_timeout_s": 60},
            }
        ]
    }
    # The type's own keys may be missing; the common one is never the problem.
    paths: list[str] = []
    try:
        compile_snapshot(document)
    except SnapshotError as exc:
        paths = [e.path for e in exc.errors]
    assert "policies[0].ruleDefinition.approval_timeout_s" not in paths


@pytest.mark.parametrize("value", [0, -1, "600", True, 1e12, None])
def test_a_bad_approval_timeout_names_the_field(value: Any) -> None:
    policy = held_by("true")
    policy["ruleDefinition"]["approval_timeout_s"] = value
    if value is None:  # null is "not given": the default
        assert compile_snapshot({"policies": [policy]}).policies
        return
    with pytest.raises(SnapshotError) as raised:
        compile_snapshot({"policies": [policy]})
    (error,) = raised.value.errors
    assert error.path == "policies[0].ruleDefinition.approval_timeout_s"


def test_approved_policies_no_longer_hold_the_call_but_are_listed() -> None:
    snapshot = compile_snapshot(
        {
            "policies": [
                held_by('request.tool == "shell"', name="held"),
                held_by("true", name="noted", mode="warn"),
                {
                    "name": "limit",
                    "policyType": "rate_limit",
                    "enforcementMode": "block",
                    "ruleDefinition": {"max_requests": 5, "per_seconds": 60},
                },
            ]
        }
    )
    held = decide(snapshot, shell(), NO_USAGE, NOW)
    assert held.kind is DecisionKind.PENDING_APPROVAL and held.charges == ()
    approved = decide(snapshot, shell(), NO_USAGE, NOW, approved=frozenset({"held"}))
    assert approved.kind is DecisionKind.ALLOW_WITH_WARNINGS
    assert [(v.policy_id, v.mode) for v in approved.violations] == [
        ("held", Mode.REQUIRE_APPROVAL),
        ("noted", Mode.WARN),
    ]
    assert approved.charges  # the call proceeds, so it counts
    assert approved.approval_timeout_s == 0


def test_the_digest_binds_one_request() -> None:
    base = request_digest("bot", shell(metadata={"a": "1", "b": "2"}))
    assert base == request_digest("bot", shell(metadata={"b": "2", "a": "1"}))
    assert len(base) == 64 and int(base, 16) >= 0
    changed = [
        request_digest("other", shell(metadata={"a": "1", "b": "2"})),
        request_digest("bot", shell(input="ls -la", metadata={"a": "1", "b": "2"})),
        request_digest("bot", shell(input="", metadata={"a": "1", "b": "2"})),
        request_digest("bot", shell(input=None, metadata={"a": "1", "b": "2"})),
        request_digest("bot", shell(output="x", metadata={"a": "1", "b": "2"})),
        request_digest("bot", shell(tool="bash", metadata={"a": "1", "b": "2"})),
        request_digest("bot", shell(model="m", metadata={"a": "1", "b": "2"})),
        request_digest("bot", shell(metadata={"a": "1", "b": "3"})),
        request_digest("bot", shell(estimated_cost_usd=0.0, metadata={"a": "1", "b": "2"})),
        request_digest(
            "bot",
            shell(metadata={"a": "1", "b": "2"}, context=(ContextItem("hi", ContextKind.EMAIL),)),
        ),
    ]
    assert len({base, *changed}) == len(changed) + 1


def test_the_excerpt_masks_every_pii_type_then_cuts() -> None:
    assert masked_excerpt(None) == masked_excerpt("") == ""
    text = "mail bob@example.com, card 4111 1111 1111 1111, ssn 123-45-6789"
    excerpt = masked_excerpt(text)
    for value in ("bob@example.com", "4111 1111 1111 1111", "123-45-6789"):
        assert value not in excerpt
    assert excerpt.endswith("***-**-6789")
    long = "x" * 190 + " 123-45-6789 " + "y" * 500
    cut = masked_excerpt(long)
    assert len(cut) == 200 and cut.endswith("…") and "123-45" not in cut


def test_a_refusal_turns_the_held_policies_into_a_block() -> None:
    snapshot = compile_snapshot(
        {"policies": [held_by("true", name="held"), held_by("true", name="noted", mode="warn")]}
    )
    refused = approval_refusal(decide(snapshot, shell(), NO_USAGE, NOW), "denied by alice")
    assert refused.kind is DecisionKind.BLOCK and refused.charges == ()
    first = refused.violations[0]
    assert (first.policy_id, first.mode, first.message) == ("held", Mode.BLOCK, "denied by alice")
    assert refused.violations[1].mode is Mode.WARN


def test_an_approval_reads_as_expired_once_its_time_has_passed() -> None:
    approval = Approval(
        id="a1",
        agent_id="bot",
        digest="ab" * 32,
        policies=(FiredPolicy("held", "Held", "expression", "require_approval"),),
        masked_excerpt="ls",
        request_id="r",
        created_at=NOW,
        expires_at=NOW + timedelta(minutes=15),
    )
    assert approval.state_at(NOW) is ApprovalState.PENDING
    assert approval.state_at(NOW + timedelta(minutes=15)) is ApprovalState.EXPIRED
    assert approval.approved_policies == frozenset({"held"})
    shown = approval_json(approval, NOW + timedelta(minutes=5))
    assert shown["status"] == "pending" and shown["expiresInSeconds"] == 600
    assert approval_from_json(shown) == approval
    late = approval_json(approval, NOW + timedelta(hours=1))
    assert late["status"] == "expired" and late["decidedAt"] == late["expiresAt"]


def test_approved_policies_no_longer_hold_the_call_after_a_validator_answered() -> None:
    validator = {
        "id": "ent",
        "name": "Entitlements",
        "policyType": "custom_validator",
        "enforcementMode": "block",
        "ruleDefinition": {"url": "https://validator.test/check", "secret": "s" * 24},
    }
    snapshot = compile_snapshot({"policies": [held_by("true", 60, name="held"), validator]})
    asked = snapshot.enforce(shell(), NO_USAGE, NOW)
    assert isinstance(asked, Consultation)
    held = asked.resume({"ent": ValidatorAnswer(True)})
    assert isinstance(held, Decision) and held.kind is DecisionKind.PENDING_APPROVAL
    assert held.approval_timeout_s == 60
    answers = {"ent": ValidatorAnswer(True)}
    again = snapshot.enforce(shell(), NO_USAGE, NOW, answers, approved=frozenset({"held"}))
    assert isinstance(again, Decision) and again.kind is DecisionKind.ALLOW
    refused = snapshot.enforce(
        shell(), NO_USAGE, NOW, {"ent": ValidatorAnswer(False, "no")}, approved=frozenset({"held"})
    )
    assert isinstance(refused, Decision) and refused.kind is DecisionKind.BLOCK
