"""``/api/v1/agents``: registration, the kill switch, grants and Authorize.
An agent is named by its id or its name everywhere."""

from __future__ import annotations

from fastapi import APIRouter, Body
from fastapi.responses import JSONResponse

from ._control import ControlPlane
from ._schemas import (
    AgentCreate,
    AgentList,
    AgentOut,
    AuthorizeIn,
    AuthorizeOut,
    GrantCreate,
    GrantList,
    GrantOut,
    PauseIn,
    ResumeIn,
)

__all__ = ["agent_routes"]


def agent_routes(control: ControlPlane) -> APIRouter:
    router = APIRouter(tags=["agents"])

    @router.post("/agents/authorize", response_model=AuthorizeOut)
    async def authorize(body: AuthorizeIn) -> JSONResponse:
        """May the source agent do ``action`` on the target agent now? Answers
        exactly as a sidecar's Authorize does, from the current snapshot."""
        return JSONResponse(control.authorize(body.sourceAgentId, body.targetAgentId, body.action))

    @router.post("/agents", status_code=201, response_model=AgentOut)
    async def create_agent(body: AgentCreate) -> JSONResponse:
        """Registers an agent; its generated ``id`` and its ``name`` both name it."""
        agent = await control.create_agent(body.model_dump(exclude_unset=True))
        headers = {"Location": f"/api/v1/agents/{agent['id']}"}
        return JSONResponse(agent, status_code=201, headers=headers)

    @router.get("/agents", response_model=AgentList)
    async def list_agents() -> JSONResponse:
        return JSONResponse({"agents": [dict(a) for a in control.state.agents]})

    @router.get("/agents/{agent_id}", response_model=AgentOut)
    async def get_agent(agent_id: str) -> JSONResponse:
        return JSONResponse(control.get_agent(agent_id))

    @router.patch("/agents/{agent_id}/pause", response_model=AgentOut)
    async def pause_agent(agent_id: str, body: PauseIn | None = Body(None)) -> JSONResponse:  # noqa: B008
        """The kill switch: sidecars refuse the agent's calls from the next snapshot on."""
        reason = body.reason if body is not None else ""
        return JSONResponse(await control.pause_agent(agent_id, reason))

    @router.patch("/agents/{agent_id}/resume", response_model=AgentOut)
    async def resume_agent(agent_id: str, body: ResumeIn | None = Body(None)) -> JSONResponse:  # noqa: B008
        """No body needed."""
        return JSONResponse(await control.resume_agent(agent_id))

    @router.post("/agents/{agent_id}/grants", status_code=201, response_model=GrantOut)
    async def create_grant(agent_id: str, body: GrantCreate) -> JSONResponse:
        """Lets the path's agent do ``allowedActions`` on ``targetAgentId``."""
        grant = await control.create_grant(agent_id, body.model_dump(exclude_unset=True))
        headers = {"Location": f"/api/v1/agents/{grant['sourceAgentId']}/grants/{grant['id']}"}
        return JSONResponse(grant, status_code=201, headers=headers)

    @router.get("/agents/{agent_id}/grants", response_model=GrantList)
    async def list_grants(agent_id: str) -> JSONResponse:
        """The agent's grants that are not revoked (expired ones included)."""
        return JSONResponse({"grants": control.agent_grants(agent_id)})

    @router.delete("/agents/{agent_id}/grants/{grant_id}", response_model=GrantOut)
    async def revoke_grant(agent_id: str, grant_id: str) -> JSONResponse:
        """Revokes a grant and answers with it (``revokedAt`` set)."""
        return JSONResponse(await control.revoke_grant(agent_id, grant_id))

    return router
