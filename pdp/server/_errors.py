"""Errors the servicer turns into gRPC statuses.

Exception tree::

    ServerError
    ├── RequestError    a bad request: its gRPC code, the field and the reason
    └── HttpCallError   a custom validator's call got no usable HTTP answer
"""

from __future__ import annotations

import grpc
from google.rpc import code_pb2, error_details_pb2, status_pb2

__all__ = ["HttpCallError", "RequestError", "ServerError", "status_details"]


class ServerError(Exception):
    """Base of the server's own errors."""


class RequestError(ServerError):
    def __init__(
        self, field: str, reason: str, code: grpc.StatusCode = grpc.StatusCode.INVALID_ARGUMENT
    ) -> None:
        super().__init__(f"{field}: {reason}" if field else reason)
        self.field = field
        self.reason = reason
        self.code = code

    def trailing_metadata(self) -> tuple[tuple[str, bytes], ...]:
        return status_details(self.code, str(self), self.field, self.reason)


class HttpCallError(ServerError):
    """What went wrong with an HTTP call, as a validator failure names it.
    ``before_answer``: nothing of an answer arrived (a call on a reused
    connection may then be retried on a new one)."""

    def __init__(self, reason: str, *, before_answer: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.before_answer = before_answer


def status_details(
    code: grpc.StatusCode, message: str, field: str, reason: str
) -> tuple[tuple[str, bytes], ...]:
    """google.rpc.Status with a BadRequest field violation, as gRPC's rich
    error trailer, so clients can read the field without parsing text."""
    bad_request = error_details_pb2.BadRequest(
        field_violations=[
            error_details_pb2.BadRequest.FieldViolation(field=field, description=reason)
        ]
    )
    status = status_pb2.Status(code=getattr(code_pb2, code.name), message=message)
    status.details.add().Pack(bad_request)
    return (("grpc-status-details-bin", status.SerializeToString()),)
