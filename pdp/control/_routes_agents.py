"""``/api/v1/agents``: registration, the kill switch, grants and Authorize.
An agent is named by its id or its name everywhere."""

from __future__ import annotations

from fastapi import APIRouter, Body, Response

from ._control import ControlPlane
from ._objects import Agent, Grant
from ._roles import Role, roles
from ._schemas import (
    AgentCreate,
    AgentDetail,
    AgentList,
    AgentPatch,
    AuthorizeIn,
    AuthorizeOut,
    CallerTokenIn,
    CallerTokenOut,
    GrantCreate,
    GrantList,
    PauseIn,
    ResumeIn,
)

__all__ = ["agent_routes"]

_READ = [roles(Role.REVIEWER)]
_WRITE = [roles()]


def agent_routes(control: ControlPlane) -> APIRouter:
    router = APIRouter(tags=["agents"])

    @router.post("/agents/authorize", response_model=AuthorizeOut, dependencies=_READ)
    async def authorize(body: AuthorizeIn) -> AuthorizeOut:
        """May the source agent do ``action`` on the target agent now? Answers
        exactly as a sidecar's Authorize does, from the current snapshot."""
        return control.authorize(body.sourceAgentId, body.targetAgentId, body.action)

    @router.post("/agents", status_code=201, response_model=Agent, dependencies=_WRITE)
    async def create_agent(body: AgentCreate, response: Response) -> Agent:
        """Registers an agent; its generated ``id`` and its ``name`` both name it."""
        agent = await control.create_agent(body)
        response.headers["Location"] = f"/api/v1/agents/{agent.id}"
        return agent

    @router.get("/agents", response_model=AgentList, dependencies=_READ)
    async def list_agents() -> AgentList:
        return AgentList(agents=list(control.state.agents))

    @router.get("/agents/{agent_id}", response_model=AgentDetail, dependencies=_READ)
    async def get_agent(agent_id: str) -> AgentDetail:
        """The agent, and each sidecar following the feed with the revision
        it has applied: ``applied`` true everywhere means a pause (or a
        resume) has taken effect everywhere. ``spend`` is what its traces
        cost, in all and against each budget."""
        detail = control.agent_detail(agent_id)
        return detail.model_copy(update={"spend": await control.traces.spend(detail.id)})

    @router.patch("/agents/{agent_id}", response_model=Agent, dependencies=_WRITE)
    async def update_agent(agent_id: str, body: AgentPatch) -> Agent:
        """Renames an agent (or changes its description). Grants name agents
        by id and policies' ``appliesToAgents`` follow the new name, in the
        same revision; the pause state is kept. 409 when the name is taken."""
        return await control.update_agent(agent_id, body)

    @router.delete("/agents/{agent_id}", response_model=Agent, dependencies=_WRITE)
    async def delete_agent(agent_id: str) -> Agent:
        """Deletes an agent and revokes its grants (as source and target);
        409 while a policy names it in ``appliesToAgents``."""
        return await control.delete_agent(agent_id)

    @router.patch("/agents/{agent_id}/pause", response_model=Agent, dependencies=_WRITE)
    async def pause_agent(agent_id: str, body: PauseIn | None = Body(None)) -> Agent:  # noqa: B008
        """The kill switch: sidecars refuse the agent's calls from the next snapshot on."""
        reason = body.reason if body is not None else ""
        return await control.pause_agent(agent_id, reason)

    @router.patch("/agents/{agent_id}/resume", response_model=Agent, dependencies=_WRITE)
    async def resume_agent(agent_id: str, body: ResumeIn | None = Body(None)) -> Agent:  # noqa: B008
        """No body needed."""
        return await control.resume_agent(agent_id)

    @router.post(
        "/agents/{agent_id}/caller-tokens",
        status_code=201,
        response_model=CallerTokenOut,
        dependencies=_WRITE,
    )
    async def issue_caller_token(
        agent_id: str,
        body: CallerTokenIn | None = Body(None),  # noqa: B008
    ) -> CallerTokenOut:
        """Issues a caller token for the agent (``pdp serve --require-caller-token``):
        the answer is the only place the token appears; the agent and the
        snapshot keep its SHA-256. Rotate by issuing a new one, deploying it,
        then revoking the old one (or ``revokeOthers``)."""
        revoke_others = body.revokeOthers if body is not None else False
        return await control.issue_caller_token(agent_id, revoke_others=revoke_others)

    @router.delete(
        "/agents/{agent_id}/caller-tokens/{token_id}", response_model=Agent, dependencies=_WRITE
    )
    async def revoke_caller_token(agent_id: str, token_id: str) -> Agent:
        """Revokes a caller token: sidecars refuse it from the next snapshot on."""
        return await control.revoke_caller_token(agent_id, token_id)

    @router.post(
        "/agents/{agent_id}/grants", status_code=201, response_model=Grant, dependencies=_WRITE
    )
    async def create_grant(agent_id: str, body: GrantCreate, response: Response) -> Grant:
        """Lets the path's agent do ``allowedActions`` on ``targetAgentId``."""
        grant = await control.create_grant(agent_id, body)
        response.headers["Location"] = f"/api/v1/agents/{grant.sourceAgentId}/grants/{grant.id}"
        return grant

    @router.get("/agents/{agent_id}/grants", response_model=GrantList, dependencies=_READ)
    async def list_grants(agent_id: str) -> GrantList:
        """The agent's grants that are not revoked (expired ones included)."""
        return GrantList(grants=control.agent_grants(agent_id))

    @router.delete(
        "/agents/{agent_id}/grants/{grant_id}", response_model=Grant, dependencies=_WRITE
    )
    async def revoke_grant(agent_id: str, grant_id: str) -> Grant:
        """Revokes a grant and answers with it (``revokedAt`` set)."""
        return await control.revoke_grant(agent_id, grant_id)

    return router
