"""The servicer against the wire contract: every RPC of the service
descriptor has a handler of the right streaming shape, and the engine's enums
are the proto's."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest

from pdp.engine import ACTIONS, ApprovalState, DecisionKind, DenialReason, Mode, Severity
from pdp.server._rpc_table import Activity, service_handler
from pdp.server._servicer import SERVICE, SERVICE_NAME, PolicyDecisionServicer, handler_name
from pdp.v1 import policy_decision_service_pb2 as pb
from tests.conftest import RunningSidecar

# Refuses a malformed message with an answer, not a status: the stream goes on.
ANSWERS_ERRORS = {"EnforceStream"}
NOT_FOUND = "Method not found!"  # what grpc answers for a method nobody registered


async def _call(channel: grpc.aio.Channel, name: str) -> grpc.aio.AioRpcError:
    """Calls ``name`` with an empty request in the shape the descriptor gives it."""
    method = SERVICE.methods_by_name.get(name)
    path = f"/{SERVICE_NAME}/{name}"
    raw: dict[str, Any] = {"request_serializer": None, "response_deserializer": None}

    async def one_request() -> AsyncIterator[bytes]:
        yield b""

    async def invoke() -> None:
        if method is not None and method.client_streaming:
            async for _ in channel.stream_stream(path, **raw)(one_request()):
                pass
        elif method is not None and method.server_streaming:
            async for _ in channel.unary_stream(path, **raw)(b""):
                pass
        else:
            await channel.unary_unary(path, **raw)(b"")

    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await invoke()
    return raised.value


async def test_an_rpc_nobody_serves_answers_method_not_found(
    example_sidecar: RunningSidecar,
) -> None:
    error = await _call(example_sidecar.channel, "NoSuchRpc")
    assert (error.code(), error.details()) == (grpc.StatusCode.UNIMPLEMENTED, NOT_FOUND)


@pytest.mark.parametrize("rpc", [m.name for m in SERVICE.methods])
async def test_every_rpc_of_the_contract_is_handled(
    example_sidecar: RunningSidecar, rpc: str
) -> None:
    if rpc in ANSWERS_ERRORS:
        path = f"/{SERVICE_NAME}/{rpc}"
        call = example_sidecar.channel.stream_stream(
            path, None, pb.EnforceStreamResponse.FromString
        )

        async def one_request() -> AsyncIterator[bytes]:
            yield b""

        answers = [a async for a in call(one_request())]
        assert [a.error.code for a in answers] == ["INVALID_ARGUMENT"]
        return
    error = await _call(example_sidecar.channel, rpc)
    assert error.details() != NOT_FOUND, f"{rpc} has no handler"
    # An empty request lacks its required id: the handler itself refuses it.
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()


def test_a_servicer_missing_a_handler_cannot_serve() -> None:
    class Incomplete(PolicyDecisionServicer):
        submit_trace = None  # type: ignore[assignment]

    servicer = Incomplete.__new__(Incomplete)
    with pytest.raises(TypeError, match=r"no handler for SubmitTrace \(define submit_trace\)"):
        service_handler(SERVICE, servicer, Activity())


def test_handler_names_are_the_rpc_names_in_snake_case() -> None:
    names = {m.name: handler_name(m.name) for m in SERVICE.methods}
    assert names["Enforce"] == "enforce"
    assert names["AgentStatus"] == "agent_status"
    assert names["WatchAgentStatus"] == "watch_agent_status"
    assert all(callable(getattr(PolicyDecisionServicer, name)) for name in names.values())


def _names(enum: Any, prefix: str) -> set[str]:
    names: list[str] = enum.keys()
    return {name.removeprefix(prefix) for name in names if not name.endswith("UNSPECIFIED")}


def test_the_engine_actions_are_the_proto_actions() -> None:
    # An action only the proto knows would be denied without a word.
    assert {a.upper() for a in ACTIONS} == _names(pb.Action, "ACTION_")


def test_the_engine_enums_are_the_proto_enums() -> None:
    assert {k.name for k in DecisionKind} == _names(pb.Decision, "DECISION_")
    assert {m.name for m in Mode} == _names(pb.EnforcementMode, "ENFORCEMENT_MODE_")
    assert {s.name for s in Severity} == _names(pb.Severity, "SEVERITY_")
    assert {d.name for d in DenialReason} <= _names(pb.AuthorizeDenial, "AUTHORIZE_DENIAL_")
    assert {s.name for s in ApprovalState} == _names(pb.ApprovalState, "APPROVAL_STATE_")


def test_decision_ids_are_unique_growing_and_differ_in_a_forked_child() -> None:
    script = (
        "import os\n"
        "from pdp.server._servicer import _new_decision_id as new\n"
        "made = [new() for _ in range(10000)]\n"
        "ids = set(made)\n"
        "assert len(ids) == 10000 and all(len(i) == 32 for i in ids)\n"
        "assert made == sorted(made), 'ids grow: appended to the state index'\n"
        "r, w = os.pipe()\n"
        "if os.fork() == 0:\n"
        "    os.write(w, new().encode()); os._exit(0)\n"
        "os.wait()\n"
        "child, parent = os.read(r, 64).decode(), new()\n"
        "assert child != parent, (child, parent)\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=30)
