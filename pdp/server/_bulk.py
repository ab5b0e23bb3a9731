"""EnforceBatch and EnforceStream items: each parsed and checked as an
Enforce request is, its errors named by its place (``requests[2].input``;
``request.input`` for a stream's, packed or not), and each answer wrapped for the stream, a
packed message's answers in one message. Deciding is the servicer's."""

from __future__ import annotations

import grpc
from google.protobuf import empty_pb2
from google.protobuf.unknown_fields import UnknownFieldSet

from pdp.engine import EnforceInput
from pdp.v1 import policy_decision_service_pb2 as pb

from ._errors import RequestError
from ._translate import Limits, enforce_input, parse_request

__all__ = ["batch_items", "stream_answer", "stream_answers", "stream_error", "stream_items"]

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


Parsed = Item | RequestError


def stream_items(data: bytes, limits: Limits) -> tuple[bool, list[tuple[str, Parsed]]]:
    """A stream message's requests, each with its id and either the request
    or why it is refused (the stream goes on: the error is that request's
    answer), and whether the message packed them in ``items``."""
    try:
        msg = parse_request(pb.EnforceStreamRequest, data)
    except RequestError as exc:
        packed = _packed_items(data)
        if packed is None:
            return False, [("", exc)]
        return True, [_raw_item(raw, limits) for raw in packed]
    items = msg.items
    if not items:
        return False, [(msg.id, _checked(msg, limits))]
    if msg.id or msg.HasField("request"):
        refused = RequestError("request", "set either id and request, or items")
        return True, [(item.id, refused) for item in items]
    if len(items) > limits.max_batch:
        too_many = RequestError(
            "items",
            f"{len(items)} items; a message holds at most {limits.max_batch}",
            grpc.StatusCode.RESOURCE_EXHAUSTED,
        )
        return True, [(item.id, too_many) for item in items]
    return True, [(item.id, _checked(item, limits)) for item in items]


def _checked(msg: pb.EnforceStreamRequest | pb.EnforceStreamItem, limits: Limits) -> Parsed:
    # A packed item's errors are named as a lone request's are
    # ("request.agent_id"): its answer, matched by id, is its own.
    if not msg.HasField("request"):
        return RequestError("request", "required")
    try:
        return msg.request, enforce_input(msg.request, limits)
    except RequestError as exc:
        return _within(exc, "request")


def _raw_fields(data: bytes, number: int) -> list[bytes]:
    # The length-delimited fields ``number`` of a message that does not
    # parse as its type, read without the type; none when it is not even a
    # protobuf message.
    try:
        fields = UnknownFieldSet(empty_pb2.Empty.FromString(data))
    except Exception:
        return []
    return [
        bytes(f.data)
        for f in (fields[i] for i in range(len(fields)))
        if f.field_number == number and isinstance(f.data, bytes | bytearray)
    ]


def _packed_items(data: bytes) -> list[bytes] | None:
    # Only on the error path (a message that does not parse): its items as
    # raw bytes, so that each good one is still decided; None when the
    # message packs none.
    return _raw_fields(data, pb.EnforceStreamRequest.ITEMS_FIELD_NUMBER) or None


def _raw_item(raw: bytes, limits: Limits) -> tuple[str, Parsed]:
    try:
        item = parse_request(pb.EnforceStreamItem, raw)
    except RequestError as exc:
        return _raw_id(raw), exc
    return item.id, _checked(item, limits)


def _raw_id(raw: bytes) -> str:
    # The id of an item that does not parse, when its id field is readable.
    ids = _raw_fields(raw, pb.EnforceStreamItem.ID_FIELD_NUMBER)
    return ids[0].decode("utf-8", "replace") if ids else ""


def _error(exc: RequestError) -> pb.RequestError:
    return pb.RequestError(code=exc.code.name, field=exc.field, message=str(exc))


def stream_answer(item_id: str, response: pb.EnforceResponse) -> bytes:
    return pb.EnforceStreamResponse(id=item_id, response=response).SerializeToString()


def stream_error(item_id: str, exc: RequestError) -> bytes:
    return pb.EnforceStreamResponse(id=item_id, error=_error(exc)).SerializeToString()


def stream_answers(answers: list[tuple[str, pb.EnforceResponse | RequestError]]) -> bytes:
    """One message answering a packed message's items, in their order."""
    packed = pb.EnforceStreamResponse()
    add = packed.answers.add
    for item_id, answer in answers:
        if isinstance(answer, RequestError):
            add(id=item_id, error=_error(answer))
        else:
            add(id=item_id, response=answer)
    return packed.SerializeToString()
