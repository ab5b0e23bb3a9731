"""``GET /api/v1/decisions``: the decisions sidecars shipped, filtered and
paginated, as JSON or exported as CloudEvents (``?format=cloudevents``:
JSON lines, one event per line; ``Accept:
application/cloudevents-batch+json``: the CloudEvents batch format, a JSON
array). The next page's cursor is ``nextCursor`` in the JSON answer and the
``X-PDP-Next-Cursor`` header in both."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from pdp.engine import parse_rfc3339

from ._control import ControlPlane
from ._decisions import DecisionQuery
from ._errors import FieldProblem, ValidationFailedError
from ._roles import Role, roles

__all__ = ["DecisionList", "decision_routes"]

CLOUDEVENTS_BATCH = "application/cloudevents-batch+json"
NEXT_CURSOR_HEADER = "X-PDP-Next-Cursor"
DecisionName = Literal["ALLOW", "ALLOW_WITH_WARNINGS", "BLOCK", "PENDING_APPROVAL", "AGENT_PAUSED"]


class DecisionOut(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decisionId: str
    decidedAt: str = Field(description="RFC 3339, the sidecar's clock")
    agentId: str
    decision: str
    policies: list[dict[str, Any]] = Field(description="the policies that fired: id, name, ...")
    snapshotRevision: int
    requestId: str
    approvalId: str
    sidecarId: str
    receivedAt: str


class DecisionList(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decisions: list[DecisionOut]
    nextCursor: str | None = Field(description="pass as ?cursor= for the next (older) page")


def _time(field: str, value: str | None) -> datetime | None:
    if value is None:
        return None
    moment = parse_rfc3339(value)
    if moment is None:
        raise ValidationFailedError(
            [FieldProblem(field, f"must be an RFC 3339 time with a zone, got {value[:40]!r}")]
        )
    return moment


def _cursor(value: str | None) -> int | None:
    if value is None:
        return None
    if not value.isdigit() or len(value) > 19:
        raise ValidationFailedError([FieldProblem("cursor", "not a cursor this API gave")])
    return int(value)


def decision_routes(control: ControlPlane) -> APIRouter:
    router = APIRouter(tags=["decisions"])

    @router.get(
        "/decisions",
        response_model=DecisionList,
        dependencies=[roles(Role.REVIEWER)],
        responses={200: {"content": {CLOUDEVENTS_BATCH: {}, "application/x-ndjson": {}}}},
    )
    async def list_decisions(
        request: Request,
        agent: str | None = Query(None, description="an agent's id or name"),
        decision: DecisionName | None = Query(None),  # noqa: B008
        since: str | None = Query(None, description="RFC 3339: decided at or after"),
        until: str | None = Query(None, description="RFC 3339: decided before"),
        limit: int = Query(100, ge=1, le=1000),
        cursor: str | None = Query(None, description="nextCursor of the previous page"),
        format: Literal["json", "cloudevents"] = Query("json"),
    ) -> Any:
        """Decisions sidecars shipped (those that fired a policy), newest
        received first."""
        agent_ids: tuple[str, ...] = ()
        if agent is not None:
            known = control.state.agent(agent)
            # A deleted agent's decisions stay readable by the id they carry.
            agent_ids = (agent,) if known is None else tuple({known.id, known.name, agent})
        query = DecisionQuery(
            agent_ids=agent_ids,
            decision=decision,
            since=_time("since", since),
            until=_time("until", until),
            before_seq=_cursor(cursor),
            limit=limit,
        )
        found, next_seq = await control.decisions.page(query)
        next_cursor = None if next_seq is None else str(next_seq)
        headers = {} if next_cursor is None else {NEXT_CURSOR_HEADER: next_cursor}
        if CLOUDEVENTS_BATCH in request.headers.get("accept", ""):
            body = json.dumps([d.as_cloudevent() for d in found], ensure_ascii=False)
            return Response(body, media_type=CLOUDEVENTS_BATCH, headers=headers)
        if format == "cloudevents":
            lines = "".join(
                json.dumps(d.as_cloudevent(), ensure_ascii=False, separators=(",", ":")) + "\n"
                for d in found
            )
            return Response(lines, media_type="application/x-ndjson", headers=headers)
        return JSONResponse(
            {"decisions": [d.as_json() for d in found], "nextCursor": next_cursor},
            headers=headers,
        )

    return router
