"""The snapshot document read into plain specs, every problem reported with
its field path. Rule definitions are checked by their policy type (see
``_registry``); this module reads the envelope: agents, policies, grants."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ._caller_tokens import read_caller_tokens
from ._fields import Problems, Reader
from ._types import ACTIONS, Mode, Severity

__all__ = [
    "MAX_APPLIES_TO_AGENTS",
    "MAX_PREREQUISITES",
    "AgentSpec",
    "GrantSpec",
    "PolicySpec",
    "Prerequisite",
    "SnapshotSpec",
    "read_snapshot",
]

_TOP_LEVEL = ("revision", "agents", "policies", "grants", "validators", "generatedAt")
_AGENT_FIELDS = (
    "id",
    "name",
    "paused",
    "pauseReason",
    "pausedAt",
    "description",
    "createdAt",
    "callerTokens",
)
_POLICY_FIELDS = (
    "id",
    "name",
    "description",
    "policyType",
    "enforcementMode",
    "ruleDefinition",
    "appliesToAgents",
    "isActive",
    "severity",
    "prerequisites",
    "createdAt",
    "updatedAt",
)
_GRANT_FIELDS = ("id", "sourceAgentId", "targetAgentId", "allowedActions", "expiresAt", "createdAt")
# Lists a document may hold, bounded so that one policy cannot make every
# compile (and every plan built from it) arbitrarily slow.
MAX_APPLIES_TO_AGENTS = 1000
MAX_PREREQUISITES = 100
_MODES = {mode.wire_name: mode for mode in Mode}
_SEVERITIES = {severity.wire_name: severity for severity in Severity}


@dataclass(frozen=True, slots=True)
class AgentSpec:
    path: str
    id: str
    name: str
    paused: bool
    pause_reason: str
    paused_at: datetime | None
    # SHA-256 digests of the caller tokens that act as this agent.
    caller_tokens: tuple[bytes, ...] = ()


@dataclass(frozen=True, slots=True)
class Prerequisite:
    policy: str  # id or name as written
    when_fired: bool
    path: str


@dataclass(frozen=True, slots=True)
class PolicySpec:
    path: str
    id: str
    name: str
    policy_type: str
    mode: Mode
    severity: Severity
    rule: Mapping[str, Any]
    applies_to: tuple[str, ...]
    is_active: bool
    prerequisites: tuple[Prerequisite, ...]


@dataclass(frozen=True, slots=True)
class GrantSpec:
    path: str
    id: str
    source: str  # id or name as written
    target: str
    actions: frozenset[str]
    expires_at: datetime | None


@dataclass(frozen=True, slots=True)
class SnapshotSpec:
    revision: int
    agents: tuple[AgentSpec, ...]
    policies: tuple[PolicySpec, ...]
    grants: tuple[GrantSpec, ...]


def _read_agent(path: str, data: object, problems: Problems) -> AgentSpec | None:
    r = Reader(data, path, problems, _AGENT_FIELDS)
    agent_id = r.string("id", required=True, max_len=200)
    name = r.string("name", max_len=200)
    paused = r.boolean("paused", False)
    reason = r.string("pauseReason", max_len=2000) or ""
    paused_at = r.timestamp("pausedAt")
    r.string("description", max_len=4000)
    tokens = read_caller_tokens(r, problems)
    if agent_id is None or not r.ok:
        return None
    return AgentSpec(path, agent_id, name or agent_id, paused, reason, paused_at, tokens)


def _read_prerequisites(r: Reader, problems: Problems) -> tuple[Prerequisite, ...]:
    out: list[Prerequisite] = []
    for path, item in r.items("prerequisites", max_items=MAX_PREREQUISITES):
        pr = Reader(item, path, problems, ("policy", "when"))
        ref = pr.string("policy", required=True, max_len=200)
        when = pr.choice("when", ("fired", "not_fired")) or "fired"
        if ref is not None:
            out.append(Prerequisite(ref, when == "fired", pr.at("policy")))
    return tuple(out)


def _read_policy(
    path: str, data: object, problems: Problems, types: Mapping[str, Severity]
) -> PolicySpec | None:
    r = Reader(data, path, problems, _POLICY_FIELDS)
    name = r.string("name", required=True, max_len=200)
    policy_id = r.string("id", max_len=200)
    policy_type = r.choice("policyType", types, required=True)
    mode = r.choice("enforcementMode", _MODES, required=True)
    severity = r.choice("severity", _SEVERITIES)
    r.string("description", max_len=4000)
    rule = r.raw("ruleDefinition")
    if not r.has("ruleDefinition"):
        problems.add(r.at("ruleDefinition"), "required")
    elif not isinstance(rule, Mapping):
        problems.add(r.at("ruleDefinition"), "must be an object")
    applies_to = tuple(
        r.strings("appliesToAgents", max_len=200, max_items=MAX_APPLIES_TO_AGENTS, unique=True)
    )
    is_active = r.boolean("isActive", True)
    prerequisites = _read_prerequisites(r, problems)
    r.timestamp("createdAt")
    r.timestamp("updatedAt")
    # With a known type, the rule is still checked when other fields are bad,
    # so that one pass reports every problem.
    if policy_type is None or not isinstance(rule, Mapping):
        return None
    name = name or path
    default_severity = types[policy_type]
    return PolicySpec(
        path=path,
        id=policy_id or name,
        name=name,
        policy_type=policy_type,
        mode=_MODES[mode] if mode else Mode.BLOCK,  # the snapshot is rejected anyway
        severity=_SEVERITIES[severity] if severity else default_severity,
        rule=rule,
        applies_to=applies_to,
        is_active=is_active,
        prerequisites=prerequisites,
    )


def _read_grant(path: str, data: object, index: int, problems: Problems) -> GrantSpec | None:
    r = Reader(data, path, problems, _GRANT_FIELDS)
    source = r.string("sourceAgentId", required=True, max_len=200)
    target = r.string("targetAgentId", required=True, max_len=200)
    actions: set[str] = set()
    for item_path, item in r.items("allowedActions", required=True, max_items=len(ACTIONS)):
        if isinstance(item, str) and item.lower() in ACTIONS:
            if item.lower() in actions:
                problems.add(item_path, f"{item!r} is listed twice")
            actions.add(item.lower())
        else:
            known = ", ".join(sorted(ACTIONS))
            problems.add(item_path, f"unknown action {item!r} (expected one of {known})")
    expires_at = r.timestamp("expiresAt")
    grant_id = r.string("id", max_len=200) or f"grant-{index}"
    r.timestamp("createdAt")
    if source is None or target is None:
        return None
    return GrantSpec(path, grant_id, source, target, frozenset(actions), expires_at)


def _check_unique(
    problems: Problems,
    entries: list[tuple[str, str]],
    what: str,
    seen: dict[str, str] | None = None,
) -> None:
    seen = {} if seen is None else seen
    for path, key in entries:
        if key in seen:
            problems.add(path, f"duplicate {what} {key!r} (also at {seen[key]})")
        else:
            seen[key] = path


def read_snapshot(
    document: object, problems: Problems, types: Mapping[str, Severity]
) -> SnapshotSpec:
    """Reads the envelope of a snapshot document; problems go to ``problems``.
    ``types`` maps each known policy type to its default severity."""
    top = Reader(document, "", problems, _TOP_LEVEL)
    revision = top.integer("revision", default=0, minimum=0, maximum=2**63 - 1)
    agents = [
        agent
        for path, item in top.items("agents")
        if (agent := _read_agent(path, item, problems)) is not None
    ]
    policies = [
        policy
        for path, item in top.items("policies")
        if (policy := _read_policy(path, item, problems, types)) is not None
    ]
    grants = [
        grant
        for i, (path, item) in enumerate(top.items("grants"))
        if (grant := _read_grant(path, item, i, problems)) is not None
    ]
    for path, _ in top.items("validators"):
        problems.add(
            path,
            "a top-level validators list is not read: a custom validator is a policy "
            "(policyType custom_validator, its url and secret in ruleDefinition)",
        )

    # Ids and names share one namespace so that a reference is never ambiguous.
    agent_keys: dict[str, str] = {}
    _check_unique(problems, [(f"{a.path}.id", a.id) for a in agents], "agent id", agent_keys)
    _check_unique(
        problems,
        [(f"{a.path}.name", a.name) for a in agents if a.name != a.id],
        "agent id or name",
        agent_keys,
    )
    policy_keys: dict[str, str] = {}
    _check_unique(problems, [(f"{p.path}.id", p.id) for p in policies], "policy id", policy_keys)
    _check_unique(
        problems,
        [(f"{p.path}.name", p.name) for p in policies if p.name != p.id],
        "policy id or name",
        policy_keys,
    )
    return SnapshotSpec(revision, tuple(agents), tuple(policies), tuple(grants))
