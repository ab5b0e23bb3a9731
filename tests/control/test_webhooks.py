"""Webhooks against real HTTPS receivers on loopback: registration and its
bad input, signed deliveries a receiver verifies with the SDK, retries on
failure and timeout until delivered or failed (visible through the API),
and the events that reach them (pause and resume, decisions that fired a
policy, budget thresholds, traces)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from pdp.control import WEBHOOK_EVENTS
from tests._https import Hang, HttpsServer, Reply, fail_times, reply_json
from tests.control._harness import ControlPlaneHarness
from tests.control._helpers import error_of
from tests.control._webhooks import (
    KNOWN_SECRET,
    delivered_events,
    fast_control_plane,
    register,
    wait_for_delivery,
)
from tests.control.test_sidecar_events import decision_event


@pytest.fixture
async def control_plane(tmp_path: Path) -> AsyncIterator[ControlPlaneHarness]:
    async for harness in fast_control_plane(tmp_path):
        yield harness


async def test_a_delivery_is_signed_the_standard_webhooks_way(
    control_plane: ControlPlaneHarness,
) -> None:
    with HttpsServer(reply_json({})) as receiver:
        async with control_plane.client() as client:
            hook = await register(client, f"{receiver.url}/hooks", ["agent.paused"])
            (await client.post("/agents", json={"name": "bot"})).raise_for_status()
            (await client.patch("/agents/bot/pause", json={"reason": "why"})).raise_for_status()
            delivery = await wait_for_delivery(client, hook["id"], "delivered")
        [request] = await receiver.received(1)

    assert request.target == "/hooks"
    msg_id = request.headers["webhook-id"]
    timestamp = request.headers["webhook-timestamp"]
    assert msg_id == delivery["id"] and msg_id.startswith("msg_")
    # Recomputed from the scheme's definition: HMAC-SHA256 keyed with the
    # base64 after whsec_, over "id.timestamp.body".
    key = base64.b64decode(KNOWN_SECRET.removeprefix("whsec_"))
    signed = f"{msg_id}.{timestamp}.".encode() + request.body
    expected = "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    assert request.headers["webhook-signature"] == expected
    [event] = delivered_events([request])
    assert event["type"] == "agent.paused"
    assert event["data"]["reason"] == "why"
    assert delivery["attempts"] == 1 and delivery["lastStatusCode"] == 200


async def test_the_known_answer_vector_signs_as_published() -> None:
    from pdp.engine import sign_webhook, signing_key

    key = signing_key(KNOWN_SECRET)
    signature = sign_webhook(
        key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, b'{"test": 2432232314}'
    )
    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


async def test_registration_list_delete_and_generated_secret(
    control_plane: ControlPlaneHarness,
) -> None:
    async with control_plane.client() as client:
        given = await register(client, "https://example.com/a", ["policy.violated"])
        assert given["secret"] == KNOWN_SECRET
        generated = await register(
            client, "http://example.com/b", ["agent.paused", "agent.paused"], secret=None
        )
        assert generated["events"] == ["agent.paused"]
        assert generated["secret"].startswith("whsec_")
        assert len(base64.b64decode(generated["secret"].removeprefix("whsec_"))) == 32

        listed = (await client.get("/webhooks")).json()["webhooks"]
        assert [h["id"] for h in listed] == [given["id"], generated["id"]]
        assert all("secret" not in h for h in listed)

        deleted = await client.delete(f"/webhooks/{given['id']}")
        assert deleted.status_code == 200 and deleted.json()["id"] == given["id"]
        error_of(await client.delete(f"/webhooks/{given['id']}"), 404)
        error_of(await client.get(f"/webhooks/{given['id']}/deliveries"), 404)
        listed = (await client.get("/webhooks")).json()["webhooks"]
        assert [h["id"] for h in listed] == [generated["id"]]

    # The registration survives a restart.
    await control_plane.restart()
    async with control_plane.client() as client:
        listed = (await client.get("/webhooks")).json()["webhooks"]
        assert [h["id"] for h in listed] == [generated["id"]]


async def test_only_admin_keys_change_webhooks(control_plane: ControlPlaneHarness) -> None:
    async with control_plane.client() as admin:
        hook = await register(admin, "https://example.com/a", ["agent.paused"])
    reviewer = await control_plane.create_key("alice", "reviewer")
    sidecar = await control_plane.create_key("edge", "sidecar")
    async with control_plane.client(reviewer) as client:
        assert (await client.get("/webhooks")).status_code == 200
        assert (await client.get(f"/webhooks/{hook['id']}/deliveries")).status_code == 200
        body = {"url": "https://example.com", "events": ["agent.paused"]}
        error_of(await client.post("/webhooks", json=body), 403)
        error_of(await client.delete(f"/webhooks/{hook['id']}"), 403)
        error_of(await client.post(f"/webhooks/{hook['id']}/test"), 403)
    async with control_plane.client(sidecar) as client:
        error_of(await client.get("/webhooks"), 403)


BAD_REGISTRATIONS: list[tuple[dict[str, Any], str, str]] = [
    ({"url": "ftp://example.com/x", "events": ["agent.paused"]}, "url", "http or https"),
    ({"url": "javascript:alert(1)", "events": ["agent.paused"]}, "url", "http or https"),
    ({"url": "https://", "events": ["agent.paused"]}, "url", "host"),
    ({"url": "https://a b.com", "events": ["agent.paused"]}, "url", "whitespace"),
    ({"url": "https://a.com:99999/", "events": ["agent.paused"]}, "url", "out of range"),
    ({"url": "https://x.com/" + "a" * 3000, "events": ["agent.paused"]}, "url", "2048"),
    ({"url": "https://x.com", "events": []}, "events", "at least one"),
    ({"url": "https://x.com", "events": ["agent.paused", "agent.exploded"]}, "events[1]", ""),
    ({"url": "https://x.com", "events": ["agent.paused"] * 500}, "events", "28"),
    ({"url": "https://x.com", "events": "agent.paused"}, "events", "list"),
    ({"url": "https://x.com", "events": ["webhook.test"]}, "events[0]", "unknown"),
    ({"url": "https://x.com", "events": ["agent.paused"], "secret": "short"}, "secret", ""),
    (
        {"url": "https://x.com", "events": ["agent.paused"], "secret": "whsec_not base64!"},
        "secret",
        "base64",
    ),
    (
        {"url": "https://x.com", "events": ["agent.paused"], "secret": "x" * 1000},
        "secret",
        "400",
    ),
    ({"url": "https://x.com", "events": ["agent.paused"], "extra": 1}, "extra", ""),
    ({"events": ["agent.paused"]}, "url", "required"),
]


async def test_bad_registrations_are_refused_naming_the_field(
    control_plane: ControlPlaneHarness,
) -> None:
    async with control_plane.client() as client:
        for body, field, words in BAD_REGISTRATIONS:
            error = error_of(await client.post("/webhooks", json=body), 422)
            assert error["field"] == field, (body, error)
            assert words in error["message"], (body, error)
        assert (await client.get("/webhooks")).json()["webhooks"] == []
        # The server keeps serving: a good registration goes through.
        await register(client, "https://example.com/ok", ["agent.paused"])


async def test_unknown_event_names_list_the_known_ones(
    control_plane: ControlPlaneHarness,
) -> None:
    body = {"url": "https://x.com", "events": ["policy.violated", "policy.broken"]}
    async with control_plane.client() as client:
        error = error_of(await client.post("/webhooks", json=body), 422)
    assert error["field"] == "events[1]"
    assert "'policy.broken'" in error["message"]
    assert all(name in error["message"] for name in WEBHOOK_EVENTS)


async def test_a_receiver_that_fails_three_times_gets_it_on_the_fourth(
    control_plane: ControlPlaneHarness,
) -> None:
    with HttpsServer(fail_times(3)) as receiver:
        async with control_plane.client() as client:
            hook = await register(client, receiver.url, ["agent.paused", "agent.resumed"])
            (await client.post("/agents", json={"name": "bot"})).raise_for_status()
            (await client.patch("/agents/bot/pause", json={"reason": "r"})).raise_for_status()
            delivery = await wait_for_delivery(client, hook["id"], "delivered")
        requests = await receiver.received(4)

    assert delivery["attempts"] == 4
    assert delivery["lastStatusCode"] == 200 and delivery["lastError"] is None
    assert delivery["finishedAt"] is not None and delivery["nextAttemptAt"] is None
    # Every attempt carries the same id, for the receiver to dedupe on.
    assert {r.headers["webhook-id"] for r in requests} == {delivery["id"]}
    events = delivered_events(requests)
    assert {e["eventId"] for e in events} == {delivery["eventId"]}


async def test_retries_that_run_out_mark_the_delivery_failed(
    control_plane: ControlPlaneHarness,
) -> None:
    with HttpsServer(Reply(503, b"down for maintenance")) as receiver:
        async with control_plane.client() as client:
            hook = await register(client, receiver.url, ["agent.paused"])
            (await client.post("/agents", json={"name": "bot"})).raise_for_status()
            (await client.patch("/agents/bot/pause")).raise_for_status()
            failed = await wait_for_delivery(client, hook["id"], "failed")
            assert len(await receiver.received(4)) == 4
            listed = await client.get(
                f"/webhooks/{hook['id']}/deliveries", params={"status": "failed"}
            )
            pending = await client.get(
                f"/webhooks/{hook['id']}/deliveries", params={"status": "pending"}
            )
    assert failed["attempts"] == 4  # the first and the schedule's three retries
    assert failed["lastStatusCode"] == 503
    assert "503" in failed["lastError"]
    assert [d["id"] for d in listed.json()["deliveries"]] == [failed["id"]]
    assert pending.json()["deliveries"] == []


async def test_a_receiver_that_does_not_answer_times_out_and_is_retried(
    tmp_path: Path,
) -> None:
    from dataclasses import replace

    from tests.control._webhooks import FAST

    options = replace(FAST, timeout=0.3, schedule=(0.05,))
    async for harness in fast_control_plane(tmp_path, options):
        with HttpsServer(Hang()) as receiver:
            async with harness.client() as client:
                hook = await register(client, receiver.url, ["agent.paused"])
                (await client.post("/agents", json={"name": "bot"})).raise_for_status()
                (await client.patch("/agents/bot/pause")).raise_for_status()
                failed = await wait_for_delivery(client, hook["id"], "failed")
            receiver.release()
    assert failed["attempts"] == 2
    assert failed["lastStatusCode"] is None
    assert "no answer within 0.3 s" in failed["lastError"]


async def test_pause_and_resume_reach_their_subscribers_once(
    control_plane: ControlPlaneHarness,
) -> None:
    with HttpsServer(reply_json({})) as receiver:
        async with control_plane.client() as client:
            await register(client, receiver.url, ["agent.paused", "agent.resumed"])
            only_resumes = await register(client, receiver.url + "/r", ["agent.resumed"])
            agent = (await client.post("/agents", json={"name": "bot"})).json()
            paused = await client.patch("/agents/bot/pause", json={"reason": "incident 7"})
            # Pausing again updates the reason: not a second agent.paused.
            await client.patch("/agents/bot/pause", json={"reason": "incident 8"})
            resumed = await client.patch("/agents/bot/resume")
            await client.patch("/agents/bot/resume")  # not paused: nothing to say
            await wait_for_delivery(client, only_resumes["id"], "delivered")
        requests = await receiver.received(3)

    events = delivered_events(requests)
    by_target = sorted((r.target, e["type"]) for r, e in zip(requests, events, strict=True))
    assert by_target == [("/", "agent.paused"), ("/", "agent.resumed"), ("/r", "agent.resumed")]
    pause = next(e for e in events if e["type"] == "agent.paused")
    assert pause["data"] == {
        "agentId": agent["id"],
        "agentName": "bot",
        "reason": "incident 7",
        "pausedAt": paused.json()["pausedAt"],
        "revision": paused.json()["revision"],
    }
    resume = next(e for e in events if e["type"] == "agent.resumed")
    assert resume["data"]["revision"] == resumed.json()["revision"]
    assert len(receiver.requests) == 3


async def test_a_fired_policy_in_a_sidecar_decision_is_a_policy_violation(
    control_plane: ControlPlaneHarness,
) -> None:
    sidecar_key = await control_plane.create_key("edge", "sidecar")
    monitored = decision_event(
        decision="ALLOW",
        policies=[{"id": "m", "name": "M", "type": "pii_access", "mode": "monitor"}],
    )
    blocked = decision_event(requestId="req-9")
    with HttpsServer(reply_json({})) as receiver:
        async with control_plane.client() as client:
            hook = await register(client, receiver.url, ["policy.violated"])
            async with control_plane.client(sidecar_key) as sidecar:
                batch = {"sidecarId": "edge", "events": [monitored, blocked]}
                response = await sidecar.post("/sidecar/events", json=batch)
                assert response.status_code == 200, response.text
                # The same batch again (a retry): nothing is delivered twice.
                await sidecar.post("/sidecar/events", json=batch)
            await wait_for_delivery(client, hook["id"], "delivered")
        [request] = await receiver.received(1)
    [event] = delivered_events([request])
    assert event["type"] == "policy.violated"
    assert event["data"] == {
        "agentId": "agent-a",
        "policy": {"id": "p1", "name": "P1", "type": "injection_scan", "mode": "block"}
        | {"severity": "high"},
        "decision": "BLOCK",
        "source": "enforce",
        "message": "policy 'P1' (injection_scan) fired in block mode",
        "incidentId": None,
        "requestId": "req-9",
        "decisionId": blocked["data"]["decisionId"],
    }
    assert len(receiver.requests) == 1


async def test_a_budget_crossing_its_warning_threshold_is_reported_once_per_period(
    control_plane: ControlPlaneHarness,
) -> None:
    sidecar_key = await control_plane.create_key("edge", "sidecar")
    budget = {
        "name": "Monthly Budget Cap",
        "policyType": "budget_cap",
        "enforcementMode": "block",
        "ruleDefinition": {"monthly_cap_usd": 1000.0, "warning_threshold_pct": 80},
    }
    with HttpsServer(reply_json({})) as receiver:
        async with control_plane.client() as client:
            hook = await register(client, receiver.url, ["cost.threshold"])
            policy = (await client.post("/policies", json=budget)).json()
            fired = {
                "id": policy["id"],
                "name": policy["name"],
                "type": "budget_cap",
                "mode": "warn",
                "severity": "low",
            }

            def warned(time: str) -> dict[str, Any]:
                event = decision_event(decision="ALLOW_WITH_WARNINGS", policies=[fired])
                return event | {"time": time}

            batch = [
                warned("2026-03-10T00:00:00Z"),
                warned("2026-03-20T00:00:00Z"),  # the same month: already said
                warned("2026-04-02T00:00:00Z"),  # the next period
            ]
            async with control_plane.client(sidecar_key) as sidecar:
                response = await sidecar.post(
                    "/sidecar/events", json={"sidecarId": "edge", "events": batch}
                )
                assert response.status_code == 200, response.text
            await wait_for_delivery(client, hook["id"], "delivered")
        requests = await receiver.received(2)
    # Deliveries run concurrently: they may arrive in either order.
    events = sorted(delivered_events(requests), key=lambda e: str(e["data"]["periodStart"]))
    assert [e["data"]["periodStart"] for e in events] == [
        "2026-03-01T00:00:00Z",
        "2026-04-01T00:00:00Z",
    ]
    assert events[0]["data"]["thresholdPct"] == 80
    assert events[0]["data"]["capUsd"] == 1000
    assert events[0]["data"]["policy"]["id"] == policy["id"]
    assert len(receiver.requests) == 2


async def test_trace_events_emitted_by_another_feature_are_delivered(
    control_plane: ControlPlaneHarness,
) -> None:
    """Trace ingestion emits policy.violated and trace.anomaly with plain
    data; the models take it, and fields they do not name are kept."""
    policy = {"id": "p", "name": "P", "type": "cost_limit", "mode": "block", "severity": "high"}
    incident = str(uuid.uuid4())
    with HttpsServer(reply_json({})) as receiver:
        async with control_plane.client() as client:
            await register(client, receiver.url, ["trace.anomaly", "policy.violated"])
            control = control_plane.control
            async with control.store.side_transaction() as tx:
                await control.events.emit(
                    tx,
                    "policy.violated",
                    {
                        "agentId": "agent-a",
                        "policy": policy,
                        "decision": "BLOCK",
                        "source": "trace",
                        "incidentId": incident,
                        "message": "cost 9.00 USD exceeds 5.00 USD",
                        "traceId": "t-1",
                    },
                )
                await control.events.emit(
                    tx,
                    "trace.anomaly",
                    {"agentId": "agent-a", "policy": policy, "incidentId": incident},
                )
        requests = await receiver.received(2)
    events = {e["type"]: e["data"] for e in delivered_events(requests)}
    assert events["policy.violated"]["source"] == "trace"
    assert events["policy.violated"]["incidentId"] == incident
    assert events["policy.violated"]["traceId"] == "t-1"
    assert events["trace.anomaly"]["source"] == "trace"
    assert events["trace.anomaly"]["policy"]["mode"] == "block"


async def test_bad_event_data_is_refused_and_nothing_is_queued(
    control_plane: ControlPlaneHarness,
) -> None:
    from pydantic import ValidationError

    async with control_plane.client() as client:
        hook = await register(client, "https://example.com", ["trace.anomaly"])
    control = control_plane.control
    with pytest.raises(ValidationError):
        async with control.store.side_transaction() as tx:
            await control.events.emit(tx, "trace.anomaly", {"agentId": ""})
    async with control_plane.client() as client:
        listed = await client.get(f"/webhooks/{hook['id']}/deliveries")
    assert listed.json()["deliveries"] == []


async def test_a_test_delivery_reaches_only_that_webhook(
    control_plane: ControlPlaneHarness,
) -> None:
    with HttpsServer(reply_json({})) as receiver:
        async with control_plane.client() as client:
            hook = await register(client, receiver.url, ["agent.paused"])
            other = await register(client, receiver.url + "/other", ["agent.paused"])
            response = await client.post(f"/webhooks/{hook['id']}/test")
            assert response.status_code == 202, response.text
            queued = response.json()
            assert queued["status"] == "pending" and queued["eventType"] == "webhook.test"
            delivered = await wait_for_delivery(client, hook["id"], "delivered")
            error_of(await client.post("/webhooks/nope/test"), 404)
            others = await client.get(f"/webhooks/{other['id']}/deliveries")
        [request] = await receiver.received(1)
    assert delivered["id"] == queued["id"] == request.headers["webhook-id"]
    [event] = delivered_events([request])
    assert event["type"] == "webhook.test"
    assert event["data"]["webhookId"] == hook["id"]
    assert others.json()["deliveries"] == []


async def test_deleting_a_webhook_drops_its_pending_deliveries(
    control_plane: ControlPlaneHarness,
) -> None:
    with HttpsServer(Reply(500)) as receiver:
        async with control_plane.client() as client:
            hook = await register(client, receiver.url, ["agent.paused"])
            await client.post(f"/webhooks/{hook['id']}/test")
            await receiver.received(1)
            assert (await client.delete(f"/webhooks/{hook['id']}")).status_code == 200
    rows = await control_plane.control.store.fetchall("SELECT id FROM webhook_deliveries")
    assert rows == []


async def test_approvals_requested_and_decided_are_delivered(
    control_plane: ControlPlaneHarness,
) -> None:
    sidecar_key = await control_plane.create_key("edge", "sidecar")
    approval_id = uuid.uuid4().hex
    requested = {
        "id": str(uuid.uuid4()),
        "type": "approval.requested",
        "time": "2026-01-01T00:00:00Z",
        "data": {
            "approvalId": approval_id,
            "agentId": "agent-a",
            "digest": "ab" * 32,
            "policies": [
                {"id": "p", "name": "P", "type": "expression", "mode": "require_approval"}
            ],
            "maskedExcerpt": "run ***",
            "expiresAt": "2099-01-01T00:00:00Z",
        },
    }
    with HttpsServer(reply_json({})) as receiver:
        async with control_plane.client() as client:
            await register(client, receiver.url, ["approval.requested", "approval.decided"])
            async with control_plane.client(sidecar_key) as sidecar:
                batch = {"sidecarId": "edge", "events": [requested]}
                assert (await sidecar.post("/sidecar/events", json=batch)).status_code == 200
            decided = await client.post(f"/approvals/{approval_id}/deny", json={"comment": "no"})
            assert decided.status_code == 200, decided.text
        requests = await receiver.received(2)
    events = {e["type"]: e["data"] for e in delivered_events(requests)}
    assert events["approval.requested"]["approvalId"] == approval_id
    assert events["approval.requested"]["maskedExcerpt"] == "run ***"
    assert events["approval.decided"]["status"] == "denied"
    assert events["approval.decided"]["comment"] == "no"


async def test_attempts_are_counted_by_outcome_in_the_metrics(tmp_path: Path) -> None:
    from tests.control._webhooks import FAST
    from tests.observe._scrape import scrape, value

    harness = ControlPlaneHarness(
        tmp_path / "control.db", metrics_listen="127.0.0.1:0", webhooks=FAST
    )
    with HttpsServer(fail_times(1)) as receiver:
        async with harness, harness.client() as client:
            assert harness.server is not None
            hook = await register(client, receiver.url, ["agent.paused"])
            await client.post(f"/webhooks/{hook['id']}/test")
            await wait_for_delivery(client, hook["id"], "delivered")
            samples = await scrape(harness.server.metrics_url)
    attempts = "pdp_control_webhook_attempts_total"
    assert value(samples, attempts, outcome="retried") == 1
    assert value(samples, attempts, outcome="delivered") == 1
    assert value(samples, attempts, outcome="failed") == 0
    assert value(samples, "pdp_control_webhook_attempts_in_flight") == 0
