"""The service's method table, built from its descriptor, and the guard
around every handler: a :class:`RequestError` becomes the status it names,
an unexpected failure one line of log and UNAVAILABLE (the state backend) or
INTERNAL, never a traceback per request."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor

from pdp.engine import StateUnavailableError
from pdp.state import StateError

from ._errors import RequestError

__all__ = ["Activity", "handler_name", "service_handler"]

log = logging.getLogger("pdp.server")


class Activity:
    """Unary calls in flight and when the last one started, so a shutdown can
    wait for a quiet moment: calls queued behind a busy event loop are not
    yet in flight from the server's point of view, and stopping the server
    would cancel them."""

    __slots__ = ("in_flight", "last_started")

    def __init__(self) -> None:
        self.in_flight = 0
        self.last_started = 0.0

    def quiet_for(self) -> float:
        return 0.0 if self.in_flight else time.monotonic() - self.last_started


def handler_name(rpc: str) -> str:
    """The servicer method serving ``rpc``: ``AgentStatus`` -> ``agent_status``."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", rpc).lower()


def service_handler(
    service: ServiceDescriptor, servicer: object, activity: Activity
) -> grpc.GenericRpcHandler[Any, Any]:
    """Every RPC of ``service`` served by ``servicer``'s method of the same
    name in snake case, with the streaming shape the contract gives it; a
    TypeError names every RPC without one."""
    handlers: dict[str, Callable[..., Any]] = {}
    missing: list[str] = []
    for method in service.methods:
        fn = getattr(servicer, handler_name(method.name), None)
        if fn is None:
            missing.append(f"{method.name} (define {handler_name(method.name)})")
        else:
            handlers[method.name] = fn
    if missing:
        raise TypeError(f"{service.full_name} has no handler for {', '.join(missing)}")
    methods = {
        method.name: _method_handler(method, handlers[method.name], activity)
        for method in service.methods
    }
    return grpc.method_handlers_generic_handler(service.full_name, methods)


def _method_handler(
    method: MethodDescriptor, fn: Callable[..., Any], activity: Activity
) -> grpc.RpcMethodHandler[Any, Any]:
    match method.client_streaming, method.server_streaming:
        case False, False:
            return grpc.unary_unary_rpc_method_handler(_guard_unary(fn, activity))
        case False, True:
            return grpc.unary_stream_rpc_method_handler(_guard_stream(fn))
        case True, False:
            return grpc.stream_unary_rpc_method_handler(_guard_unary(fn, activity))
        case _:
            return grpc.stream_stream_rpc_method_handler(_guard_stream(fn))


async def _abort(context: grpc.aio.ServicerContext[Any, Any], exc: RequestError) -> None:
    await context.abort(exc.code, str(exc), exc.trailing_metadata())


def _as_request_error(exc: Exception) -> RequestError:
    """What a handler's unexpected failure answers: UNAVAILABLE when the
    state backend failed (a read-only or full disk, Redis away: a retry
    may succeed), INTERNAL otherwise; logged as one line, never a traceback
    per request."""
    if isinstance(exc, StateUnavailableError | StateError):
        log.warning("state backend failure: %s", _one_line(exc))
        return RequestError(
            "", f"the state backend failed: {_one_line(exc)}", grpc.StatusCode.UNAVAILABLE
        )
    log.error("internal error: %s: %s", type(exc).__name__, _one_line(exc))
    return RequestError(
        "",
        f"internal error ({type(exc).__name__}); see the sidecar's log",
        grpc.StatusCode.INTERNAL,
    )


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:500] or type(exc).__name__


# A request as the handlers receive it: bytes, or an async iterator of bytes
# for a client stream.
_Request = Any


def _guard_unary(
    fn: Callable[[_Request, grpc.aio.ServicerContext[Any, Any]], Awaitable[bytes]],
    activity: Activity,
) -> Callable[[_Request, grpc.aio.ServicerContext[Any, Any]], Awaitable[bytes]]:
    async def handle(data: _Request, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
        activity.in_flight += 1
        activity.last_started = time.monotonic()
        try:
            return await fn(data, context)
        except RequestError as exc:
            await _abort(context, exc)
            raise AssertionError("abort returned") from exc  # pragma: no cover
        except (asyncio.CancelledError, grpc.aio.AbortError):
            raise
        except Exception as exc:
            await _abort(context, _as_request_error(exc))
            raise AssertionError("abort returned") from exc  # pragma: no cover
        finally:
            activity.in_flight -= 1

    return handle


def _guard_stream(
    fn: Callable[[_Request, grpc.aio.ServicerContext[Any, Any]], AsyncIterator[bytes]],
) -> Callable[[_Request, grpc.aio.ServicerContext[Any, Any]], AsyncIterator[bytes]]:
    async def handle(
        data: _Request, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[bytes]:
        try:
            async for item in fn(data, context):
                yield item
        except RequestError as exc:
            await _abort(context, exc)
        except (asyncio.CancelledError, grpc.aio.AbortError):
            raise
        except Exception as exc:
            await _abort(context, _as_request_error(exc))

    return handle
