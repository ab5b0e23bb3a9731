"""The FastAPI application: routes under ``/api/v1``, every error as
``{"error": {"code", "message", "field"}}``."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter, FastAPI, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader
from starlette.exceptions import HTTPException as StarletteHTTPException

from ._auth import API_KEY_HEADER
from ._control import ControlPlane
from ._errors import (
    ApiError,
    BadRequestError,
    FieldProblem,
    StoreError,
    ValidationFailedError,
)
from ._guard import DEFAULT_MAX_BODY_BYTES, RequestGuard, error_response
from ._metrics import ControlMetrics, RequestMetrics
from ._routes_agents import agent_routes
from ._routes_candidate import candidate_routes
from ._routes_policies import policy_routes
from ._routes_snapshot import health_routes, snapshot_routes
from ._schemas import ErrorOut

__all__ = ["create_app"]

log = logging.getLogger("pdp.control")

_STATUS_CODES = {404: "not_found", 405: "method_not_allowed"}


def _field_path(parts: Sequence[Any]) -> str | None:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or None


def _problem(error: dict[str, Any]) -> FieldProblem:
    loc = tuple(error.get("loc", ()))
    field = _field_path(loc[1:]) if loc and loc[0] in ("body", "query", "path", "header") else None
    kind = error.get("type", "")
    if kind == "missing":
        message = "required" if field else "a JSON body is required"
    elif kind == "extra_forbidden":
        message = "unknown field"
    elif field is None and kind in ("model_type", "model_attributes_type", "dict_type"):
        message = "the body must be a JSON object"
    else:
        message = str(error.get("msg", "invalid value"))
    return FieldProblem(field, message)


async def _on_api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return error_response(exc)


async def _on_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    if any(e.get("type") == "json_invalid" for e in errors):
        return error_response(BadRequestError("malformed JSON"))
    return error_response(ValidationFailedError([_problem(e) for e in errors]))


async def _on_http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 404:
        message = f"no route {request.method} {request.url.path}"
    elif exc.status_code == 405:
        message = f"{request.method} is not allowed on {request.url.path}"
    else:
        message = str(exc.detail)
    code = _STATUS_CODES.get(exc.status_code, "http_error")
    return error_response(ApiError(message, code=code, status=exc.status_code), exc.headers)


async def _on_store_error(request: Request, exc: Exception) -> JSONResponse:
    log.error("database error on %s %s: %s", request.method, request.url.path, exc)
    return error_response(ApiError(str(exc), code="store_error", status=500))


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    return error_response(ApiError("internal error", code="internal", status=500))


def create_app(
    control: ControlPlane,
    *,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    metrics: ControlMetrics | None = None,
) -> FastAPI:
    """The ASGI application serving ``control``; with ``metrics``, every
    answered request is counted there."""
    app = FastAPI(
        title="pdp control plane",
        version="1",
        description="Policies, agents, grants and the snapshot sidecars follow. "
        f"Every /api/v1 request needs an {API_KEY_HEADER} header.",
        responses={
            code: {"model": ErrorOut} for code in (400, 401, 403, 404, 409, 413, 415, 422, 500, 503)
        },
        # Answers are rendered by json.dumps, like the snapshot document and
        # as before response models: not by pydantic's JSON writer, whose
        # number formatting differs (1e-07 vs 1e-7).
        default_response_class=JSONResponse,
    )
    # Documents the key in the OpenAPI schema; RequestGuard checks it, before
    # the body is read, so that nothing is parsed for an unknown caller.
    api_key = APIKeyHeader(name=API_KEY_HEADER, auto_error=False)
    api = APIRouter(prefix="/api/v1", dependencies=[Security(api_key)])
    api.include_router(policy_routes(control))
    api.include_router(agent_routes(control))
    api.include_router(snapshot_routes(control))
    api.include_router(candidate_routes(control))
    app.include_router(api)
    app.include_router(health_routes(control))
    app.add_exception_handler(ApiError, _on_api_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(StoreError, _on_store_error)
    app.add_exception_handler(Exception, _on_unexpected)
    app.add_middleware(RequestGuard, control=control, max_body_bytes=max_body_bytes)
    if metrics is not None:  # outermost: it counts the guard's refusals too
        app.add_middleware(RequestMetrics, metrics=metrics)
    app.state.control = control
    return app
