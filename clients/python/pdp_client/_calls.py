"""Everything about a call except sending it, shared by ``Client`` and
``AsyncClient``: argument checks, the request, and what the answer or the
failure turns into. The two clients differ only in how they send."""

from __future__ import annotations

import logging
import math
import os
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import grpc

from . import _convert
from ._agent_id import agent_id_problem, canonical_agent_id, plain_agent_id
from ._errors import (
    AgentPausedError,
    InvalidRequestError,
    PdpError,
    PolicyBlockedError,
    SidecarUnavailableError,
    error_for_status,
    trailing_metadata,
)
from ._types import (
    CONTEXT_KINDS,
    AgentStatusResult,
    ApprovalResult,
    ApprovalState,
    AuthorizeResult,
    ContextItem,
    Decision,
    EnforceResult,
    TraceResult,
    UsageResult,
)
from ._v1 import policy_decision_service_pb2 as pb

__all__ = [
    "CALLER_TOKEN_ENV",
    "CALLER_TOKEN_METADATA",
    "CHANNEL_OPTIONS",
    "DEFAULT_TIMEOUT",
    "MAX_APPROVAL_WAIT",
    "ApprovalWait",
    "Call",
    "Settings",
    "agent_status",
    "authorize",
    "await_approval",
    "enforce",
    "report_usage",
    "submit_trace",
    "watch_agent_status",
]

_log = logging.getLogger("pdp_client")

# The sidecar runs next to the agent, so a decision normally takes well under
# a millisecond; a second leaves room for a cold start without letting a
# wedged sidecar hold the agent for long.
DEFAULT_TIMEOUT = 1.0

CHANNEL_OPTIONS: list[tuple[str, Any]] = [
    # Ping only while calls are in flight, and rarely: servers refuse
    # clients that ping idle connections more often than every 5 minutes.
    ("grpc.keepalive_time_ms", 60_000),
    ("grpc.keepalive_timeout_ms", 20_000),
    ("grpc.keepalive_permit_without_calls", 0),
    # Reconnecting to a local sidecar is cheap; a short backoff means a
    # restarted sidecar is used again within about a second, since calls fail
    # at once (wait_for_ready=False) while the channel is backing off.
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1_000),
]

ResultT = TypeVar("ResultT")

# The agent's caller token, sent with every call to a sidecar that requires
# one (pdp serve --require-caller-token).
CALLER_TOKEN_METADATA = "x-pdp-caller-token"
CALLER_TOKEN_ENV = "PDP_CALLER_TOKEN"


def _positive_seconds(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number of seconds, got {value!r}")
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be finite and greater than 0, got {value!r}")
    return float(value)


def _caller_token(value: object) -> str | None:
    if value is None:
        value = os.environ.get(CALLER_TOKEN_ENV) or None
        if value is None:
            return None
    if not isinstance(value, str) or not value:
        raise ValueError(f"caller_token must be a non-empty string, got {type(value).__name__}")
    # gRPC metadata values are printable ASCII.
    if not (value.isascii() and value.isprintable()) or value != value.strip():
        raise ValueError("caller_token must be printable ASCII without surrounding white space")
    return value


def _read_file(path: object, name: str) -> bytes | None:
    if path is None:
        return None
    if not isinstance(path, str | os.PathLike):
        raise ValueError(f"{name} must be a file path, got {path!r}")
    with open(path, "rb") as file:
        return file.read()


@dataclass(frozen=True, slots=True)
class Settings:
    """How a client reaches its sidecar and what it does when it cannot.
    ``metadata`` goes with every call (the caller token); ``credentials``
    is None for a plain-text channel."""

    target: str
    timeout: float
    fail_open: bool
    metadata: tuple[tuple[str, str], ...] | None = None
    credentials: grpc.ChannelCredentials | None = None

    @classmethod
    def checked(
        cls,
        target: object,
        timeout: object,
        fail_open: object,
        *,
        caller_token: object = None,
        tls: object = False,
        ca_file: object = None,
        cert_file: object = None,
        key_file: object = None,
    ) -> Settings:
        if not isinstance(target, str) or not target.strip():
            raise ValueError(f"target must be 'host:port' or 'unix:/path', got {target!r}")
        token = _caller_token(caller_token)
        metadata = None if token is None else ((CALLER_TOKEN_METADATA, token),)
        if (cert_file is None) != (key_file is None):
            raise ValueError("cert_file and key_file go together (a client certificate)")
        credentials = None
        if tls or ca_file is not None or cert_file is not None:
            credentials = grpc.ssl_channel_credentials(
                root_certificates=_read_file(ca_file, "ca_file"),
                private_key=_read_file(key_file, "key_file"),
                certificate_chain=_read_file(cert_file, "cert_file"),
            )
        return cls(
            target, _positive_seconds(timeout, "timeout"), bool(fail_open), metadata, credentials
        )

    def deadline(self, timeout: float | None, holds: float = 0.0) -> float:
        """Seconds the call may take: the per-call ``timeout`` or the default,
        plus what the sidecar may hold it (``holds``, AwaitApproval)."""
        return holds + (self.timeout if timeout is None else _positive_seconds(timeout, "timeout"))

    def watch_deadline(self, timeout: object) -> float | None:
        """Seconds a watch may last: none unless the call gives ``timeout``."""
        return None if timeout is None else _positive_seconds(timeout, "timeout")


class Call(Generic[ResultT]):
    """One RPC ready to send. Made for every call and never changed once
    made: a class with slots, whose ``__init__`` costs a third of a frozen
    dataclass's (which sets each field through ``object.__setattr__``)."""

    __slots__ = ("fail_open_result", "holds", "method", "refine", "request", "to_result")

    def __init__(
        self,
        method: str,
        request: Any,
        to_result: Callable[[Any], ResultT],
        fail_open_result: Callable[[SidecarUnavailableError], ResultT] | None = None,
        holds: float = 0.0,
        refine: Callable[[PdpError], PdpError] | None = None,
    ) -> None:
        self.method = method  # attribute of the generated stub
        self.request = request
        self.to_result = to_result
        # The answer when the sidecar is unreachable and the client fails
        # open; None for calls that always fail closed.
        self.fail_open_result = fail_open_result
        # Seconds the sidecar may hold the call before it answers (AwaitApproval).
        self.holds = holds
        # Turns the error a status maps to into the call's own (a paused
        # agent's refused trace); None keeps it.
        self.refine = refine

    def __repr__(self) -> str:
        return f"Call({self.method!r}, {self.request!r})"

    def failed(self, error: grpc.RpcError, settings: Settings, timeout: float) -> ResultT:
        """Raises the client's error for a failed RPC, or returns the
        fail-open result. Call it from the ``except`` block that caught
        ``error``."""
        raised = error_for_status(
            error.code(),
            error.details(),
            target=settings.target,
            timeout=timeout,
            metadata=trailing_metadata(error),
        )
        if (
            settings.fail_open
            and self.fail_open_result is not None
            and isinstance(raised, SidecarUnavailableError)
        ):
            return self.fail_open_result(raised)
        if self.refine is not None:
            raised = self.refine(raised)
        raise raised from error


def _text(value: object, name: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidRequestError(f"{name} must be a non-empty string, got {value!r}", field=name)
    return value


def _agent(value: object, name: str) -> str:
    """An agent id in the canonical form the sidecar uses (``_agent_id``).
    A printable ASCII id (most are) is its own canonical form: one test."""
    if isinstance(value, str) and plain_agent_id(value):
        return value
    text = _text(value, name)
    problem = agent_id_problem(text)
    if problem:
        raise InvalidRequestError(f"{name} {text!r}: {problem}", field=name)
    return canonical_agent_id(text)


def _optional_text(value: object, name: str) -> str | None:
    return None if value is None else _given_text(value, name)


def _given_text(value: object, name: str) -> str:
    """The value of an optional text field that is not None."""
    if not isinstance(value, str):
        raise InvalidRequestError(
            f"{name} must be a string or None, got {type(value).__name__}", field=name
        )
    return value


def _amount(value: object, name: str) -> float:
    """A USD amount: a finite int or float, not negative."""
    if type(value) is float and 0.0 <= value < math.inf:  # the usual amount, in one test
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidRequestError(
            f"{name} must be a number of US dollars, got {value!r}", field=name
        )
    if not math.isfinite(value) or value < 0:
        raise InvalidRequestError(
            f"{name} must be finite and not negative, got {value!r}", field=name
        )
    return float(value)


def _metadata(value: object) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise InvalidRequestError(
            "metadata must be a mapping of strings to strings", field="metadata"
        )
    return dict(value)


def _context(value: object) -> list[pb.ContextItem]:
    if value is None:
        return []
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise InvalidRequestError("context must be a list of ContextItem", field="context")
    items: list[pb.ContextItem] = []
    for index, item in enumerate(value):
        if not isinstance(item, ContextItem):
            raise InvalidRequestError(
                f"context[{index}] must be a ContextItem, got {type(item).__name__}",
                field="context",
            )
        if not isinstance(item.content, str) or not isinstance(item.source, str):
            raise InvalidRequestError(
                f"context[{index}]: content and source must be strings", field="context"
            )
        if item.kind and item.kind not in CONTEXT_KINDS:
            kinds = ", ".join(CONTEXT_KINDS)
            raise InvalidRequestError(
                f"context[{index}].kind must be one of {kinds}, got {item.kind!r}",
                field="context",
            )
        kind = f"CONTEXT_KIND_{item.kind.upper()}" if item.kind else "CONTEXT_KIND_UNSPECIFIED"
        items.append(pb.ContextItem(kind=kind, source=item.source, content=item.content))
    return items


def enforce(
    agent_id: str,
    input: str | None,
    *,
    output: str | None,
    estimated_cost_usd: float | None,
    model: str | None,
    tool: str | None,
    metadata: Mapping[str, str] | None,
    request_id: str | None,
    context: Iterable[ContextItem] | None = None,
    approval_id: str | None = None,
) -> Call[EnforceResult]:
    agent_id = _agent(agent_id, "agent_id")
    # Only the fields given go to the constructor: each keyword, even an
    # empty one, costs it as much as the whole request otherwise does. Most
    # are None, tested before a check is called (this runs on every call).
    given: dict[str, Any] = {}
    if model is not None and (model := _given_text(model, "model")):
        given["model"] = model
    if tool is not None and (tool := _given_text(tool, "tool")):
        given["tool"] = tool
    if metadata is not None:
        given["metadata"] = _metadata(metadata)
    if request_id is not None and (request_id := _given_text(request_id, "request_id")):
        given["request_id"] = request_id
    if context is not None:
        given["context"] = _context(context)
    if approval_id is not None and (approval_id := _given_text(approval_id, "approval_id")):
        given["approval_id"] = approval_id
    request = (
        pb.EnforceRequest(agent_id=agent_id, **given)
        if given
        else pb.EnforceRequest(agent_id=agent_id)
    )
    # Optional fields: absent and empty are different requests.
    if input is not None:
        request.input = _given_text(input, "input")
    if output is not None:
        request.output = _given_text(output, "output")
    if estimated_cost_usd is not None:
        request.estimated_cost_usd = _amount(estimated_cost_usd, "estimated_cost_usd")

    def allow_unchecked(error: SidecarUnavailableError) -> EnforceResult:
        _log.warning("allowing agent %r without a policy decision (fail_open): %s", agent_id, error)
        return EnforceResult(decision=Decision.ALLOW, fail_open=True)

    return Call(
        "Enforce",
        request,
        lambda response: _convert.enforce_result(response, agent_id),
        fail_open_result=allow_unchecked,
    )


def authorize(source_agent_id: str, target_agent_id: str, action: str) -> Call[AuthorizeResult]:
    source_agent_id = _agent(source_agent_id, "source_agent_id")
    target_agent_id = _agent(target_agent_id, "target_agent_id")
    action_name = _convert.ACTIONS.get(action.lower()) if isinstance(action, str) else None
    if action_name is None:
        known = ", ".join(sorted(_convert.ACTIONS))
        raise InvalidRequestError(f"action must be one of {known}, got {action!r}", field="action")
    request = pb.AuthorizeRequest(
        source_agent_id=source_agent_id, target_agent_id=target_agent_id, action=action_name
    )
    return Call("Authorize", request, _convert.authorize_result)


def agent_status(agent_id: str) -> Call[AgentStatusResult]:
    request = pb.AgentStatusRequest(agent_id=_agent(agent_id, "agent_id"))
    return Call("AgentStatus", request, _convert.agent_status_result)


def watch_agent_status(agent_id: str) -> Call[AgentStatusResult]:
    """A WatchAgentStatus subscription; each answer is one ``to_result``."""
    request = pb.WatchAgentStatusRequest(agent_id=_agent(agent_id, "agent_id"))
    return Call("WatchAgentStatus", request, _convert.agent_status_result)


def report_usage(agent_id: str, cost_usd: float, request_id: str) -> Call[UsageResult]:
    request = pb.ReportUsageRequest(
        agent_id=_agent(agent_id, "agent_id"),
        cost_usd=_amount(cost_usd, "cost_usd"),
        request_id=_text(request_id, "request_id"),
    )
    return Call("ReportUsage", request, _convert.usage_result)


def submit_trace(
    agent_id: str,
    *,
    request_id: str | None,
    input: str | None,
    output: str | None,
    cost_usd: float,
    model: str | None,
    tool: str | None,
    metadata: Mapping[str, str] | None,
    context: Iterable[ContextItem] | None,
) -> Call[TraceResult]:
    _text(agent_id, "agent_id")
    request = pb.SubmitTraceRequest(
        agent_id=agent_id,
        cost_usd=_amount(cost_usd, "cost_usd"),
        model=_optional_text(model, "model") or "",
        tool=_optional_text(tool, "tool") or "",
        metadata=_metadata(metadata),
        # The call's own id makes a retried trace count once; without one
        # each submission is a new trace.
        request_id=uuid.uuid4().hex if request_id is None else _text(request_id, "request_id"),
        context=_context(context),
    )
    if (input_text := _optional_text(input, "input")) is not None:
        request.input = input_text
    if (output_text := _optional_text(output, "output")) is not None:
        request.output = output_text

    def paused(error: PdpError) -> PdpError:
        if error.code is grpc.StatusCode.FAILED_PRECONDITION:
            # "... agent 'x' is paused: <reason>; its traces are refused"
            reason = str(error).partition(" is paused: ")[2].rpartition("; ")[0]
            return AgentPausedError(agent_id, reason)
        return error

    return Call("SubmitTrace", request, _convert.trace_result, refine=paused)


# The longest wait one AwaitApproval asks for (the sidecar answers within a
# minute at most); waiting longer takes several calls.
MAX_APPROVAL_WAIT = 60.0
# An answer "still pending" sooner than this is not asked again at once.
_MIN_ROUND = 0.05


def await_approval(approval_id: str, wait: float) -> Call[ApprovalResult]:
    """One bounded wait: the sidecar answers once the approval is decided or
    expires, or after ``wait`` seconds (at most a minute) with it pending."""
    _text(approval_id, "approval_id")
    seconds = min(_positive_or_zero(wait, "wait"), MAX_APPROVAL_WAIT)
    request = pb.AwaitApprovalRequest(approval_id=approval_id)
    request.timeout.FromNanoseconds(int(seconds * 1e9))
    return Call(
        "AwaitApproval",
        request,
        lambda response: _convert.approval_result(response, approval_id),
        holds=seconds,
    )


def _positive_or_zero(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number of seconds, got {value!r}")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be finite and not negative, got {value!r}")
    return float(value)


class ApprovalWait:
    """What ``enforce_policy(..., wait_for_approval=S)`` does between its
    calls, shared by both clients: it waits on the held call's approval
    until ``seconds`` have passed, then the call is sent again with the
    approval id. A denial or an expiry raises PolicyBlockedError."""

    def __init__(self, seconds: object) -> None:
        self.until = time.monotonic() + _positive_seconds(seconds, "wait_for_approval")
        self._pause = 0.0

    def next_wait(self, result: EnforceResult) -> float | None:
        """Seconds to wait on ``result``'s approval; None when there is
        nothing (more) to wait for: return ``result``."""
        if result.decision is not Decision.PENDING_APPROVAL or not result.approval_id:
            return None
        remaining = self.until - time.monotonic()
        return None if remaining <= 0 else remaining

    def approved(self, result: EnforceResult, answer: ApprovalResult, took: float) -> bool:
        """True when approved (send again with the id); False while pending
        (sleep ``pause()`` then wait again); raises when denied or expired."""
        if answer.state is ApprovalState.APPROVED:
            return True
        if answer.state is ApprovalState.PENDING:
            self._pause = max(0.0, _MIN_ROUND - took)
            return False
        raise PolicyBlockedError(
            result.violations,
            decision_id=result.decision_id,
            snapshot_revision=result.snapshot_revision,
            approval=answer,
        )

    def pause(self) -> float:
        """Seconds to let pass before waiting again (a sidecar that answered
        "pending" at once is not asked in a busy loop)."""
        return self._pause
