"""Request and response bodies as pydantic models: they give the OpenAPI
document its schemas and check JSON types. Every request model forbids
unknown fields, and is strict (``"true"`` is not a boolean here); what the
values mean (policy types, rule definitions, actions) is checked by the
engine when the candidate snapshot compiles."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from pdp.engine import POLICY_TYPES, DenialReason

from ._objects import (
    ACTION_NAMES,
    AGENT_DOCUMENT_FIELDS,
    GRANT_DOCUMENT_FIELDS,
    MODES,
    PREREQUISITE_WHEN,
    SEVERITIES,
    Agent,
    Grant,
    Policy,
    enum_schema,
)
from ._trace_schemas import AgentSpendOut

__all__ = [
    "AgentCreate",
    "AgentDetail",
    "AgentList",
    "AgentPatch",
    "AgentSidecar",
    "ApprovalConsumeIn",
    "ApprovalDecisionIn",
    "ApprovalList",
    "ApprovalOut",
    "ApprovalPolicyOut",
    "AuthorizeIn",
    "AuthorizeOut",
    "CallerTokenIn",
    "CallerTokenOut",
    "CandidateChange",
    "CandidateDiff",
    "CandidateIn",
    "CandidateOut",
    "ErrorBody",
    "ErrorOut",
    "FieldProblemOut",
    "GrantCreate",
    "GrantList",
    "HealthOut",
    "PauseIn",
    "PolicyCreate",
    "PolicyList",
    "PolicyPatch",
    "ResumeIn",
    "SettingsPatch",
    "SidecarEventIn",
    "SidecarEventsIn",
    "SidecarEventsOut",
    "SnapshotOut",
]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class Prerequisite(_Request):
    policy: str = Field(description="id or name of another policy")
    when: str | None = Field(
        default=None, json_schema_extra=enum_schema(PREREQUISITE_WHEN), description="default fired"
    )


class PolicyCreate(_Request):
    name: str
    policyType: str = Field(json_schema_extra=enum_schema(POLICY_TYPES))
    enforcementMode: str = Field(json_schema_extra=enum_schema(MODES))
    ruleDefinition: dict[str, Any] = Field(description="keys per policyType (docs/policies.md)")
    appliesToAgents: list[str] | None = Field(
        default=None, description="agent ids or names; empty or absent = every agent"
    )
    isActive: bool = True
    description: str | None = None
    severity: str | None = Field(default=None, json_schema_extra=enum_schema(SEVERITIES))
    prerequisites: list[Prerequisite] | None = None


class PolicyPatch(_Request):
    """Fields given replace the stored ones (ruleDefinition as a whole);
    fields left out keep their values."""

    name: str | None = None
    policyType: str | None = Field(default=None, json_schema_extra=enum_schema(POLICY_TYPES))
    enforcementMode: str | None = Field(default=None, json_schema_extra=enum_schema(MODES))
    ruleDefinition: dict[str, Any] | None = None
    appliesToAgents: list[str] | None = None
    isActive: bool | None = None
    description: str | None = None
    severity: str | None = Field(default=None, json_schema_extra=enum_schema(SEVERITIES))
    prerequisites: list[Prerequisite] | None = None


class AgentCreate(_Request):
    name: str = Field(
        max_length=200,
        description="unique across agent ids and names, also ignoring case and look-alike "
        "characters; stored in Unicode NFKC form; white space at either end, control and "
        "format characters are refused",
    )
    description: str | None = Field(default=None, max_length=4000)


class SettingsPatch(_Request):
    unknownAgents: str | None = Field(
        default=None, description="deny (the default) or allow; absent: unchanged"
    )


class AgentPatch(_Request):
    name: str | None = Field(
        default=None, max_length=200, description="a new name; policies naming the old one follow"
    )
    description: str | None = Field(default=None, max_length=4000)


class CallerTokenIn(_Request):
    revokeOthers: bool = Field(
        default=False,
        description="revoke the agent's other caller tokens in the same write (a rotation "
        "without overlap); by default they stay valid until revoked",
    )


class PauseIn(_Request):
    reason: str = Field(default="", description="why; shown to callers of the paused agent")


class ResumeIn(_Request):
    pass


class GrantCreate(_Request):
    targetAgentId: str = Field(description="id or name of the agent that may be called")
    allowedActions: list[str] = Field(
        json_schema_extra={"items": {"type": "string", **enum_schema(ACTION_NAMES)}}
    )
    expiresAt: str | None = Field(default=None, description="RFC 3339; expired = denied")


class AuthorizeIn(_Request):
    sourceAgentId: str = Field(description="id or name")
    targetAgentId: str = Field(description="id or name")
    action: str = Field(json_schema_extra=enum_schema(ACTION_NAMES))


class CandidateChange(_Request):
    """One change to the published policies: ``put`` a policy (replacing the
    one of the same name, or adding it), or ``delete`` one by id or name."""

    op: str = Field(json_schema_extra=enum_schema(["put", "delete"]))
    policy: PolicyCreate | None = Field(default=None, description="op put: the policy")
    name: str | None = Field(default=None, description="op delete: id or name of the policy")


class CandidateIn(_Request):
    """A candidate policy set, whole (``policies``, as a snapshot document
    lists them) or as ``changes`` to the published policies; give one."""

    policies: list[PolicyCreate] | None = None
    changes: list[CandidateChange] | None = None


MAX_COMMENT_CHARS = 2000


class ApprovalDecisionIn(_Request):
    comment: str | None = Field(
        default=None, max_length=MAX_COMMENT_CHARS, description="why; the agent sees it"
    )


class ApprovalConsumeIn(_Request):
    digest: str = Field(pattern=r"^[0-9a-f]{64}$", description="of the request to let through")
    sidecarId: str = Field(min_length=1, max_length=200)


MAX_EVENTS_PER_BATCH = 1000


class SidecarEventIn(_Request):
    id: str = Field(max_length=64, description="a UUID; the same id is taken once")
    type: str = Field(max_length=100, description="approval.requested, decision, ...")
    time: str = Field(max_length=64, description="RFC 3339, when it happened")
    data: dict[str, Any] = Field(description="per type (docs/control-plane.md)")


class SidecarEventsIn(_Request):
    sidecarId: str = Field(min_length=1, max_length=200)
    events: list[SidecarEventIn] = Field(max_length=MAX_EVENTS_PER_BATCH)


class _Response(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_serialization_defaults_required=True)


class PolicyList(_Response):
    policies: list[Policy]


class AgentList(_Response):
    agents: list[Agent]


class AgentSidecar(_Response):
    """A sidecar following the snapshot feed, as it last reported itself."""

    sidecar: str = Field(description="the name the sidecar gives itself (pdp serve --name)")
    revision: int = Field(description="the snapshot revision whose pause state is in force there")
    snapshotRevision: int = Field(
        description="the revision of the whole snapshot it serves: older than revision while "
        "a newer document compiles or after one was rejected"
    )
    applied: bool = Field(
        description="whether the agent's current state (its revision) is in force there"
    )
    seenAt: str = Field(description="when the sidecar last polled the feed")


class AgentDetail(Agent):
    """An agent, with the sidecars that follow the feed now and whether
    each has applied the agent's current state (a pause, say)."""

    sidecars: list[AgentSidecar]
    spend: AgentSpendOut | None = Field(
        default=None, description="the costs of the agent's traces, and against its budgets"
    )


class CallerTokenOut(_Response):
    agentId: str
    id: str
    token: str = Field(description="the token: shown this once, kept nowhere")
    sha256: str
    createdAt: str
    revision: int = Field(description="the snapshot revision that carries it")


class GrantList(_Response):
    grants: list[Grant]


class AuthorizeOut(_Response):
    allowed: bool
    reason: str
    denial: str | None = Field(
        json_schema_extra=enum_schema([None, *(d.value for d in DenialReason)]),
        description="why not, when not allowed",
    )
    grantExpiresAt: str | None
    revision: int = Field(description="the snapshot revision that answered")


class CandidateDiff(_Response):
    added: list[str] = Field(description="names of policies the candidate adds")
    removed: list[str] = Field(description="names of published policies it drops")
    changed: list[str] = Field(description="names of policies it changes")


class CandidateOut(_Response):
    """The candidate snapshot: its policies, what it changes, and the
    revision it is based on (it becomes revision + 1 when promoted)."""

    basedOnRevision: int
    createdAt: str
    policies: list[Policy]
    diff: CandidateDiff


class HealthOut(_Response):
    status: str = Field(json_schema_extra=enum_schema(["ok", "unavailable"]))
    revision: int = Field(description="the snapshot revision published now")
    detail: str | None = Field(
        default=None, description="what is wrong, when status is unavailable"
    )


def _published(model: type[BaseModel], fields: tuple[str, ...]) -> type[BaseModel]:
    """The part of ``model`` that the snapshot document carries."""
    definitions: dict[str, Any] = {
        name: (model.model_fields[name].annotation, model.model_fields[name]) for name in fields
    }
    return create_model(
        f"Snapshot{model.__name__}",
        __config__=ConfigDict(extra="forbid", json_schema_serialization_defaults_required=True),
        __doc__=f"{model.__name__} as the snapshot document carries it.",
        **definitions,
    )


_SnapshotAgent = _published(Agent, AGENT_DOCUMENT_FIELDS)
_SnapshotGrant = _published(Grant, GRANT_DOCUMENT_FIELDS)
# The snapshot route sends the document's bytes itself (cached per
# revision); this model describes them in the OpenAPI document.
SnapshotOut = create_model(
    "SnapshotOut",
    __config__=ConfigDict(extra="forbid", json_schema_serialization_defaults_required=True),
    __doc__="The snapshot document: what `pdp serve --snapshot URL` reads.",
    revision=(int, ...),
    agents=(list[_SnapshotAgent], ...),  # type: ignore[valid-type]
    policies=(list[Policy], ...),
    grants=(list[_SnapshotGrant], ...),  # type: ignore[valid-type]
)


ApprovalStatus = Literal["pending", "approved", "denied", "expired"]


class ApprovalPolicyOut(_Response):
    id: str
    name: str
    type: str
    mode: str = Field(json_schema_extra=enum_schema(MODES))


class ApprovalOut(_Response):
    """A call held for a reviewer. ``maskedExcerpt`` is the start of its
    input with every PII type masked; the request itself is known only by
    its ``digest``."""

    id: str
    agentId: str
    agentName: str | None = Field(description="null when the agent is not registered")
    status: ApprovalStatus = Field(description="now: a pending approval past its time is expired")
    policies: list[ApprovalPolicyOut] = Field(description="every policy that fired")
    maskedExcerpt: str
    requestId: str
    digest: str = Field(description="SHA-256 of the request (agent, input, output, ...), hex")
    sidecarId: str
    createdAt: str
    expiresAt: str
    expiresInSeconds: float | None = Field(description="time left while pending, else null")
    reviewer: str | None = Field(description="the name of the API key that decided")
    comment: str | None
    decidedAt: str | None
    consumedAt: str | None = Field(description="when the approved call went through (once)")
    consumedBy: str | None = Field(description="the sidecar that let it through")


class ApprovalList(_Response):
    approvals: list[ApprovalOut]


class SidecarEventsOut(_Response):
    accepted: int = Field(description="events of the batch now recorded, duplicates included")
    duplicates: int = Field(description="events whose id had already been taken")


class FieldProblemOut(_Response):
    field: str | None = Field(description="path in the request body; null: the whole body")
    message: str


class ErrorBody(BaseModel):
    model_config = ConfigDict(extra="forbid")  # errors is left out when absent

    code: str
    message: str
    field: str | None
    errors: list[FieldProblemOut] | None = Field(
        default=None, description="422 only: every problem found"
    )


class ErrorOut(_Response):
    """Every error answer: ``{"error": {"code", "message", "field"}}``."""

    error: ErrorBody
