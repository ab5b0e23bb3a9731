"""``--outbound-allow`` on the real commands: a bad entry stops them with
a usage error naming it; on ``pdp serve`` the list decides which validator
calls go out (loopback validators keep working by default)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from pdp.v1 import policy_decision_service_pb2 as pb
from pdp.v1 import policy_decision_service_pb2_grpc as pb_grpc
from tests._https import HttpsServer, reply_json
from tests._process import PdpProcess, run_pdp
from tests.server._validators import validator_snapshot


@pytest.mark.parametrize("command", ["serve", "control"])
@pytest.mark.parametrize(
    ("entry", "words"),
    [("exa mple.com", "'exa mple.com': not a host, *.domain"), ("10.0.0.0/40", "10.0.0.0/40")],
)
def test_a_bad_entry_is_a_usage_error_naming_it(command: str, entry: str, words: str) -> None:
    result = run_pdp(command, "--outbound-allow", "public", "--outbound-allow", entry)
    assert result.returncode == 2
    assert "argument --outbound-allow" in result.stderr
    assert words in result.stderr


@pytest.fixture
def validator() -> Iterator[HttpsServer]:
    with HttpsServer(reply_json({"allow": True})) as server:
        yield server


def serve(tmp_path: Path, validator: HttpsServer, *flags: str) -> PdpProcess:
    snapshot = tmp_path / "policies.json"
    rule = validator_snapshot(f"{validator.url}/check", ca_file=validator.ca_file)
    snapshot.write_text(json.dumps(rule))
    return PdpProcess(
        [
            "serve",
            "--snapshot",
            str(snapshot),
            "--listen",
            "127.0.0.1:0",
            "--state",
            str(tmp_path / "state.db"),
            *flags,
        ]
    )


async def enforce(address: str) -> pb.EnforceResponse:
    async with grpc.aio.insecure_channel(address) as channel:
        stub = pb_grpc.PolicyDecisionServiceStub(channel)
        request = pb.EnforceRequest(agent_id="billing-bot", input="refund order 42")
        response: pb.EnforceResponse = await stub.Enforce(request, wait_for_ready=True)
        return response


@pytest.mark.parametrize(
    ("flags", "decision"),
    [
        ((), pb.DECISION_ALLOW),  # the default allows loopback
        (("--outbound-allow", "public"), pb.DECISION_BLOCK),
        (("--outbound-allow", "public,127.0.0.0/8"), pb.DECISION_ALLOW),
    ],
)
async def test_pdp_serve_calls_validators_only_where_the_flag_allows(
    tmp_path: Path, validator: HttpsServer, flags: tuple[str, ...], decision: int
) -> None:
    process = serve(tmp_path, validator, *flags)
    try:
        response = await enforce(process.address)
    finally:
        process.stop()
    assert response.decision == decision
    if decision == pb.DECISION_BLOCK:
        (violation,) = response.violations
        assert "refused by the outbound policy: 127.0.0.1 is a loopback address" in (
            violation.message
        )
        assert validator.connections == 0
    else:
        assert len(validator.requests) == 1
