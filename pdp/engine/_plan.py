"""What an evaluation runs and how it ends: a compiled policy, an agent's
plan (the policies that apply to it, in evaluation order), and the decision
built from the violations found. Shared by the snapshot's straight
evaluation and the one that waits for validators (``_consultation``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from ._context import Context
from ._model import PolicySpec
from ._pii import mask_text
from ._policy import Check, Hit
from ._types import AgentInfo, Decision, DecisionKind, EnforceInput, Mode, Violation

__all__ = ["NO_PII_COUNTS", "Plan", "Policy", "conclude", "violation"]

_KIND_BY_MODE = {
    Mode.BLOCK: DecisionKind.BLOCK,
    Mode.REQUIRE_APPROVAL: DecisionKind.PENDING_APPROVAL,
    Mode.WARN: DecisionKind.ALLOW_WITH_WARNINGS,
    Mode.MONITOR: DecisionKind.ALLOW,
}
# The decisions that let the call proceed, and so count it.
_PROCEEDS = frozenset({DecisionKind.ALLOW, DecisionKind.ALLOW_WITH_WARNINGS})
NO_PII_COUNTS: Mapping[str, int] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Policy:
    id: str
    name: str
    policy_type: str
    spec: PolicySpec
    check: Check
    applies_to: frozenset[str] | None  # canonical agent ids; None = every agent
    prerequisites: tuple[tuple[str, bool], ...]  # (policy id, must have fired)


class Plan:
    """The policies that apply to one agent, in evaluation order, and the
    decision when none fires (immutable, so one object serves every request).
    ``consults`` is true when one of them is a custom validator: only such
    plans take the evaluation that can wait for answers."""

    __slots__ = ("allow", "consults", "policies")

    def __init__(self, policies: tuple[Policy, ...], allow: Decision, consults: bool) -> None:
        self.policies = policies
        self.allow = allow
        self.consults = consults


def violation(policy: Policy, hit: Hit) -> Violation:
    spec = policy.spec
    return Violation(
        policy.id,
        policy.name,
        policy.policy_type,
        hit.severity or spec.severity,
        hit.message,
        hit.mode or spec.mode,
        hit.retry_after_ms,
    )


def conclude(
    plan: Plan,
    agent: AgentInfo,
    request: EnforceInput,
    ctx: Context,
    violations: list[Violation],
    revision: int,
) -> Decision:
    """The decision once every policy that runs has run; ``violations`` are
    in evaluation order."""
    if not violations:
        charges = ctx.charges()
        allow = plan.allow
        # An agent the snapshot does not list is AgentInfo(ref, ref, False)
        # every time: the plan's copy is equal.
        if not charges and (allow.agent is agent or not agent.known):
            return allow
        return Decision(DecisionKind.ALLOW, agent, snapshot_revision=revision, charges=charges)
    violations.sort(key=lambda v: -v.mode)  # stable: evaluation order within a mode
    kind = _KIND_BY_MODE[violations[0].mode]
    spans = ctx.mask_spans or {}
    masked = {
        side: mask_text(text, spans[side])
        for side, text in (("input", request.input), ("output", request.output))
        if text is not None and side in spans
    }
    return Decision(
        kind,
        agent,
        tuple(violations),
        masked_input=masked.get("input"),
        masked_output=masked.get("output"),
        pii_findings=ctx.pii_findings(),
        pii_counts=ctx.pii_counts or {},
        snapshot_revision=revision,
        charges=ctx.charges() if kind in _PROCEEDS else (),
    )
