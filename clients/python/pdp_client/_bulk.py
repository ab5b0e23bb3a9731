"""Many decisions in one call (``enforce_batch``) or on one stream
(``enforce_stream``): the requests, their outcomes, and what a stream's
answer turns into. Shared by ``Client`` and ``AsyncClient``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any, TypedDict

import grpc

from . import _calls, _convert
from ._calls import Call
from ._errors import InvalidRequestError, PdpError, SidecarUnavailableError, error_for_status
from ._types import ContextItem, EnforceResult
from ._v1 import policy_decision_service_pb2 as pb

__all__ = [
    "BatchOutcome",
    "EnforceOptions",
    "EnforceRequest",
    "enforce_batch",
    "enforce_call",
    "enforce_request",
    "stream_result",
]

# The most requests one batch may hold (the sidecar's limit).
MAX_BATCH = 1000


@dataclass(frozen=True, slots=True)
class EnforceRequest:
    """One request of a batch or a stream: the arguments of
    ``enforce_policy``, as a value."""

    agent_id: str
    input: str | None = None
    output: str | None = None
    estimated_cost_usd: float | None = None
    model: str | None = None
    tool: str | None = None
    metadata: Mapping[str, str] | None = None
    request_id: str | None = None
    context: Sequence[ContextItem] | None = None
    approval_id: str | None = None

    def call(self) -> Call[EnforceResult]:
        return _calls.enforce(
            self.agent_id,
            self.input,
            output=self.output,
            estimated_cost_usd=self.estimated_cost_usd,
            model=self.model,
            tool=self.tool,
            metadata=self.metadata,
            request_id=self.request_id,
            context=self.context,
            approval_id=self.approval_id,
        )

    def with_approval(self, approval_id: str) -> EnforceRequest:
        """The same request, sent again once ``approval_id`` is approved."""
        return replace(self, approval_id=approval_id)


class EnforceOptions(TypedDict, total=False):
    """The keyword arguments of every ``enforce_policy`` that describe the
    request (``Client.enforce_policy`` documents them); the fields of
    ``EnforceRequest`` after ``agent_id`` and ``input``."""

    output: str | None
    estimated_cost_usd: float | None
    model: str | None
    tool: str | None
    metadata: Mapping[str, str] | None
    request_id: str | None
    context: Iterable[ContextItem] | None
    approval_id: str | None


_OPTION_NAMES = frozenset(f.name for f in fields(EnforceRequest)) - {"agent_id", "input"}


def enforce_request(agent_id: str, input: str | None, options: EnforceOptions) -> EnforceRequest:
    """The request an ``enforce_policy(agent_id, input, **options)`` call
    describes; ``context`` is read once here (it may be sent again)."""
    unknown = sorted(set(options) - _OPTION_NAMES)
    if unknown:
        raise TypeError(f"enforce_policy() got an unexpected keyword argument {unknown[0]!r}")
    given: dict[str, Any] = {**options}
    if (context := options.get("context")) is not None:
        given["context"] = list(context)
    return EnforceRequest(agent_id, input, **given)


def enforce_call(agent_id: str, input: str | None, options: EnforceOptions) -> Call[EnforceResult]:
    """``enforce_request(agent_id, input, options).call()`` for a request
    sent once (no approval to wait for): the same checks and the same call,
    without the request value in between."""
    if not _OPTION_NAMES.issuperset(options):
        return enforce_request(agent_id, input, options).call()  # raises the TypeError
    return _calls.enforce(
        agent_id,
        input,
        output=options.get("output"),
        estimated_cost_usd=options.get("estimated_cost_usd"),
        model=options.get("model"),
        tool=options.get("tool"),
        metadata=options.get("metadata"),
        request_id=options.get("request_id"),
        context=options.get("context"),
        approval_id=options.get("approval_id"),
    )


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    """One request's outcome: its ``result`` when the call may proceed (or
    waits for approval), else the ``error`` ``enforce_policy`` would have
    raised for it (``PolicyBlockedError``, ``AgentPausedError``...)."""

    result: EnforceResult | None = None
    error: PdpError | None = field(default=None)

    def unwrap(self) -> EnforceResult:
        """The result, or raises the error."""
        if self.error is not None:
            raise self.error
        assert self.result is not None
        return self.result


def _outcome(call: Call[EnforceResult], response: Any) -> BatchOutcome:
    try:
        return BatchOutcome(result=call.to_result(response))
    except PdpError as error:
        return BatchOutcome(error=error)


def _within(error: InvalidRequestError, prefix: str) -> InvalidRequestError:
    where = f"{prefix}.{error.field}" if error.field else prefix
    return InvalidRequestError(f"{prefix}: {error}", field=where)


def enforce_request_call(request: object, where: str) -> Call[EnforceResult]:
    """The Enforce call for one item; a refused item names its place."""
    if isinstance(request, Mapping):
        try:
            request = EnforceRequest(**request)
        except TypeError as exc:
            raise InvalidRequestError(f"{where}: {exc}", field=where) from None
    if not isinstance(request, EnforceRequest):
        raise InvalidRequestError(
            f"{where} must be an EnforceRequest or a mapping of its fields, "
            f"got {type(request).__name__}",
            field=where,
        )
    try:
        return request.call()
    except InvalidRequestError as error:
        raise _within(error, where) from None


def enforce_batch(
    requests: Iterable[EnforceRequest | Mapping[str, Any]],
) -> Call[list[BatchOutcome]]:
    if isinstance(requests, str | bytes | Mapping) or not isinstance(requests, Iterable):
        raise InvalidRequestError("requests must be a list of EnforceRequest", field="requests")
    calls = [enforce_request_call(r, f"requests[{i}]") for i, r in enumerate(requests)]
    if not calls:
        raise InvalidRequestError("requests: at least one request is required", field="requests")
    if len(calls) > MAX_BATCH:
        raise InvalidRequestError(
            f"requests: {len(calls)} requests; a batch holds at most {MAX_BATCH}",
            field="requests",
        )

    def outcomes(response: Any) -> list[BatchOutcome]:
        answers = response.responses
        if len(answers) != len(calls):
            raise PdpError(f"sidecar answered {len(answers)} decisions for {len(calls)} requests")
        return [_outcome(call, answer) for call, answer in zip(calls, answers, strict=True)]

    def fail_open(error: SidecarUnavailableError) -> list[BatchOutcome]:
        results = []
        for call in calls:
            assert call.fail_open_result is not None
            results.append(BatchOutcome(result=call.fail_open_result(error)))
        return results

    request = pb.EnforceBatchRequest(requests=[c.request for c in calls])
    return Call("EnforceBatch", request, outcomes, fail_open_result=fail_open)


def stream_result(
    call: Call[EnforceResult], answer: Any, *, target: str, timeout: float
) -> EnforceResult:
    """A stream's answer to ``call``: its result, or raises its error as
    ``enforce_policy`` would."""
    if answer.HasField("error"):
        error = answer.error
        code = getattr(grpc.StatusCode, error.code, grpc.StatusCode.UNKNOWN)
        raised = error_for_status(code, error.message, target=target, timeout=timeout)
        if isinstance(raised, InvalidRequestError):
            # Named as enforce_policy names it: "agent_id", not "request.agent_id".
            raised.field = error.field.removeprefix("request.") or raised.field
        raise raised
    return _convert.enforce_result(answer.response, call.request.agent_id)
