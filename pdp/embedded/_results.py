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
from pdp_client._types import decided_result
from pdp_client._v1 import policy_decision_service_pb2 as sdk_pb

from pdp.server import DECISION_VALUES, MODE_VALUES, SEVERITY_VALUES

__all__ = ["Refused", "enforce_answer", "refusal_error"]

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
# By the kind's name: an Enum member hashes in Python code, its name in C.
_RESULTS = {
    kind._name_: _SDK_DECISIONS[int(number)]
    for kind, number in DECISION_VALUES.items()
    if int(number) in _SDK_DECISIONS
}


class Refused(NamedTuple):
    """A decision the SDK raises rather than returns (BLOCK, AGENT_PAUSED):
    the client raises ``refusal_error`` of it."""

    decision: Any  # pdp.engine.Decision
    decision_id: str


def _violations(found: Any) -> list[Violation]:
    return [
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


def enforce_answer(
    decision: Any,  # pdp.engine.Decision
    decision_id: str,
    approval_id: str,
    request_id: str,
    approval_expires_at: datetime | None,
) -> EnforceResult | Refused:
    """The servicer's answer builder for an in-process Enforce: the SDK's
    result of a decision it returns, else a ``Refused``. Never raises: the
    servicer builds the answer before it observes the decision."""
    result = _RESULTS.get(decision.kind._name_)
    if result is None:
        return Refused(decision, decision_id)
    found = decision.violations
    pii = decision.pii_findings
    return decided_result(
        result,
        _violations(found) if found else [],
        decision.masked_input,
        decision.masked_output,
        [PiiFinding(field=f.field, pii_type=f.pii_type, start=f.start, end=f.end) for f in pii]
        if pii
        else [],
        decision_id,
        approval_id or None,
        decision.snapshot_revision,
        None if approval_expires_at is None else approval_expires_at.astimezone(UTC),
    )


def refusal_error(refused: Refused, agent_id: str) -> PdpError:
    """The error the SDK raises for the sidecar's answer of ``refused``
    (``agent_id`` as the SDK sent it)."""
    decision = refused.decision
    kind = decision.kind
    if kind is _BLOCK:
        found = decision.violations
        return PolicyBlockedError(
            _violations(found) if found else [],
            decision_id=refused.decision_id,
            snapshot_revision=decision.snapshot_revision,
        )
    if kind is _PAUSED:
        reason = decision.agent.pause_reason
        return AgentPausedError(agent_id, reason, decision_id=refused.decision_id)
    return PdpError(f"sidecar answered an unknown decision ({kind})")
