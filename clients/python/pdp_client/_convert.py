"""Protobuf answers -> the client's result types (shared by both clients).

Enum values map to lowercase names taken from the proto descriptors, so a
value the contract adds later comes through as its name rather than failing.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ._errors import AgentPausedError, PdpError, PolicyBlockedError
from ._types import (
    AgentStatusResult,
    ApprovalResult,
    ApprovalState,
    AuthorizeResult,
    Budget,
    Decision,
    EnforceResult,
    PiiFinding,
    TraceResult,
    UsageResult,
    Violation,
    decided_result,
)
from ._v1 import policy_decision_service_pb2 as pb

__all__ = [
    "ACTIONS",
    "agent_status_result",
    "approval_result",
    "authorize_result",
    "enforce_result",
    "usage_result",
]


def _lowercase_names(enum_type: Any, prefix: str) -> dict[int, str]:
    """{number: "name"} for every value but UNSPECIFIED, prefix dropped."""
    return {
        value.number: value.name.removeprefix(prefix).lower()
        for value in enum_type.DESCRIPTOR.values
        if value.number != 0
    }


_SEVERITIES = _lowercase_names(pb.Severity, "SEVERITY_")
_MODES = _lowercase_names(pb.EnforcementMode, "ENFORCEMENT_MODE_")
_DENIALS = _lowercase_names(pb.AuthorizeDenial, "AUTHORIZE_DENIAL_")

# "execute" -> "ACTION_EXECUTE", and so on for every action of the contract
# (a message constructor takes an enum value by its name).
ACTIONS: dict[str, str] = {
    name: "ACTION_" + name.upper() for name in _lowercase_names(pb.Action, "ACTION_").values()
}

_RETURNED_DECISIONS = {
    pb.DECISION_ALLOW: Decision.ALLOW,
    pb.DECISION_ALLOW_WITH_WARNINGS: Decision.ALLOW_WITH_WARNINGS,
    pb.DECISION_PENDING_APPROVAL: Decision.PENDING_APPROVAL,
}


def _timestamp(message: Any, name: str) -> datetime | None:
    if not message.HasField(name):
        return None
    stamp: datetime = getattr(message, name).ToDatetime(tzinfo=UTC)
    return stamp


def _violation(message: Any) -> Violation:
    return Violation(
        policy_id=message.policy_id,
        policy_name=message.policy_name,
        policy_type=message.policy_type,
        severity=_SEVERITIES.get(message.severity, "unspecified"),
        message=message.message,
        enforcement_mode=_MODES.get(message.enforcement_mode, "unspecified"),
    )


def enforce_result(response: Any, agent_id: str) -> EnforceResult:
    """The result of an Enforce answer; raises for BLOCK and AGENT_PAUSED.

    A decision this client does not know is refused (fail closed) rather than
    taken for an allow.
    """
    # An empty repeated field is cheap to test, dearer to loop over.
    found = response.violations
    violations = [_violation(v) for v in found] if found else []
    if response.decision == pb.DECISION_BLOCK:
        raise PolicyBlockedError(
            violations,
            decision_id=response.decision_id,
            snapshot_revision=response.snapshot_revision,
        )
    if response.decision == pb.DECISION_AGENT_PAUSED:
        raise AgentPausedError(agent_id, response.paused_reason, decision_id=response.decision_id)
    decision = _RETURNED_DECISIONS.get(response.decision)
    if decision is None:
        raise PdpError(f"sidecar answered an unknown decision ({response.decision})")
    return decided_result(
        decision,
        violations,
        response.masked_input if response.HasField("masked_input") else None,
        response.masked_output if response.HasField("masked_output") else None,
        [PiiFinding(field=f.field, pii_type=f.pii_type, start=f.start, end=f.end) for f in pii]
        if (pii := response.pii_findings)
        else [],
        response.decision_id,
        response.approval_id or None,
        response.snapshot_revision,
        _timestamp(response, "approval_expires_at"),
    )


def authorize_result(response: Any) -> AuthorizeResult:
    return AuthorizeResult(
        allowed=response.allowed,
        reason=response.reason,
        denial=None if response.allowed else _DENIALS.get(response.denial),
        grant_expires_at=_timestamp(response, "grant_expires_at"),
        snapshot_revision=response.snapshot_revision,
    )


def agent_status_result(response: Any) -> AgentStatusResult:
    state = response.state
    snapshot = state.snapshot
    rejection = None
    if snapshot.HasField("last_rejection"):
        rejection = [(e.path, e.message) for e in snapshot.last_rejection.errors]
    return AgentStatusResult(
        agent_id=state.agent_id,
        agent_name=state.agent_name,
        known=state.known,
        paused=state.paused,
        reason=state.paused_reason,
        paused_since=_timestamp(state, "paused_since"),
        budgets=[
            Budget(
                policy_id=b.policy_id,
                policy_name=b.policy_name,
                period=b.period,
                limit_usd=b.limit_usd,
                spent_usd=b.spent_usd,
                period_start=_timestamp(b, "period_start"),
            )
            for b in state.budgets
        ],
        snapshot_revision=snapshot.revision,
        snapshot_source=snapshot.source,
        snapshot_rejection=rejection,
    )


_APPROVAL_STATES = {
    pb.APPROVAL_STATE_PENDING: ApprovalState.PENDING,
    pb.APPROVAL_STATE_APPROVED: ApprovalState.APPROVED,
    pb.APPROVAL_STATE_DENIED: ApprovalState.DENIED,
    pb.APPROVAL_STATE_EXPIRED: ApprovalState.EXPIRED,
}


def approval_result(response: Any, approval_id: str) -> ApprovalResult:
    """An AwaitApproval answer; a state this client does not know is
    refused rather than taken for an approval."""
    state = _APPROVAL_STATES.get(response.state)
    if state is None:
        raise PdpError(f"sidecar answered an unknown approval state ({response.state})")
    return ApprovalResult(
        approval_id=approval_id,
        state=state,
        reviewer=response.reviewer,
        comment=response.comment,
        expires_at=_timestamp(response, "expires_at"),
        decided_at=_timestamp(response, "decided_at"),
    )


def usage_result(response: Any) -> UsageResult:
    return UsageResult(duplicate=response.duplicate, daily_spend_usd=response.daily_spend_usd)


def trace_result(response: Any) -> TraceResult:
    return TraceResult(
        trace_id=response.trace_id,
        violations=[_violation(v) for v in response.violations],
        anomaly=response.anomaly,
    )
