"""Every refusal is JSON {"error": {code, message, field}} with the right
status, and a refused request changes nothing already stored."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from pdp.control import create_api_key, revoke_api_keys
from tests.control._harness import ControlPlaneHarness
from tests.control._helpers import REFERENCE_POLICIES, error_of, make_agent, published

POLICY = REFERENCE_POLICIES[0]
ONE_MIB = 1024 * 1024


@pytest.fixture
async def seeded(client: httpx.AsyncClient) -> httpx.AsyncClient:
    """A control plane with agents, a policy and a grant to be left untouched."""
    await client.post("/policies", json=POLICY)
    await make_agent(client, "agent-a")
    await make_agent(client, "agent-b")
    body = {"targetAgentId": "agent-b", "allowedActions": ["read"]}
    assert (await client.post("/agents/agent-a/grants", json=body)).status_code == 201
    return client


JSON = {"Content-Type": "application/json"}
REFUSED: list[tuple[str, str, dict[str, Any], int, str, str | None]] = [
    # method, path, request kwargs, status, code, field
    ("POST", "/policies", {"content": b'{"name": ', "headers": JSON}, 400, "malformed_json", None),
    ("POST", "/policies", {"content": b'{"a": NaN}', "headers": JSON}, 400, "malformed_json", None),
    (
        "POST",
        "/policies",
        {"content": b'{"a": 1e999}', "headers": JSON},
        400,
        "malformed_json",
        None,
    ),
    ("POST", "/policies", {"content": b"\xff\xfe", "headers": JSON}, 400, "malformed_json", None),
    (
        "POST",
        "/policies",
        {"content": b'{"name": "a", "name": "b"}', "headers": JSON},
        400,
        "malformed_json",
        None,
    ),
    (
        "POST",
        "/policies",
        {"content": b"[" * 100_000, "headers": JSON},
        400,
        "malformed_json",
        None,
    ),
    ("POST", "/policies", {"content": b"name=x"}, 415, "unsupported_media_type", None),
    (
        "POST",
        "/policies",
        {"content": b'{"name": "x"}', "headers": {"Content-Type": "text/plain"}},
        415,
        "unsupported_media_type",
        None,
    ),
    ("POST", "/policies", {"json": [POLICY]}, 422, "validation_failed", None),
    ("POST", "/policies", {"content": b"", "headers": JSON}, 422, "validation_failed", None),
    (
        "POST",
        "/policies",
        {"json": POLICY | {"isActive": "true"}},
        422,
        "validation_failed",
        "isActive",
    ),
    (
        "POST",
        "/policies",
        {"json": POLICY | {"enabled": True}},
        422,
        "validation_failed",
        "enabled",
    ),
    ("POST", "/policies", {"json": POLICY | {"name": "PII"}}, 409, "conflict", None),
    ("POST", "/policies", {"json": POLICY}, 409, "conflict", "name"),
    ("PATCH", "/policies/nope", {"json": {"isActive": False}}, 404, "not_found", None),
    ("DELETE", "/policies/nope", {}, 404, "not_found", None),
    ("POST", "/agents", {"json": {"name": "agent-a"}}, 409, "conflict", "name"),
    ("POST", "/agents", {"json": {"name": "x", "id": "chosen"}}, 422, "validation_failed", "id"),
    ("PATCH", "/agents/agent-z/pause", {"json": {"reason": "x"}}, 404, "not_found", None),
    ("PATCH", "/agents/agent-a/pause", {"json": {"reason": 1}}, 422, "validation_failed", "reason"),
    ("PATCH", "/agents/agent-a/resume", {"json": {"now": True}}, 422, "validation_failed", "now"),
    (
        "POST",
        "/agents/agent-a/grants",
        {"json": {"targetAgentId": "agent-b", "allowedActions": ["read", "fly"]}},
        422,
        "validation_failed",
        "allowedActions[1]",
    ),
    (
        "POST",
        "/agents/agent-a/grants",
        {"json": {"targetAgentId": "agent-b", "allowedActions": ["read"], "expiresAt": "soon"}},
        422,
        "validation_failed",
        "expiresAt",
    ),
    ("DELETE", "/agents/agent-a/grants/nope", {}, 404, "not_found", None),
    ("PUT", "/policies", {"json": POLICY}, 405, "method_not_allowed", None),
    ("GET", "/nothing-here", {}, 404, "not_found", None),
]


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status", "code", "field"),
    REFUSED,
    ids=[f"{r[3]}-{r[0]}-{r[1]}-{i}" for i, r in enumerate(REFUSED)],
)
async def test_refused_request_changes_nothing(
    seeded: httpx.AsyncClient,
    method: str,
    path: str,
    kwargs: dict[str, Any],
    status: int,
    code: str,
    field: str | None,
) -> None:
    client = seeded
    if kwargs.get("json") == POLICY | {"name": "PII"}:
        await client.post("/policies", json=REFERENCE_POLICIES[1] | {"name": "PII"})
    before, _ = await published(client)
    policies = (await client.get("/policies")).json()
    agents = (await client.get("/agents")).json()

    error = error_of(await client.request(method, path, **kwargs), status)

    assert error["code"] == code, error
    if field is not None:
        assert error["field"] == field, error
    after, _ = await published(client)
    assert after == before
    assert (await client.get("/policies")).json() == policies
    assert (await client.get("/agents")).json() == agents


async def test_malformed_json_says_so(client: httpx.AsyncClient) -> None:
    error = error_of(await client.post("/policies", content=b"{oops", headers=JSON), 400)
    assert "malformed JSON" in error["message"] and "line 1" in error["message"]


async def test_fastapi_validation_errors_name_the_field_path(client: httpx.AsyncClient) -> None:
    await make_agent(client, "agent-a")
    body = {"targetAgentId": "agent-a", "allowedActions": ["read", 7, None]}
    error = error_of(await client.post("/agents/agent-a/grants", json=body), 422)
    assert error["field"] == "allowedActions[1]"
    assert [e["field"] for e in error["errors"]] == ["allowedActions[1]", "allowedActions[2]"]
    body = POLICY | {"prerequisites": [{"policy": 5}]}
    error = error_of(await client.post("/policies", json=body), 422)
    assert error["field"] == "prerequisites[0].policy"
    error = error_of(await client.post("/policies", json={"isActive": True}), 422)
    assert {"name", "policyType", "enforcementMode", "ruleDefinition"} <= {
        e["field"] for e in error["errors"]
    }
    assert error["errors"][0]["message"] == "required"


async def test_body_over_the_limit_is_413_declared_or_chunked(client: httpx.AsyncClient) -> None:
    big = b'{"name": "' + b"x" * ONE_MIB + b'"}'
    error = error_of(await client.post("/policies", content=big, headers=JSON), 413)
    assert error["code"] == "payload_too_large"

    async def chunks() -> AsyncIterator[bytes]:
        # No Content-Length: the limit is counted as the body arrives.
        yield b'{"name": "'
        for _ in range(20):
            yield b"x" * 65536
        yield b'"}'

    response = await client.post("/policies", content=chunks(), headers=JSON)
    assert "content-length" not in response.request.headers
    assert error_of(response, 413)["code"] == "payload_too_large"
    # Just under the limit is read, and then judged on its content.
    small = POLICY | {"description": "d" * (ONE_MIB - 1000)}
    error = error_of(await client.post("/policies", json=small), 422)
    assert error["field"] == "description" and "longer than" in error["message"]


async def test_missing_or_wrong_key_is_401(control_plane: ControlPlaneHarness) -> None:
    async with httpx.AsyncClient(base_url=control_plane.base_url) as anonymous:
        error = error_of(await anonymous.get("/api/v1/snapshot"), 401)
        assert error["code"] == "missing_api_key" and "X-API-Key" in error["message"]
        wrong = {"X-API-Key": control_plane.api_key[:-2] + "zz"}
        for request in (
            anonymous.get("/api/v1/policies", headers=wrong),
            anonymous.post("/api/v1/policies", json=POLICY, headers=wrong),
            # Refused before the body is looked at.
            anonymous.post("/api/v1/policies", content=b"{bad", headers=wrong | JSON),
            anonymous.get("/api/v1/snapshot", headers={"X-API-Key": "pdp_short"}),
        ):
            assert error_of(await request, 401)["code"] == "invalid_api_key"
        # No key needed for health and the API description.
        assert (await anonymous.get("/healthz")).json()["status"] == "ok"
        openapi = (await anonymous.get("/openapi.json")).json()
        assert "/api/v1/policies" in openapi["paths"]
        assert "/api/v1/snapshot" in openapi["paths"]
    async with control_plane.client() as client:
        assert (await published(client))[0]["policies"] == []


async def test_expired_or_revoked_key_is_403_saying_which(
    control_plane: ControlPlaneHarness,
) -> None:
    assert control_plane.server is not None and control_plane.server.control is not None
    store = control_plane.server.control.store
    expired = await create_api_key(store, "old-ci", datetime.now(UTC) - timedelta(seconds=1))
    revoked = await create_api_key(store, "leaked")
    assert await revoke_api_keys(store, name="leaked") == 1
    async with httpx.AsyncClient(base_url=f"{control_plane.base_url}/api/v1") as client:
        error = error_of(await client.get("/snapshot", headers={"X-API-Key": expired.secret}), 403)
        assert error["code"] == "api_key_expired" and "expired" in error["message"]
        assert "old-ci" in error["message"]
        error = error_of(await client.get("/snapshot", headers={"X-API-Key": revoked.secret}), 403)
        assert error["code"] == "api_key_revoked" and "revoked" in error["message"]
        ok = await client.get("/snapshot", headers={"X-API-Key": control_plane.api_key})
        assert ok.status_code == 200
