"""What each write changes, decided from the current state alone: pure
functions that return the candidate state (already compiled by the engine)
and the database writes that store it. Nothing here touches the database;
the control plane runs a plan's writes in the transaction that bumps the
revision."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pdp.engine import MAX_CALLER_TOKENS, CompiledSnapshot, format_time, parse_rfc3339, utc_now

from ._errors import ConflictError, FieldProblem, NotFoundError, ValidationFailedError
from ._objects import (
    POLICY_CLEARABLE_FIELDS,
    POLICY_WRITABLE_FIELDS,
    Agent,
    CallerTokenRef,
    Grant,
    Policy,
    PolicyPrerequisite,
    replaced,
)
from ._schemas import (
    AgentCreate,
    GrantCreate,
    PolicyCreate,
    PolicyList,
    PolicyPatch,
    Prerequisite,
)
from ._state import Focus, State, compile_pause, compile_state
from ._store import SnapshotTransaction

__all__ = [
    "Plan",
    "plan_create_agent",
    "plan_create_grant",
    "plan_create_policy",
    "plan_delete_policy",
    "plan_issue_caller_token",
    "plan_pause",
    "plan_promote",
    "plan_resume",
    "plan_revoke_caller_token",
    "plan_revoke_grant",
    "plan_update_policy",
    "policy_from_body",
    "require_agent",
    "require_policy",
]

Write = Callable[[SnapshotTransaction], Awaitable[None]]
ResultT = TypeVar("ResultT", Agent, Policy, Grant, PolicyList)


@dataclass(frozen=True, slots=True)
class Plan(Generic[ResultT]):
    """A write: the next state with its compiled snapshot, the database
    writes, and the object to answer with. ``state`` None: nothing changes."""

    result: ResultT
    state: State | None = None
    compiled: CompiledSnapshot | None = None
    write: Write | None = None


def _new_id() -> str:
    return str(uuid.uuid4())


def require_agent(state: State, ref: str, field: str | None = None) -> Agent:
    agent = state.agent(ref)
    if agent is None:
        raise NotFoundError(f"no agent with id or name {ref!r}", field=field)
    return agent


def require_policy(state: State, ref: str) -> Policy:
    policy = state.policy(ref)
    if policy is None:
        raise NotFoundError(f"no policy with id or name {ref!r}")
    return policy


def _prerequisite(given: Prerequisite) -> PolicyPrerequisite:
    return PolicyPrerequisite(policy=given.policy, when=given.when or "fired")


def _policy_fields(body: PolicyCreate | PolicyPatch) -> dict[str, Any]:
    """The policy fields the body gives, as stored: null empties the fields
    that may be empty and is refused for the others."""
    given = [k for k in POLICY_WRITABLE_FIELDS if k in body.model_fields_set]
    nulls = [
        FieldProblem(k, "must not be null")
        for k in given
        if getattr(body, k) is None and k not in POLICY_CLEARABLE_FIELDS
    ]
    if nulls:
        raise ValidationFailedError(nulls)
    out: dict[str, Any] = {}
    for key in given:
        value = getattr(body, key)
        if value is None:
            value = Policy.model_fields[key].get_default(call_default_factory=True)
        elif key == "prerequisites":
            value = [_prerequisite(p) for p in value]
        out[key] = value
    return out


def _unknown_agents(state: State, policy: Policy) -> list[FieldProblem]:
    # The engine checks appliesToAgents only when the snapshot lists agents;
    # the control plane always knows its agents, so it always checks.
    return [
        FieldProblem(f"appliesToAgents[{i}]", f"unknown agent {ref!r}")
        for i, ref in enumerate(policy.appliesToAgents)
        if ref.strip() and state.agent(ref) is None
    ]


def _name_taken(found: Agent | Policy, what: str, name: str) -> ConflictError:
    kind = "id" if found.id == name else "name"
    return ConflictError(f"another {what} already has the {kind} {name!r}", field="name")


def _put_policy(policy: Policy) -> Write:
    async def write(tx: SnapshotTransaction) -> None:
        await tx.put_policy(policy)

    return write


def plan_create_policy(state: State, body: PolicyCreate) -> Plan[Policy]:
    fields = _policy_fields(body)
    name = body.name
    if (found := state.policy(name)) is not None:
        raise _name_taken(found, "policy", name)
    now = format_time(utc_now())
    policy = Policy(id=_new_id(), **fields, createdAt=now, updatedAt=now)
    candidate = state.next(policies=[*state.policies, policy])
    focus = Focus("policies", len(state.policies))
    compiled = compile_state(candidate, focus, _unknown_agents(state, policy))
    return Plan(policy, candidate, compiled, _put_policy(policy))


def plan_update_policy(state: State, ref: str, body: PolicyPatch) -> Plan[Policy]:
    current = require_policy(state, ref)
    fields = _policy_fields(body)
    if not fields:
        return Plan(current)
    name = str(fields.get("name", current.name))
    found = state.policy(name)
    if found is not None and found.id != current.id:
        raise _name_taken(found, "policy", name)
    policy = replaced(current, **fields, updatedAt=format_time(utc_now()))
    index = state.policy_index(current.id)
    policies = list(state.policies)
    policies[index] = policy
    candidate = state.next(policies=policies)
    compiled = compile_state(candidate, Focus("policies", index), _unknown_agents(state, policy))
    return Plan(policy, candidate, compiled, _put_policy(policy))


def policy_from_body(state: State, body: PolicyCreate, now: str) -> Policy:
    """The policy a create body describes, as it would be stored: a
    published policy of the same name keeps its id and creation time."""
    fields = _policy_fields(body)
    current = state.policy(body.name)
    if current is None:
        return Policy(id=_new_id(), **fields, createdAt=now, updatedAt=now)
    same = replaced(current, **fields)
    return same if same == current else replaced(same, updatedAt=now)


def plan_promote(state: State, policies: tuple[Policy, ...]) -> Plan[PolicyList]:
    """The candidate's policies become the published ones, in their order,
    and the candidate is gone: one write, one revision."""
    candidate = state.next(policies=policies)
    compiled = compile_state(candidate, None)

    async def write(tx: SnapshotTransaction) -> None:
        for old in state.policies:
            await tx.delete_policy(old.id)
        for policy in policies:  # inserted in order: creation order is evaluation order
            await tx.put_policy(policy)
        await tx.drop_candidate()

    return Plan(PolicyList(policies=list(policies)), candidate, compiled, write)


def plan_delete_policy(state: State, ref: str) -> Plan[Policy]:
    policy = require_policy(state, ref)
    names = {policy.id, policy.name}
    dependents = [
        p.name
        for p in state.policies
        if p.id != policy.id and any(pre.policy in names for pre in p.prerequisites)
    ]
    if dependents:
        listed = ", ".join(repr(n) for n in dependents)
        raise ConflictError(
            f"policy {policy.name!r} is a prerequisite of {listed}; "
            "remove it from their prerequisites first"
        )
    candidate = state.next(policies=[p for p in state.policies if p.id != policy.id])
    compiled = compile_state(candidate, None)

    async def write(tx: SnapshotTransaction) -> None:
        await tx.delete_policy(policy.id)

    return Plan(policy, candidate, compiled, write)


def plan_create_agent(state: State, body: AgentCreate) -> Plan[Agent]:
    name = body.name
    if not name.strip():
        raise ValidationFailedError([FieldProblem("name", "must not be empty")])
    if (found := state.agent(name)) is not None:
        raise _name_taken(found, "agent", name)
    now = format_time(utc_now())
    agent = Agent(
        id=_new_id(),
        name=name,
        description=body.description,
        createdAt=now,
        updatedAt=now,
        revision=state.revision + 1,
    )
    candidate = state.next(agents=[*state.agents, agent])
    compiled = compile_state(candidate, Focus("agents", len(state.agents)))
    return Plan(agent, candidate, compiled, _put_agent(agent))


def _put_agent(agent: Agent) -> Write:
    async def write(tx: SnapshotTransaction) -> None:
        await tx.put_agent(agent)

    return write


def _replace_paused(
    state: State,
    agent: Agent,
    focus_renames: Mapping[str, str],
    previous: CompiledSnapshot | None,
) -> Plan[Agent]:
    """Replaces ``agent`` with a copy whose pause state changed. With the
    compiled snapshot of ``state`` (``previous``), the policies are not
    compiled again: a pause costs the same whatever the document's size."""
    index = state.agent_index(agent.id)
    agents = list(state.agents)
    agents[index] = agent
    candidate = state.next(agents=agents)
    focus = Focus("agents", index, focus_renames)
    if previous is not None and previous.revision == state.revision:
        compiled = compile_pause(candidate, previous, focus)
    else:
        compiled = compile_state(candidate, focus)
    return Plan(agent, candidate, compiled, _put_agent(agent))


def plan_pause(
    state: State, ref: str, reason: str, previous: CompiledSnapshot | None = None
) -> Plan[Agent]:
    """``previous``: the compiled snapshot of ``state``, if there is one."""
    agent = require_agent(state, ref)
    now = format_time(utc_now())
    paused = replaced(
        agent,
        paused=True,
        pauseReason=reason,
        # Pausing again updates the reason; the agent has been paused since the first time.
        pausedAt=agent.pausedAt if agent.paused else now,
        updatedAt=now,
        revision=state.revision + 1,
    )
    return _replace_paused(state, paused, {"pauseReason": "reason"}, previous)


def plan_resume(state: State, ref: str, previous: CompiledSnapshot | None = None) -> Plan[Agent]:
    """``previous``: the compiled snapshot of ``state``, if there is one."""
    agent = require_agent(state, ref)
    resumed = replaced(
        agent,
        paused=False,
        pauseReason=None,
        pausedAt=None,
        updatedAt=format_time(utc_now()),
        revision=state.revision + 1,
    )
    return _replace_paused(state, resumed, {}, previous)


def _replace_agent(state: State, agent: Agent) -> Plan[Agent]:
    index = state.agent_index(agent.id)
    agents = list(state.agents)
    agents[index] = agent
    candidate = state.next(agents=agents)
    compiled = compile_state(candidate, Focus("agents", index))
    return Plan(agent, candidate, compiled, _put_agent(agent))


def plan_issue_caller_token(
    state: State, ref: str, token_id: str, sha256: str, *, revoke_others: bool
) -> Plan[Agent]:
    """Adds a caller token (by its hash) to the agent; with
    ``revoke_others`` it becomes the agent's only one."""
    agent = require_agent(state, ref)
    kept = [] if revoke_others else list(agent.callerTokens)
    if len(kept) >= MAX_CALLER_TOKENS:
        raise ConflictError(
            f"agent {agent.id!r} has {len(kept)} caller tokens, the most it may hold; revoke "
            "one (DELETE .../caller-tokens/ID) or issue with revokeOthers"
        )
    now = format_time(utc_now())
    issued = CallerTokenRef(id=token_id, sha256=sha256, createdAt=now)
    changed = replaced(
        agent, callerTokens=[*kept, issued], updatedAt=now, revision=state.revision + 1
    )
    return _replace_agent(state, changed)


def plan_revoke_caller_token(state: State, ref: str, token_id: str) -> Plan[Agent]:
    agent = require_agent(state, ref)
    kept = [t for t in agent.callerTokens if t.id != token_id]
    if len(kept) == len(agent.callerTokens):
        raise NotFoundError(f"agent {agent.id!r} has no caller token {token_id!r}")
    changed = replaced(
        agent,
        callerTokens=kept,
        updatedAt=format_time(utc_now()),
        revision=state.revision + 1,
    )
    return _replace_agent(state, changed)


def plan_create_grant(state: State, source_ref: str, body: GrantCreate) -> Plan[Grant]:
    source = require_agent(state, source_ref)
    target = require_agent(state, body.targetAgentId, "targetAgentId")
    actions = [a.lower() for a in body.allowedActions]
    problems: list[FieldProblem] = []
    if not actions:
        problems.append(FieldProblem("allowedActions", "must list at least one action"))
    expires_at = body.expiresAt
    if expires_at is not None:
        moment = parse_rfc3339(expires_at)
        if moment is None:
            problems.append(
                FieldProblem(
                    "expiresAt",
                    f"{expires_at!r} is not an RFC 3339 timestamp (such as 2025-12-31T23:59:59Z)",
                )
            )
        else:
            expires_at = format_time(moment)
    grant = Grant(
        id=_new_id(),
        sourceAgentId=source.id,
        targetAgentId=target.id,
        allowedActions=actions,
        expiresAt=expires_at,
        createdAt=format_time(utc_now()),
    )
    candidate = state.next(grants=[*state.grants, grant])
    compiled = compile_state(candidate, Focus("grants", len(state.grants)), problems)

    async def write(tx: SnapshotTransaction) -> None:
        await tx.add_grant(grant)

    return Plan(grant, candidate, compiled, write)


def plan_revoke_grant(state: State, source_ref: str, grant_id: str) -> Plan[Grant] | None:
    """None when the source agent has no live grant ``grant_id``."""
    source = require_agent(state, source_ref)
    grant = next(
        (g for g in state.grants if g.id == grant_id and g.sourceAgentId == source.id),
        None,
    )
    if grant is None:
        return None
    revoked = replaced(grant, revokedAt=format_time(utc_now()))
    candidate = state.next(grants=[g for g in state.grants if g.id != grant_id])
    compiled = compile_state(candidate, None)

    async def write(tx: SnapshotTransaction) -> None:
        await tx.revoke_grant(grant_id, str(revoked.revokedAt))

    return Plan(revoked, candidate, compiled, write)
