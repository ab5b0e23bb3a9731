"""``/api/v1/traces`` and ``/api/v1/incidents``: finished calls evaluated
after the fact, and the incidents their violations became."""

from __future__ import annotations

from fastapi import APIRouter, Query

from ._control import ControlPlane
from ._roles import Role, roles
from ._trace_schemas import IncidentList, TraceIn, TraceOut

__all__ = ["trace_routes"]


def trace_routes(control: ControlPlane) -> APIRouter:
    router = APIRouter(tags=["traces"])
    traces = control.traces

    @router.post("/traces", response_model=TraceOut, dependencies=[roles(Role.SIDECAR)])
    async def post_trace(body: TraceIn) -> TraceOut:
        """Records a finished call: the active policies are evaluated in
        monitor fashion (nothing is blocked, the call has run), each policy
        that fires becomes an incident, and ``costUsd`` is added to the
        agent's spend. The same ``requestId`` again answers the recorded
        trace (``duplicate`` true) and adds nothing. 422 for an unknown agent
        or a bad field, 409 (``agent_paused``) for a paused agent."""
        return await traces.submit(body)

    @router.get("/incidents", response_model=IncidentList, dependencies=[roles(Role.REVIEWER)])
    async def list_incidents(
        agentId: str | None = Query(None, max_length=256, description="agent id or name"),
        policyId: str | None = Query(None, max_length=256, description="policy id or name"),
        since: str | None = Query(None, max_length=64, description="RFC 3339, inclusive"),
        until: str | None = Query(None, max_length=64, description="RFC 3339, exclusive"),
        limit: int = Query(100, ge=1, le=1000),
        cursor: str | None = Query(None, max_length=32, description="a previous nextCursor"),
    ) -> IncidentList:
        """Incidents, newest first, filtered by agent, policy and time;
        ``nextCursor`` pages to older ones."""
        return await traces.incidents(
            agent=agentId, policy=policyId, since=since, until=until, limit=limit, cursor=cursor
        )

    return router
