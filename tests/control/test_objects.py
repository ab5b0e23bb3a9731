"""The control plane's objects: one field list per kind, which the request
models, the snapshot document and the database agree with; stored rows that
are not such objects are refused when the database is opened."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from pdp.control import ControlPlane, StoreError
from pdp.control._objects import (
    AGENT_DOCUMENT_FIELDS,
    GRANT_DOCUMENT_FIELDS,
    POLICY_CLEARABLE_FIELDS,
    POLICY_WRITABLE_FIELDS,
    Agent,
    FieldRole,
    Grant,
    Policy,
    fields_with,
)
from pdp.control._schemas import AgentCreate, GrantCreate, PolicyCreate, PolicyPatch
from tests.control._harness import ControlPlaneHarness
from tests.control._helpers import REFERENCE_POLICIES, make_agent, published


def test_policy_requests_give_exactly_the_writable_fields() -> None:
    assert set(PolicyCreate.model_fields) == set(POLICY_WRITABLE_FIELDS)
    assert set(PolicyPatch.model_fields) == set(POLICY_WRITABLE_FIELDS)
    assert set(POLICY_WRITABLE_FIELDS) | {"id", "createdAt", "updatedAt"} == set(
        Policy.model_fields
    )
    # What a PATCH may clear with null (docs/control-plane.md says which).
    assert POLICY_CLEARABLE_FIELDS == (
        "description",
        "severity",
        "appliesToAgents",
        "prerequisites",
    )


def test_agent_and_grant_requests_set_no_server_field() -> None:
    for request, model in ((AgentCreate, Agent), (GrantCreate, Grant)):
        settable = fields_with(model, FieldRole.SET_BY_SERVER, present=False)
        assert set(request.model_fields) <= set(settable), request.__name__


async def test_the_document_carries_the_published_fields_in_order(
    client: httpx.AsyncClient,
) -> None:
    a = await make_agent(client, "agent-a")
    await make_agent(client, "agent-b")
    body = {"targetAgentId": "agent-b", "allowedActions": ["read"]}
    grant = (await client.post("/agents/agent-a/grants", json=body)).json()
    policy = (await client.post("/policies", json=REFERENCE_POLICIES[0])).json()
    document, _ = await published(client)
    assert list(document["agents"][0]) == list(AGENT_DOCUMENT_FIELDS)
    assert document["agents"][0] == {k: a[k] for k in AGENT_DOCUMENT_FIELDS}
    assert list(document["grants"][0]) == list(GRANT_DOCUMENT_FIELDS)
    assert document["grants"][0] == {k: grant[k] for k in GRANT_DOCUMENT_FIELDS}
    assert document["policies"] == [policy]
    assert list(policy) == list(Policy.model_fields)


@pytest.mark.parametrize(
    ("table", "change", "named"),
    [
        ("policies", lambda o: o | {"isActive": "maybe"}, "isActive"),
        ("policies", lambda o: o | {"colour": "red"}, "colour"),
        ("agents", lambda o: {k: v for k, v in o.items() if k != "name"}, "name"),
        ("grants", lambda o: o | {"allowedActions": "read"}, "allowedActions"),
    ],
)
async def test_a_stored_row_that_is_not_an_object_is_refused_at_open(
    tmp_path: Path, table: str, change: Callable[[dict[str, Any]], dict[str, Any]], named: str
) -> None:
    db_path = tmp_path / "control.db"
    async with ControlPlaneHarness(db_path) as cp, cp.client() as client:
        await make_agent(client, "agent-a")
        await make_agent(client, "agent-b")
        body = {"targetAgentId": "agent-b", "allowedActions": ["read"]}
        assert (await client.post("/agents/agent-a/grants", json=body)).status_code == 201
        assert (await client.post("/policies", json=REFERENCE_POLICIES[1])).status_code == 201
    with sqlite3.connect(db_path) as db:
        (text,) = db.execute(f"SELECT object_json FROM {table} LIMIT 1").fetchone()
        db.execute(f"UPDATE {table} SET object_json = ?", (json.dumps(change(json.loads(text))),))

    with pytest.raises(StoreError) as raised:
        await ControlPlane.open(db_path)
    assert str(db_path) in str(raised.value) and named in str(raised.value)


async def test_invalid_json_in_a_stored_row_is_refused_at_open(tmp_path: Path) -> None:
    db_path = tmp_path / "control.db"
    async with ControlPlaneHarness(db_path) as cp, cp.client() as client:
        await make_agent(client, "agent-a")
    with sqlite3.connect(db_path) as db:
        db.execute("UPDATE agents SET object_json = ?", ('{"id": "x", "name": ',))
    with pytest.raises(StoreError, match="agent that cannot be read"):
        await ControlPlane.open(db_path)
