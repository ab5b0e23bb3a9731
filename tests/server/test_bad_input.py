"""Bad requests get INVALID_ARGUMENT or RESOURCE_EXHAUSTED naming the field;
the server keeps serving and nothing recorded is lost."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2

from pdp.v1 import policy_decision_service_pb2 as pb
from tests.conftest import RunningSidecar, StartSidecar, example_document

INVALID = grpc.StatusCode.INVALID_ARGUMENT


def field_of(err: grpc.aio.AioRpcError) -> str:
    """The field named by the BadRequest detail of a rich gRPC error."""
    # aio metadata yields plain (key, value) pairs.
    pairs: list[tuple[str, bytes]] = list(err.trailing_metadata() or ())  # type: ignore[arg-type]
    status = status_pb2.Status.FromString(dict(pairs)["grpc-status-details-bin"])
    bad = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(bad)
    field: str = bad.field_violations[0].field
    return field


async def call_error(sidecar: RunningSidecar, method: str, request: Any) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await getattr(sidecar.stub, method)(request)
    return err.value


@pytest.mark.parametrize(
    ("method", "request_", "field", "code"),
    [
        ("Enforce", pb.EnforceRequest(input="hi"), "agent_id", INVALID),
        ("Enforce", pb.EnforceRequest(agent_id="   "), "agent_id", INVALID),
        ("Enforce", pb.EnforceRequest(agent_id="a" * 300), "agent_id", INVALID),
        (
            "Enforce",
            pb.EnforceRequest(agent_id="a", estimated_cost_usd=float("nan")),
            "estimated_cost_usd",
            INVALID,
        ),
        (
            "Enforce",
            pb.EnforceRequest(agent_id="a", estimated_cost_usd=float("inf")),
            "estimated_cost_usd",
            INVALID,
        ),
        (
            "Enforce",
            pb.EnforceRequest(agent_id="a", estimated_cost_usd=-0.01),
            "estimated_cost_usd",
            INVALID,
        ),
        (
            "Enforce",
            pb.EnforceRequest(agent_id="a", metadata={f"k{i}": "v" for i in range(65)}),
            "metadata",
            INVALID,
        ),
        ("Enforce", pb.EnforceRequest(agent_id="a", tool="t" * 257), "tool", INVALID),
        (
            "Authorize",
            pb.AuthorizeRequest(target_agent_id="b", action=pb.ACTION_READ),
            "source_agent_id",
            INVALID,
        ),
        (
            "Authorize",
            pb.AuthorizeRequest(source_agent_id="a", action=pb.ACTION_READ),
            "target_agent_id",
            INVALID,
        ),
        (
            "Authorize",
            pb.AuthorizeRequest(source_agent_id="a", target_agent_id="b"),
            "action",
            INVALID,
        ),
        (
            "Authorize",
            pb.AuthorizeRequest(source_agent_id="a", target_agent_id="b", action=99),  # type: ignore[arg-type]
            "action",
            INVALID,
        ),
        ("AgentStatus", pb.AgentStatusRequest(), "agent_id", INVALID),
        ("ReportUsage", pb.ReportUsageRequest(cost_usd=1, request_id="r"), "agent_id", INVALID),
        ("ReportUsage", pb.ReportUsageRequest(agent_id="a", cost_usd=1), "request_id", INVALID),
        (
            "ReportUsage",
            pb.ReportUsageRequest(agent_id="a", cost_usd=float("nan"), request_id="r"),
            "cost_usd",
            INVALID,
        ),
        (
            "ReportUsage",
            pb.ReportUsageRequest(agent_id="a", cost_usd=float("-inf"), request_id="r"),
            "cost_usd",
            INVALID,
        ),
        (
            "ReportUsage",
            pb.ReportUsageRequest(agent_id="a", cost_usd=-1, request_id="r"),
            "cost_usd",
            INVALID,
        ),
    ],
)
async def test_bad_field_is_named(
    example_sidecar: RunningSidecar, method: str, request_: Any, field: str, code: grpc.StatusCode
) -> None:
    err = await call_error(example_sidecar, method, request_)
    assert err.code() == code
    assert field_of(err) == field
    assert (err.details() or "").startswith(field)
    # Still serving.
    ok = await example_sidecar.stub.Enforce(pb.EnforceRequest(agent_id="my-chatbot", input="hi"))
    assert ok.decision == pb.DECISION_ALLOW


async def test_oversized_input_and_output(start_sidecar: StartSidecar) -> None:
    sidecar = await start_sidecar(example_document(), max_input_bytes=1000)
    for field in ("input", "output"):
        request = pb.EnforceRequest(agent_id="a")
        setattr(request, field, "x" * 1001)
        err = await call_error(sidecar, "Enforce", request)
        assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert field_of(err) == field
    # Multi-byte characters count in UTF-8 bytes: 334 x 3 bytes > 1000.
    err = await call_error(sidecar, "Enforce", pb.EnforceRequest(agent_id="a", input="€" * 334))
    assert field_of(err) == "input"
    ok = await sidecar.stub.Enforce(pb.EnforceRequest(agent_id="my-chatbot", input="€" * 333))
    assert ok.decision == pb.DECISION_ALLOW


async def test_default_limit_is_one_mebibyte(example_sidecar: RunningSidecar) -> None:
    limit = 1024 * 1024
    ok = await example_sidecar.stub.Enforce(
        pb.EnforceRequest(agent_id="my-chatbot", input="a " * (limit // 2))
    )
    assert ok.decision == pb.DECISION_ALLOW
    err = await call_error(
        example_sidecar, "Enforce", pb.EnforceRequest(agent_id="a", input="a" * (limit + 1))
    )
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    # Far past the limit, gRPC refuses the message before it is parsed.
    err = await call_error(
        example_sidecar, "Enforce", pb.EnforceRequest(agent_id="a", input="a" * (5 * limit))
    )
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


async def test_invalid_utf8_is_named(example_sidecar: RunningSidecar) -> None:
    raw = example_sidecar.channel.unary_unary(
        "/pdp.v1.PolicyDecisionService/Enforce",
        request_serializer=None,
        response_deserializer=pb.EnforceResponse.FromString,
    )
    agent = pb.EnforceRequest(agent_id="my-chatbot").SerializeToString()
    bad_input = b"\x12\x02\xff\xfe"  # field 2 (input), 2 bytes, not UTF-8
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await raw(agent + bad_input)
    assert err.value.code() == INVALID
    assert field_of(err.value) == "input"
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await raw(b"\xff\xff\xff")  # not a protobuf message at all
    assert err.value.code() == INVALID


async def test_bad_usage_reports_lose_nothing(example_sidecar: RunningSidecar) -> None:
    stub = example_sidecar.stub
    await stub.ReportUsage(
        pb.ReportUsageRequest(agent_id="my-chatbot", cost_usd=3, request_id="ok")
    )
    for bad in (float("nan"), float("inf"), -5.0):
        with pytest.raises(grpc.aio.AioRpcError):
            await stub.ReportUsage(
                pb.ReportUsageRequest(agent_id="my-chatbot", cost_usd=bad, request_id="bad")
            )
    with pytest.raises(grpc.aio.AioRpcError):
        await stub.ReportUsage(
            pb.ReportUsageRequest(agent_id="my-chatbot", cost_usd=7, request_id="ok")
        )
    status = await stub.AgentStatus(pb.AgentStatusRequest(agent_id="my-chatbot"))
    daily = next(b for b in status.state.budgets if b.period == "daily")
    assert daily.spent_usd == pytest.approx(3.0)


def _item(content: str = "fine", **fields: Any) -> pb.ContextItem:
    return pb.ContextItem(content=content, **fields)


@pytest.mark.parametrize(
    ("context", "field", "code"),
    [
        ([_item()] * 65, "context", grpc.StatusCode.RESOURCE_EXHAUSTED),
        ([_item(), _item("x" * 1001)], "context[1].content", grpc.StatusCode.RESOURCE_EXHAUSTED),
        ([_item("€" * 334)], "context[0].content", grpc.StatusCode.RESOURCE_EXHAUSTED),
        ([_item("y" * 900)] * 5, "context", grpc.StatusCode.RESOURCE_EXHAUSTED),
        ([_item(kind=99)], "context[0].kind", INVALID),
        ([_item(), _item(source="s" * 2049)], "context[1].source", INVALID),
    ],
    ids=["too many", "one too large", "utf-8 bytes count", "all too large", "kind", "source"],
)
async def test_context_limits_name_the_item(
    start_sidecar: StartSidecar, context: list[pb.ContextItem], field: str, code: grpc.StatusCode
) -> None:
    sidecar = await start_sidecar(example_document(), max_input_bytes=1000)
    request = pb.EnforceRequest(agent_id="my-chatbot", input="hi", context=context)
    err = await call_error(sidecar, "Enforce", request)
    assert err.code() == code
    assert field_of(err) == field
    # Within the limits: 64 items of 800 bytes (4 x 1000 bytes in all) pass.
    ok = await sidecar.stub.Enforce(
        pb.EnforceRequest(agent_id="my-chatbot", input="hi", context=[_item("z " * 31)] * 64)
    )
    assert ok.decision == pb.DECISION_ALLOW


async def test_invalid_utf8_in_a_context_item_is_named(example_sidecar: RunningSidecar) -> None:
    raw = example_sidecar.channel.unary_unary(
        "/pdp.v1.PolicyDecisionService/Enforce",
        request_serializer=None,
        response_deserializer=pb.EnforceResponse.FromString,
    )
    request = pb.EnforceRequest(agent_id="my-chatbot", context=[_item(), _item()])
    bad_item = b"\x1a\x02\xff\xfe"  # ContextItem field 3 (content), not UTF-8
    data = request.SerializeToString() + b"\x52" + bytes([len(bad_item)]) + bad_item
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await raw(data)
    assert err.value.code() == INVALID
    assert field_of(err.value) == "context[2].content"
