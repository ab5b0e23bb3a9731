"""The snapshot document read into plain specs, every problem reported with
its field path. Rule definitions are checked by their policy type (see
``_registry``); this module reads the envelope: agents, policies, grants."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ._agent_id import agent_id_keys, canonical_agent_id
from ._caller_tokens import read_caller_tokens
from ._errors import AgentIdError
from ._fields import Problems, Reader
from ._json_items import Pace, no_pace
from ._types import ACTIONS, Mode, Severity

__all__ = [
    "MAX_APPLIES_TO_AGENTS",
    "MAX_PREREQUISITES",
    "NO_KNOWN_SPECS",
    "UNKNOWN_AGENTS",
    "AgentSpec",
    "GrantSpec",
    "KnownSpecs",
    "PolicySpec",
    "Prerequisite",
    "SnapshotSpec",
    "read_snapshot",
]

_TOP_LEVEL = (
    "revision",
    "agents",
    "policies",
    "grants",
    "validators",
    "generatedAt",
    "unknownAgents",
)
# What a snapshot that lists agents does with an id it does not list.
UNKNOWN_AGENTS = ("deny", "allow")
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
    unknown_agents: str = "deny"


def _check_agent_id(r: Reader, key: str, value: str | None) -> None:
    """An agent's id or name must be canonical as it is written (see
    ``_agent_id``): a document never relies on normalisation."""
    if value is None:
        return
    try:
        canonical = canonical_agent_id(value)
    except AgentIdError as exc:
        r.problems.add(r.at(key), exc.reason)
        return
    if canonical != value:
        r.problems.add(r.at(key), f"must be in Unicode NFKC form: write {canonical!r}")


def _read_agent(path: str, data: object, problems: Problems) -> AgentSpec | None:
    r = Reader(data, path, problems, _AGENT_FIELDS)
    agent_id = r.string("id", required=True, max_len=200)
    name = r.string("name", max_len=200)
    paused = r.boolean("paused", False)
    reason = r.string("pauseReason", max_len=2000) or ""
    paused_at = r.timestamp("pausedAt")
    r.string("description", max_len=4000)
    _check_agent_id(r, "id", agent_id)
    _check_agent_id(r, "name", name)
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


class KnownSpecs:
    """The specs a snapshot read, by the document object each was read from
    (by identity: a parse that finds an item's text unchanged gives the
    earlier object, ``_json_items``), so that the next document's unchanged
    agents and policies are not read again."""

    __slots__ = ("_by_item",)

    def __init__(self, specs: Mapping[int, tuple[object, object]] | None = None) -> None:
        self._by_item: Mapping[int, tuple[object, object]] = specs or {}

    def _spec(self, path: str, item: object) -> object | None:
        found = self._by_item.get(id(item))
        if found is None or found[0] is not item:
            return None
        spec = found[1]
        return spec if getattr(spec, "path", None) == path else None

    def agent(self, path: str, item: object) -> AgentSpec | None:
        spec = self._spec(path, item)
        return spec if isinstance(spec, AgentSpec) else None

    def policy(self, path: str, item: object) -> PolicySpec | None:
        spec = self._spec(path, item)
        return spec if isinstance(spec, PolicySpec) else None


NO_KNOWN_SPECS = KnownSpecs()


def read_snapshot(
    document: object,
    problems: Problems,
    types: Mapping[str, Severity],
    known: KnownSpecs = NO_KNOWN_SPECS,
    pace: Pace = no_pace,
) -> SnapshotSpec:
    """Reads the envelope of a snapshot document; problems go to ``problems``.
    ``types`` maps each known policy type to its default severity. Agents
    and policies ``known`` has read (the same objects at the same paths, in
    a snapshot that compiled) are not read again. ``pace`` is called after
    each agent and policy."""
    top = Reader(document, "", problems, _TOP_LEVEL)
    revision = top.integer("revision", default=0, minimum=0, maximum=2**63 - 1)
    unknown_agents = top.choice("unknownAgents", UNKNOWN_AGENTS) or "deny"
    agents: list[AgentSpec] = []
    for path, item in top.items("agents"):
        agent = known.agent(path, item) or _read_agent(path, item, problems)
        if agent is not None:
            agents.append(agent)
        pace()
    policies: list[PolicySpec] = []
    for path, item in top.items("policies"):
        policy = known.policy(path, item) or _read_policy(path, item, problems, types)
        if policy is not None:
            policies.append(policy)
        pace()
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
    _check_look_alikes(problems, agents)
    policy_keys: dict[str, str] = {}
    _check_unique(problems, [(f"{p.path}.id", p.id) for p in policies], "policy id", policy_keys)
    _check_unique(
        problems,
        [(f"{p.path}.name", p.name) for p in policies if p.name != p.id],
        "policy id or name",
        policy_keys,
    )
    return SnapshotSpec(revision, tuple(agents), tuple(policies), tuple(grants), unknown_agents)


def _check_look_alikes(problems: Problems, agents: list[AgentSpec]) -> None:
    """Two agents whose ids or names differ only by case or by look-alike
    characters are one name for two agents: refused, naming both."""
    owners: dict[str, AgentSpec] = {}
    for agent in agents:
        for key_field, ref in (("id", agent.id), ("name", agent.name)):
            for key in agent_id_keys(ref):
                other = owners.setdefault(key, agent)
                if other.id != agent.id:
                    problems.add(
                        f"{agent.path}.{key_field}",
                        f"{ref!r} differs from agent {other.name!r} ({other.path}) only by "
                        "case or look-alike characters",
                    )
                    return
