"""Errors of the control plane. An :class:`ApiError` is an answer: it carries
the HTTP status, a stable code, a message and the request field it is about,
and the app turns it into ``{"error": {...}}``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "ApiError",
    "BadRequestError",
    "ConflictError",
    "ControlError",
    "FieldProblem",
    "ForbiddenError",
    "NotFoundError",
    "PayloadTooLargeError",
    "ServiceUnavailableError",
    "StoreError",
    "UnauthorizedError",
    "UnsupportedMediaTypeError",
    "ValidationFailedError",
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
