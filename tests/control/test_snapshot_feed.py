"""GET /api/v1/snapshot: ETag and If-None-Match, long polling, one revision
per committed write under concurrency, and a document that always compiles."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable

import httpx
import pytest

from pdp.control import create_api_key, revoke_api_keys
from pdp.engine import compile_snapshot, parse_document
from tests._wait import until
from tests.control._harness import ControlPlaneHarness
from tests.control._helpers import REFERENCE_POLICIES, make_agent, published

# The same API on both control-plane backends.
pytestmark = pytest.mark.control_databases


async def test_etag_and_if_none_match(client: httpx.AsyncClient) -> None:
    first = await client.get("/snapshot")
    assert first.status_code == 200
    assert first.headers["ETag"] == '"0"'
    assert first.headers["Content-Type"] == "application/json"
    assert first.json() == {"revision": 0, "agents": [], "policies": [], "grants": []}

    not_modified = await client.get("/snapshot", headers={"If-None-Match": '"0"'})
    assert not_modified.status_code == 304
    assert not_modified.content == b""
    assert not_modified.headers["ETag"] == '"0"'
    for header in ('W/"0"', '"7", "0"', "*"):
        assert (await client.get("/snapshot", headers={"If-None-Match": header})).status_code == 304

    await make_agent(client, "agent-a")
    changed = await client.get("/snapshot", headers={"If-None-Match": '"0"'})
    assert changed.status_code == 200
    assert changed.headers["ETag"] == '"1"'
    assert changed.json()["revision"] == 1


async def test_the_document_is_what_pdp_serve_reads(client: httpx.AsyncClient) -> None:
    for body in REFERENCE_POLICIES:
        await client.post("/policies", json=body)
    await make_agent(client, "agent-a")
    response = await client.get("/snapshot")
    # parse_document is what a sidecar's snapshot source runs on the bytes.
    compiled = compile_snapshot(parse_document(response.content))
    assert compiled.revision == 5
    assert len(compiled.policies) == 4


async def held(control_plane: ControlPlaneHarness, poll: asyncio.Task[httpx.Response]) -> None:
    """Waits until the control plane holds ``poll`` (or it has been answered)."""
    await until(
        lambda: control_plane.control.long_polls_waiting == 1 or poll.done(), what="a held poll"
    )


async def test_long_poll_returns_promptly_after_a_pause(
    control_plane: ControlPlaneHarness, client: httpx.AsyncClient
) -> None:
    agent = await make_agent(client, "my-chatbot")
    etag = (await client.get("/snapshot")).headers["ETag"]
    poll = asyncio.create_task(
        client.get("/snapshot", params={"wait": 30}, headers={"If-None-Match": etag})
    )
    await held(control_plane, poll)
    assert not poll.done()  # held: nothing changed yet

    started = time.monotonic()
    response = await client.patch(f"/agents/{agent['id']}/pause", json={"reason": "incident"})
    assert response.status_code == 200
    answer = await poll
    elapsed = time.monotonic() - started

    assert answer.status_code == 200
    # Woken by the change, not by its wait (30 s) passing; generous for a loaded machine.
    assert elapsed < 5.0, f"long poll answered {elapsed:.3f}s after the pause"
    assert answer.headers["ETag"] == f'"{int(etag.strip(chr(34))) + 1}"'
    assert answer.json()["agents"][0]["paused"] is True


async def test_long_poll_answers_304_when_wait_passes(client: httpx.AsyncClient) -> None:
    started = time.monotonic()
    response = await client.get("/snapshot", params={"wait": 0.3}, headers={"If-None-Match": '"0"'})
    elapsed = time.monotonic() - started
    assert response.status_code == 304
    assert 0.3 <= elapsed < 10.0
    # A stale ETag is answered at once, whatever wait says.
    await make_agent(client, "agent-a")
    started = time.monotonic()
    response = await client.get("/snapshot", params={"wait": 30}, headers={"If-None-Match": '"0"'})
    assert response.status_code == 200
    assert time.monotonic() - started < 10.0


async def test_wait_out_of_range_is_422(client: httpx.AsyncClient) -> None:
    for wait in ("-1", "61", "soon", "nan"):
        response = await client.get("/snapshot", params={"wait": wait})
        assert response.status_code == 422, wait
        assert response.json()["error"]["field"] == "wait"


async def test_shutdown_ends_open_long_polls(control_plane: ControlPlaneHarness) -> None:
    async with control_plane.client() as client:
        poll = asyncio.create_task(
            client.get("/snapshot", params={"wait": 60}, headers={"If-None-Match": '"0"'})
        )
        await held(control_plane, poll)
        started = time.monotonic()
        await control_plane.stop()
        assert time.monotonic() - started < 20.0  # not the poll's 60 s
        assert (await poll).status_code == 304


async def test_every_kind_of_write_publishes_a_compiling_snapshot(
    client: httpx.AsyncClient,
) -> None:
    revisions = []

    async def check() -> None:
        document, compiled = await published(client)
        assert compiled.revision == document["revision"]
        revisions.append(document["revision"])

    created = []
    for body in REFERENCE_POLICIES:
        created.append((await client.post("/policies", json=body)).json())
        await check()
    a = await make_agent(client, "agent-a")
    await check()
    await make_agent(client, "agent-b")
    await check()
    scoped = {**REFERENCE_POLICIES[0], "name": "Scoped", "appliesToAgents": ["agent-a"]}
    assert (await client.post("/policies", json=scoped)).status_code == 201
    await check()
    response = await client.patch(f"/policies/{created[1]['id']}", json={"isActive": False})
    assert response.status_code == 200
    await check()
    assert (await client.delete(f"/policies/{created[3]['id']}")).status_code == 200
    await check()
    assert (await client.patch(f"/agents/{a['id']}/pause", json={"reason": "r"})).status_code == 200
    await check()
    assert (await client.patch("/agents/agent-a/resume")).status_code == 200
    await check()
    body = {"targetAgentId": "agent-b", "allowedActions": ["invoke"]}
    grant = (await client.post("/agents/agent-a/grants", json=body)).json()
    await check()
    assert (await client.delete(f"/agents/agent-a/grants/{grant['id']}")).status_code == 200
    await check()
    assert revisions == list(range(1, 14))


async def test_concurrent_writers_bump_the_revision_once_each(client: httpx.AsyncClient) -> None:
    agents = [await make_agent(client, f"agent-{i}") for i in range(5)]
    start = (await published(client))[0]["revision"]

    def write(i: int) -> Awaitable[httpx.Response]:
        agent = agents[i % 5]["id"]
        if i % 3 == 0:
            return client.patch(f"/agents/{agent}/pause", json={"reason": f"writer {i}"})
        if i % 3 == 1:
            return client.patch(f"/agents/{agent}/resume")
        body = {**REFERENCE_POLICIES[2], "name": f"limit {i}"}
        return client.post("/policies", json=body)

    # Invalid writes race with the valid ones and must not bump anything.
    def refused(i: int) -> Awaitable[httpx.Response]:
        body = {
            **REFERENCE_POLICIES[2],
            "name": f"bad {i}",
            "ruleDefinition": {"daily_budget": -1 - i},
        }
        return client.post("/policies", json=body)

    responses = await asyncio.gather(
        *(write(i) for i in range(50)), *(refused(i) for i in range(10))
    )

    assert [r.status_code for r in responses[:50]] == [
        201 if i % 3 == 2 else 200 for i in range(50)
    ]
    assert all(r.status_code == 422 for r in responses[50:])
    document, compiled = await published(client)
    assert document["revision"] == start + 50
    assert sorted(p["name"] for p in document["policies"]) == sorted(
        f"limit {i}" for i in range(50) if i % 3 == 2
    )
    assert len(compiled.policies) == 16


async def test_restart_in_process_keeps_the_revision_and_the_key(
    control_plane: ControlPlaneHarness,
) -> None:
    async with control_plane.client() as client:
        await make_agent(client, "agent-a")
        before = await client.get("/snapshot")
    await control_plane.restart()
    async with control_plane.client() as client:
        after = await client.get("/snapshot", headers={"If-None-Match": before.headers["ETag"]})
        assert after.status_code == 304
        assert (await client.patch("/agents/agent-a/pause")).status_code == 200
        assert (await client.get("/snapshot")).headers["ETag"] == '"2"'


async def test_api_key_writes_leave_the_revision_and_long_polls_alone(
    control_plane: ControlPlaneHarness, client: httpx.AsyncClient
) -> None:
    assert control_plane.server is not None and control_plane.server.control is not None
    store = control_plane.server.control.store
    await make_agent(client, "agent-a")
    poll = asyncio.create_task(
        client.get("/snapshot", params={"wait": 1.0}, headers={"If-None-Match": '"1"'})
    )
    await held(control_plane, poll)

    key = await create_api_key(store, "ci")
    assert await revoke_api_keys(store, key_id=key.id) == 1
    await create_api_key(store, "kept")

    answer = await poll
    assert answer.status_code == 304  # held for the whole wait: nothing was published
    assert answer.headers["ETag"] == '"1"'
    assert await store.revision() == 1
    assert (await client.get("/snapshot")).headers["ETag"] == '"1"'
    # The next published write still takes the next revision.
    await make_agent(client, "agent-b")
    assert await store.revision() == 2
    assert (await published(client))[0]["revision"] == 2
