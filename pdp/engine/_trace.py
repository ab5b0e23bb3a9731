"""Traces: a finished call evaluated after the fact, in monitor fashion.

The call has run; nothing is held or blocked. Every policy that fires is a
finding (an incident for whoever records it), whatever its mode, and the
trace is an anomaly when a block-mode policy fired or its cost is above the
agent's per-execution limit. The trace's actual cost stands where Enforce
reads the estimate, so ``cost_limit`` and the budgets judge what was spent.
Custom validators are not consulted for traces (the call is over; their
answers gate calls): their policies count as not fired."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ._checks.cost_limit import CostLimitCheck
from ._snapshot import CompiledSnapshot
from ._types import AgentInfo, Decision, DecisionKind, EnforceInput, Mode, Violation
from ._usage import UsageView
from ._validator import ValidatorAnswer

__all__ = ["TraceFindings", "evaluate_trace", "per_execution_limit"]

_NOT_CONSULTED = ValidatorAnswer(True, "custom validators are not consulted for traces")


@dataclass(frozen=True, slots=True)
class TraceFindings:
    """What a trace's evaluation found. ``decision`` is what Enforce would
    have answered for the call; ``anomaly_reasons`` say why it is an
    anomaly (empty when it is not)."""

    agent: AgentInfo
    decision: DecisionKind
    violations: tuple[Violation, ...]
    anomaly_reasons: tuple[str, ...]
    per_execution_limit: float | None

    cost_usd: float = 0.0

    @property
    def anomaly(self) -> bool:
        return bool(self.anomaly_reasons)

    def anomalous(self, violation: Violation) -> bool:
        """Whether ``violation`` makes the trace an anomaly: a block-mode
        policy, or the cost limit the trace's cost is above."""
        limit = self.per_execution_limit
        return violation.mode is Mode.BLOCK or (
            violation.policy_type == "cost_limit" and limit is not None and self.cost_usd > limit
        )


def per_execution_limit(snapshot: CompiledSnapshot, agent: AgentInfo) -> float | None:
    """The smallest ``max_cost_per_execution`` of the agent's cost_limit
    policies; None when none sets one."""
    limits = [
        p.check.max_per_execution
        for p in snapshot._plan(agent).policies
        if isinstance(p.check, CostLimitCheck) and p.check.max_per_execution is not None
    ]
    return min(limits) if limits else None


def evaluate_trace(
    snapshot: CompiledSnapshot, trace: EnforceInput, usage: UsageView, now: datetime
) -> TraceFindings:
    """Evaluates ``trace`` (its ``estimated_cost_usd`` is the actual cost)
    with the spend already recorded in ``usage``, this trace's excluded.
    A paused agent is the caller's to refuse: here it finds nothing."""
    agent = snapshot.resolve_agent(trace.agent_id)
    outcome = snapshot.enforce(trace, usage, now)
    while not isinstance(outcome, Decision):
        outcome = outcome.resume({call.policy_id: _NOT_CONSULTED for call in outcome.calls})
    reasons: list[str] = []
    for v in outcome.violations:
        if v.mode is Mode.BLOCK:
            reasons.append(f"block-mode policy {v.policy_name!r} fired")
    limit = per_execution_limit(snapshot, agent)
    cost = trace.estimated_cost_usd or 0.0
    if limit is not None and cost > limit:
        reasons.append(f"cost {cost:.4f} USD is above the per-execution limit {limit:.2f} USD")
    return TraceFindings(
        agent=outcome.agent if outcome.agent.known else agent,
        decision=outcome.kind,
        violations=outcome.violations,
        anomaly_reasons=tuple(reasons),
        per_execution_limit=limit,
        cost_usd=cost,
    )
