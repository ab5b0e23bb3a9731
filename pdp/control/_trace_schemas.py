"""Bodies of the trace and incident routes, and the ``data`` of the trace
events: ``trace.recorded`` (a sidecar evaluated a trace and ships what it
found, never the request text) and the ``policy.violated`` /
``trace.anomaly`` events the control plane emits for incidents."""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ._event_types import DecisionName, FiredPolicyData

__all__ = [
    "MAX_TRACE_TEXT_CHARS",
    "AgentBudgetOut",
    "AgentSpendOut",
    "IncidentList",
    "IncidentOut",
    "IncidentPolicyOut",
    "TraceFindingData",
    "TraceIn",
    "TraceOut",
    "TraceRecordedData",
    "TraceViolationOut",
    "ViolationEventData",
]

# Past this a trace's text is refused (422 naming the field): enough for a
# long conversation turn, short of the body limit's 1 MiB.
MAX_TRACE_TEXT_CHARS = 256 * 1024
_ID = 256
_NAME = 256
_METADATA_ITEMS = 64


def _finite_cost(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("must be a finite number of USD")
    if value < 0:
        raise ValueError("must not be negative")
    return value


class TraceIn(BaseModel):
    """A finished call. ``costUsd`` is what it actually cost."""

    model_config = ConfigDict(extra="forbid", strict=True)

    agentId: str = Field(min_length=1, max_length=_ID, description="the agent's id or name")
    input: str | None = Field(default=None, max_length=MAX_TRACE_TEXT_CHARS)
    output: str | None = Field(default=None, max_length=MAX_TRACE_TEXT_CHARS)
    costUsd: float = Field(default=0.0, description="USD; finite, not negative")
    model: str = Field(default="", max_length=_NAME)
    tool: str = Field(default="", max_length=_NAME)
    metadata: dict[str, str] = Field(default_factory=dict, max_length=_METADATA_ITEMS)
    requestId: str | None = Field(
        default=None,
        min_length=1,
        max_length=_ID,
        description="the call's id: the same id again answers the recorded trace",
    )

    @field_validator("costUsd", mode="before")
    @classmethod
    def _number(cls, value: object) -> object:
        # Strict mode takes an int for a float; a bool is refused here too.
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError("must be a number")
        return float(value)

    @field_validator("costUsd")
    @classmethod
    def _cost(cls, value: float) -> float:
        return _finite_cost(value)


class TraceViolationOut(BaseModel):
    """A policy that fired on the trace (the reference page's violation shape)."""

    policyId: str
    policyName: str
    policyType: str
    severity: str
    message: str
    enforcementMode: str


class TraceOut(BaseModel):
    traceId: str
    agentId: str
    requestId: str | None
    costUsd: float
    decision: str = Field(description="what Enforce would have answered; nothing was blocked")
    violations: list[TraceViolationOut]
    incidentIds: list[str]
    anomaly: bool
    anomalyReasons: list[str]
    snapshotRevision: int
    recordedAt: str
    duplicate: bool = Field(description="true when requestId was recorded before")


class IncidentPolicyOut(BaseModel):
    id: str
    name: str
    type: str
    mode: str
    severity: str


class IncidentOut(BaseModel):
    """A policy that fired on a trace. ``maskedExcerpt`` is the start of the
    trace's input with every PII type masked; the text itself is not kept."""

    id: str
    traceId: str
    agentId: str
    agentName: str | None
    policy: IncidentPolicyOut
    message: str
    decision: str
    anomaly: bool
    costUsd: float
    requestId: str
    maskedExcerpt: str
    source: str = Field(description="trace: posted here; sidecar: shipped by a sidecar")
    sidecarId: str
    createdAt: str


class IncidentList(BaseModel):
    incidents: list[IncidentOut]
    nextCursor: str | None = Field(description="pass as cursor for the next (older) page")


class AgentBudgetOut(BaseModel):
    policyId: str
    policyName: str
    period: str
    limitUsd: float
    spentUsd: float
    since: str


class AgentSpendOut(BaseModel):
    """The agent's spend as the control plane knows it: the costs of its traces."""

    todayUsd: float = Field(description="since midnight UTC")
    monthUsd: float = Field(description="since the first of the month, UTC")
    totalUsd: float
    traces: int
    budgets: list[AgentBudgetOut] = Field(description="spend against each budget policy")


class _Data(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class TraceFindingData(_Data):
    """A policy that fired on a trace a sidecar evaluated."""

    policy: FiredPolicyData
    message: str = Field(max_length=2000)


class TraceRecordedData(_Data):
    """``trace.recorded``: a sidecar evaluated a trace with its snapshot.
    No request text: the input travels only as a masked excerpt."""

    traceId: str = Field(min_length=1, max_length=_ID)
    agentId: str = Field(min_length=1, max_length=_ID)
    requestId: str = Field(default="", max_length=_ID)
    costUsd: float = Field(ge=0, allow_inf_nan=False)
    decision: DecisionName
    findings: list[TraceFindingData] = Field(max_length=1000)
    anomalyReasons: list[str] = Field(max_length=1000)
    perExecutionLimitUsd: float | None = Field(default=None, allow_inf_nan=False)
    maskedExcerpt: str = Field(max_length=1000)
    snapshotRevision: int = Field(ge=0)


class ViolationEventData(_Data):
    """``policy.violated`` and ``trace.anomaly``: a policy fired."""

    agentId: str
    policy: FiredPolicyData
    decision: DecisionName
    source: Literal["enforce", "trace"]
    incidentId: str | None = None
    requestId: str | None = None
    message: str
