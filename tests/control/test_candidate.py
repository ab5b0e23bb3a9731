"""The candidate snapshot on a real control plane: published whole or as
changes, validated like a write, served like the snapshot (ETag, long
poll), diffed, persisted, promoted in one write, dropped."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest

from pdp.engine import NO_USAGE, Decision, EnforceInput, compile_snapshot, utc_now
from tests.control._harness import ControlPlaneHarness
from tests.control._helpers import REFERENCE_POLICIES, error_of, make_agent, published
from tests.observe._scrape import scrape, value

# The same API on both control-plane backends.
pytestmark = pytest.mark.control_databases

INJECTION, PII, COST, BUDGET = REFERENCE_POLICIES
STRICT_PII = PII | {"enforcementMode": "block"}


async def _setup(client: httpx.AsyncClient) -> None:
    await make_agent(client, "my-chatbot")
    for body in (INJECTION, PII):
        assert (await client.post("/policies", json=body)).status_code == 201


async def test_changes_make_a_candidate_beside_the_published_snapshot(
    client: httpx.AsyncClient,
) -> None:
    await _setup(client)
    before, _ = await published(client)
    body = {"changes": [{"op": "put", "policy": STRICT_PII}, {"op": "put", "policy": COST}]}
    response = await client.post("/snapshot/candidate", json=body)
    assert response.status_code == 201, response.text
    out = response.json()
    assert out["basedOnRevision"] == before["revision"]
    assert out["diff"] == {
        "added": ["Daily Cost Limit"],
        "removed": [],
        "changed": ["PII Protection"],
    }
    # The published snapshot is untouched; the candidate is the next revision.
    after, _ = await published(client)
    assert after == before
    candidate = (await client.get("/snapshot/candidate")).json()
    assert candidate["revision"] == before["revision"] + 1
    assert candidate["agents"] == before["agents"]
    names = [p["name"] for p in candidate["policies"]]
    assert names == ["Block Prompt Injection", "PII Protection", "Daily Cost Limit"]
    # A policy that keeps its name keeps its id.
    assert candidate["policies"][1]["id"] == before["policies"][1]["id"]
    compiled = compile_snapshot(candidate)
    decision = compiled.enforce(
        EnforceInput(agent_id="my-chatbot", input="SSN 123-45-6789"), NO_USAGE, utc_now()
    )
    assert isinstance(decision, Decision) and decision.kind.value == "BLOCK"
    diff = (await client.get("/snapshot/candidate/diff")).json()
    assert diff["diff"] == out["diff"]
    deleted = {"changes": [{"op": "delete", "name": "Block Prompt Injection"}]}
    out = (await client.post("/snapshot/candidate", json=deleted)).json()
    assert out["diff"] == {"added": [], "removed": ["Block Prompt Injection"], "changed": []}


async def test_a_bad_candidate_is_refused_naming_the_field(client: httpx.AsyncClient) -> None:
    await _setup(client)
    bad_rule = COST | {"ruleDefinition": {"daily_budget": -5}}
    error = error_of(
        await client.post(
            "/snapshot/candidate", json={"changes": [{"op": "put", "policy": bad_rule}]}
        ),
        422,
    )
    assert error["field"] == "changes[0].policy.ruleDefinition.daily_budget"
    error = error_of(
        await client.post("/snapshot/candidate", json={"policies": [INJECTION, bad_rule]}), 422
    )
    assert error["field"] == "policies[1].ruleDefinition.daily_budget"
    for body, field in (
        ({"policies": [INJECTION, INJECTION]}, "policies[1].name"),
        ({"changes": [{"op": "delete", "name": "nope"}]}, "changes[0].name"),
        ({"changes": [{"op": "rename", "name": "x"}]}, "changes[0].op"),
        ({"policies": [], "changes": []}, None),
        ({}, None),
        ({"policies": [INJECTION], "revision": 4}, "revision"),
    ):
        assert error_of(await client.post("/snapshot/candidate", json=body), 422)["field"] == field
    assert (await client.get("/snapshot/candidate")).status_code == 404


async def test_the_candidate_is_long_polled_like_the_snapshot(client: httpx.AsyncClient) -> None:
    await _setup(client)
    missing = await client.get("/snapshot/candidate")
    assert missing.status_code == 404
    tag = missing.headers["ETag"]

    async def publish_soon() -> None:
        await asyncio.sleep(0.2)
        body = {"changes": [{"op": "put", "policy": STRICT_PII}]}
        assert (await client.post("/snapshot/candidate", json=body)).status_code == 201

    started = time.monotonic()
    task = asyncio.create_task(publish_soon())
    answer = await client.get(
        "/snapshot/candidate", params={"wait": 30}, headers={"If-None-Match": tag}
    )
    await task
    assert answer.status_code == 200 and time.monotonic() - started < 15
    assert answer.headers["ETag"] != tag
    held = await client.get(
        "/snapshot/candidate",
        params={"wait": 0.2},
        headers={"If-None-Match": answer.headers["ETag"]},
    )
    assert held.status_code == 304
    # A change to the published snapshot changes the candidate (it carries the agents).
    assert (await client.patch("/agents/my-chatbot/pause", json={"reason": "x"})).status_code == 200
    again = await client.get(
        "/snapshot/candidate", headers={"If-None-Match": answer.headers["ETag"]}
    )
    assert again.status_code == 200 and again.json()["agents"][0]["paused"] is True


async def test_promotion_is_one_write_and_the_candidate_is_gone(
    client: httpx.AsyncClient,
) -> None:
    await _setup(client)
    before, _ = await published(client)
    body = {"policies": [STRICT_PII, COST]}
    assert (await client.post("/snapshot/candidate", json=body)).status_code == 201
    promoted = await client.post("/snapshot/candidate/promote")
    assert promoted.status_code == 200, promoted.text
    after, _ = await published(client)
    assert after["revision"] == before["revision"] + 1
    assert [p["name"] for p in after["policies"]] == ["PII Protection", "Daily Cost Limit"]
    assert [p["name"] for p in promoted.json()["policies"]] == [
        "PII Protection",
        "Daily Cost Limit",
    ]
    assert after["policies"][0]["enforcementMode"] == "block"
    assert (await client.get("/snapshot/candidate")).status_code == 404
    assert (await client.post("/snapshot/candidate/promote")).status_code == 404
    listed = (await client.get("/policies")).json()["policies"]
    assert [p["name"] for p in listed] == ["PII Protection", "Daily Cost Limit"]


async def test_the_candidate_survives_a_restart_and_can_be_dropped(
    control_plane: ControlPlaneHarness,
) -> None:
    async with control_plane.client() as client:
        await _setup(client)
        body = {"changes": [{"op": "put", "policy": STRICT_PII}]}
        assert (await client.post("/snapshot/candidate", json=body)).status_code == 201
        document = (await client.get("/snapshot/candidate")).json()
    await control_plane.restart()
    async with control_plane.client() as client:
        assert (await client.get("/snapshot/candidate")).json() == document
        dropped = await client.delete("/snapshot/candidate")
        assert dropped.status_code == 200 and dropped.json()["diff"]["changed"] == [
            "PII Protection"
        ]
        assert (await client.get("/snapshot/candidate")).status_code == 404
        assert (await client.delete("/snapshot/candidate")).status_code == 404
    await control_plane.restart()
    async with control_plane.client() as client:
        assert (await client.get("/snapshot/candidate")).status_code == 404


async def test_control_plane_metrics(tmp_path: Any) -> None:
    harness = ControlPlaneHarness(tmp_path / "control.db", metrics_listen="127.0.0.1:0")
    async with harness, harness.client() as client:
        assert harness.server is not None
        url = harness.server.metrics_url
        await _setup(client)
        await client.get("/policies/nope")
        await client.get("/nothing")
        waiting = asyncio.create_task(
            client.get("/snapshot", params={"wait": 5}, headers={"If-None-Match": '"3"'})
        )
        for _ in range(200):
            if value(await scrape(url), "pdp_control_long_polls_waiting") == 1:
                break
            await asyncio.sleep(0.01)
        samples = await scrape(url)
        assert value(samples, "pdp_control_long_polls_waiting") == 1
        await client.post("/snapshot/candidate", json={"policies": [PII]})
        assert (await waiting).status_code in (200, 304)
        samples = await scrape(url)
        requests = "pdp_control_requests_total"
        assert value(samples, requests, route="/api/v1/policies", method="POST", status="201") == 2
        route = "/api/v1/policies/{policy_id}"
        assert value(samples, requests, route=route, method="GET", status="404") == 1
        assert value(samples, requests, route="unmatched", method="GET", status="404") == 1
        assert value(samples, "pdp_snapshot_revision") == 3
        assert value(samples, "pdp_snapshot_candidate") == 1
        assert value(samples, "pdp_control_long_polls_waiting") == 0
        async with httpx.AsyncClient() as anonymous:
            await anonymous.get(f"{harness.base_url}/api/v1/agents")
        samples = await scrape(url)
        assert value(samples, requests, route="unmatched", method="GET", status="401") == 1
