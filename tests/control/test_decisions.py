"""``GET /api/v1/decisions``: the decisions sidecars ship (``decision``
events) are stored by the control plane, read with filters and pages, and
exported as CloudEvents; retention prunes them by age and by count."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from tests._wait import until
from tests.control._harness import ControlPlaneHarness
from tests.control._helpers import error_of
from tests.control.test_sidecar_events import decision_event


def event_at(time: str, **data: Any) -> dict[str, Any]:
    return {**decision_event(**data), "time": time}


async def ship(
    cp: ControlPlaneHarness, events: list[dict[str, Any]], sidecar: str = "edge-1"
) -> None:
    key = await cp.create_key(sidecar, "sidecar")
    async with cp.client(key) as client:
        for start in range(0, len(events), 500):
            batch = {"sidecarId": sidecar, "events": events[start : start + 500]}
            answer = await client.post("/sidecar/events", json=batch)
            assert answer.status_code == 200, answer.text


async def test_shipped_decisions_are_listed_newest_first_with_filters(
    control_plane: ControlPlaneHarness,
) -> None:
    async with control_plane.client() as client:
        agent = (await client.post("/agents", json={"name": "support-bot"})).json()
    events = [
        event_at("2026-01-01T10:00:00Z", agentId=agent["id"], decision="BLOCK"),
        event_at("2026-01-01T11:00:00Z", agentId="other", decision="ALLOW_WITH_WARNINGS"),
        event_at("2026-01-01T12:00:00Z", agentId=agent["id"], decision="ALLOW_WITH_WARNINGS"),
    ]
    await ship(control_plane, events)
    reviewer = await control_plane.create_key("alice", "reviewer")
    async with control_plane.client(reviewer) as client:
        everything = (await client.get("/decisions")).json()
        assert [d["decisionId"] for d in everything["decisions"]] == [
            e["data"]["decisionId"] for e in reversed(events)
        ]
        assert everything["nextCursor"] is None
        first = everything["decisions"][-1]
        assert first["decidedAt"] == "2026-01-01T10:00:00Z" and first["sidecarId"] == "edge-1"
        assert first["policies"][0] == {
            "id": "p1",
            "name": "P1",
            "type": "injection_scan",
            "mode": "block",
            "severity": "high",
        }
        by_name = (await client.get("/decisions", params={"agent": "support-bot"})).json()
        assert len(by_name["decisions"]) == 2
        blocked = (await client.get("/decisions", params={"decision": "BLOCK"})).json()
        assert [d["agentId"] for d in blocked["decisions"]] == [agent["id"]]
        window = {"since": "2026-01-01T10:30:00Z", "until": "2026-01-01T12:00:00Z"}
        within = (await client.get("/decisions", params=window)).json()
        assert [d["agentId"] for d in within["decisions"]] == ["other"]

        bad = await client.get("/decisions", params={"since": "yesterday"})
        assert error_of(bad, 422)["field"] == "since"
        bad = await client.get("/decisions", params={"decision": "MAYBE"})
        assert bad.status_code == 422
        bad = await client.get("/decisions", params={"cursor": "abc"})
        assert error_of(bad, 422)["field"] == "cursor"
    sidecar = await control_plane.create_key("edge-2", "sidecar")
    async with control_plane.client(sidecar) as client:
        assert (await client.get("/decisions")).status_code == 403


async def test_pages_cover_every_decision_once(control_plane: ControlPlaneHarness) -> None:
    events = [event_at(f"2026-01-01T10:{i:02d}:00Z", requestId=f"r{i}") for i in range(25)]
    await ship(control_plane, events)
    seen: list[str] = []
    cursor: str | None = None
    async with control_plane.client() as client:
        while True:
            params: dict[str, Any] = {"limit": 10}
            if cursor is not None:
                params["cursor"] = cursor
            page = await client.get("/decisions", params=params)
            body = page.json()
            seen.extend(d["requestId"] for d in body["decisions"])
            cursor = body["nextCursor"]
            assert page.headers.get("x-pdp-next-cursor") == cursor
            if cursor is None:
                break
    assert seen == [f"r{i}" for i in reversed(range(25))]


async def test_decisions_export_as_cloudevents(control_plane: ControlPlaneHarness) -> None:
    events = [event_at("2026-01-01T10:00:00Z"), event_at("2026-01-01T10:00:01Z")]
    await ship(control_plane, events, sidecar="edge-7")
    async with control_plane.client() as client:
        lines = await client.get("/decisions", params={"format": "cloudevents"})
        assert lines.headers["content-type"].startswith("application/x-ndjson")
        exported = [json.loads(line) for line in lines.text.splitlines()]
        batch = await client.get(
            "/decisions", headers={"Accept": "application/cloudevents-batch+json"}
        )
        assert batch.headers["content-type"].startswith("application/cloudevents-batch+json")
        assert batch.json() == exported
    newest = exported[0]
    assert newest["specversion"] == "1.0" and newest["type"] == "dev.pdp.decision.v1"
    assert newest["source"] == "urn:pdp:sidecar:edge-7"
    assert newest["id"] == events[1]["data"]["decisionId"] == newest["data"]["decisionId"]
    assert newest["time"] == "2026-01-01T10:00:01Z" and newest["subject"] == "agent-a"


async def test_retention_prunes_by_age_and_by_count(tmp_path: Path) -> None:
    async with ControlPlaneHarness(
        tmp_path / "control.db", decision_log_retention=86400.0, decision_log_max_rows=30
    ) as cp:
        old = [event_at("2020-01-01T00:00:00Z", requestId=f"old{i}") for i in range(5)]
        recent = [event_at("2999-01-01T00:00:00Z", requestId=f"new{i}") for i in range(40)]
        await ship(cp, old + recent)
        assert await cp.control.decisions.prune() == 5 + 10
        async with cp.client() as client:
            kept = (await client.get("/decisions", params={"limit": 1000})).json()["decisions"]
        assert [d["requestId"] for d in kept] == [f"new{i}" for i in reversed(range(10, 40))]


def decisions_bytes(path: Path) -> int:
    """The pages the decisions and their indexes take (the write-ahead log
    included: it is read through a connection)."""
    with sqlite3.connect(path) as raw:
        (size,) = raw.execute(
            "SELECT sum(pgsize) FROM dbstat WHERE name LIKE 'decisions%'"
        ).fetchone()
    return int(size)


async def test_the_decisions_stop_growing_under_steady_load(tmp_path: Path) -> None:
    """Rows beyond ``--decision-log-max-rows`` are pruned as fast as sidecars
    ship new ones, and SQLite reuses the freed pages. (The ids of events
    taken, which make a retried batch count once, are kept a day.)"""
    db = tmp_path / "control.db"
    async with ControlPlaneHarness(db, decision_log_max_rows=500, prune_interval=3600) as cp:
        sizes = []
        for round_number in range(12):
            events = [
                event_at("2999-01-01T00:00:00Z", requestId=f"r{round_number}-{i}")
                for i in range(250)
            ]
            await ship(cp, events, sidecar=f"edge-{round_number}")
            await cp.control.decisions.prune()
            sizes.append(decisions_bytes(db))
        assert max(sizes[3:]) <= sizes[2] * 1.1, sizes
        rows = await cp.control.store.fetchall("SELECT count(*) FROM decisions")
        assert rows[0][0] == 500


async def test_the_pruner_runs_in_the_background(tmp_path: Path) -> None:
    async with ControlPlaneHarness(
        tmp_path / "control.db", decision_log_max_rows=3, prune_interval=0.05
    ) as cp:
        await ship(cp, [event_at("2999-01-01T00:00:00Z") for _ in range(10)])
        await until(lambda: cp.control.decisions.deleted >= 7, what="the background prune")
        rows = await cp.control.store.fetchall("SELECT count(*) FROM decisions")
        assert rows[0][0] == 3
        assert cp.control.decisions.deleted >= 7
