"""The FastAPI application: routes under ``/api/v1``, every error as
``{"error": {"code", "message", "field"}}``."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, FastAPI, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader
from starlette.exceptions import HTTPException as StarletteHTTPException

from ._auth import API_KEY_HEADER
from ._control import ControlPlane
from ._docs import DOCS_MODES, OPENAPI_PATH, docs_routes
from ._errors import (
    ApiError,
    BadRequestError,
    DatabaseUnavailableError,
    StoreError,
    ValidationFailedError,
    problem_of,
)
from ._guard import DEFAULT_MAX_BODY_BYTES, RequestGuard, error_response
from ._logs import RateLimitedLog
from ._metrics import ControlMetrics, RequestMetrics
from ._roles import check_declared
from ._routes_agents import agent_routes
from ._routes_approvals import approval_routes
from ._routes_candidate import candidate_routes
from ._routes_decisions import decision_routes
from ._routes_events import event_routes
from ._routes_keys import key_routes
from ._routes_policies import policy_routes
from ._routes_settings import settings_routes
from ._routes_snapshot import health_routes, snapshot_routes
from ._routes_traces import trace_routes
from ._routes_webhooks import webhook_routes
from ._schemas import ErrorOut

__all__ = ["AnswerAlreadySent", "create_app"]

log = logging.getLogger("pdp.control")
quiet_log = RateLimitedLog(log)

_STATUS_CODES = {404: "not_found", 405: "method_not_allowed"}


async def _on_api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return error_response(exc)


async def _on_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    if any(e.get("type") == "json_invalid" for e in errors):
        return error_response(BadRequestError("malformed JSON"))
    return error_response(ValidationFailedError([problem_of(e) for e in errors]))


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
    quiet_log.error(
        "store error", "database error on %s %s: %s", request.method, request.url.path, exc
    )
    if isinstance(exc, DatabaseUnavailableError):
        return error_response(ApiError(str(exc), code="database_unavailable", status=503))
    return error_response(ApiError(str(exc), code="store_error", status=500))


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    # One line, rate-limited: a flood of requests that hit a fault must not
    # fill the disk with tracebacks. The traceback goes to DEBUG.
    quiet_log.error(
        "unexpected error",
        "%s %s failed: %s: %s",
        request.method,
        request.url.path,
        type(exc).__name__,
        exc,
    )
    log.debug("traceback of the failure above", exc_info=exc)
    return error_response(ApiError("internal error", code="internal", status=500))


class AnswerAlreadySent:
    """The outermost layer: Starlette answers an unexpected error with the
    500 above and then raises it again for the server to log, which uvicorn
    does with a traceback per request. It has been logged (one line) and
    answered: stop it here."""

    def __init__(self, app: Callable[..., Awaitable[None]]) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await self.app(scope, receive, send)
        except Exception:
            if scope.get("type") != "http":
                raise


def create_app(
    control: ControlPlane,
    *,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    metrics: ControlMetrics | None = None,
    docs: str = "open",
) -> FastAPI:
    """The ASGI application serving ``control``; with ``metrics``, every
    answered request is counted there. ``docs`` is one of ``DOCS_MODES``:
    who may read ``/docs`` and ``/openapi.json``."""
    if docs not in DOCS_MODES:
        raise ValueError(f"docs must be one of {', '.join(DOCS_MODES)}, not {docs!r}")
    app = FastAPI(
        title="pdp control plane",
        version="1",
        description="Policies, agents, grants, approvals, webhooks, and the snapshot that "
        "sidecars follow. "
        f"Every /api/v1 request needs an {API_KEY_HEADER} header.",
        responses={
            code: {"model": ErrorOut} for code in (400, 401, 403, 404, 409, 413, 415, 422, 500, 503)
        },
        # Answers are rendered by json.dumps, like the snapshot document and
        # as before response models: not by pydantic's JSON writer, whose
        # number formatting differs (1e-07 vs 1e-7).
        default_response_class=JSONResponse,
        # The Swagger page is served from this process (_docs.py); ReDoc
        # would load its script from a CDN.
        openapi_url=None if docs == "off" else OPENAPI_PATH,
        docs_url=None,
        redoc_url=None,
    )
    # Documents the key in the OpenAPI schema; RequestGuard checks it, before
    # the body is read, so that nothing is parsed for an unknown caller.
    api_key = APIKeyHeader(name=API_KEY_HEADER, auto_error=False)
    api = APIRouter(prefix="/api/v1", dependencies=[Security(api_key)])
    api.include_router(policy_routes(control))
    api.include_router(agent_routes(control))
    api.include_router(snapshot_routes(control))
    api.include_router(candidate_routes(control))
    api.include_router(event_routes(control))
    api.include_router(approval_routes(control))
    api.include_router(settings_routes(control))
    api.include_router(webhook_routes(control))
    api.include_router(trace_routes(control))
    api.include_router(decision_routes(control))
    api.include_router(key_routes(control))
    app.include_router(api)
    check_declared(app.routes, api.prefix)
    app.include_router(health_routes(control))
    app.include_router(docs_routes(docs))
    app.add_exception_handler(ApiError, _on_api_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(StoreError, _on_store_error)
    app.add_exception_handler(Exception, _on_unexpected)
    keyed = ("/api/", OPENAPI_PATH) if docs == "key" else ("/api/",)
    app.add_middleware(
        RequestGuard, control=control, max_body_bytes=max_body_bytes, keyed_paths=keyed
    )
    if metrics is not None:  # outermost: it counts the guard's refusals too
        app.add_middleware(RequestMetrics, metrics=metrics)
    app.state.control = control
    return app
