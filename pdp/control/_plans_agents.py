"""Plans that rename or delete an agent (pure, like ``_plans.py``).

Grants name agents by id, so a rename leaves them alone; a policy's
``appliesToAgents`` may hold the old name, which the rename rewrites in the
same revision, so the policy keeps applying to the agent. A deleted
agent's grants (either side) go with it; a policy that names it refuses
the delete (an emptied ``appliesToAgents`` would apply to every agent)."""

from __future__ import annotations

from pdp.engine import AgentIdError, canonical_agent_id, format_time, utc_now

from ._errors import ConflictError, FieldProblem, ValidationFailedError
from ._objects import Agent, replaced
from ._plans import Plan, require_agent
from ._schemas import AgentPatch
from ._state import Focus, State, compile_state
from ._store import SnapshotTransaction

__all__ = ["plan_delete_agent", "plan_update_agent"]


def plan_update_agent(state: State, ref: str, body: AgentPatch) -> Plan[Agent]:
    """A new name (and description); the pause state is carried."""
    agent = require_agent(state, ref)
    name = agent.name
    if body.name is not None:
        # The same canonical form and look-alike rule as a new agent's name.
        try:
            name = canonical_agent_id(body.name)
        except AgentIdError as exc:
            reason = "must not be empty" if exc.reason.startswith("required") else exc.reason
            raise ValidationFailedError([FieldProblem("name", reason)]) from None
    found = state.agent(name)
    if found is not None and found.id != agent.id:
        if name in (found.id, found.name):
            kind = "id" if found.id == name else "name"
            raise ConflictError(f"another agent already has the {kind} {name!r}", field="name")
        raise ConflictError(
            f"agent name {name!r} differs from agent {found.name!r} (id {found.id!r}) only by "
            "case or look-alike characters; one agent, one name",
            field="name",
        )
    if name == agent.id and name != agent.name:
        raise ConflictError(f"{name!r} is this agent's id; pick another name", field="name")
    description = agent.description
    if "description" in body.model_fields_set:
        description = body.description
    if name == agent.name and description == agent.description:
        return Plan(agent)
    now = format_time(utc_now())
    changed = replaced(
        agent, name=name, description=description, updatedAt=now, revision=state.revision + 1
    )
    index = state.agent_index(agent.id)
    agents = list(state.agents)
    agents[index] = changed
    renamed_policies = []
    policies = list(state.policies)
    if name != agent.name:
        for i, policy in enumerate(policies):
            if agent.name in policy.appliesToAgents:
                targets = [name if ref == agent.name else ref for ref in policy.appliesToAgents]
                policies[i] = replaced(policy, appliesToAgents=targets, updatedAt=now)
                renamed_policies.append(policies[i])
    candidate = state.next(agents=agents, policies=policies)
    compiled = compile_state(candidate, Focus("agents", index))

    async def write(tx: SnapshotTransaction) -> None:
        await tx.put_agent(changed)
        for policy in renamed_policies:
            await tx.put_policy(policy)

    return Plan(changed, candidate, compiled, write)


def plan_delete_agent(state: State, ref: str) -> Plan[Agent]:
    agent = require_agent(state, ref)
    names = {agent.id, agent.name}
    naming = [p.name for p in state.policies if names & set(p.appliesToAgents)]
    if naming:
        listed = ", ".join(repr(n) for n in naming)
        raise ConflictError(
            f"agent {agent.name!r} is in appliesToAgents of {listed}; "
            "remove it there first (an empty list applies to every agent)"
        )
    revoked = [g.id for g in state.grants if agent.id in (g.sourceAgentId, g.targetAgentId)]
    candidate = state.next(
        agents=[a for a in state.agents if a.id != agent.id],
        grants=[g for g in state.grants if g.id not in revoked],
    )
    compiled = compile_state(candidate, None)
    now = format_time(utc_now())

    async def write(tx: SnapshotTransaction) -> None:
        for grant_id in revoked:
            await tx.revoke_grant(grant_id, now)
        await tx.delete_agent(agent.id)

    return Plan(agent, candidate, compiled, write)
