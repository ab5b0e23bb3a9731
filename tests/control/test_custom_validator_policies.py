"""custom_validator policies through the control plane: validated by the
engine at write time like any other type (https only there), published, and
called by a sidecar that follows the control plane."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from pdp.v1 import policy_decision_service_pb2 as pb
from tests._https import HttpsServer, reply_json
from tests.conftest import StartSidecar
from tests.control._harness import ControlPlaneHarness
from tests.control._helpers import error_of, make_agent, published
from tests.server._validators import SECRET


def validator_policy(**rule: Any) -> dict[str, Any]:
    return {
        "name": "Entitlements",
        "policyType": "custom_validator",
        "enforcementMode": "block",
        "ruleDefinition": {"url": "https://validator.example/check", "secret": SECRET, **rule},
    }


async def test_a_validator_policy_is_stored_and_published(client: httpx.AsyncClient) -> None:
    response = await client.post("/policies", json=validator_policy(timeout_ms=500))
    assert response.status_code == 201, response.text
    _, compiled = await published(client)
    (validator,) = compiled.validators
    assert (validator.url, validator.timeout_s) == ("https://validator.example/check", 0.5)


@pytest.mark.parametrize(
    ("rule", "field", "words"),
    [
        ({"url": "http://127.0.0.1:8080/"}, "ruleDefinition.url", "--allow-insecure-validators"),
        ({"url": "http://validator.example/"}, "ruleDefinition.url", "https://"),
        ({"secret": "whsec_%%%"}, "ruleDefinition.secret", "base64"),
        ({"secret": "short"}, "ruleDefinition.secret", "at least 24 bytes"),
        ({"timeout_ms": 0}, "ruleDefinition.timeout_ms", "between 10 and 10000"),
        ({"fail_mode": "maybe"}, "ruleDefinition.fail_mode", "closed, open"),
    ],
)
async def test_bad_validator_rules_are_refused_naming_the_field(
    client: httpx.AsyncClient, rule: dict[str, Any], field: str, words: str
) -> None:
    error = error_of(await client.post("/policies", json=validator_policy(**rule)), 422)
    assert error["field"] == field
    assert words in error["message"]
    assert (await client.get("/policies")).json()["policies"] == []


async def test_a_sidecar_following_the_control_plane_calls_the_validator(
    control_plane: ControlPlaneHarness, client: httpx.AsyncClient, start_sidecar: StartSidecar
) -> None:
    async with HttpsServer(reply_json({"allow": False, "message": "no entitlement"})) as server:
        await make_agent(client, "billing-bot")
        body = validator_policy(url=f"{server.url}/check", ca_file=server.ca_file, timeout_ms=5000)
        assert (await client.post("/policies", json=body)).status_code == 201
        sidecar = await start_sidecar(
            source=control_plane.snapshot_url, api_key=control_plane.api_key
        )
        resp = await sidecar.stub.Enforce(pb.EnforceRequest(agent_id="billing-bot", input="x"))
        assert resp.decision == pb.DECISION_BLOCK
        assert resp.violations[0].message == "no entitlement"
        assert len(server.requests) == 1
