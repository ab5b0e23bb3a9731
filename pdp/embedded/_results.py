"""An Enforce decision made in-process, read as the SDK's result: what
``pdp_client`` makes of the sidecar's EnforceResponse, without building the
message and reading it back. The maps below go through the wire's enum
numbers on both sides, so a value reads exactly as it does over gRPC;
``tests/embedded`` compares the two routes for every kind of decision."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, NamedTuple

from pdp_client import (
    AgentPausedError,
    EnforceResult,
    PdpError,
    PiiFinding,
    PolicyBlockedError,
    Violation,
)
from pdp_client import _convert as sdk_convert
from pdp_client._v1 import policy_decision_service_pb2 as sdk_pb

from pdp.server import DECISION_VALUES, MODE_VALUES, SEVERITY_VALUES

__all__ = ["Decided", "decided", "enforce_result"]

# The two copies of the contract have their own enum types: numbers join them.
_SDK_DECISIONS = {int(n): d for n, d in sdk_convert._RETURNED_DECISIONS.items()}
_SEVERITIES = {
    value: sdk_convert._SEVERITIES.get(int(number), "unspecified")
    for value, number in SEVERITY_VALUES.items()
}
_MODES = {
    value: sdk_convert._MODES.get(int(number), "unspecified")
    for value, number in MODE_VALUES.items()
}
_BLOCK = next(k for k, n in DECISION_VALUES.items() if int(n) == sdk_pb.DECISION_BLOCK)
_PAUSED = next(k for k, n in DECISION_VALUES.items() if int(n) == sdk_pb.DECISION_AGENT_PAUSED)
_RESULTS = {
    kind: _SDK_DECISIONS[int(number)]
    for kind, number in DECISION_VALUES.items()
    if int(number) in _SDK_DECISIONS
}


class Decided(NamedTuple):
    """What the servicer answers an in-process Enforce with (its
    ``AnswerBuilder``): the engine's decision and the ids it was given."""

    decision: Any  # pdp.engine.Decision
    decision_id: str
    approval_id: str
    request_id: str
    approval_expires_at: datetime | None


decided = Decided  # the servicer's answer builder: the fields, positionally


def enforce_result(answer: Decided, agent_id: str) -> EnforceResult:
    """The SDK's result of ``answer``; raises as the SDK does for BLOCK and
    AGENT_PAUSED (``agent_id`` as the SDK sent it)."""
    decision = answer.decision
    kind = decision.kind
    found = decision.violations
    violations = (
        [
            Violation(
                policy_id=v.policy_id,
                policy_name=v.policy_name,
                policy_type=v.policy_type,
                severity=_SEVERITIES[v.severity],
                message=v.message,
                enforcement_mode=_MODES[v.mode],
            )
            for v in found
        ]
        if found
        else []
    )
    if kind is _BLOCK:
        raise PolicyBlockedError(
            violations,
            decision_id=answer.decision_id,
            snapshot_revision=decision.snapshot_revision,
        )
    if kind is _PAUSED:
        reason = decision.agent.pause_reason
        raise AgentPausedError(agent_id, reason, decision_id=answer.decision_id)
    result = _RESULTS.get(kind)
    if result is None:  # pragma: no cover - every other kind is returned
        raise PdpError(f"sidecar answered an unknown decision ({kind})")
    expires = answer.approval_expires_at
    pii = decision.pii_findings
    return EnforceResult(
        decision=result,
        violations=violations,
        masked_input=decision.masked_input,
        masked_output=decision.masked_output,
        pii_findings=[
            PiiFinding(field=f.field, pii_type=f.pii_type, start=f.start, end=f.end) for f in pii
        ]
        if pii
        else [],
        decision_id=answer.decision_id,
        approval_id=answer.approval_id or None,
        snapshot_revision=decision.snapshot_revision,
        approval_expires_at=None if expires is None else expires.astimezone(UTC),
    )
