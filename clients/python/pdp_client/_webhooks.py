"""Verifying the webhooks a pdp control plane sends, the Standard Webhooks
way (https://www.standardwebhooks.com): ``webhook-signature`` holds
space-separated ``v1,<base64 HMAC-SHA256 of "id.timestamp.body">``
signatures, keyed with the base64 key after the secret's ``whsec_`` prefix
(a secret without the prefix is used as its UTF-8 bytes)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import math
import re
import time
from collections.abc import Iterable
from typing import Any, Protocol

from ._errors import WebhookVerificationError

__all__ = ["DEFAULT_WEBHOOK_TOLERANCE_S", "WebhookHeaders", "verify_webhook"]

DEFAULT_WEBHOOK_TOLERANCE_S = 300.0
_SECRET_PREFIX = "whsec_"
_TIMESTAMP = re.compile(r"^[0-9]{1,15}$")


class WebhookHeaders(Protocol):
    """Request headers as a framework gives them: a dict, Starlette's or
    Django's headers, ``http.server``'s ``email.message.Message``."""

    def get(self, name: str, /) -> Any: ...

    def items(self) -> Iterable[tuple[Any, Any]]: ...


def _header(headers: WebhookHeaders, name: str) -> str:
    """The header ``name``, matched without regard to case (a dict, a
    framework's headers object or ``email.message.Message``)."""
    value = headers.get(name)
    if value is None:
        value = next((v for k, v in headers.items() if str(k).lower() == name), None)
    if isinstance(value, list | tuple):
        value = value[0] if value else None
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    if not isinstance(value, str) or not value:
        raise WebhookVerificationError(f"missing the {name} header")
    return value


def _key(secret: str) -> bytes:
    if not secret:
        raise WebhookVerificationError("the secret is empty")
    if not secret.startswith(_SECRET_PREFIX):
        return secret.encode("utf-8")
    try:
        key = base64.b64decode(secret[len(_SECRET_PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        raise WebhookVerificationError("the secret after whsec_ is not base64") from None
    if not key:
        raise WebhookVerificationError("the secret after whsec_ is empty")
    return key


def verify_webhook(
    body: bytes,
    headers: WebhookHeaders,
    secret: str,
    *,
    tolerance_s: float | None = DEFAULT_WEBHOOK_TOLERANCE_S,
) -> Any:
    """Checks that ``body`` (the raw request body, exactly as received) was
    signed with ``secret`` and, unless ``tolerance_s`` is None, sent within
    ``tolerance_s`` seconds of now; returns the parsed JSON event.

    Raises :class:`WebhookVerificationError` otherwise: treat the request as
    not sent by pdp. Deliveries are retried with the same ``webhook-id``:
    dedupe on it."""
    if isinstance(body, str):
        raise TypeError("body must be the raw bytes received, not str")
    if tolerance_s is not None and not (tolerance_s >= 0 and math.isfinite(tolerance_s)):
        raise ValueError(f"tolerance_s must be 0 or more seconds, or None; got {tolerance_s!r}")
    msg_id = _header(headers, "webhook-id")
    timestamp = _header(headers, "webhook-timestamp")
    signatures = _header(headers, "webhook-signature")
    if not _TIMESTAMP.match(timestamp):
        raise WebhookVerificationError(
            f"webhook-timestamp is not a Unix time in seconds: {timestamp[:40]!r}"
        )
    if tolerance_s is not None:
        skew = time.time() - int(timestamp)
        if skew > tolerance_s:
            raise WebhookVerificationError(f"the message is too old ({skew:.0f} s)")
        if -skew > tolerance_s:
            raise WebhookVerificationError(f"the message is from the future ({-skew:.0f} s)")
    signed = b"%s.%s.%s" % (msg_id.encode("utf-8"), timestamp.encode("ascii"), bytes(body))
    expected = hmac.new(_key(secret), signed, hashlib.sha256).digest()
    for entry in signatures.split(" "):
        version, _, signature = entry.partition(",")
        if version != "v1" or not signature:
            continue
        try:
            given = base64.b64decode(signature, validate=True)
        except (binascii.Error, ValueError):
            continue
        if hmac.compare_digest(given, expected):
            break
    else:
        raise WebhookVerificationError("no signature matches the body and the secret")
    try:
        return json.loads(body)
    except ValueError:
        raise WebhookVerificationError("the signed body is not JSON") from None
