"""What every request goes through before routing, as plain ASGI: the API
key (401/403) for ``/api/`` (and ``/openapi.json`` when the description is
kept behind a key), the body size limit (413, counted as the body arrives,
so a chunked body cannot get around it), the media type (415) and JSON
syntax (400). JSON is parsed strictly: NaN, Infinity and duplicate keys are
refused rather than silently accepted or lost, and so is a lone UTF-16
surrogate (``"\ud800"``), which no UTF-8 document can carry."""

from __future__ import annotations

import json
import math
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from email.message import Message
from typing import Any

from starlette.responses import JSONResponse

from ._control import ControlPlane
from ._errors import (
    ApiError,
    BadRequestError,
    PayloadTooLargeError,
    UnsupportedMediaTypeError,
)
from ._schemas import ErrorOut

__all__ = ["DEFAULT_MAX_BODY_BYTES", "RequestGuard", "error_response"]

DEFAULT_MAX_BODY_BYTES = 1024 * 1024

Scope = MutableMapping[str, Any]
Message_ = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message_]]
Send = Callable[[Message_], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

_BODILESS = frozenset({"GET", "HEAD", "OPTIONS"})


def error_response(error: ApiError, headers: Mapping[str, str] | None = None) -> JSONResponse:
    """The answer for ``error``, its body checked against the declared ErrorOut."""
    body = ErrorOut.model_validate(error.as_json()).model_dump(exclude_unset=True)
    return JSONResponse(body, status_code=error.status, headers=headers)


class RequestGuard:
    def __init__(
        self,
        app: App,
        control: ControlPlane,
        max_body_bytes: int,
        keyed_paths: tuple[str, ...] = ("/api/",),
    ) -> None:
        self.app = app
        self.control = control
        self.max_body_bytes = max_body_bytes
        self.keyed_paths = keyed_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        try:
            if scope["path"].startswith(self.keyed_paths):
                scope.setdefault("state", {})["caller"] = await self.control.authenticate(
                    headers.get("x-api-key")
                )
            if scope["method"] not in _BODILESS:
                receive = await self._checked_body(headers, receive)
        except ApiError as error:
            extra = {"WWW-Authenticate": "X-API-Key"} if error.status == 401 else None
            await error_response(error, extra)(scope, receive, send)
            return
        await self.app(scope, receive, send)

    async def _checked_body(self, headers: dict[str, str], receive: Receive) -> Receive:
        """Reads the whole body (at most the limit) and returns a receive
        that replays it."""
        limit = self.max_body_bytes
        too_large = PayloadTooLargeError(f"request body larger than {limit} bytes")
        declared = headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise too_large
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise too_large
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        if body:
            _check_media_type(headers.get("content-type"))
            _check_json(body)
        replayed = False

        async def replay() -> Message_:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return replay


def _check_media_type(value: str | None) -> None:
    if value:
        parsed = Message()
        parsed["content-type"] = value
        subtype = parsed.get_content_subtype()
        if parsed.get_content_maintype() == "application" and (
            subtype == "json" or subtype.endswith("+json")
        ):
            return
    raise UnsupportedMediaTypeError(
        f"the body must be JSON (Content-Type: application/json), got {value or 'no Content-Type'}"
    )


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def _finite(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"number {text} is out of range")
    return number


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _lone_surrogate(value: Any, path: str = "") -> str | None:
    """The path of the first string holding a lone surrogate, or None."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return path or "(the body)"
        return None
    items = (
        value.items()
        if isinstance(value, dict)
        else enumerate(value)
        if isinstance(value, list)
        else ()
    )
    for key, item in items:
        if isinstance(key, str) and (found := _lone_surrogate(key, path or "(the body)")):
            return found
        where = f"{path}[{key}]" if isinstance(key, int) else f"{path}.{key}" if path else key
        if (found := _lone_surrogate(item, where)) is not None:
            return found
    return None


def _check_json(body: bytes) -> None:
    try:
        document = json.loads(
            body.decode("utf-8"),
            object_pairs_hook=_no_duplicates,
            parse_float=_finite,
            parse_constant=_refuse_constant,
        )
    except UnicodeDecodeError as exc:
        raise BadRequestError(f"malformed JSON: not valid UTF-8 at byte {exc.start}") from None
    except json.JSONDecodeError as exc:
        raise BadRequestError(
            f"malformed JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"
        ) from None
    except ValueError as exc:
        raise BadRequestError(f"malformed JSON: {exc}") from None
    except RecursionError:
        raise BadRequestError("malformed JSON: nested too deeply") from None
    try:
        where = _lone_surrogate(document)
    except RecursionError:
        raise BadRequestError("malformed JSON: nested too deeply") from None
    if where is not None:
        raise BadRequestError(
            f"malformed JSON: {where} holds a lone UTF-16 surrogate escape (such as \\ud800), "
            "which is not text",
            field=None if where.startswith("(") else where,
        )
