"""The kill switch is never lost: the control plane cannot publish a document
sidecars would refuse, a pause travels even in a document at the size limit
and even next to policies that do not compile, a sidecar whose newer
revisions are rejected goes stale, and the operator can see which sidecars
have applied a pause."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from pdp.control import Agent, Store
from pdp.engine import (
    MAX_DOCUMENT_BYTES,
    compile_snapshot,
    format_time,
    parse_document,
    utc_now,
)
from pdp.v1 import policy_decision_service_pb2 as pb
from tests._clock import ManualClock
from tests.conftest import RunningSidecar, StartSidecar, example_document
from tests.control._harness import ControlPlaneHarness

VICTIM = "victim"
REASON_CHARS = 2000  # the longest pause reason a snapshot takes


async def decision(sidecar: RunningSidecar, agent: str) -> int:
    response = await sidecar.stub.Enforce(pb.EnforceRequest(agent_id=agent, input="hello"))
    return int(response.decision)


async def seconds_until_decision(
    sidecar: RunningSidecar, agent: str, want: int, within: float
) -> float:
    start = time.monotonic()
    while await decision(sidecar, agent) != want:
        if time.monotonic() - start > within:
            pytest.fail(f"{agent} did not get decision {want} within {within}s")
        await asyncio.sleep(0.01)
    return time.monotonic() - start


async def fill_near_the_limit(db: Path, free_bytes: int) -> None:
    """Stores VICTIM and enough paused agents (long reasons) that the
    published document is ``free_bytes`` short of the sidecars' limit."""
    now = format_time(utc_now())
    store = await Store.open(db)  # creates the tables
    await store.close()
    template = Agent(
        id="filler-00000",
        name="filler-00000",
        paused=True,
        pauseReason="r" * REASON_CHARS,
        pausedAt=now,
        createdAt=now,
        updatedAt=now,
    )
    published = template.model_dump(include={"id", "name", "paused", "pauseReason", "pausedAt"})
    per_agent = len(json.dumps(published, separators=(",", ":"))) + 1
    stored = template.model_dump_json()
    count = (MAX_DOCUMENT_BYTES - free_bytes) // per_agent
    names = [f"filler-{i:05}" for i in range(count)]
    rows = [(n, n, stored.replace("filler-00000", n)) for n in names]
    victim = Agent(id=VICTIM, name=VICTIM, createdAt=now, updatedAt=now)
    with sqlite3.connect(db) as connection:
        connection.execute(
            "INSERT INTO agents (id, name, object_json) VALUES (?, ?, ?)",
            (VICTIM, VICTIM, victim.model_dump_json()),
        )
        connection.executemany("INSERT INTO agents (id, name, object_json) VALUES (?, ?, ?)", rows)
        connection.execute("UPDATE snapshot_revision SET revision = 1")


@pytest.mark.timeout(180)
async def test_a_document_over_the_limit_is_refused_and_a_pause_at_the_limit_arrives(
    tmp_path: Path, start_sidecar: StartSidecar
) -> None:
    db = tmp_path / "control.db"
    await fill_near_the_limit(db, free_bytes=MAX_DOCUMENT_BYTES // 64)  # 1 MiB short
    async with ControlPlaneHarness(db) as cp, cp.client(timeout=120) as client:
        size = len((await client.get("/snapshot")).content)
        assert MAX_DOCUMENT_BYTES - 2 * 2**20 < size <= MAX_DOCUMENT_BYTES
        sidecar = await start_sidecar(source=cp.snapshot_url, api_key=cp.api_key, name="big")
        assert await decision(sidecar, VICTIM) == pb.DECISION_ALLOW
        compiled_policies = sidecar.sidecar.holder.active.snapshot.policies  # type: ignore[union-attr]

        # A policy whose document would pass the limit is refused whole,
        # naming the limit; nothing is published.
        revision = (await client.get("/snapshot")).headers["ETag"]
        response = await client.post(
            "/policies",
            json={
                "name": "Too much",
                "policyType": "injection_scan",
                "enforcementMode": "block",
                "ruleDefinition": {"patterns": ["x" * 900 + str(i) for i in range(900)]},
            },
        )
        assert response.status_code == 413, response.text
        assert str(MAX_DOCUMENT_BYTES) in response.json()["error"]["message"]
        assert (await client.get("/snapshot")).headers["ETag"] == revision

        # The kill switch still fits and arrives: a pause costs a sidecar a
        # JSON parse and no compile.
        (
            await client.patch(f"/agents/{VICTIM}/pause", json={"reason": "incident"})
        ).raise_for_status()
        await seconds_until_decision(sidecar, VICTIM, pb.DECISION_AGENT_PAUSED, within=10.0)
        active = sidecar.sidecar.holder.active
        assert active is not None and active.snapshot.policies is compiled_policies
        (await client.patch(f"/agents/{VICTIM}/resume")).raise_for_status()
        await seconds_until_decision(sidecar, VICTIM, pb.DECISION_ALLOW, within=10.0)


def _document(revision: int, *, paused: bool, broken: bool) -> dict[str, Any]:
    doc = example_document()
    doc["revision"] = revision
    for agent in doc["agents"]:
        if agent["name"] == "my-chatbot":
            agent["paused"] = paused
            agent["pauseReason"] = "incident" if paused else None
    if broken:
        doc["policies"].append(
            {
                "name": "New",
                "policyType": "telepathy",
                "enforcementMode": "block",
                "ruleDefinition": {},
            }
        )
    return doc


async def test_pauses_hold_in_a_document_whose_policies_do_not_compile(
    start_sidecar: StartSidecar,
) -> None:
    sidecar = await start_sidecar(_document(1, paused=False, broken=False))
    assert await decision(sidecar, "my-chatbot") == pb.DECISION_ALLOW

    await sidecar.write_snapshot(_document(2, paused=True, broken=True))
    await seconds_until_decision(sidecar, "my-chatbot", pb.DECISION_AGENT_PAUSED, within=15.0)
    # The pause is laid over the active policies before the document is
    # compiled; the compile's rejection is recorded after it.
    holder = sidecar.sidecar.holder
    await sidecar.wait_for(lambda: holder.last_rejection is not None)
    status = await sidecar.stub.AgentStatus(pb.AgentStatusRequest(agent_id="my-chatbot"))
    assert status.state.paused and status.state.paused_reason == "incident"
    snapshot = status.state.snapshot
    assert snapshot.revision == 1  # the policies of revision 1 keep deciding
    rejection = snapshot.last_rejection
    assert rejection.revision == 2 and rejection.source == str(sidecar.snapshot_path)
    assert [e.path for e in rejection.errors] == ["policies[5].policyType"]

    # A resume in a document that is still broken holds too.
    await sidecar.write_snapshot(_document(3, paused=False, broken=True))
    await seconds_until_decision(sidecar, "my-chatbot", pb.DECISION_ALLOW, within=15.0)


async def test_a_sidecar_whose_newer_revisions_are_rejected_goes_stale(
    start_sidecar: StartSidecar,
) -> None:
    clock = ManualClock()
    sidecar = await start_sidecar(
        _document(1, paused=False, broken=False), clock=clock, max_staleness=30.0
    )
    health = health_pb2_grpc.HealthStub(sidecar.channel)
    await sidecar.write_snapshot(_document(2, paused=False, broken=True))
    holder = sidecar.sidecar.holder
    await sidecar.wait_for(lambda: holder.last_rejection is not None)

    # The file keeps answering (no change), but with a rejected document:
    # that is no fresher than silence.
    clock.advance(seconds=31)
    await sidecar.wait_for(lambda: holder.stale and not holder.serving)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await decision(sidecar, "my-chatbot")
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "revision 2" in str(caught.value.details()) and "rejected" in str(caught.value.details())
    deadline = time.monotonic() + 15.0
    while (await health.Check(health_pb2.HealthCheckRequest())).status != (
        health_pb2.HealthCheckResponse.NOT_SERVING
    ):
        assert time.monotonic() < deadline, "health still SERVING"
        await asyncio.sleep(0.02)

    # A good document makes it current again.
    await sidecar.write_snapshot(_document(3, paused=False, broken=False))
    await sidecar.wait_for(lambda: holder.serving)
    assert await decision(sidecar, "my-chatbot") == pb.DECISION_ALLOW


async def test_get_agent_shows_which_sidecars_have_applied_a_pause(
    control_plane: ControlPlaneHarness, client: httpx.AsyncClient, start_sidecar: StartSidecar
) -> None:
    (await client.post("/agents", json={"name": VICTIM})).raise_for_status()
    sidecars = [
        await start_sidecar(
            source=control_plane.snapshot_url,
            api_key=control_plane.api_key,
            name=name,
            sidecar_name=f"pod-{name}",
        )
        for name in ("east", "west")
    ]

    paused = (await client.patch(f"/agents/{VICTIM}/pause", json={"reason": "incident"})).json()
    for s in sidecars:
        await seconds_until_decision(s, VICTIM, pb.DECISION_AGENT_PAUSED, within=15.0)

    async def listed() -> list[dict[str, Any]]:
        body = (await client.get(f"/agents/{VICTIM}")).json()
        return list(body["sidecars"])

    deadline = time.monotonic() + 15.0
    while not (len(reports := await listed()) == 2 and all(r["applied"] for r in reports)):
        assert time.monotonic() < deadline, reports
        await asyncio.sleep(0.02)
    assert [r["sidecar"] for r in reports] == ["pod-east", "pod-west"]
    for report in reports:
        assert report["revision"] == paused["revision"] == report["snapshotRevision"]
        assert report["seenAt"].endswith("Z")


def test_json_documents_are_read_as_json() -> None:
    """What a control plane publishes is read by the JSON reader (the YAML
    one takes 6 to 20 times as long on a large document), and read as JSON: the
    YAML reader takes ``1e-07`` (how Python writes 0.0000001) for a string,
    so a sidecar would reject a tiny budget the control plane accepted."""
    doc = example_document()
    doc["policies"].append(
        {
            "name": "Tiny",
            "policyType": "cost_limit",
            "enforcementMode": "block",
            "ruleDefinition": {"max_cost_per_execution": 0.0000001, "daily_budget": 1e20},
        }
    )
    text = json.dumps(doc)
    assert "1e-07" in text and "1e+20" in text
    assert parse_document(text) == doc
    compile_snapshot(parse_document(text))
    # A YAML flow mapping that is not JSON is still read as YAML.
    assert parse_document("{revision: 3, agents: []}") == {"revision": 3, "agents": []}
