"""Client behaviour that needs no sidecar: argument checks, failing closed
when the sidecar is unreachable or hangs, fail-open, Unix socket targets.

Every test runs against both ``Client`` and ``AsyncClient`` (``connect``).
"""

from __future__ import annotations

import logging
import math
import sys
import time
from typing import Any

import grpc
import pytest
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from pdp_client import (
    AgentPausedError,
    AsyncClient,
    Client,
    ContextItem,
    DeadlineExceededError,
    Decision,
    InvalidRequestError,
    PdpError,
    PolicyBlockedError,
    SidecarUnavailableError,
)
from pdp_client._errors import error_for_status

from tests._process import run_python
from tests.client.conftest import Connect, SilentServer, call, resolve


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"target": ""}, "target"),
        ({"target": "   "}, "target"),
        ({"timeout": 0}, "timeout"),
        ({"timeout": -1.0}, "timeout"),
        ({"timeout": math.inf}, "timeout"),
        ({"timeout": math.nan}, "timeout"),
        ({"timeout": "1"}, "timeout"),
    ],
)
def test_constructor_rejects_bad_settings(options: dict[str, Any], named: str) -> None:
    arguments = {"target": "127.0.0.1:50051", **options}
    target = arguments.pop("target")
    for kind in (Client, AsyncClient):
        with pytest.raises(ValueError, match=named):
            kind(target, **arguments)


BAD_ARGUMENTS: list[tuple[str, tuple[Any, ...], dict[str, Any], str]] = [
    ("enforce_policy", ("",), {"input": "hi"}, "agent_id"),
    ("enforce_policy", ("  ",), {}, "agent_id"),
    ("enforce_policy", ("bot",), {"estimated_cost_usd": -0.01}, "estimated_cost_usd"),
    ("enforce_policy", ("bot",), {"estimated_cost_usd": math.nan}, "estimated_cost_usd"),
    ("enforce_policy", ("bot",), {"estimated_cost_usd": math.inf}, "estimated_cost_usd"),
    ("enforce_policy", ("bot",), {"estimated_cost_usd": True}, "estimated_cost_usd"),
    ("enforce_policy", ("bot",), {"context": "a document"}, "context"),
    ("enforce_policy", ("bot",), {"context": [{"content": "x"}]}, "context"),
    ("enforce_policy", ("bot",), {"context": [ContextItem("x", kind="pdf")]}, "context"),
    ("enforce_policy", ("bot", 5), {}, "input"),
    ("enforce_policy", ("bot",), {"output": b"bytes"}, "output"),
    ("enforce_policy", ("bot",), {"metadata": {"env": 1}}, "metadata"),
    ("enforce_policy", ("bot",), {"timeout": 0}, "timeout"),
    ("authorize", ("agent-a", "agent-b", "fly"), {}, "action"),
    ("authorize", ("agent-a", "agent-b", ""), {}, "action"),
    ("authorize", ("", "agent-b", "read"), {}, "source_agent_id"),
    ("authorize", ("agent-a", "", "read"), {}, "target_agent_id"),
    ("agent_status", ("",), {}, "agent_id"),
    ("report_usage", ("bot", -1.0, "r1"), {}, "cost_usd"),
    ("report_usage", ("bot", math.nan, "r1"), {}, "cost_usd"),
    ("report_usage", ("bot", math.inf, "r1"), {}, "cost_usd"),
    ("report_usage", ("bot", "1.0", "r1"), {}, "cost_usd"),
    ("report_usage", ("bot", 1.0, ""), {}, "request_id"),
    ("report_usage", ("", 1.0, "r1"), {}, "agent_id"),
]


@pytest.mark.parametrize(
    ("method", "args", "kwargs", "named"),
    BAD_ARGUMENTS,
    ids=[f"{m}-{n}" for m, _, _, n in BAD_ARGUMENTS],
)
async def test_bad_arguments_raise_value_error_before_any_call(
    connect: Connect,
    silent_tcp: SilentServer,
    method: str,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    named: str,
) -> None:
    client = connect(silent_tcp.target, timeout=30.0)
    started = time.monotonic()
    with pytest.raises(ValueError, match=named) as raised:
        await call(client, method, *args, **kwargs)
    if named != "timeout":  # a call's settings, not its request
        assert isinstance(raised.value, InvalidRequestError)
        assert (raised.value.field, raised.value.code) == (named, None)
    # Nothing was sent: the silent server would have held the call 30 s.
    assert time.monotonic() - started < 10.0
    assert silent_tcp.connections == 0


async def test_a_misspelt_keyword_is_refused_by_every_enforce_policy(
    connect: Connect, silent_tcp: SilentServer
) -> None:
    client = connect(silent_tcp.target, timeout=5.0)
    stream = client.enforce_stream()
    try:
        for enforce in (client.enforce_policy, stream.enforce_policy):
            with pytest.raises(TypeError, match=r"enforce_policy.*'estimated_cost'"):
                await resolve(enforce("bot", "hi", estimated_cost=0.1))  # type: ignore[call-arg]
    finally:
        await resolve(stream.close())
    assert silent_tcp.connections == 0


CALLS: list[tuple[str, tuple[Any, ...]]] = [
    ("enforce_policy", ("my-chatbot", "hello")),
    ("authorize", ("agent-a", "agent-b", "execute")),
    ("agent_status", ("my-chatbot",)),
    ("report_usage", ("my-chatbot", 0.1, "req-1")),
]


@pytest.mark.parametrize(("method", "args"), CALLS, ids=[m for m, _ in CALLS])
async def test_unreachable_sidecar_fails_closed_at_once(
    connect: Connect, refused_target: str, method: str, args: tuple[Any, ...]
) -> None:
    client = connect(refused_target, timeout=30.0)
    started = time.monotonic()
    with pytest.raises(SidecarUnavailableError) as raised:
        await call(client, method, *args)
    # Far sooner than the call's 30 s: generous for a loaded machine.
    assert time.monotonic() - started < 10.0, "an unreachable sidecar must not hold the call"
    assert not isinstance(raised.value, DeadlineExceededError)
    assert raised.value.code is grpc.StatusCode.UNAVAILABLE
    assert raised.value.target == refused_target
    assert refused_target in str(raised.value)


@pytest.mark.parametrize(("method", "args"), CALLS[1:], ids=[m for m, _ in CALLS[1:]])
async def test_fail_open_applies_to_enforce_policy_only(
    connect: Connect, refused_target: str, method: str, args: tuple[Any, ...]
) -> None:
    client = connect(refused_target, fail_open=True)
    with pytest.raises(SidecarUnavailableError):
        await call(client, method, *args)


async def test_fail_open_allows_and_warns_when_unreachable(
    connect: Connect, refused_target: str, caplog: pytest.LogCaptureFixture
) -> None:
    client = connect(refused_target, fail_open=True)
    with caplog.at_level(logging.WARNING, logger="pdp_client"):
        result = await resolve(client.enforce_policy("my-chatbot", "hello"))
    assert result.decision == "ALLOW"
    assert result.decision is Decision.ALLOW
    assert result.fail_open is True
    assert result.violations == []
    assert [r.levelno for r in caplog.records if r.name == "pdp_client"] == [logging.WARNING]
    assert "my-chatbot" in caplog.text
    assert "fail_open" in caplog.text


async def test_deadline_is_honoured_when_the_sidecar_hangs(
    connect: Connect, silent_tcp: SilentServer
) -> None:
    client = connect(silent_tcp.target, timeout=0.3)
    started = time.monotonic()
    with pytest.raises(DeadlineExceededError) as raised:
        await resolve(client.enforce_policy("my-chatbot", "hello"))
    elapsed = time.monotonic() - started
    assert 0.25 <= elapsed < 10.0  # the silent server holds a call forever
    assert isinstance(raised.value, SidecarUnavailableError)
    assert raised.value.timeout == 0.3
    assert raised.value.code is grpc.StatusCode.DEADLINE_EXCEEDED
    assert "0.3 s" in str(raised.value)


async def test_per_call_timeout_overrides_the_default(
    connect: Connect, silent_tcp: SilentServer
) -> None:
    client = connect(silent_tcp.target, timeout=30.0)
    started = time.monotonic()
    with pytest.raises(SidecarUnavailableError) as raised:
        await resolve(client.agent_status("my-chatbot", timeout=0.2))
    assert time.monotonic() - started < 10.0
    assert raised.value.code is grpc.StatusCode.DEADLINE_EXCEEDED


async def test_fail_open_allows_after_the_deadline(
    connect: Connect, silent_tcp: SilentServer
) -> None:
    client = connect(silent_tcp.target, timeout=0.2, fail_open=True)
    result = await resolve(client.enforce_policy("my-chatbot", "hello"))
    assert result.decision == "ALLOW"
    assert result.fail_open is True


async def test_unix_socket_target_dials_the_socket(
    connect: Connect, silent_unix: SilentServer
) -> None:
    # The silent server holds the call until the deadline, which shows the
    # client reached the socket (a wrong path is refused at once, below).
    client = connect(silent_unix.target, timeout=0.2)
    with pytest.raises(SidecarUnavailableError) as raised:
        await resolve(client.enforce_policy("my-chatbot", "hello"))
    assert raised.value.code is grpc.StatusCode.DEADLINE_EXCEEDED
    assert silent_unix.connections >= 1


async def test_missing_unix_socket_fails_closed(connect: Connect) -> None:
    client = connect("unix:/nonexistent/pdp.sock", timeout=30.0)
    started = time.monotonic()
    with pytest.raises(SidecarUnavailableError) as raised:
        await resolve(client.enforce_policy("my-chatbot", "hello"))
    assert time.monotonic() - started < 10.0
    assert raised.value.code is grpc.StatusCode.UNAVAILABLE


def test_sync_client_closes_with_its_context(refused_target: str) -> None:
    with Client(refused_target) as client:
        assert client.target == refused_target
    with pytest.raises(RuntimeError, match="closed"):
        client.agent_status("my-chatbot")
    client.close()  # closing again is harmless


async def test_async_client_closes_with_its_context(refused_target: str) -> None:
    async with AsyncClient(refused_target) as client:
        with pytest.raises(SidecarUnavailableError):
            await client.agent_status("my-chatbot")
    with pytest.raises(RuntimeError, match="closed"):
        await client.agent_status("my-chatbot")
    await client.close()


def test_one_base_class_catches_every_client_error() -> None:
    for error in (
        PolicyBlockedError,
        AgentPausedError,
        SidecarUnavailableError,
        InvalidRequestError,
    ):
        assert issubclass(error, PdpError)
    # The tree is documented where the base class is.
    assert "PolicyBlockedError" in (sys.modules[PdpError.__module__].__doc__ or "")


def test_client_package_does_not_import_the_server() -> None:
    # The SDK ships alone, with only grpcio and protobuf.
    # Error details are decoded with the client's own copy of google.rpc's
    # messages, not with googleapis-common-protos.
    probe = (
        "import sys, pdp_client\n"
        "loaded = sorted(m for m in sys.modules if m == 'pdp' or m.startswith('pdp.')\n"
        "    or m.startswith('google.rpc') or m.startswith('grpc_status'))\n"
        "print(loaded)\n"
    )
    done = run_python("-c", probe, timeout=30)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def _status_trailer(*details: Any) -> tuple[tuple[str, bytes], ...]:
    """The trailer a sidecar sends, built with googleapis' own messages."""
    status = status_pb2.Status(code=code_pb2.INVALID_ARGUMENT, message="refused")
    for detail in details:
        packed = any_pb2.Any()
        packed.Pack(detail)
        status.details.append(packed)
    return (("grpc-status-details-bin", status.SerializeToString()),)


def _bad_request(field: str) -> Any:
    violation = error_details_pb2.BadRequest.FieldViolation(field=field, description="why")
    return error_details_pb2.BadRequest(field_violations=[violation])


def _field_of(details: str, metadata: Any) -> str | None:
    error = error_for_status(
        grpc.StatusCode.INVALID_ARGUMENT, details, target="t", timeout=1.0, metadata=metadata
    )
    assert isinstance(error, InvalidRequestError)
    assert str(error) == details  # the message is the sidecar's, unchanged
    return error.field


def test_the_field_is_read_from_the_bad_request_detail() -> None:
    retry = error_details_pb2.RetryInfo()
    trailer = _status_trailer(retry, _bad_request("metadata['a]: b']"))
    assert _field_of("metadata['a]: b']: too long", trailer) == "metadata['a]: b']"
    assert _field_of("malformed request: bad UTF-8", _status_trailer(_bad_request("input"))) == (
        "input"
    )
    # A detail that names no field: the message is not second-guessed.
    assert _field_of("agent_id: looks like a field", _status_trailer(_bad_request(""))) is None
    assert (
        _field_of("agent_id: looks like a field", _status_trailer(error_details_pb2.BadRequest()))
        is None
    )


@pytest.mark.parametrize(
    "metadata",
    [
        (),
        (("grpc-status-details-bin", b"\xff\xff\xff"),),  # not a Status
        (("grpc-status-details-bin", "text"),),  # not binary
        _status_trailer(error_details_pb2.RetryInfo()),  # no BadRequest in it
        (("other-bin", _status_trailer(_bad_request("input"))[0][1]),),
    ],
)
def test_without_a_usable_detail_the_field_is_read_from_the_message(metadata: Any) -> None:
    assert _field_of("agent_id: required", metadata) == "agent_id"
    assert _field_of("metadata['env']: too long", metadata) == "metadata['env']"
    assert _field_of("no snapshot is active yet", metadata) is None
