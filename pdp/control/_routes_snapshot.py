"""``GET /api/v1/snapshot``: the document sidecars follow, with ETag,
If-None-Match and long polling; and ``GET /healthz``."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

from fastapi import APIRouter, Query, Request, Response

from ._control import ControlPlane
from ._roles import Role, roles
from ._schemas import HealthOut, SnapshotOut

__all__ = ["MAX_WAIT_SECONDS", "health_routes", "matches_etag", "snapshot_routes", "wait_or_leave"]

MAX_WAIT_SECONDS = 60.0


def _etag(revision: int) -> str:
    return f'"{revision}"'


def matches_etag(if_none_match: str | None, current: str) -> bool:
    """Whether an If-None-Match header names ``current`` (or ``*``)."""
    if if_none_match is None:
        return False
    for tag in if_none_match.split(","):
        tag = tag.strip().removeprefix("W/")
        if tag in ("*", current):
            return True
    return False


def _named_revision(if_none_match: str | None) -> int:
    """The highest revision an If-None-Match header names (-1: none)."""
    named = -1
    for tag in (if_none_match or "").split(","):
        text = tag.strip().removeprefix("W/").strip('"')
        if text.isascii() and text.isdigit():
            named = max(named, int(text))
    return named


async def _disconnected(request: Request) -> None:
    # A GET has no body: receive() answers once with an empty body, then
    # only when the client goes away.
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def wait_or_leave(waiting: Coroutine[Any, Any, None], request: Request) -> None:
    """Waits for ``waiting`` unless the client goes away first."""
    change = asyncio.ensure_future(waiting)
    gone = asyncio.ensure_future(_disconnected(request))
    try:
        await asyncio.wait((change, gone), return_when=asyncio.FIRST_COMPLETED)
    finally:
        change.cancel()
        gone.cancel()


def snapshot_routes(control: ControlPlane) -> APIRouter:
    router = APIRouter(tags=["snapshot"])

    @router.get(
        "/snapshot",
        response_model=SnapshotOut,
        dependencies=[roles(Role.SIDECAR, Role.REVIEWER)],
        responses={304: {"description": "If-None-Match names the current revision"}},
    )
    async def get_snapshot(
        request: Request,
        wait: float = Query(
            0.0,
            ge=0.0,
            le=MAX_WAIT_SECONDS,
            description="with If-None-Match naming the current revision: seconds to "
            "hold the request until the revision changes (200) before answering 304",
        ),
    ) -> Response:
        """The snapshot document ``pdp serve --snapshot URL`` follows. ``ETag``
        is the quoted revision. A sidecar names itself in ``X-PDP-Sidecar``
        and reports the revisions it has applied in ``X-PDP-Revision`` (the
        whole snapshot) and ``X-PDP-Pause-Revision`` (its pause state)."""
        if_none_match = request.headers.get("if-none-match")
        control.sidecars.report(request.headers)
        revision, body = control.snapshot_body()
        # A sidecar that fails over from another replica may hold a revision
        # this one has not read yet: it waits for it rather than going back.
        named = _named_revision(if_none_match)
        if (matches_etag(if_none_match, _etag(revision)) or named > revision) and wait > 0:
            await wait_or_leave(control.wait_for_change(revision, wait), request)
            control.sidecars.report(request.headers)  # still there
            revision, body = control.snapshot_body()
        headers = {"ETag": _etag(revision), "Cache-Control": "no-cache"}
        if matches_etag(if_none_match, _etag(revision)) or named > revision:
            return Response(status_code=304, headers=headers)
        return Response(body, media_type="application/json", headers=headers)

    return router


def health_routes(control: ControlPlane) -> APIRouter:
    router = APIRouter(tags=["health"])

    @router.get(
        "/healthz",
        response_model=HealthOut,
        responses={503: {"model": HealthOut, "description": "the database does not answer"}},
    )
    async def healthz(response: Response) -> HealthOut:
        """Health; needs no API key. 503 while the database does not answer
        (the control plane keeps serving the last state it read)."""
        problem = control.status()
        if problem is None:
            return HealthOut(status="ok", revision=control.revision)
        response.status_code = 503
        return HealthOut(status="unavailable", revision=control.revision, detail=problem)

    return router
