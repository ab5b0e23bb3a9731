"""Explanation mode: one decision with every policy's result (fired or not,
skipped by a prerequisite, not applicable to the agent, inactive) and why.

It costs nothing when off: :meth:`CompiledSnapshot.enforce` is not touched.
An explanation runs the same ``enforce`` on a copy of the snapshot whose
checks record what they answer; a policy of the agent's plan whose check
was never asked was skipped by its prerequisites, or, after a policy that
blocks, was a custom validator (or waited on one) that is then not asked.

An explanation makes no calls: a custom validator is answered from the
``answers`` given (by policy id), else with a failure saying it was not
called, which its ``fail_mode`` decides."""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ._context import Context
from ._policy import Budget, Check, Hit
from ._types import AgentInfo, Decision, DecisionKind, EnforceInput
from ._usage import UsageView
from ._validator import (
    NO_ANSWERS,
    Answer,
    ValidatorAnswer,
    ValidatorCheck,
    ValidatorFailure,
)

if TYPE_CHECKING:
    from ._snapshot import CompiledSnapshot

__all__ = ["Explanation", "Outcome", "PolicyResult", "decision_dict", "explain"]


class Outcome(enum.Enum):
    """What became of one policy in one decision."""

    FIRED = "fired"
    NOT_FIRED = "not_fired"
    SKIPPED = "skipped"  # a prerequisite did not hold
    NOT_APPLICABLE = "not_applicable"  # appliesToAgents leaves the agent out
    NOT_EVALUATED = "not_evaluated"  # the agent is paused: no policy runs
    INACTIVE = "inactive"  # isActive: false


@dataclass(frozen=True, slots=True)
class PolicyResult:
    policy_id: str
    policy_name: str
    policy_type: str
    mode: str  # the policy's enforcementMode
    outcome: Outcome
    reason: str
    severity: str | None = None  # of the violation, when fired
    violation_mode: str | None = None  # the mode the violation took (a budget warning is softer)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.policy_id,
            "name": self.policy_name,
            "type": self.policy_type,
            "mode": self.mode,
            "result": self.outcome.value,
            "reason": self.reason,
        }
        if self.outcome is Outcome.FIRED:
            out["severity"] = self.severity
            out["violationMode"] = self.violation_mode
        return out


@dataclass(frozen=True, slots=True)
class Explanation:
    decision: Decision
    policies: tuple[PolicyResult, ...]  # in evaluation order, then inactive ones

    def as_dict(self) -> dict[str, Any]:
        return {**decision_dict(self.decision), "policies": [p.as_dict() for p in self.policies]}


class _Recording(Check):
    """A check that answers as ``inner`` does and writes its answer down."""

    __slots__ = ("inner", "policy_id", "results")

    def __init__(self, inner: Check, policy_id: str, results: dict[str, Hit | None]) -> None:
        self.inner = inner
        self.policy_id = policy_id
        self.results = results

    def run(self, ctx: Context) -> Hit | None:
        hit = self.inner.run(ctx)
        self.results[self.policy_id] = hit
        return hit

    def budgets(self) -> tuple[Budget, ...]:
        return self.inner.budgets()


class _RecordingValidator(ValidatorCheck):
    """A custom validator's check that writes down its result and the answer."""

    __slots__ = ("answers", "policy_id", "results")

    def __init__(
        self,
        inner: ValidatorCheck,
        policy_id: str,
        results: dict[str, Hit | None],
        answers: dict[str, Answer],
    ) -> None:
        super().__init__(inner.validator)
        self.policy_id = policy_id
        self.results = results
        self.answers = answers

    def judge(self, answer: Answer) -> Hit | None:
        hit = super().judge(answer)
        self.results[self.policy_id] = hit
        self.answers[self.policy_id] = answer
        return hit


_NOT_CALLED = ValidatorFailure("not called: an explanation makes no calls")


def explain(
    snapshot: CompiledSnapshot,
    request: EnforceInput,
    usage: UsageView,
    now: datetime,
    answers: Mapping[str, Answer] = NO_ANSWERS,
) -> Explanation:
    """The decision ``snapshot.enforce`` gives, with every policy's result;
    custom validators answered by ``answers`` (by policy id), else failed."""
    results: dict[str, Hit | None] = {}
    answered: dict[str, Answer] = {}

    def recording_check(policy_id: str, check: Check) -> Check:
        if isinstance(check, ValidatorCheck):
            return _RecordingValidator(check, policy_id, results, answered)
        return _Recording(check, policy_id, results)

    recording = dataclasses.replace(
        snapshot,
        policies=tuple(
            dataclasses.replace(p, check=recording_check(p.id, p.check)) for p in snapshot.policies
        ),
        _plans={},
    )
    outcome = recording.enforce(request, usage, now, answers)
    while not isinstance(outcome, Decision):
        outcome = outcome.resume({call.policy_id: _NOT_CALLED for call in outcome.calls})
    decision = outcome
    agent = decision.agent
    fired = {pid for pid, hit in results.items() if hit is not None}
    names = {p.id: p.name for p in snapshot.policies}
    out: list[PolicyResult] = []
    for p in snapshot.policies:
        mode = p.spec.mode.wire_name
        base = (p.id, p.name, p.policy_type, mode)
        if p.applies_to is not None and agent.id not in p.applies_to:
            reason = f"appliesToAgents does not list agent {agent.name!r}"
            out.append(PolicyResult(*base, Outcome.NOT_APPLICABLE, reason))
        elif decision.kind is DecisionKind.AGENT_PAUSED:
            reason = f"agent {agent.name!r} is paused: no policy runs"
            out.append(PolicyResult(*base, Outcome.NOT_EVALUATED, reason))
        elif not agent.known and snapshot.deny_unknown:
            reason = f"agent {agent.name!r} is not listed (unknownAgents: deny): no policy runs"
            out.append(PolicyResult(*base, Outcome.NOT_EVALUATED, reason))
        elif p.id not in results:
            unmet = [
                f"{names.get(pid, pid)!r} {'did not fire' if want else 'fired'}"
                for pid, want in p.prerequisites
                if (pid in fired) is not want
            ]
            if unmet:
                reason = "prerequisite not met: " + "; ".join(unmet)
            else:  # the evaluation stopped before asking a validator: nothing could change
                reason = "not run: another policy blocks, so no custom validator is asked"
            out.append(PolicyResult(*base, Outcome.SKIPPED, reason))
        else:
            hit = results[p.id]
            if hit is None:
                reason = _quiet_reason(p.policy_type, answered.get(p.id))
                out.append(PolicyResult(*base, Outcome.NOT_FIRED, reason))
            else:
                out.append(
                    PolicyResult(
                        *base,
                        Outcome.FIRED,
                        hit.message,
                        (hit.severity or p.spec.severity).wire_name,
                        (hit.mode or p.spec.mode).wire_name,
                    )
                )
    for policy_id, name, policy_type, mode in snapshot.inactive:
        base = (policy_id, name, policy_type, mode)
        out.append(PolicyResult(*base, Outcome.INACTIVE, "isActive is false"))
    return Explanation(decision, tuple(out))


def _quiet_reason(policy_type: str, answer: Answer | None) -> str:
    if isinstance(answer, ValidatorAnswer):
        return "evaluated: the custom validator allowed the request"
    if isinstance(answer, ValidatorFailure):
        return f"evaluated: the custom validator failed ({answer.reason}); failing open"
    return f"evaluated: the {policy_type} check found nothing to report"


def decision_dict(decision: Decision) -> dict[str, Any]:
    """A decision as plain JSON-ready data: what ``pdp eval`` prints and
    ``pdp test`` compares. PII values never appear: findings are types and spans."""
    agent = decision.agent
    return {
        "decision": decision.kind.value,
        "agent": _agent_dict(agent),
        "revision": decision.snapshot_revision,
        "violations": [
            {
                "policyId": v.policy_id,
                "policyName": v.policy_name,
                "policyType": v.policy_type,
                "severity": v.severity.wire_name,
                "mode": v.mode.wire_name,
                "message": v.message,
                **({"retryAfterMs": v.retry_after_ms} if v.retry_after_ms else {}),
            }
            for v in decision.violations
        ],
        "maskedInput": decision.masked_input,
        "maskedOutput": decision.masked_output,
        "piiFindings": [
            {"field": f.field, "type": f.pii_type, "start": f.start, "end": f.end}
            for f in decision.pii_findings
        ],
    }


def _agent_dict(agent: AgentInfo) -> Mapping[str, Any]:
    out: dict[str, Any] = {"id": agent.id, "name": agent.name, "known": agent.known}
    if agent.paused:
        out["paused"] = True
        out["pauseReason"] = agent.pause_reason
    return out
