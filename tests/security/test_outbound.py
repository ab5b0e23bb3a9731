"""Outbound requests cannot reach the cloud metadata service: a custom
validator or a webhook whose URL points there (as an address, however
written, or as a name that resolves there) is refused, and the refusal is
visible where users look: the policy's fail mode with the reason, the
delivery record, or a 422 when the URL is written. Real sidecars, a real
control plane and real HTTPS servers on loopback addresses under test
names; only the resolver is the test's."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from pdp.control import DeliveryOptions
from pdp.outbound import OutboundPolicy
from pdp.v1 import policy_decision_service_pb2 as pb
from tests._https import Certificates, HttpsServer, reply_json
from tests.conftest import StartSidecar
from tests.control._harness import ControlPlaneHarness
from tests.control._helpers import error_of
from tests.control._webhooks import register, wait_for_delivery
from tests.outbound._resolver import TestResolver
from tests.server._validators import SECRET, validator_snapshot

METADATA = "169.254.169.254"
RESOLVER_ANSWERS = {
    "validator.test": ["127.0.0.2"],
    "hooks.test": ["127.0.0.2"],
    "meta.test": [METADATA],  # a name an attacker points at the metadata service
    "mapped.test": [f"::ffff:{METADATA}"],
}


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return Certificates.create(tmp_path_factory.mktemp("tls"), ("validator.test", "hooks.test"))


@pytest.fixture
def receiver(certificates: Certificates) -> Iterator[HttpsServer]:
    with HttpsServer(reply_json({"allow": True}), certificates=certificates, host="127.0.0.2") as s:
        yield s


def enforce() -> pb.EnforceRequest:
    return pb.EnforceRequest(agent_id="billing-bot", input="refund order 42", request_id="r-1")


# Custom validators ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("fail_mode", "decision"), [("closed", pb.DECISION_BLOCK), ("open", pb.DECISION_ALLOW)]
)
@pytest.mark.parametrize(
    ("url", "why"),
    [
        (f"https://{METADATA}/latest/meta-data/", "169.254.169.254 is a cloud metadata service"),
        ("https://2852039166/latest/", "169.254.169.254 is a cloud metadata service"),
        ("https://[::ffff:a9fe:a9fe]/", "(169.254.169.254) is a cloud metadata service"),
        ("https://meta.test/latest/meta-data/", "169.254.169.254 is a cloud metadata service"),
        ("https://mapped.test/", "(169.254.169.254) is a cloud metadata service"),
        ("https://metadata.google.internal/computeMetadata/v1/", "a cloud metadata service"),
    ],
)
async def test_a_validator_pointing_at_the_metadata_service_applies_its_fail_mode(
    start_sidecar: StartSidecar, url: str, why: str, fail_mode: str, decision: int
) -> None:
    outbound = OutboundPolicy.allowing(None, TestResolver(RESOLVER_ANSWERS))
    sidecar = await start_sidecar(validator_snapshot(url, fail_mode=fail_mode), outbound=outbound)
    resp = await sidecar.stub.Enforce(enforce())
    assert resp.decision == decision
    if fail_mode == "closed":
        (violation,) = resp.violations
        assert "refused by the outbound policy" in violation.message
        assert why in violation.message
        assert "failing closed" in violation.message
    else:
        assert list(resp.violations) == []
    stats = sidecar.sidecar.validators.stats(url)
    assert (stats.failures, stats.answers) == (1, 0)


async def test_validators_reach_only_what_the_allow_list_names(
    start_sidecar: StartSidecar, receiver: HttpsServer, certificates: Certificates
) -> None:
    url = f"https://validator.test:{receiver.port}/check"
    snapshot = validator_snapshot(url, ca_file=str(certificates.ca_file))
    # Public addresses only: the validator's loopback address is refused.
    public = OutboundPolicy.allowing(["public"], TestResolver(RESOLVER_ANSWERS))
    refused = await start_sidecar(snapshot, outbound=public)
    resp = await refused.stub.Enforce(enforce())
    assert resp.decision == pb.DECISION_BLOCK
    (violation,) = resp.violations
    assert "127.0.0.2 is a loopback address, which --outbound-allow (public) does not allow" in (
        violation.message
    )
    assert receiver.connections == 0
    # Named, it is reached (by its name: the certificate holds no address).
    named = OutboundPolicy.allowing(["public", "validator.test"], TestResolver(RESOLVER_ANSWERS))
    allowed = await start_sidecar(snapshot, outbound=named)
    resp = await allowed.stub.Enforce(enforce())
    assert resp.decision == pb.DECISION_ALLOW
    (request,) = receiver.requests
    assert request.headers["host"] == f"validator.test:{receiver.port}"


# Webhooks ------------------------------------------------------------------------


@pytest.fixture
async def control_plane(
    tmp_path: Path, certificates: Certificates
) -> AsyncIterator[ControlPlaneHarness]:
    outbound = OutboundPolicy.allowing(["loopback", "hooks.test"], TestResolver(RESOLVER_ANSWERS))
    options = DeliveryOptions(
        schedule=(0.05, 0.05, 0.05), timeout=5.0, ca_file=str(certificates.ca_file)
    )
    harness = ControlPlaneHarness(tmp_path / "control.db", webhooks=options, outbound=outbound)
    await harness.start()
    try:
        yield harness
    finally:
        await harness.stop()


async def test_a_webhook_resolving_to_the_metadata_service_fails_at_once(
    control_plane: ControlPlaneHarness, receiver: HttpsServer
) -> None:
    async with control_plane.client() as client:
        good = await register(client, f"https://hooks.test:{receiver.port}/in", ["agent.paused"])
        bad = await register(client, "https://meta.test/latest/meta-data/", ["agent.paused"])
        for hook in (good, bad):
            assert (await client.post(f"/webhooks/{hook['id']}/test")).status_code == 202
        delivered = await wait_for_delivery(client, good["id"], "delivered")
        failed = await wait_for_delivery(client, bad["id"], "failed")
    assert delivered["attempts"] == 1
    assert failed["attempts"] == 1  # no retry: another attempt would be refused too
    assert failed["lastStatusCode"] is None
    assert failed["lastError"] == (
        "refused by the outbound policy: 169.254.169.254 is a cloud metadata service "
        "address; only an --outbound-allow address or range reaches it"
    )
    (request,) = receiver.requests  # the good one only
    assert request.headers["webhook-id"] == delivered["id"]
    sender = control_plane.control.webhook_sender
    assert sender is not None
    assert sender.outcomes == {"delivered": 1, "retried": 0, "failed": 1}


REFUSED_URLS = [
    ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a cloud metadata service"),
    ("https://0xa9fea9fe/", "169.254.169.254 is a cloud metadata service"),
    ("https://[fd00:ec2::254]/", "fd00:ec2::254 is a cloud metadata service"),
    ("https://100.100.100.200/", "100.100.100.200 is a cloud metadata service"),
    ("https://[fe80::1]/", "fe80::1 is a link-local address"),
    ("https://metadata.google.internal/", "metadata.google.internal is a cloud metadata service"),
    ("https://10.0.0.1/", "10.0.0.1 is a private address, which --outbound-allow"),
]


@pytest.mark.parametrize(("url", "why"), REFUSED_URLS)
async def test_a_refused_webhook_url_is_a_422_naming_the_field(
    control_plane: ControlPlaneHarness, url: str, why: str
) -> None:
    async with control_plane.client() as client:
        response = await client.post("/webhooks", json={"url": url, "events": ["agent.paused"]})
        error = error_of(response, 422)
        assert error["field"] == "url"
        assert error["message"].startswith("url: is refused by the outbound policy: ")
        assert why in error["message"]
        assert (await client.get("/webhooks")).json()["webhooks"] == []


# custom_validator policies written through the API ------------------------------


def validator_policy(url: str, name: str = "Entitlements") -> dict[str, Any]:
    return {
        "name": name,
        "policyType": "custom_validator",
        "enforcementMode": "block",
        "ruleDefinition": {"url": url, "secret": SECRET},
    }


@pytest.mark.parametrize(("url", "why"), REFUSED_URLS[1:])
async def test_a_refused_validator_url_is_a_422_wherever_it_is_written(
    control_plane: ControlPlaneHarness, url: str, why: str
) -> None:
    async def refused(response: httpx.Response, field: str) -> None:
        error = error_of(response, 422)
        assert (error["field"], why in error["message"]) == (field, True), error

    async with control_plane.client() as client:
        await refused(
            await client.post("/policies", json=validator_policy(url)), "ruleDefinition.url"
        )
        good = await client.post("/policies", json=validator_policy("https://validator.test/"))
        assert good.status_code == 201, good.text
        rule = {"url": url, "secret": SECRET}
        patch = await client.patch("/policies/Entitlements", json={"ruleDefinition": rule})
        await refused(patch, "ruleDefinition.url")
        whole = {
            "policies": [validator_policy("https://validator.test/"), validator_policy(url, "B")]
        }
        await refused(
            await client.post("/snapshot/candidate", json=whole), "policies[1].ruleDefinition.url"
        )
        changes = {"changes": [{"op": "put", "policy": validator_policy(url)}]}
        await refused(
            await client.post("/snapshot/candidate", json=changes),
            "changes[0].policy.ruleDefinition.url",
        )
        stored = (await client.get("/policies/Entitlements")).json()
        assert stored["ruleDefinition"]["url"] == "https://validator.test/"
        assert (await client.get("/snapshot/candidate")).status_code == 404
