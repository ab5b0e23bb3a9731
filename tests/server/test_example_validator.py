"""The example validator of the docs (examples/validator.py) runs as
written: over HTTPS behind a sidecar, it verifies pdp's signatures and its
answers decide; a call it cannot verify is refused."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from pdp.v1 import policy_decision_service_pb2 as pb
from tests._https import test_certificates
from tests._process import PythonProcess
from tests.conftest import REPO, StartSidecar
from tests.server._validators import SECRET, validator_snapshot


@pytest.fixture
def example_validator() -> Iterator[str]:
    certificates = test_certificates()
    process = PythonProcess(
        [
            str(REPO / "examples" / "validator.py"),
            "--port",
            "0",
            "--secret",
            SECRET,
            "--cert",
            str(certificates.cert_file),
            "--key",
            str(certificates.key_file),
        ],
        ready=r"validator listening on (https://\S+)",
        what="examples/validator.py",
    )
    try:
        yield process.match.group(1)
    finally:
        process.stop()


async def test_the_example_validator_decides_behind_a_sidecar(
    start_sidecar: StartSidecar, example_validator: str
) -> None:
    ca_file = str(test_certificates().ca_file)
    sidecar = await start_sidecar(validator_snapshot(example_validator, ca_file=ca_file))

    def refund(amount: str) -> pb.EnforceRequest:
        return pb.EnforceRequest(
            agent_id="billing-bot", input="refund", tool="refunds", metadata={"amount_usd": amount}
        )

    denied = await sidecar.stub.Enforce(refund("250"))
    assert denied.decision == pb.DECISION_BLOCK
    assert denied.violations[0].message == "refunds above 100 USD need a manager (250)"
    allowed = await sidecar.stub.Enforce(refund("50"))
    assert allowed.decision == pb.DECISION_ALLOW
    assert list(allowed.violations) == []


async def test_the_example_validator_refuses_unsigned_calls(example_validator: str) -> None:
    verify = test_certificates().client_context()
    async with httpx.AsyncClient(verify=verify) as client:
        unsigned = await client.post(example_validator, json={"tool": "refunds"})
        forged = await client.post(
            example_validator,
            json={"tool": "refunds"},
            headers={
                "webhook-id": "msg_1",
                "webhook-timestamp": "1614265330",
                "webhook-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
            },
        )
    assert (unsigned.status_code, forged.status_code) == (401, 401)
