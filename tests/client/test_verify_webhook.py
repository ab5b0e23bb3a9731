"""``pdp_client.verify_webhook`` beyond the case table: how headers may be
given, the time window both ways, secrets with and without ``whsec_``, and
what is refused (the table has the known-answer vector and its variants)."""

from __future__ import annotations

import base64
import json
import time
from email.message import Message

import pdp_client
import pytest
from pdp_client import PdpError, WebhookVerificationError

from pdp.engine import sign_webhook, signing_key

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
BODY = json.dumps({"type": "agent.paused", "data": {"agentId": "a"}}).encode()


def signed(
    body: bytes = BODY, secret: str = SECRET, msg_id: str = "msg_1", at: int | None = None
) -> dict[str, str]:
    """Headers as the control plane sends them (its own signing code)."""
    timestamp = int(time.time()) if at is None else at
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign_webhook(signing_key(secret), msg_id, timestamp, body),
    }


def test_a_fresh_delivery_verifies_and_parses() -> None:
    event = pdp_client.verify_webhook(BODY, signed(), SECRET)
    assert event == {"type": "agent.paused", "data": {"agentId": "a"}}


def test_header_names_are_matched_without_regard_to_case() -> None:
    headers = {k.title(): v for k, v in signed().items()}  # Webhook-Id, ...
    assert pdp_client.verify_webhook(BODY, headers, SECRET)["type"] == "agent.paused"
    message = Message()  # what http.server hands a handler
    for name, value in signed().items():
        message[name.upper()] = value
    assert pdp_client.verify_webhook(BODY, message, SECRET)["type"] == "agent.paused"


def test_a_raw_secret_is_its_utf8_bytes() -> None:
    raw = "a shared secret of enough length"
    assert pdp_client.verify_webhook(BODY, signed(secret=raw), raw)["type"] == "agent.paused"
    with pytest.raises(WebhookVerificationError):
        pdp_client.verify_webhook(BODY, signed(secret=raw), SECRET)


@pytest.mark.parametrize("offset", [-301, 301])
def test_the_default_window_is_five_minutes_either_way(offset: int) -> None:
    headers = signed(at=int(time.time()) + offset)
    with pytest.raises(WebhookVerificationError, match=r"too old|from the future"):
        pdp_client.verify_webhook(BODY, headers, SECRET)
    assert pdp_client.verify_webhook(BODY, headers, SECRET, tolerance_s=None)
    assert pdp_client.verify_webhook(BODY, headers, SECRET, tolerance_s=400)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"webhook-id": "msg_2"}, "no signature matches"),
        ({"webhook-timestamp": "soon"}, "not a Unix time"),
        ({"webhook-signature": "v1,not base64!"}, "no signature matches"),
        ({"webhook-signature": ""}, "missing the webhook-signature header"),
        ({"webhook-id": ""}, "missing the webhook-id header"),
    ],
)
def test_tampered_headers_are_refused(change: dict[str, str], reason: str) -> None:
    headers = signed() | change
    with pytest.raises(WebhookVerificationError, match=reason) as refused:
        pdp_client.verify_webhook(BODY, headers, SECRET)
    assert isinstance(refused.value, PdpError)
    assert reason in refused.value.reason


def test_a_signed_body_that_is_not_json_is_refused() -> None:
    with pytest.raises(WebhookVerificationError, match="not JSON"):
        pdp_client.verify_webhook(b"<xml/>", signed(b"<xml/>"), SECRET)


def test_a_bad_secret_is_refused() -> None:
    for secret in ("", "whsec_***"):
        with pytest.raises(WebhookVerificationError, match="secret"):
            pdp_client.verify_webhook(BODY, signed(), secret)


def test_misuse_is_a_programming_error_not_a_refusal() -> None:
    with pytest.raises(TypeError, match="bytes"):
        pdp_client.verify_webhook(BODY.decode(), signed(), SECRET)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="tolerance_s"):
        pdp_client.verify_webhook(BODY, signed(), SECRET, tolerance_s=-1)


def test_the_key_is_the_base64_after_the_prefix() -> None:
    key = base64.b64decode(SECRET.removeprefix("whsec_"))
    timestamp = int(time.time())
    headers = {
        "webhook-id": "msg_x",
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign_webhook(key, "msg_x", timestamp, BODY),
    }
    assert pdp_client.verify_webhook(BODY, headers, SECRET)
