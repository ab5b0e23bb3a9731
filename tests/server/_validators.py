"""Snapshots with a custom validator and checks of what the validator
received, for the tests of the sidecar's validator calls."""

from __future__ import annotations

import base64
import hmac
from typing import Any

from tests._https import RecordedRequest

__all__ = ["SECRET", "signature_holds", "validator_snapshot"]

# The Standard Webhooks test secret: whsec_ and the base64 of a 24-byte key.
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def validator_snapshot(
    url: str,
    *,
    agents: tuple[str, ...] = ("billing-bot",),
    mode: str = "block",
    prerequisites: list[dict[str, str]] | None = None,
    extra_policies: list[dict[str, Any]] | None = None,
    **rule: Any,
) -> dict[str, Any]:
    """Agents ``billing-bot`` and ``support-bot``; one custom_validator policy,
    ``Entitlements``, for ``agents``, calling ``url`` with ``rule``. The
    timeout is 5 s unless given: far above the default, for a busy machine
    (a first call includes the TLS handshake)."""
    rule.setdefault("timeout_ms", 5000)
    policy: dict[str, Any] = {
        "id": "entitlements",
        "name": "Entitlements",
        "policyType": "custom_validator",
        "enforcementMode": mode,
        "ruleDefinition": {"url": url, "secret": SECRET, **rule},
        "appliesToAgents": list(agents),
    }
    if prerequisites:
        policy["prerequisites"] = prerequisites
    return {
        "revision": 1,
        "agents": [{"id": "billing-bot"}, {"id": "support-bot"}],
        "policies": [*(extra_policies or []), policy],
    }


def signature_holds(request: RecordedRequest, secret: str = SECRET) -> bool:
    """Checks the Standard Webhooks signature the way a receiver does: the
    HMAC-SHA256, keyed by the secret's base64 after whsec_, of
    ``{webhook-id}.{webhook-timestamp}.{body}``, among the space-separated
    ``v1,<base64>`` signatures."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = b".".join(
        [request.headers["webhook-id"].encode(), request.headers["webhook-timestamp"].encode()]
    )
    expected = base64.b64encode(hmac.new(key, signed + b"." + request.body, "sha256").digest())
    given = request.headers["webhook-signature"].split(" ")
    return any(hmac.compare_digest(s.encode(), b"v1," + expected) for s in given)
