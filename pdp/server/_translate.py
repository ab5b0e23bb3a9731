"""Wire <-> engine translation, with request validation. Nothing here decides
policy: the engine does."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import grpc
from google.protobuf import empty_pb2
from google.protobuf import message as pb_message
from google.protobuf.message_factory import GetMessageClass
from google.protobuf.unknown_fields import UnknownFieldSet

from pdp.engine import (
    MAX_COST_USD,
    AgentIdError,
    AgentInfo,
    Approval,
    ApprovalState,
    AuthorizeResult,
    BudgetState,
    ContextItem,
    ContextKind,
    Decision,
    DecisionKind,
    DenialReason,
    EnforceInput,
    FieldError,
    Mode,
    Severity,
    Violation,
    canonical_agent_id,
)
from pdp.state import StateStatus
from pdp.v1 import policy_decision_service_pb2 as pb

from ._errors import RequestError

__all__ = [
    "DECISION_VALUES",
    "MODE_VALUES",
    "SEVERITY_VALUES",
    "Limits",
    "SnapshotView",
    "action_name",
    "agent_ref",
    "agent_state",
    "approval_id_of",
    "authorize_response",
    "await_approval_response",
    "enforce_input",
    "enforce_response",
    "parse_request",
    "require_id",
    "trace_input",
    "trace_response",
    "usage_amount",
    "wait_seconds",
]

_DECISIONS = {
    DecisionKind.ALLOW: pb.DECISION_ALLOW,
    DecisionKind.ALLOW_WITH_WARNINGS: pb.DECISION_ALLOW_WITH_WARNINGS,
    DecisionKind.BLOCK: pb.DECISION_BLOCK,
    DecisionKind.PENDING_APPROVAL: pb.DECISION_PENDING_APPROVAL,
    DecisionKind.AGENT_PAUSED: pb.DECISION_AGENT_PAUSED,
}
_MODES = {mode: pb.EnforcementMode.Value(f"ENFORCEMENT_MODE_{mode.name}") for mode in Mode}
_SEVERITIES = {sev: pb.Severity.Value(f"SEVERITY_{sev.name}") for sev in Severity}
_DENIALS = {d: pb.AuthorizeDenial.Value(f"AUTHORIZE_DENIAL_{d.name}") for d in DenialReason}
_ACTIONS = {
    number: name.removeprefix("ACTION_").lower()
    for name, number in pb.Action.items()
    if number != pb.ACTION_UNSPECIFIED
}
# The wire's enum numbers of the engine's values, for an in-process caller
# that reads decisions without the wire message.
DECISION_VALUES = _DECISIONS
MODE_VALUES = _MODES
SEVERITY_VALUES = _SEVERITIES
MAX_ID_CHARS = 256
_M = TypeVar("_M", bound=pb_message.Message)
MAX_METADATA_ENTRIES = 64
MAX_METADATA_VALUE_CHARS = 4096
MAX_CONTEXT_ITEMS = 64
MAX_CONTEXT_SOURCE_CHARS = 2048
_CONTEXT_KINDS = {pb.ContextKind.Value(f"CONTEXT_KIND_{kind.name}"): kind for kind in ContextKind}


@dataclass(frozen=True, slots=True)
class Limits:
    max_input_bytes: int = 1024 * 1024
    # Requests in one EnforceBatch; the whole batch is also bounded by the
    # server's message size limit.
    max_batch: int = 1000


def parse_request(cls: type[_M], data: bytes) -> _M:
    """Parses a request; invalid UTF-8 in a string field is named."""
    try:
        return cls.FromString(data)
    except pb_message.DecodeError as exc:
        raise RequestError(_bad_utf8_field(cls, data) or "", f"malformed request: {exc}") from None


def _bad_utf8_field(cls: type[pb_message.Message], data: bytes) -> str | None:
    # Re-read the top-level fields as unknown fields to find which string
    # field holds invalid UTF-8 (only on this error path); a message field
    # (a context item) is read the same way, one level down.
    try:
        fields = UnknownFieldSet(empty_pb2.Empty.FromString(data))
    except Exception:
        return None
    descriptors = {f.number: f for f in cls.DESCRIPTOR.fields}
    seen: dict[int, int] = {}
    for i in range(len(fields)):
        f = fields[i]
        index = seen[f.field_number] = seen.get(f.field_number, -1) + 1
        if not isinstance(f.data, bytes | bytearray):
            continue
        descriptor = descriptors.get(f.field_number)
        name = descriptor.name if descriptor else str(f.field_number)
        message_type = descriptor.message_type if descriptor else None
        if message_type is not None:
            inner = _bad_utf8_field(GetMessageClass(message_type), bytes(f.data))  # type: ignore[arg-type]
            if inner is not None:
                repeated = descriptor is not None and descriptor.is_repeated
                return f"{name}[{index}].{inner}" if repeated else f"{name}.{inner}"
            continue
        try:
            bytes(f.data).decode("utf-8")
        except UnicodeDecodeError:
            return name
    return None


def agent_ref(value: str, field: str) -> str:
    """An agent id of a request in its canonical form (the engine's
    ``canonical_agent_id``); a refused id is INVALID_ARGUMENT naming
    ``field`` and why."""
    try:
        return canonical_agent_id(value)
    except AgentIdError as exc:
        raise RequestError(field, exc.reason) from None


def require_id(value: str, field: str) -> str:
    if not value.strip():
        raise RequestError(field, "required")
    if len(value) > MAX_ID_CHARS:
        raise RequestError(field, f"longer than {MAX_ID_CHARS} characters")
    return value


def _check_text_size(text: str, field: str, max_bytes: int) -> None:
    # A UTF-8 character is at most 4 bytes: encode only when it could matter.
    if len(text) * 4 > max_bytes and (len(text) > max_bytes or len(text.encode()) > max_bytes):
        raise RequestError(
            field,
            f"larger than the limit of {max_bytes} bytes",
            grpc.StatusCode.RESOURCE_EXHAUSTED,
        )


def _amount(value: float, field: str) -> float:
    if not math.isfinite(value):
        raise RequestError(field, "must be a finite number")
    if value < 0:
        raise RequestError(field, "must not be negative")
    if value > MAX_COST_USD:
        raise RequestError(field, f"must be at most {MAX_COST_USD:,.0f} (USD), got {value:g}")
    return value


def usage_amount(value: float) -> float:
    return _amount(value, "cost_usd")


def _short(value: str, field: str, limit: int = MAX_ID_CHARS) -> str:
    if len(value) > limit:
        raise RequestError(field, f"longer than {limit} characters")
    return value


def enforce_input(msg: pb.EnforceRequest, limits: Limits) -> EnforceInput:
    """The engine's input for a valid request. Checks, in this order (the
    first problem is the one reported): agent_id, estimated_cost_usd,
    metadata, input, output, model, tool, request_id, context.

    Every request passes here, so a valid request costs one pass over the
    fields, each read once; the checking helpers run only to report a problem."""
    agent_id = agent_ref(msg.agent_id, "agent_id")
    estimate: float | None = None
    if msg.HasField("estimated_cost_usd"):
        estimate = msg.estimated_cost_usd
        if not 0.0 <= estimate <= MAX_COST_USD:  # also NaN
            _amount(estimate, "estimated_cost_usd")
    metadata: dict[str, str] = {}
    if msg.metadata:
        metadata = _metadata(msg)
    max_bytes = limits.max_input_bytes
    text_in: str | None = None
    if msg.HasField("input"):
        text_in = msg.input
        _check_text_size(text_in, "input", max_bytes)
    text_out: str | None = None
    if msg.HasField("output"):
        text_out = msg.output
        _check_text_size(text_out, "output", max_bytes)
    model, tool, request_id = msg.model, msg.tool, msg.request_id
    if len(model) > MAX_ID_CHARS or len(tool) > MAX_ID_CHARS or len(request_id) > MAX_ID_CHARS:
        _short(model, "model")
        _short(tool, "tool")
        _short(request_id, "request_id")
    return EnforceInput(
        agent_id=agent_id,
        input=text_in,
        output=text_out,
        estimated_cost_usd=estimate,
        model=model,
        tool=tool,
        metadata=metadata,
        request_id=request_id,
        context=_context(msg, max_bytes) if msg.context else (),
    )


def trace_input(msg: pb.SubmitTraceRequest, limits: Limits) -> EnforceInput:
    """The engine's input for a trace: its actual cost stands for the
    estimate. Checks agent_id, cost_usd, request_id, metadata, input,
    output, model, tool, context (the first problem is reported)."""
    agent_id = require_id(msg.agent_id, "agent_id")
    cost = _amount(msg.cost_usd, "cost_usd")
    request_id = require_id(msg.request_id, "request_id")
    metadata = _metadata(msg) if msg.metadata else {}
    max_bytes = limits.max_input_bytes
    texts: dict[str, str | None] = {"input": None, "output": None}
    for field in texts:
        if msg.HasField(field):
            text = getattr(msg, field)
            _check_text_size(text, field, max_bytes)
            texts[field] = text
    return EnforceInput(
        agent_id=agent_id,
        input=texts["input"],
        output=texts["output"],
        estimated_cost_usd=cost,
        model=_short(msg.model, "model"),
        tool=_short(msg.tool, "tool"),
        metadata=metadata,
        request_id=request_id,
        context=_context(msg, max_bytes) if msg.context else (),
    )


def trace_response(
    trace_id: str, violations: Iterable[Violation], anomaly: bool
) -> pb.SubmitTraceResponse:
    resp = pb.SubmitTraceResponse(trace_id=trace_id, anomaly=anomaly)
    for v in violations:
        resp.violations.add(
            policy_id=v.policy_id,
            policy_name=v.policy_name,
            policy_type=v.policy_type,
            severity=_SEVERITIES[v.severity],
            message=v.message,
            enforcement_mode=_MODES[v.mode],
        )
    return resp


def _context(
    msg: pb.EnforceRequest | pb.SubmitTraceRequest, max_bytes: int
) -> tuple[ContextItem, ...]:
    """The request's context items: at most MAX_CONTEXT_ITEMS, each content
    within the input size limit and all of them within four times it."""
    items = msg.context
    if len(items) > MAX_CONTEXT_ITEMS:
        raise RequestError(
            "context",
            f"more than {MAX_CONTEXT_ITEMS} items",
            grpc.StatusCode.RESOURCE_EXHAUSTED,
        )
    out: list[ContextItem] = []
    total = 0
    for index, item in enumerate(items):
        kind = _CONTEXT_KINDS.get(item.kind)
        if kind is None:
            raise RequestError(
                f"context[{index}].kind",
                f"unknown value {item.kind} (expected one of {_CONTEXT_KIND_NAMES})",
            )
        _short(item.source, f"context[{index}].source", MAX_CONTEXT_SOURCE_CHARS)
        content = item.content
        _check_text_size(content, f"context[{index}].content", max_bytes)
        total += len(content) if content.isascii() else len(content.encode())
        if total > 4 * max_bytes:
            raise RequestError(
                "context",
                f"contents together larger than the limit of {4 * max_bytes} bytes",
                grpc.StatusCode.RESOURCE_EXHAUSTED,
            )
        out.append(ContextItem(content, kind, item.source))
    return tuple(out)


def _metadata(msg: pb.EnforceRequest | pb.SubmitTraceRequest) -> dict[str, str]:
    metadata = msg.metadata
    if len(metadata) > MAX_METADATA_ENTRIES:
        raise RequestError("metadata", f"more than {MAX_METADATA_ENTRIES} entries")
    for key, value in metadata.items():
        _short(key, "metadata")
        _short(value, f"metadata[{key!r}]", MAX_METADATA_VALUE_CHARS)
    return dict(metadata)


def _enum_names(numbers: Iterable[int], enum: Any) -> str:
    """The values a request may give, as proto3 JSON (grpcurl) writes them:
    the value's full name, or its number."""
    return ", ".join(f"{enum.Name(n)} ({n})" for n in sorted(numbers))


_ACTION_NAMES = _enum_names(_ACTIONS, pb.Action)
_CONTEXT_KIND_NAMES = _enum_names(_CONTEXT_KINDS, pb.ContextKind)


def action_name(value: int) -> str:
    if value == pb.ACTION_UNSPECIFIED:
        raise RequestError("action", f"required: one of {_ACTION_NAMES}")
    name = _ACTIONS.get(value)
    if name is None:
        raise RequestError("action", f"unknown value {value} (expected one of {_ACTION_NAMES})")
    return name


def enforce_response(
    decision: Decision,
    decision_id: str,
    approval_id: str,
    request_id: str = "",
    approval_expires_at: datetime | None = None,
) -> pb.EnforceResponse:
    resp = pb.EnforceResponse(
        decision=_DECISIONS[decision.kind],
        decision_id=decision_id,
        approval_id=approval_id,
        snapshot_revision=decision.snapshot_revision,
        request_id=request_id,
    )
    if approval_expires_at is not None:
        resp.approval_expires_at.FromDatetime(approval_expires_at)
    if decision.kind is DecisionKind.AGENT_PAUSED:
        resp.paused_reason = decision.agent.pause_reason
    for v in decision.violations:
        resp.violations.add(
            policy_id=v.policy_id,
            policy_name=v.policy_name,
            policy_type=v.policy_type,
            severity=_SEVERITIES[v.severity],
            message=v.message,
            enforcement_mode=_MODES[v.mode],
            retry_after_ms=v.retry_after_ms,
        )
    if decision.masked_input is not None:
        resp.masked_input = decision.masked_input
    if decision.masked_output is not None:
        resp.masked_output = decision.masked_output
    for f in decision.pii_findings:
        resp.pii_findings.add(field=f.field, pii_type=f.pii_type, start=f.start, end=f.end)
    return resp


def approval_id_of(msg: pb.EnforceRequest) -> str:
    """The request's approval id ("" for none), checked for length."""
    return _short(msg.approval_id, "approval_id")


def wait_seconds(msg: pb.AwaitApprovalRequest) -> float:
    """How long an AwaitApproval may wait (0 when not given: answer now)."""
    if not msg.HasField("timeout"):
        return 0.0
    seconds = msg.timeout.seconds + msg.timeout.nanos / 1e9
    if seconds < 0:
        raise RequestError("timeout", "must not be negative")
    return seconds


_APPROVAL_STATES = {
    ApprovalState.PENDING: pb.APPROVAL_STATE_PENDING,
    ApprovalState.APPROVED: pb.APPROVAL_STATE_APPROVED,
    ApprovalState.DENIED: pb.APPROVAL_STATE_DENIED,
    ApprovalState.EXPIRED: pb.APPROVAL_STATE_EXPIRED,
}


def await_approval_response(approval: Approval, now: datetime) -> pb.AwaitApprovalResponse:
    state = approval.state_at(now)
    resp = pb.AwaitApprovalResponse(
        state=_APPROVAL_STATES[state], reviewer=approval.reviewer, comment=approval.comment
    )
    resp.expires_at.FromDatetime(approval.expires_at)
    decided_at = approval.decided_at
    if decided_at is None and state is ApprovalState.EXPIRED:
        decided_at = approval.expires_at
    if decided_at is not None:
        resp.decided_at.FromDatetime(decided_at)
    return resp


def authorize_response(result: AuthorizeResult, revision: int) -> pb.AuthorizeResponse:
    resp = pb.AuthorizeResponse(
        allowed=result.allowed, reason=result.reason, snapshot_revision=revision
    )
    if result.denial is not None:
        resp.denial = _DENIALS[result.denial]  # type: ignore[assignment]
    if result.grant_expires_at is not None:
        resp.grant_expires_at.FromDatetime(result.grant_expires_at)
    return resp


@dataclass(frozen=True, slots=True)
class SnapshotView:
    revision: int
    source: str
    activated_at: datetime | None
    staleness_seconds: float | None
    rejected_at: datetime | None
    rejection: tuple[FieldError, ...]
    rejected_revision: int | None = None
    rejected_source: str = ""


def agent_state(
    agent: AgentInfo,
    budgets: Iterable[BudgetState],
    snapshot: SnapshotView,
    backend: StateStatus | None = None,
) -> pb.AgentState:
    state = pb.AgentState(
        agent_id=agent.id,
        agent_name=agent.name,
        known=agent.known,
        paused=agent.paused,
        paused_reason=agent.pause_reason,
    )
    if agent.paused_since is not None:
        state.paused_since.FromDatetime(agent.paused_since)
    for b in budgets:
        budget = state.budgets.add(
            policy_id=b.policy_id,
            policy_name=b.policy_name,
            period=b.period,
            limit_usd=b.limit_usd,
            spent_usd=b.spent_usd,
        )
        budget.period_start.FromDatetime(b.period_start)
    snap = state.snapshot
    snap.revision = snapshot.revision
    snap.source = snapshot.source
    if snapshot.activated_at is not None:
        snap.activated_at.FromDatetime(snapshot.activated_at)
    if snapshot.staleness_seconds is not None:
        snap.staleness.FromNanoseconds(int(snapshot.staleness_seconds * 1e9))
    if snapshot.rejected_at is not None:
        snap.last_rejection.rejected_at.FromDatetime(snapshot.rejected_at)
        snap.last_rejection.source = snapshot.rejected_source
        if snapshot.rejected_revision is not None:
            snap.last_rejection.revision = snapshot.rejected_revision
        for e in snapshot.rejection:
            snap.last_rejection.errors.add(path=e.path, message=e.message)
    if backend is not None:
        state.state_backend.backend = backend.backend
        state.state_backend.healthy = backend.healthy
        state.state_backend.message = backend.message
    return state
