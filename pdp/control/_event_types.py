"""The ``data`` of each event type sidecars send (the uplink's contract).
Strict models: a field of the wrong type or an unknown field is refused,
naming ``events[i].data.<field>``. No type carries request text; the
approval's excerpt is masked by the sidecar before it leaves."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from pdp.engine import parse_rfc3339

from ._events import EventRegistry

__all__ = [
    "APPROVAL_REQUESTED",
    "DECISION",
    "ApprovalRequestedData",
    "DecisionData",
    "FiredPolicyData",
    "define_uplink_types",
]

APPROVAL_REQUESTED = "approval.requested"
DECISION = "decision"
ModeName = Literal["monitor", "warn", "require_approval", "block"]
SeverityName = Literal["low", "medium", "high", "critical"]
DecisionName = Literal["ALLOW", "ALLOW_WITH_WARNINGS", "BLOCK", "PENDING_APPROVAL", "AGENT_PAUSED"]
_ID = 256  # the longest id a sidecar accepts on the wire


class _Data(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class FiredPolicyData(_Data):
    """A policy that fired for the request."""

    id: str = Field(max_length=200)
    name: str = Field(max_length=200)
    type: str = Field(max_length=100)
    mode: ModeName
    severity: SeverityName | None = None


class ApprovalRequestedData(_Data):
    """A sidecar held a call for a reviewer."""

    approvalId: str = Field(min_length=1, max_length=_ID)
    agentId: str = Field(min_length=1, max_length=_ID)
    digest: str = Field(pattern=r"^[0-9a-f]{64}$", description="SHA-256 of the request, hex")
    policies: list[FiredPolicyData] = Field(min_length=1, max_length=1000)
    maskedExcerpt: str = Field(max_length=1000, description="the input, PII masked, cut short")
    expiresAt: str = Field(description="RFC 3339")
    requestId: str = Field(default="", max_length=_ID)

    @field_validator("expiresAt")
    @classmethod
    def _rfc3339(cls, value: str) -> str:
        if parse_rfc3339(value) is None:
            raise ValueError("must be an RFC 3339 timestamp with a time zone")
        return value


class DecisionData(_Data):
    """A decision that fired a policy (no request text)."""

    decisionId: str = Field(min_length=1, max_length=_ID)
    agentId: str = Field(min_length=1, max_length=_ID)
    decision: DecisionName
    policies: list[FiredPolicyData] = Field(max_length=1000)
    snapshotRevision: int = Field(ge=0)
    requestId: str = Field(default="", max_length=_ID)
    approvalId: str = Field(default="", max_length=_ID)


def define_uplink_types(registry: EventRegistry) -> None:
    """Declares the event types a sidecar sends."""
    registry.define(APPROVAL_REQUESTED, ApprovalRequestedData)
    registry.define(DECISION, DecisionData)
