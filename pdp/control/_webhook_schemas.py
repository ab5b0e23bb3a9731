"""The bodies of ``/api/v1/webhooks``: what the reference page sends
(``url``, ``events``, ``secret``) and what the control plane answers."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from ._objects import enum_schema
from ._webhook_events import WEBHOOK_EVENTS, WEBHOOK_TEST
from ._webhooks import MAX_URL_CHARS

__all__ = [
    "DeliveryList",
    "DeliveryOut",
    "DeliveryStatus",
    "WebhookCreate",
    "WebhookCreated",
    "WebhookList",
    "WebhookOut",
]

DeliveryStatus = Literal["pending", "delivered", "failed"]
_EVENT_NAME = {"type": "string", **enum_schema(list(WEBHOOK_EVENTS))}


class WebhookCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    url: str = Field(max_length=MAX_URL_CHARS, description="http or https; receives POSTs")
    events: list[str] = Field(
        max_length=len(WEBHOOK_EVENTS) * 4,
        json_schema_extra={"items": _EVENT_NAME},
        description="the event types to deliver, at least one",
    )
    secret: str | None = Field(
        default=None,
        max_length=400,
        description="whsec_ and the base64 of a 24 to 64 byte key (or 24+ bytes of text); "
        "absent: one is generated and answered once",
    )


class _Response(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_serialization_defaults_required=True)


class WebhookOut(_Response):
    """A webhook; its secret is answered only when it is created."""

    id: str
    url: str
    events: list[str] = Field(json_schema_extra={"items": _EVENT_NAME})
    createdAt: str


class WebhookCreated(WebhookOut):
    secret: str = Field(description="verify deliveries with it (pdp_client.verify_webhook)")


class WebhookList(_Response):
    webhooks: list[WebhookOut]


class DeliveryOut(_Response):
    """One event's delivery to one webhook; ``id`` is its ``webhook-id``
    header, the same on every attempt."""

    id: str
    webhookId: str
    eventId: str
    eventType: str = Field(json_schema_extra=enum_schema([*WEBHOOK_EVENTS, WEBHOOK_TEST]))
    status: DeliveryStatus = Field(
        description="pending (being retried), delivered (a 2xx answer) or failed (retries ran out)"
    )
    attempts: int
    lastStatusCode: int | None = Field(description="the HTTP status of the last attempt")
    lastError: str | None = Field(description="why the last attempt failed")
    createdAt: str
    nextAttemptAt: str | None = Field(description="while pending")
    finishedAt: str | None


class DeliveryList(_Response):
    deliveries: list[DeliveryOut]
