"""``/api/v1/snapshot/candidate``: a candidate policy set that sidecars
following this control plane shadow on live traffic, served like the
snapshot (ETag, If-None-Match, long polling); promoted in one write."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request, Response

from ._control import ControlPlane
from ._errors import NotFoundError
from ._guard import error_response
from ._routes_snapshot import MAX_WAIT_SECONDS, matches_etag, wait_or_leave
from ._schemas import CandidateIn, CandidateOut, ErrorOut, PolicyList, SnapshotOut

__all__ = ["candidate_routes"]


def candidate_routes(control: ControlPlane) -> APIRouter:
    router = APIRouter(tags=["candidate"])

    @router.post("/snapshot/candidate", status_code=201, response_model=CandidateOut)
    async def publish_candidate(body: CandidateIn) -> CandidateOut:
        """Publishes a candidate policy set, whole (``policies``) or as
        ``changes`` to the published policies, replacing any candidate. It
        is compiled with the published agents and grants first: a bad rule
        is a 422 naming the field, and nothing changes. The published
        revision stays; sidecars start shadowing the candidate."""
        return await control.publish_candidate(body)

    @router.get(
        "/snapshot/candidate",
        response_model=SnapshotOut,
        responses={
            304: {"description": "If-None-Match names the current candidate tag"},
            404: {"model": ErrorOut, "description": "no candidate is published"},
        },
    )
    async def get_candidate(
        request: Request,
        wait: float = Query(
            0.0,
            ge=0.0,
            le=MAX_WAIT_SECONDS,
            description="with If-None-Match naming the current tag: seconds to hold the "
            "request until the candidate (or the published revision) changes",
        ),
    ) -> Response:
        """The candidate's snapshot document (the published agents and grants
        with the candidate's policies, at the next revision), what a sidecar
        shadows. 404 while there is none; the ETag is there too, so a
        sidecar long-polls for the next one."""
        if_none_match = request.headers.get("if-none-match")
        tag, body = control.candidate_body()
        if matches_etag(if_none_match, tag) and wait > 0:
            await wait_or_leave(control.wait_for_candidate_change(tag, wait), request)
            tag, body = control.candidate_body()
        headers = {"ETag": tag, "Cache-Control": "no-cache"}
        if matches_etag(if_none_match, tag):
            return Response(status_code=304, headers=headers)
        if body is None:
            return error_response(NotFoundError("no candidate snapshot is published"), headers)
        return Response(body, media_type="application/json", headers=headers)

    @router.get("/snapshot/candidate/diff", response_model=CandidateOut)
    async def candidate_diff() -> CandidateOut:
        """The candidate's policies and what it adds, removes and changes
        against the published ones."""
        return control.candidate_summary()

    @router.post("/snapshot/candidate/promote", response_model=PolicyList)
    async def promote_candidate() -> PolicyList:
        """The candidate's policies become the snapshot's in one write (one
        new revision); the candidate is gone. Answers with the policies now
        published."""
        return await control.promote_candidate()

    @router.delete("/snapshot/candidate", response_model=CandidateOut)
    async def drop_candidate() -> CandidateOut:
        """Drops the candidate; sidecars stop shadowing it."""
        return await control.drop_candidate()

    return router
