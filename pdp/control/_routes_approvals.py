"""``/api/v1/approvals``: reviewers list and decide the calls sidecars hold
for approval; sidecars wait for decisions and consume approvals. The
reviewer is the owner of the API key (its name), never a field of the body."""

from __future__ import annotations

from fastapi import APIRouter, Body, Query, Request

from pdp.engine import ApprovalState, approval_json

from ._approvals import StoredApproval
from ._control import ControlPlane
from ._roles import Role, caller_of, roles
from ._routes_snapshot import MAX_WAIT_SECONDS, wait_or_leave
from ._schemas import (
    ApprovalConsumeIn,
    ApprovalDecisionIn,
    ApprovalList,
    ApprovalOut,
    ApprovalStatus,
)

__all__ = ["approval_routes"]


def approval_routes(control: ControlPlane) -> APIRouter:
    router = APIRouter(tags=["approvals"])
    approvals = control.approvals

    def out(stored: StoredApproval) -> ApprovalOut:
        approval = stored.approval
        agent = control.state.agent(approval.agent_id)
        return ApprovalOut(
            **approval_json(approval, approvals.clock()),
            agentName=None if agent is None else agent.name,
            sidecarId=stored.sidecar_id,
            consumedBy=stored.consumed_by,
        )

    @router.get("/approvals", response_model=ApprovalList, dependencies=[roles(Role.REVIEWER)])
    async def list_approvals(
        status: ApprovalStatus | None = Query(None, description="default: every status"),  # noqa: B008
        limit: int = Query(100, ge=1, le=1000),
    ) -> ApprovalList:
        """Approvals, newest first: the policies that fired, the masked
        excerpt of the input and, while pending, the time left."""
        wanted = None if status is None else ApprovalState(status)
        return ApprovalList(approvals=[out(a) for a in await approvals.by_status(wanted, limit)])

    @router.get(
        "/approvals/{approval_id}",
        response_model=ApprovalOut,
        dependencies=[roles(Role.REVIEWER, Role.SIDECAR)],
    )
    async def get_approval(
        approval_id: str,
        request: Request,
        wait: float = Query(
            0.0,
            ge=0.0,
            le=MAX_WAIT_SECONDS,
            description="seconds to hold the request while the approval is pending",
        ),
    ) -> ApprovalOut:
        """One approval; with ``wait``, answered as soon as it is decided or
        expires (or after ``wait`` seconds, still pending)."""
        stored = await approvals.get(approval_id)
        if wait > 0 and not stored.approval.decided(approvals.clock()):
            await wait_or_leave(approvals.wait_decided(approval_id, wait), request)
            stored = await approvals.get(approval_id)
        return out(stored)

    async def decide(
        approval_id: str, request: Request, body: ApprovalDecisionIn | None, approve: bool
    ) -> ApprovalOut:
        reviewer = caller_of(request).name
        comment = "" if body is None or body.comment is None else body.comment
        return out(await approvals.decide(approval_id, approve, reviewer, comment))

    @router.post(
        "/approvals/{approval_id}/approve",
        response_model=ApprovalOut,
        dependencies=[roles(Role.REVIEWER)],
    )
    async def approve(
        approval_id: str,
        request: Request,
        body: ApprovalDecisionIn | None = Body(None),  # noqa: B008
    ) -> ApprovalOut:
        """Lets the held call through once, when the agent sends the same
        request again with the approval id. 409 once decided or expired."""
        return await decide(approval_id, request, body, approve=True)

    @router.post(
        "/approvals/{approval_id}/deny",
        response_model=ApprovalOut,
        dependencies=[roles(Role.REVIEWER)],
    )
    async def deny(
        approval_id: str,
        request: Request,
        body: ApprovalDecisionIn | None = Body(None),  # noqa: B008
    ) -> ApprovalOut:
        """The held call must not run; the agent sees the reviewer and the
        comment. 409 once decided or expired."""
        return await decide(approval_id, request, body, approve=False)

    @router.post(
        "/approvals/{approval_id}/consume",
        response_model=ApprovalOut,
        dependencies=[roles(Role.SIDECAR)],
    )
    async def consume(approval_id: str, body: ApprovalConsumeIn) -> ApprovalOut:
        """A sidecar lets the approved call through: once, across every
        replica. 409 (``approval_not_approved``, ``approval_used``,
        ``digest_mismatch``) when it may not."""
        return out(await approvals.consume(approval_id, body.digest, body.sidecarId))

    return router
