"""Errors of the control plane. An :class:`ApiError` is an answer: it carries
the HTTP status, a stable code, a message and the request field it is about,
and the app turns it into ``{"error": {...}}``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "ApiError",
    "BadRequestError",
    "ConflictError",
    "ControlError",
    "DatabaseUnavailableError",
    "FieldProblem",
    "ForbiddenError",
    "NotFoundError",
    "PayloadTooLargeError",
    "ServiceUnavailableError",
    "StaleRevisionError",
    "StoreError",
    "UnauthorizedError",
    "UnsupportedMediaTypeError",
    "ValidationFailedError",
    "problem_of",
]


@dataclass(frozen=True, slots=True)
class FieldProblem:
    """One problem with a request body, at a field path such as
    ``ruleDefinition.daily_budget`` or ``allowedActions[1]`` (None: the whole body)."""

    field: str | None
    message: str

    def as_json(self) -> dict[str, str | None]:
        return {"field": self.field, "message": self.message}


class ControlError(Exception):
    """Base of every error the control plane raises."""


class StoreError(ControlError):
    """The control plane's database cannot be opened, read or written."""


class DatabaseUnavailableError(StoreError):
    """The database does not answer (a server down or unreachable): 503, and
    the control plane keeps serving what it last read."""


class StaleRevisionError(StoreError):
    """Another control plane on the same database wrote first: the write is
    planned again on the state it stored."""


class ApiError(ControlError):
    status = 500
    code = "internal"

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        code: str | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status

    def as_json(self) -> dict[str, object]:
        return {"error": {"code": self.code, "message": self.message, "field": self.field}}


class BadRequestError(ApiError):
    status = 400
    code = "malformed_json"


class UnauthorizedError(ApiError):
    status = 401
    code = "unauthorized"


class ForbiddenError(ApiError):
    status = 403
    code = "forbidden"


class NotFoundError(ApiError):
    status = 404
    code = "not_found"


class ConflictError(ApiError):
    status = 409
    code = "conflict"


class PayloadTooLargeError(ApiError):
    status = 413
    code = "payload_too_large"


class UnsupportedMediaTypeError(ApiError):
    status = 415
    code = "unsupported_media_type"


class ServiceUnavailableError(ApiError):
    status = 503
    code = "unavailable"


class ValidationFailedError(ApiError):
    """422: the body is well-formed JSON but a field is wrong. ``problems``
    lists every problem found; the first one is the error's message and field."""

    status = 422
    code = "validation_failed"

    def __init__(self, problems: Sequence[FieldProblem]) -> None:
        if not problems:
            problems = [FieldProblem(None, "invalid request")]
        first = problems[0]
        message = f"{first.field}: {first.message}" if first.field else first.message
        super().__init__(message, field=first.field)
        self.problems: tuple[FieldProblem, ...] = tuple(problems)

    def as_json(self) -> dict[str, object]:
        body = super().as_json()
        error = body["error"]
        assert isinstance(error, dict)
        error["errors"] = [p.as_json() for p in self.problems]
        return body


_REQUEST_PARTS = ("body", "query", "path", "header")
_WHOLE_BODY_TYPES = ("model_type", "model_attributes_type", "dict_type")


def problem_of(error: Mapping[str, Any], *, within: str | None = None) -> FieldProblem:
    """A pydantic validation error as a FieldProblem. Without ``within`` the
    error is about a request (its location starts with ``body``, ``query``...);
    with it, about a value at the field path ``within``."""
    loc = tuple(error.get("loc", ()))
    if within is None:
        parts = loc[1:] if loc and loc[0] in _REQUEST_PARTS else None
        field = None if parts is None else _field_path("", parts)
    else:
        field = _field_path(within, loc)
    kind = error.get("type", "")
    if kind == "missing":
        message = "required" if field else "a JSON body is required"
    elif kind == "extra_forbidden":
        message = "unknown field"
    elif field is None and kind in _WHOLE_BODY_TYPES:
        message = "the body must be a JSON object"
    else:
        message = str(error.get("msg", "invalid value"))
    return FieldProblem(field, message)


def _field_path(prefix: str, parts: Sequence[Any]) -> str | None:
    out = prefix
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part == "":
            out += '[""]'  # an empty key is still a field
        else:
            out += f".{part}" if out else str(part)
    return out or None
