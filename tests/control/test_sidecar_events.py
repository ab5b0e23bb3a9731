"""``POST /api/v1/sidecar/events``: batches from sidecars reach the handlers
registered for their type once per event id, inside one side transaction;
a bad event refuses the whole batch, naming it, and records nothing."""

from __future__ import annotations

import sqlite3
import uuid
from typing import Any

import pytest

from pdp.control import Event, SideTransaction
from tests.control._harness import ControlPlaneHarness
from tests.control._helpers import error_of


def decision_event(**data: Any) -> dict[str, Any]:
    body = {
        "decisionId": uuid.uuid4().hex,
        "agentId": "agent-a",
        "decision": "BLOCK",
        "policies": [
            {
                "id": "p1",
                "name": "P1",
                "type": "injection_scan",
                "mode": "block",
                "severity": "high",
            }
        ],
        "snapshotRevision": 3,
        "requestId": "r1",
        "approvalId": "",
    }
    body.update(data)
    return {
        "id": str(uuid.uuid4()),
        "type": "decision",
        "time": "2026-01-02T03:04:05Z",
        "data": body,
    }


@pytest.fixture
def seen(control_plane: ControlPlaneHarness) -> list[Event]:
    """Every decision event handed to a handler registered by the test."""
    return control_plane.record("decision")


async def test_a_batch_is_handled_once_per_event_id(
    control_plane: ControlPlaneHarness, seen: list[Event]
) -> None:
    key = await control_plane.create_key("edge-1", "sidecar")
    events = [decision_event(), decision_event()]
    batch = {"sidecarId": "edge-1", "events": events}
    async with control_plane.client(key) as client:
        first = await client.post("/sidecar/events", json=batch)
        assert first.status_code == 200, first.text
        assert first.json() == {"accepted": 2, "duplicates": 0}
        again = await client.post("/sidecar/events", json=batch)
        assert again.json() == {"accepted": 2, "duplicates": 2}
    assert [e.id for e in seen] == [e["id"] for e in events]
    assert seen[0].sidecar_id == "edge-1" and seen[0].data.model_dump()["snapshotRevision"] == 3


@pytest.mark.parametrize(
    ("event", "field"),
    [
        ({**decision_event(), "type": "decision.v2"}, "events[1].type"),
        ({**decision_event(), "id": "not-a-uuid"}, "events[1].id"),
        ({**decision_event(), "time": "yesterday"}, "events[1].time"),
        (decision_event(decision="MAYBE"), "events[1].data.decision"),
        (decision_event(snapshotRevision=-1), "events[1].data.snapshotRevision"),
        (decision_event(input="raw text"), "events[1].data.input"),
        (decision_event(policies=[{"id": "p"}]), "events[1].data.policies[0].name"),
    ],
)
async def test_a_bad_event_refuses_the_batch(
    control_plane: ControlPlaneHarness, seen: list[Event], event: dict[str, Any], field: str
) -> None:
    batch = {"sidecarId": "edge-1", "events": [decision_event(), event]}
    async with control_plane.client() as client:
        error = error_of(await client.post("/sidecar/events", json=batch), 422)
        assert error["field"] == field, error
        ok = await client.post("/sidecar/events", json={"sidecarId": "e", "events": []})
        assert ok.json() == {"accepted": 0, "duplicates": 0}
    assert seen == []
    with sqlite3.connect(control_plane.db_path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM sidecar_events").fetchone() == (0,)


async def test_bad_batches_name_the_field(control_plane: ControlPlaneHarness) -> None:
    async with control_plane.client() as client:
        too_many = {"sidecarId": "e", "events": [decision_event() for _ in range(1001)]}
        assert error_of(await client.post("/sidecar/events", json=too_many), 422)["field"] == (
            "events"
        )
        no_id: dict[str, Any] = {"events": []}
        assert error_of(await client.post("/sidecar/events", json=no_id), 422)["field"] == (
            "sidecarId"
        )


async def test_only_sidecar_and_admin_keys_post_events(control_plane: ControlPlaneHarness) -> None:
    reviewer = await control_plane.create_key("alice", "reviewer")
    async with control_plane.client(reviewer) as client:
        response = await client.post("/sidecar/events", json={"sidecarId": "e", "events": []})
        error = error_of(response, 403)
        assert "admin or sidecar" in error["message"], error


async def test_a_failing_handler_records_nothing(control_plane: ControlPlaneHarness) -> None:
    written: list[str] = []

    async def write_then_fail(tx: SideTransaction, event: Event) -> None:
        await tx.execute(
            "INSERT INTO sidecar_events (event_id, type, sidecar_id, received_at_us)"
            " VALUES ('marker', 'x', 'x', 0)"
        )
        written.append(event.id)
        raise RuntimeError("handler bug")

    control_plane.control.events.on_event("decision", write_then_fail)
    batch = {"sidecarId": "edge-1", "events": [decision_event()]}
    async with control_plane.client() as client:
        error_of(await client.post("/sidecar/events", json=batch), 500)
    assert written
    with sqlite3.connect(control_plane.db_path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM sidecar_events").fetchone() == (0,)


async def test_a_side_transaction_cannot_write_published_tables(
    control_plane: ControlPlaneHarness,
) -> None:
    from pdp.control import StoreError

    store = control_plane.control.store
    with pytest.raises(StoreError, match="cannot write what the snapshot publishes"):
        async with store.side_transaction() as tx:
            await tx.execute("UPDATE snapshot_revision SET revision = 99")
    assert await store.revision() == 0
