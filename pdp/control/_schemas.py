"""Request and response bodies as pydantic models: they give the OpenAPI
document its schemas and check JSON types. Every request model forbids
unknown fields, and is strict (``"true"`` is not a boolean here); what the
values mean (policy types, rule definitions, actions) is checked by the
engine when the candidate snapshot compiles."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.config import JsonDict, JsonValue

from pdp.engine import ACTIONS, POLICY_TYPES, DenialReason, Mode, Severity

__all__ = [
    "AgentCreate",
    "AgentList",
    "AgentOut",
    "AuthorizeIn",
    "AuthorizeOut",
    "ErrorOut",
    "GrantCreate",
    "GrantList",
    "GrantOut",
    "PauseIn",
    "PolicyCreate",
    "PolicyList",
    "PolicyOut",
    "PolicyPatch",
    "ResumeIn",
    "SnapshotOut",
]

_MODES = [m.wire_name for m in Mode]
_SEVERITIES = [s.wire_name for s in Severity]
_ACTIONS = sorted(ACTIONS)


def _enum(values: Sequence[str | None]) -> JsonDict:
    """Documents the values a string field takes; the engine checks them."""
    listed: list[JsonValue] = [*values]
    return {"enum": listed}


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class Prerequisite(_Request):
    policy: str = Field(description="id or name of another policy")
    when: str | None = Field(
        default=None, json_schema_extra=_enum(["fired", "not_fired"]), description="default fired"
    )


class PolicyCreate(_Request):
    name: str
    policyType: str = Field(json_schema_extra=_enum(POLICY_TYPES))
    enforcementMode: str = Field(json_schema_extra=_enum(_MODES))
    ruleDefinition: dict[str, Any] = Field(description="keys per policyType (docs/policies.md)")
    appliesToAgents: list[str] | None = Field(
        default=None, description="agent ids or names; empty or absent = every agent"
    )
    isActive: bool = True
    description: str | None = None
    severity: str | None = Field(default=None, json_schema_extra=_enum(_SEVERITIES))
    prerequisites: list[Prerequisite] | None = None


class PolicyPatch(_Request):
    """Fields given replace the stored ones (ruleDefinition as a whole);
    fields left out keep their values."""

    name: str | None = None
    policyType: str | None = Field(default=None, json_schema_extra=_enum(POLICY_TYPES))
    enforcementMode: str | None = Field(default=None, json_schema_extra=_enum(_MODES))
    ruleDefinition: dict[str, Any] | None = None
    appliesToAgents: list[str] | None = None
    isActive: bool | None = None
    description: str | None = None
    severity: str | None = Field(default=None, json_schema_extra=_enum(_SEVERITIES))
    prerequisites: list[Prerequisite] | None = None


class AgentCreate(_Request):
    name: str = Field(max_length=200, description="unique across agent ids and names")
    description: str | None = Field(default=None, max_length=4000)


class PauseIn(_Request):
    reason: str = Field(default="", description="why; shown to callers of the paused agent")


class ResumeIn(_Request):
    pass


class GrantCreate(_Request):
    targetAgentId: str = Field(description="id or name of the agent that may be called")
    allowedActions: list[str] = Field(
        json_schema_extra={"items": {"type": "string", **_enum(_ACTIONS)}}
    )
    expiresAt: str | None = Field(default=None, description="RFC 3339; expired = denied")


class AuthorizeIn(_Request):
    sourceAgentId: str = Field(description="id or name")
    targetAgentId: str = Field(description="id or name")
    action: str = Field(json_schema_extra=_enum(_ACTIONS))


class _Response(BaseModel):
    pass


class PolicyOut(_Response):
    id: str
    name: str
    description: str | None
    policyType: str
    enforcementMode: str
    severity: str | None
    ruleDefinition: dict[str, Any]
    appliesToAgents: list[str]
    isActive: bool
    prerequisites: list[dict[str, str]]
    createdAt: str
    updatedAt: str


class PolicyList(_Response):
    policies: list[PolicyOut]


class AgentOut(_Response):
    id: str
    name: str
    description: str | None
    paused: bool
    pauseReason: str | None
    pausedAt: str | None
    createdAt: str
    updatedAt: str


class AgentList(_Response):
    agents: list[AgentOut]


class GrantOut(_Response):
    id: str
    sourceAgentId: str
    targetAgentId: str
    allowedActions: list[str]
    expiresAt: str | None
    createdAt: str
    revokedAt: str | None


class GrantList(_Response):
    grants: list[GrantOut]


class AuthorizeOut(_Response):
    allowed: bool
    reason: str
    denial: str | None = Field(
        json_schema_extra=_enum([None, *(d.value for d in DenialReason)]),
        description="why not, when not allowed",
    )
    grantExpiresAt: str | None
    revision: int = Field(description="the snapshot revision that answered")


class SnapshotOut(_Response):
    revision: int
    agents: list[dict[str, Any]]
    policies: list[dict[str, Any]]
    grants: list[dict[str, Any]]


class _ErrorBody(_Response):
    code: str
    message: str
    field: str | None
    errors: list[dict[str, str | None]] | None = Field(
        default=None, description="422 only: every problem found"
    )


class ErrorOut(_Response):
    error: _ErrorBody
