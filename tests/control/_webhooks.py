"""Helpers for the webhook tests: a control plane whose sender retries fast
and trusts the loopback receivers' CA, and checks of what receivers got."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

import httpx
import pdp_client

from pdp.control import DeliveryOptions
from tests._https import RecordedRequest, test_certificates
from tests.control._harness import ControlPlaneHarness

__all__ = [
    "FAST",
    "KNOWN_SECRET",
    "delivered_events",
    "fast_control_plane",
    "register",
    "wait_for_delivery",
]

# The Standard Webhooks test vector's secret.
KNOWN_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
FAST = DeliveryOptions(
    schedule=(0.05, 0.05, 0.05),
    timeout=2.0,
    concurrency=4,
    ca_file=str(test_certificates().ca_file),
)


async def fast_control_plane(
    tmp_path: Path, options: DeliveryOptions = FAST
) -> AsyncIterator[ControlPlaneHarness]:
    harness = ControlPlaneHarness(tmp_path / "control.db", webhooks=options)
    await harness.start()
    try:
        yield harness
    finally:
        await harness.stop()


async def register(
    client: httpx.AsyncClient, url: str, events: Iterable[str], secret: str | None = KNOWN_SECRET
) -> dict[str, Any]:
    body: dict[str, Any] = {"url": url, "events": list(events)}
    if secret is not None:
        body["secret"] = secret
    response = await client.post("/webhooks", json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def delivered_events(
    requests: Iterable[RecordedRequest], secret: str = KNOWN_SECRET
) -> list[dict[str, Any]]:
    """Each request's event, after checking its signature as a receiver does."""
    events = []
    for request in requests:
        assert request.method == "POST"
        assert request.headers["content-type"] == "application/json"
        event = pdp_client.verify_webhook(request.body, request.headers, secret)
        assert isinstance(event, dict)
        events.append(event)
    return events


async def wait_for_delivery(
    client: httpx.AsyncClient, webhook_id: str, status: str, within: float = 10.0
) -> dict[str, Any]:
    """The webhook's newest delivery, once it has ``status``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        response = await client.get(f"/webhooks/{webhook_id}/deliveries")
        assert response.status_code == 200, response.text
        found = response.json()["deliveries"]
        if found and found[0]["status"] == status:
            newest: dict[str, Any] = found[0]
            return newest
        if loop.time() > deadline:
            raise AssertionError(f"no {status} delivery within {within}s: {found}")
        await asyncio.sleep(0.02)
