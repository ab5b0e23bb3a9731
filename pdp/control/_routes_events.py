"""``POST /api/v1/sidecar/events``: what sidecars report in the background
(approvals they hold, decisions that fired a policy), in batches, idempotent
by event id."""

from __future__ import annotations

from fastapi import APIRouter

from ._control import ControlPlane
from ._events import IncomingEvent
from ._roles import Role, roles
from ._schemas import SidecarEventsIn, SidecarEventsOut

__all__ = ["event_routes"]


def event_routes(control: ControlPlane) -> APIRouter:
    router = APIRouter(tags=["sidecars"])

    @router.post(
        "/sidecar/events",
        response_model=SidecarEventsOut,
        dependencies=[roles(Role.SIDECAR)],
    )
    async def post_events(body: SidecarEventsIn) -> SidecarEventsOut:
        """Records a batch of events. Every event is checked first: one bad
        event refuses the batch (422 naming ``events[i]...``) and nothing is
        recorded. An event whose id was already taken is counted in
        ``duplicates`` and handled no second time."""
        events = [IncomingEvent(e.id, e.type, e.time, e.data) for e in body.events]
        new, duplicates = await control.events.ingest(control.store, body.sidecarId, events)
        return SidecarEventsOut(accepted=new + duplicates, duplicates=duplicates)

    return router
