"""Errors are errors, not UNKNOWN: a bad field is INVALID_ARGUMENT naming it,
a state database that cannot be written (a full or read-only disk) is
UNAVAILABLE with a message, the log gets one line per failure and never a
traceback, and SIGTERM still stops the sidecar within its grace period."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest

from pdp.v1 import policy_decision_service_pb2 as pb
from pdp.v1 import policy_decision_service_pb2_grpc as pb_grpc
from tests.conftest import (
    RunningSidecar,
    SidecarProcess,
    StartSidecar,
    example_document,
    write_atomically,
)

AGENT = "customer-support-bot"


async def _status(call: object) -> tuple[grpc.StatusCode, str]:
    try:
        await call  # type: ignore[misc]
    except grpc.aio.AioRpcError as error:
        return error.code(), error.details() or ""
    return grpc.StatusCode.OK, ""


@pytest.mark.parametrize("cost", [1e13, math.nan, -1.0, math.inf, -math.inf, 1e308])
async def test_a_bad_cost_is_invalid_argument_naming_the_field(
    start_sidecar: StartSidecar, cost: float
) -> None:
    sidecar = await start_sidecar(example_document())
    stub = sidecar.stub
    code, details = await _status(
        stub.ReportUsage(pb.ReportUsageRequest(agent_id=AGENT, cost_usd=cost, request_id="r1"))
    )
    assert (code, details.split(":")[0]) == (grpc.StatusCode.INVALID_ARGUMENT, "cost_usd")
    code, details = await _status(
        stub.Enforce(pb.EnforceRequest(agent_id=AGENT, input="hi", estimated_cost_usd=cost))
    )
    assert code is grpc.StatusCode.INVALID_ARGUMENT
    assert details.startswith("estimated_cost_usd:")
    # Still serving, and nothing was recorded.
    answer = await stub.AgentStatus(pb.AgentStatusRequest(agent_id=AGENT))
    assert all(b.spent_usd == 0 for b in answer.state.budgets)


@contextlib.contextmanager
def tiny_filesystem(directory: Path, size: str = "2m") -> Iterator[Path]:
    """A tmpfs of ``size`` mounted at ``directory`` (root only): a disk that
    fills up under a running sidecar."""
    directory.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(directory)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield directory
    finally:
        subprocess.run(["umount", "-l", str(directory)], check=False)


def fill(directory: Path) -> None:
    """Writes a file until the filesystem is full."""
    with open(directory / "filler", "wb") as file, contextlib.suppress(OSError):
        while True:
            file.write(b"\0" * 65536)
            file.flush()


async def test_a_state_database_that_cannot_be_written_is_unavailable(
    start_sidecar: StartSidecar, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with tiny_filesystem(tmp_path / "disk") as disk:
        sidecar = await start_sidecar(example_document(), state=disk / "state.db")
        stub = sidecar.stub
        first = pb.ReportUsageRequest(agent_id=AGENT, cost_usd=1.0, request_id="before")
        assert (await stub.ReportUsage(first)).daily_spend_usd == 1.0
        await asyncio.to_thread(fill, disk)
        caplog.clear()
        for i in range(20):
            report = pb.ReportUsageRequest(agent_id=AGENT, cost_usd=1.0, request_id=f"after-{i}")
            code, details = await _status(stub.ReportUsage(report))
            assert code is grpc.StatusCode.UNAVAILABLE, details
            assert "state" in details
        # Decisions are still answered (counted in memory), and what was
        # recorded before the failure still counts.
        answer = await stub.Enforce(pb.EnforceRequest(agent_id=AGENT, input="hi"))
        assert answer.decision == pb.DECISION_ALLOW
        status = await stub.AgentStatus(pb.AgentStatusRequest(agent_id=AGENT))
        assert [b.spent_usd for b in status.state.budgets if b.period == "daily"] == [1.0]
        assert "Traceback" not in caplog.text
        failures = [r for r in caplog.records if r.levelno >= logging.WARNING]
        assert failures and all("\n" not in r.getMessage() for r in failures)
        await sidecar.close()


async def test_sigterm_stops_a_sidecar_whose_disk_is_full(
    tmp_path: Path, spawn_sidecar: Callable[..., SidecarProcess]
) -> None:
    snapshot = tmp_path / "policies.json"
    write_atomically(snapshot, example_document())
    with tiny_filesystem(tmp_path / "disk") as disk:
        sidecar = await asyncio.to_thread(
            spawn_sidecar,
            "--snapshot", str(snapshot),
            "--state", str(disk / "state.db"),
            "--listen", "127.0.0.1:0",
            "--shutdown-grace", "2",
        )  # fmt: skip
        async with grpc.aio.insecure_channel(sidecar.address) as channel:
            stub = pb_grpc.PolicyDecisionServiceStub(channel)
            await stub.Enforce(pb.EnforceRequest(agent_id=AGENT, input="hi"))
            await asyncio.to_thread(fill, disk)
            for i in range(50):  # decisions and reports the disk cannot take
                await _status(stub.Enforce(pb.EnforceRequest(agent_id=AGENT, input=f"hi {i}")))
                request = pb.ReportUsageRequest(agent_id=AGENT, cost_usd=0.1, request_id=f"r{i}")
                await _status(stub.ReportUsage(request))
        start = time.monotonic()
        code = await asyncio.to_thread(sidecar.stop)
        took = time.monotonic() - start
        log = "".join(sidecar.log)
        assert took < 2 + 3, f"took {took:.1f}s to stop:\n{log}"
        assert code in (0, 1), log
        assert "Traceback" not in log


_GARBLED = [
    b"\xff",  # a truncated tag
    b"\x0a\x80",  # a length that never ends
    b"\x0a\x05ab",  # a string shorter than its length
    b"\x0a\x02\xc3\x28",  # agent id (field 1) that is not UTF-8
    b"\x09" + b"\x00" * 8,  # field 1 with the wrong wire type
    b"\x7a\x03abc" * 3,  # an unknown field, repeated
]


@pytest.mark.parametrize("data", _GARBLED, ids=lambda d: d.hex())
async def test_garbled_requests_to_every_rpc_are_invalid_argument(
    example_sidecar: RunningSidecar, data: bytes
) -> None:
    service = pb.DESCRIPTOR.services_by_name["PolicyDecisionService"]
    for method in service.methods:
        if method.client_streaming or method.server_streaming:
            continue
        call = example_sidecar.channel.unary_unary(
            f"/{service.full_name}/{method.name}",
            request_serializer=None,
            response_deserializer=None,
        )
        code, details = await _status(call(data, timeout=5))
        assert code in _EXPECTED, (method.name, code, details)
        if code is not grpc.StatusCode.OK:
            assert details, method.name


# OK: a garbled message may still parse (unknown fields are skipped), then
# be refused for what it lacks; UNIMPLEMENTED: RPCs this sidecar does not serve.
_EXPECTED = {
    grpc.StatusCode.OK,
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.UNIMPLEMENTED,
}
