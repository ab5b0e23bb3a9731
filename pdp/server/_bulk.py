"""EnforceBatch and EnforceStream items: each parsed and checked as an
Enforce request is, its errors named by its place (``requests[2].input``),
and each answer wrapped for the stream. Deciding is the servicer's."""

from __future__ import annotations

import grpc
from google.protobuf import empty_pb2
from google.protobuf.unknown_fields import UnknownFieldSet

from pdp.engine import EnforceInput
from pdp.v1 import policy_decision_service_pb2 as pb

from ._errors import RequestError
from ._translate import Limits, enforce_input, parse_request

__all__ = ["batch_items", "stream_answer", "stream_error", "stream_item"]

Item = tuple[pb.EnforceRequest, EnforceInput]


def _within(exc: RequestError, prefix: str) -> RequestError:
    field = f"{prefix}.{exc.field}" if exc.field else prefix
    return RequestError(field, exc.reason, exc.code)


def batch_items(data: bytes, limits: Limits) -> list[Item]:
    """Every request of a batch, checked before any is decided: one bad item
    refuses the whole batch, naming it."""
    try:
        batch = pb.EnforceBatchRequest.FromString(data)
    except Exception:
        raise _bad_batch(data) from None
    requests = batch.requests
    if not requests:
        raise RequestError("requests", "at least one request is required")
    if len(requests) > limits.max_batch:
        raise RequestError(
            "requests",
            f"{len(requests)} requests; a batch holds at most {limits.max_batch}",
            grpc.StatusCode.RESOURCE_EXHAUSTED,
        )
    items: list[Item] = []
    for i, msg in enumerate(requests):
        try:
            items.append((msg, enforce_input(msg, limits)))
        except RequestError as exc:
            raise _within(exc, f"requests[{i}]") from None
    return items


def _bad_batch(data: bytes) -> RequestError:
    # Only on the error path: find the item that does not parse, by reading
    # the batch's items as raw bytes.
    try:
        fields = UnknownFieldSet(empty_pb2.Empty.FromString(data))
    except Exception:
        return RequestError("", "malformed request")
    index = 0
    for i in range(len(fields)):
        raw = fields[i]
        if raw.field_number != pb.EnforceBatchRequest.REQUESTS_FIELD_NUMBER:
            continue
        if isinstance(raw.data, bytes | bytearray):
            try:
                parse_request(pb.EnforceRequest, bytes(raw.data))
            except RequestError as exc:
                return _within(exc, f"requests[{index}]")
        index += 1
    return RequestError("requests", "malformed request")


def stream_item(data: bytes, limits: Limits) -> tuple[str, Item | RequestError]:
    """A stream message's id and its request, or why it is refused (the
    stream goes on: the error is the answer to that message)."""
    try:
        msg = parse_request(pb.EnforceStreamRequest, data)
    except RequestError as exc:
        return "", exc
    if not msg.HasField("request"):
        return msg.id, RequestError("request", "required")
    try:
        return msg.id, (msg.request, enforce_input(msg.request, limits))
    except RequestError as exc:
        return msg.id, _within(exc, "request")


def stream_answer(item_id: str, response: pb.EnforceResponse) -> bytes:
    return pb.EnforceStreamResponse(id=item_id, response=response).SerializeToString()


def stream_error(item_id: str, exc: RequestError) -> bytes:
    error = pb.RequestError(code=exc.code.name, field=exc.field, message=str(exc))
    return pb.EnforceStreamResponse(id=item_id, error=error).SerializeToString()
