"""Errors the client raises.

Exception tree::

    PdpError                    base; ``.code`` is the gRPC status code, if any
    ├── PolicyBlockedError      a block-mode policy fired (``.violations``), or an
    │                           approval waited for was denied or expired
    │                           (``.approval``, ``.reviewer``, ``.comment``)
    ├── AgentPausedError        the agent is paused by the kill switch
    ├── CallerRefusedError      the sidecar requires a caller token and got none
    │                           (UNAUTHENTICATED), or one that cannot act as
    │                           the agent the call names (PERMISSION_DENIED)
    ├── SidecarUnavailableError the sidecar could not be reached or had no
    │   │                       snapshot yet (UNAVAILABLE)
    │   └── DeadlineExceededError  it did not answer within the deadline
    ├── UnimplementedError      the sidecar does not serve the call (an older
    │                           sidecar version: UNIMPLEMENTED)
    └── InvalidRequestError     the request was refused: by the client before
                                sending (``.code`` None), or by the sidecar:
                                malformed (INVALID_ARGUMENT), oversized
                                (RESOURCE_EXHAUSTED), or a usage report that
                                reuses a request id for other usage
                                (ALREADY_EXISTS); ``.field`` names the field,
                                as the sidecar's google.rpc.BadRequest
                                error detail gives it

Arguments the client can check itself (an empty agent id, a negative or
non-finite cost, an unknown action) raise ``InvalidRequestError`` before
anything is sent. It is also a ``ValueError``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

import grpc
from google.protobuf.message import DecodeError

from ._types import ApprovalResult, Violation
from ._v1 import rpc_status_pb2

__all__ = [
    "AgentPausedError",
    "CallerRefusedError",
    "DeadlineExceededError",
    "InvalidRequestError",
    "PdpError",
    "PolicyBlockedError",
    "SidecarUnavailableError",
    "UnimplementedError",
    "error_for_status",
    "trailing_metadata",
]


class PdpError(Exception):
    """Base of every error the client raises. ``code`` is the gRPC status code
    of the answer that caused it, None when the sidecar answered normally."""

    def __init__(self, message: str, *, code: grpc.StatusCode | None = None) -> None:
        super().__init__(message)
        self.code = code


class PolicyBlockedError(PdpError):
    """The decision was BLOCK: the call must not proceed.

    ``violations`` lists every policy that fired, strictest first (monitor and
    warn ones included); the message names the block-mode ones.

    When ``enforce_policy(..., wait_for_approval=S)`` ends with a denial or
    an expiry, ``approval`` is that approval (``state``, ``reviewer``,
    ``comment``) and ``violations`` those of the held call; ``reviewer`` and
    ``comment`` read it.
    """

    def __init__(
        self,
        violations: Sequence[Violation],
        *,
        decision_id: str = "",
        snapshot_revision: int = 0,
        approval: ApprovalResult | None = None,
    ) -> None:
        self.violations: list[Violation] = list(violations)
        self.decision_id = decision_id
        self.snapshot_revision = snapshot_revision
        self.approval = approval
        if approval is not None:
            by = f" by {approval.reviewer}" if approval.reviewer else ""
            why = f": {approval.comment}" if approval.comment else ""
            super().__init__(f"approval {approval.approval_id} {approval.state}{by}{why}")
            return
        blocking = [v for v in self.violations if v.enforcement_mode == "block"]
        names = ", ".join(v.policy_name for v in blocking or self.violations) or "unknown policy"
        super().__init__(f"blocked by policy: {names}")

    @property
    def reviewer(self) -> str:
        """Who denied the approval ("" when no reviewer decided)."""
        return "" if self.approval is None else self.approval.reviewer

    @property
    def comment(self) -> str:
        """The reviewer's comment ("" when none)."""
        return "" if self.approval is None else self.approval.comment


class AgentPausedError(PdpError):
    """The agent is paused by the kill switch; no policy ran."""

    def __init__(self, agent_id: str, reason: str, *, decision_id: str = "") -> None:
        self.agent_id = agent_id
        self.reason = reason
        self.decision_id = decision_id
        because = f": {reason}" if reason else ""
        super().__init__(f"agent {agent_id!r} is paused{because}")


class SidecarUnavailableError(PdpError):
    """No decision could be had: the sidecar was unreachable, had no active
    snapshot yet, or did not answer before the deadline. The client fails
    closed: nothing is allowed on this error unless ``fail_open`` says so."""

    def __init__(self, message: str, *, code: grpc.StatusCode, target: str) -> None:
        super().__init__(message, code=code)
        self.target = target


class DeadlineExceededError(SidecarUnavailableError):
    """The sidecar did not answer within the call's deadline (``timeout``
    seconds). A kind of ``SidecarUnavailableError``: it fails closed, or open,
    the same way."""

    def __init__(self, *, target: str, timeout: float) -> None:
        super().__init__(
            f"sidecar at {target} did not answer within {timeout:g} s",
            code=grpc.StatusCode.DEADLINE_EXCEEDED,
            target=target,
        )
        self.timeout = timeout


class UnimplementedError(PdpError):
    """The sidecar does not serve this call: it is older than the client.
    Upgrade the sidecar, or use calls it serves (``enforce_policy`` for
    ``enforce_batch``)."""


class InvalidRequestError(PdpError, ValueError):
    """The request was refused: by the client before sending (``code`` is
    None: an empty agent id, a negative cost...), or by the sidecar
    (malformed, oversized, or a request id reused for other usage). ``field``
    is the request field at fault (such as ``agent_id`` or
    ``metadata['env']``), None when the error is about no one field; retrying
    the same request cannot succeed."""

    def __init__(
        self, message: str, *, code: grpc.StatusCode | None = None, field: str | None
    ) -> None:
        super().__init__(message, code=code)
        self.field = field


class CallerRefusedError(PdpError):
    """The sidecar does not let this caller act as the agent the call
    names: no caller token was sent to a sidecar that requires one, or the
    token is another agent's, unknown, or revoked. Retrying cannot help;
    ``fail_open`` never applies."""


Metadata = Iterable[tuple[str, str | bytes]]

# gRPC's rich error model: a google.rpc.Status in this trailer, whose details
# hold a google.rpc.BadRequest naming the field.
_STATUS_DETAILS_KEY = "grpc-status-details-bin"
_BAD_REQUEST_TYPE = "google.rpc.BadRequest"
# Only when a sidecar sends no such detail is the field read from the message:
# "agent_id: required", "metadata['env']: too long": a field path, then ": ".
_FIELD_PREFIX = re.compile(r"^\s*([A-Za-z_]\w*(?:\.[A-Za-z_]\w*|\[[^\]]*\])*)\s*:\s")

_UNAVAILABLE = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})
_REFUSED = frozenset({grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED})
_INVALID = frozenset(
    {
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.ALREADY_EXISTS,
    }
)


def trailing_metadata(error: grpc.RpcError) -> Metadata:
    """The trailing metadata of a failed call (sync or asyncio), if any."""
    read = getattr(error, "trailing_metadata", None)
    metadata = read() if callable(read) else None
    return () if metadata is None else metadata


def _bad_request(metadata: Metadata) -> rpc_status_pb2.BadRequest | None:
    """The google.rpc.BadRequest in the status details trailer; None when
    there is none or it cannot be decoded."""
    for key, value in metadata:
        if key != _STATUS_DETAILS_KEY or not isinstance(value, bytes):
            continue
        try:
            status = rpc_status_pb2.Status.FromString(value)
            for detail in status.details:
                if detail.type_url.rpartition("/")[2] == _BAD_REQUEST_TYPE:
                    return rpc_status_pb2.BadRequest.FromString(detail.value)
        except DecodeError:
            return None
    return None


def _field(details: str, metadata: Metadata) -> str | None:
    bad_request = _bad_request(metadata)
    if bad_request is not None:
        violations = bad_request.field_violations
        return (violations[0].field or None) if violations else None
    match = _FIELD_PREFIX.match(details)
    return match.group(1) if match else None


def error_for_status(
    code: grpc.StatusCode,
    details: str | None,
    *,
    target: str,
    timeout: float,
    metadata: Metadata = (),
) -> PdpError:
    """The error to raise for a call that ended with a non-OK gRPC status;
    ``metadata`` is the call's trailing metadata."""
    details = details or ""
    if code is grpc.StatusCode.DEADLINE_EXCEEDED:
        return DeadlineExceededError(target=target, timeout=timeout)
    if code in _UNAVAILABLE:
        message = f"sidecar at {target} is unavailable: {details or code.name}"
        return SidecarUnavailableError(message, code=code, target=target)
    if code in _REFUSED:
        return CallerRefusedError(details or code.name, code=code)
    if code in _INVALID:
        field = _field(details, metadata)
        return InvalidRequestError(details or code.name, code=code, field=field)
    message = f"sidecar answered {code.name}" + (f": {details}" if details else "")
    if code is grpc.StatusCode.UNIMPLEMENTED:
        return UnimplementedError(message, code=code)
    return PdpError(message, code=code)
