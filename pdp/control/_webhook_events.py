"""The event types webhooks deliver, and the ``data`` model of each.

Declared once here (:func:`define_webhook_types`); whoever emits one
(``events.emit(tx, "trace.anomaly", {...})``) has its data checked against
the model below. ``approval.requested`` and ``approval.decided`` are
declared by the approvals (``_event_types.py``, ``_approvals.py``) and
delivered as they are.

``policy.violated`` and ``trace.anomaly`` come from Enforce decisions
(``source: "enforce"``) and from traces checked after the fact
(``source: "trace"``); their models keep fields they do not name, so that
what a source adds reaches the receiver."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from ._approvals import APPROVAL_DECIDED
from ._event_types import APPROVAL_REQUESTED
from ._events import EventRegistry

__all__ = [
    "AGENT_PAUSED",
    "AGENT_RESUMED",
    "APPROVAL_DECIDED",
    "COST_THRESHOLD",
    "POLICY_VIOLATED",
    "TRACE_ANOMALY",
    "WEBHOOK_EVENTS",
    "WEBHOOK_TEST",
    "AgentPausedData",
    "AgentResumedData",
    "CostThresholdData",
    "PolicyRef",
    "PolicyViolatedData",
    "TraceAnomalyData",
    "WebhookTestData",
    "define_webhook_types",
]

POLICY_VIOLATED = "policy.violated"
AGENT_PAUSED = "agent.paused"
AGENT_RESUMED = "agent.resumed"
COST_THRESHOLD = "cost.threshold"
TRACE_ANOMALY = "trace.anomaly"
# Sent by POST /webhooks/{id}/test to that webhook only: not an event of the
# registry, and nobody subscribes to it.
WEBHOOK_TEST = "webhook.test"

# What a webhook may subscribe to, in the order the docs list them.
WEBHOOK_EVENTS: tuple[str, ...] = (
    POLICY_VIOLATED,
    AGENT_PAUSED,
    AGENT_RESUMED,
    COST_THRESHOLD,
    TRACE_ANOMALY,
    APPROVAL_REQUESTED,
    APPROVAL_DECIDED,
)

_ID = 256
Source = Literal["enforce", "trace"]


class _Data(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Open(BaseModel):
    # Fields a source adds beyond these are kept and delivered.
    model_config = ConfigDict(extra="allow", frozen=True)


class PolicyRef(BaseModel):
    """The policy an event is about."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: str = Field(max_length=200)
    name: str = Field(max_length=200)
    type: str = Field(max_length=100)
    mode: Literal["monitor", "warn", "require_approval", "block"]
    severity: Literal["low", "medium", "high", "critical"] | None = None


class PolicyViolatedData(_Open):
    """A policy fired in warn, require_approval or block mode."""

    agentId: str = Field(min_length=1, max_length=_ID)
    policy: PolicyRef
    decision: str = Field(max_length=40, description="BLOCK, PENDING_APPROVAL, ...")
    source: Source
    message: str = Field(default="", max_length=2000)
    incidentId: str | None = Field(default=None, max_length=_ID)
    requestId: str | None = Field(default=None, max_length=_ID)
    decisionId: str | None = Field(default=None, max_length=_ID)


class TraceAnomalyData(_Open):
    """A traced call did what it should not have: an incident of a
    block-mode policy, or a cost above the agent's per-execution limit."""

    agentId: str = Field(min_length=1, max_length=_ID)
    message: str = Field(default="", max_length=2000)
    source: Source = "trace"
    policy: PolicyRef | None = None
    decision: str | None = Field(default=None, max_length=40)
    incidentId: str | None = Field(default=None, max_length=_ID)
    requestId: str | None = Field(default=None, max_length=_ID)


class AgentPausedData(_Data):
    agentId: str
    agentName: str
    reason: str
    pausedAt: str
    revision: int = Field(description="the snapshot revision that pauses it")


class AgentResumedData(_Data):
    agentId: str
    agentName: str
    resumedAt: str
    revision: int = Field(description="the snapshot revision that resumes it")


class CostThresholdData(_Data):
    """An agent's spend in a budget's period reached the budget's warning
    threshold; sent once per agent, policy and period."""

    agentId: str
    policy: PolicyRef
    capUsd: float
    thresholdPct: float
    periodStart: str = Field(description="RFC 3339: when the budget's period began")
    source: Source = "enforce"


class WebhookTestData(_Data):
    webhookId: str
    message: str


def define_webhook_types(registry: EventRegistry) -> None:
    """Declares the event types the control plane delivers (besides the
    approvals', which their feature declares)."""
    registry.define(POLICY_VIOLATED, PolicyViolatedData)
    registry.define(AGENT_PAUSED, AgentPausedData)
    registry.define(AGENT_RESUMED, AgentResumedData)
    registry.define(COST_THRESHOLD, CostThresholdData)
    registry.define(TRACE_ANOMALY, TraceAnomalyData)
