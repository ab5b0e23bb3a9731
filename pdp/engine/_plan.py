"""What an evaluation runs and how it ends: a compiled policy, an agent's
plan (the policies that apply to it, in evaluation order), and the decision
built from the violations found. Shared by the snapshot's straight
evaluation and the one that waits for validators (``_consultation``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from ._context import Context
from ._errors import StateUnavailableError
from ._model import PolicySpec
from ._pii import mask_text
from ._policy import DEFAULT_APPROVAL_TIMEOUT_S, Check, Hit
from ._types import AgentInfo, Decision, DecisionKind, EnforceInput, Mode, Violation

__all__ = [
    "NO_PII_COUNTS",
    "Plan",
    "Policy",
    "conclude",
    "run_check",
    "state_error_hit",
    "violation",
]

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
    open_on_state_error: bool = False  # usage unreadable: let through (else fire)
    approval_timeout_s: float = DEFAULT_APPROVAL_TIMEOUT_S


class Plan:
    """The policies that apply to one agent, in evaluation order, and the
    decision when none fires (immutable, so one object serves every request).
    ``consults`` is true when one of them is a custom validator: only such
    plans take the evaluation that can wait for answers. ``offloads`` are
    the expression policies whose cost may call for an evaluation off the
    event loop (see ``CompiledSnapshot.cel_jobs``)."""

    __slots__ = ("allow", "consults", "offloads", "policies")

    def __init__(
        self,
        policies: tuple[Policy, ...],
        allow: Decision,
        consults: bool,
        offloads: tuple[Policy, ...] = (),
    ) -> None:
        self.policies = policies
        self.allow = allow
        self.consults = consults
        self.offloads = offloads


def run_check(policy: Policy, ctx: Context) -> Hit | None:
    """``policy``'s check on ``ctx``. A check that cannot read usage (the
    state backend is unreachable) fires, or lets the call through when the
    policy says ``on_state_error: open``; what it would have charged is left
    out either way: nothing can be charged to a backend that cannot be
    reached."""
    try:
        return policy.check.run(ctx)
    except StateUnavailableError as error:
        return state_error_hit(policy, error)


def state_error_hit(policy: Policy, error: StateUnavailableError) -> Hit | None:
    """What ``policy`` answers when its check cannot read usage (see
    ``run_check``)."""
    if policy.open_on_state_error:
        return None
    return Hit(f"usage cannot be read, failing closed (on_state_error: closed): {error}")


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
    approved: frozenset[str] = frozenset(),
) -> Decision:
    """The decision once every policy that runs has run; ``violations`` are
    in evaluation order. The ``approved`` require_approval policies no
    longer hold the call; one that holds it carries the shortest
    ``approval_timeout_s`` of those holding it."""
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
    if approved and kind is DecisionKind.PENDING_APPROVAL:
        kind = _decided_with(violations, approved)
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
        approval_timeout_s=(
            _approval_timeout(plan, violations, approved)
            if kind is DecisionKind.PENDING_APPROVAL
            else 0.0
        ),
    )


def _decided_with(violations: list[Violation], approved: frozenset[str]) -> DecisionKind:
    """The decision once the ``approved`` require_approval policies no
    longer hold the call (``violations`` strictest first)."""
    for v in violations:
        if v.mode is Mode.REQUIRE_APPROVAL and v.policy_id in approved:
            continue
        return _KIND_BY_MODE[v.mode]
    return DecisionKind.ALLOW


def _approval_timeout(plan: Plan, violations: list[Violation], approved: frozenset[str]) -> float:
    holding = {
        v.policy_id
        for v in violations
        if v.mode is Mode.REQUIRE_APPROVAL and v.policy_id not in approved
    }
    return min(p.approval_timeout_s for p in plan.policies if p.id in holding)
