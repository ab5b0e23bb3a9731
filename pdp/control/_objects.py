"""The objects the control plane keeps: a policy, an agent and a grant, each
declared once as a frozen pydantic model. The store (de)serialises them, the
plans build them, the routes answer with them (so FastAPI checks every answer
against them) and the OpenAPI document describes them; the snapshot document
and a policy's writable fields are derived from the field roles below."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field
from pydantic.config import JsonDict, JsonValue

from pdp.engine import ACTIONS, POLICY_TYPES, Mode, Severity

__all__ = [
    "ACTION_NAMES",
    "AGENT_DOCUMENT_FIELDS",
    "GRANT_DOCUMENT_FIELDS",
    "MODES",
    "POLICY_CLEARABLE_FIELDS",
    "POLICY_WRITABLE_FIELDS",
    "PREREQUISITE_WHEN",
    "SEVERITIES",
    "Agent",
    "CallerTokenRef",
    "FieldRole",
    "Grant",
    "Policy",
    "PolicyPrerequisite",
    "enum_schema",
    "fields_with",
    "replaced",
]

MODES = tuple(m.wire_name for m in Mode)
SEVERITIES = tuple(s.wire_name for s in Severity)
PREREQUISITE_WHEN = ("fired", "not_fired")
ACTION_NAMES = tuple(sorted(ACTIONS))


def enum_schema(values: Sequence[str | None]) -> JsonDict:
    """Documents the values a string field takes; the engine checks them."""
    listed: list[JsonValue] = [*values]
    return {"enum": listed}


class FieldRole(enum.Enum):
    """Marks a field in its annotation (``Annotated[str, SET_BY_SERVER]``)."""

    SET_BY_SERVER = "set by the control plane; no request sets it"
    UNPUBLISHED = "kept by the control plane; the snapshot document leaves it out"


SET_BY_SERVER = FieldRole.SET_BY_SERVER
UNPUBLISHED = FieldRole.UNPUBLISHED


class _Object(BaseModel):
    # Every field is in every answer, defaults included, so the answer's
    # schema lists them all as required.
    model_config = ConfigDict(
        frozen=True, extra="forbid", json_schema_serialization_defaults_required=True
    )


class PolicyPrerequisite(_Object):
    policy: str = Field(description="id or name of another policy")
    when: str = Field(json_schema_extra=enum_schema(PREREQUISITE_WHEN))


class Policy(_Object):
    """A policy: the reference page's body as sent, with ``id``,
    ``createdAt`` and ``updatedAt`` added. Published whole in the snapshot."""

    id: Annotated[str, SET_BY_SERVER]
    name: str
    description: str | None = None
    policyType: str = Field(json_schema_extra=enum_schema(POLICY_TYPES))
    enforcementMode: str = Field(json_schema_extra=enum_schema(MODES))
    severity: str | None = Field(default=None, json_schema_extra=enum_schema([*SEVERITIES, None]))
    ruleDefinition: dict[str, Any] = Field(description="keys per policyType (docs/policies.md)")
    appliesToAgents: list[str] = Field(
        default_factory=list, description="agent ids or names; empty = every agent"
    )
    isActive: bool = True
    prerequisites: list[PolicyPrerequisite] = Field(default_factory=list)
    createdAt: Annotated[str, SET_BY_SERVER]
    updatedAt: Annotated[str, SET_BY_SERVER]


class CallerTokenRef(_Object):
    """A caller token of an agent, as kept and published: its SHA-256, never
    the token (shown once, when issued)."""

    id: str
    sha256: str = Field(description="hex SHA-256 of the token")
    createdAt: str


class Agent(_Object):
    """An agent; the snapshot carries its id, name, pause state and the
    hashes of its caller tokens."""

    id: Annotated[str, SET_BY_SERVER]
    name: str
    description: Annotated[str | None, UNPUBLISHED] = None
    paused: Annotated[bool, SET_BY_SERVER] = False
    pauseReason: Annotated[str | None, SET_BY_SERVER] = None
    pausedAt: Annotated[str | None, SET_BY_SERVER] = None
    callerTokens: Annotated[list[CallerTokenRef], SET_BY_SERVER] = Field(
        default_factory=list,
        description="the caller tokens that act as the agent (POST .../caller-tokens), "
        "by their SHA-256",
    )
    createdAt: Annotated[str, SET_BY_SERVER, UNPUBLISHED]
    updatedAt: Annotated[str, SET_BY_SERVER, UNPUBLISHED]
    revision: Annotated[int, SET_BY_SERVER, UNPUBLISHED] = Field(
        default=0,
        description="the snapshot revision that last changed the agent (created, paused, "
        "resumed): a sidecar that has applied it holds the agent's current state",
    )


class Grant(_Object):
    """What the source agent may do on the target agent, by their ids."""

    id: Annotated[str, SET_BY_SERVER]
    sourceAgentId: Annotated[str, SET_BY_SERVER]
    targetAgentId: str
    allowedActions: list[str] = Field(
        json_schema_extra={"items": {"type": "string", **enum_schema(ACTION_NAMES)}}
    )
    expiresAt: str | None = None
    createdAt: Annotated[str, SET_BY_SERVER]
    # The snapshot holds live grants only; the store keeps this in its own column.
    revokedAt: Annotated[str | None, SET_BY_SERVER, UNPUBLISHED] = None


def fields_with(
    model: type[BaseModel], role: FieldRole, *, present: bool = True
) -> tuple[str, ...]:
    """The model's fields marked with ``role`` (or, ``present=False``, not
    marked with it), in declaration order."""
    return tuple(
        name for name, info in model.model_fields.items() if (role in info.metadata) is present
    )


def _clearable(model: type[BaseModel], names: Sequence[str]) -> tuple[str, ...]:
    # null in a request means "empty" only where empty is the default.
    out = []
    for name in names:
        info = model.model_fields[name]
        if not info.is_required() and info.get_default(call_default_factory=True) in (None, []):
            out.append(name)
    return tuple(out)


# The keys of each object that the snapshot document carries (policies: all).
AGENT_DOCUMENT_FIELDS = fields_with(Agent, UNPUBLISHED, present=False)
GRANT_DOCUMENT_FIELDS = fields_with(Grant, UNPUBLISHED, present=False)
# The fields a policy request may give, and those of them null empties.
POLICY_WRITABLE_FIELDS = fields_with(Policy, SET_BY_SERVER, present=False)
POLICY_CLEARABLE_FIELDS = _clearable(Policy, POLICY_WRITABLE_FIELDS)

ObjectT = TypeVar("ObjectT", bound=_Object)


def replaced(obj: ObjectT, **changes: Any) -> ObjectT:
    """A copy of ``obj`` with ``changes``, validated like a new object."""
    return type(obj)(**{**dict(obj), **changes})
