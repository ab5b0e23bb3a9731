"""``/api/v1/webhooks``: register, list and delete webhooks, send a test
delivery, and see each delivery's state. Admin keys write; reviewers read."""

from __future__ import annotations

from fastapi import APIRouter, Query, Response

from pdp.engine import format_time
from pdp.state import from_micros

from ._control import ControlPlane
from ._roles import Role, roles
from ._webhook_schemas import (
    DeliveryList,
    DeliveryOut,
    DeliveryStatus,
    WebhookCreate,
    WebhookCreated,
    WebhookList,
    WebhookOut,
)
from ._webhooks import Delivery, Webhook

__all__ = ["webhook_routes"]

_READ = [roles(Role.REVIEWER)]
_WRITE = [roles()]


def _out(hook: Webhook) -> WebhookOut:
    return WebhookOut(id=hook.id, url=hook.url, events=list(hook.events), createdAt=hook.created_at)


def _time(micros: int | None) -> str | None:
    return None if micros is None else format_time(from_micros(micros))


def _delivery(d: Delivery) -> DeliveryOut:
    return DeliveryOut(
        id=d.id,
        webhookId=d.webhook_id,
        eventId=d.event_id,
        eventType=d.event_type,
        status=d.status,  # type: ignore[arg-type]
        attempts=d.attempts,
        lastStatusCode=d.last_status,
        lastError=d.last_error,
        createdAt=format_time(from_micros(d.created_at_us)),
        nextAttemptAt=_time(d.next_attempt_at_us) if d.status == "pending" else None,
        finishedAt=_time(d.finished_at_us),
    )


def webhook_routes(control: ControlPlane) -> APIRouter:
    router = APIRouter(tags=["webhooks"])
    webhooks = control.webhooks

    @router.post("/webhooks", status_code=201, response_model=WebhookCreated, dependencies=_WRITE)
    async def create_webhook(body: WebhookCreate, response: Response) -> WebhookCreated:
        """Registers a webhook for ``events``. Without ``secret`` one is
        generated; the answer is the only time the secret is shown."""
        hook = await webhooks.create(body.url, body.events, body.secret)
        response.headers["Location"] = f"/api/v1/webhooks/{hook.id}"
        return WebhookCreated(**_out(hook).model_dump(), secret=hook.secret)

    @router.get("/webhooks", response_model=WebhookList, dependencies=_READ)
    async def list_webhooks() -> WebhookList:
        return WebhookList(webhooks=[_out(h) for h in webhooks.registered()])

    @router.delete("/webhooks/{webhook_id}", response_model=WebhookOut, dependencies=_WRITE)
    async def delete_webhook(webhook_id: str) -> WebhookOut:
        """Removes the webhook; its pending deliveries are not sent."""
        return _out(await webhooks.delete(webhook_id))

    @router.post(
        "/webhooks/{webhook_id}/test",
        status_code=202,
        response_model=DeliveryOut,
        dependencies=_WRITE,
    )
    async def test_webhook(webhook_id: str) -> DeliveryOut:
        """Queues a ``webhook.test`` delivery to this webhook; follow it in
        its deliveries."""
        return _delivery(await webhooks.send_test(webhook_id))

    @router.get(
        "/webhooks/{webhook_id}/deliveries", response_model=DeliveryList, dependencies=_READ
    )
    async def list_deliveries(
        webhook_id: str,
        status: DeliveryStatus | None = Query(None, description="default: every status"),  # noqa: B008
        limit: int = Query(100, ge=1, le=1000),
    ) -> DeliveryList:
        """The webhook's deliveries, newest first."""
        found = await webhooks.deliveries(webhook_id, status, limit)
        return DeliveryList(deliveries=[_delivery(d) for d in found])

    return router
