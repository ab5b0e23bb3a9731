"""Standard Webhooks signatures (https://www.standardwebhooks.com): what pdp
sends a custom validator is signed the way webhook senders sign theirs.

A secret is either ``whsec_`` followed by the base64 of the key (the
scheme's own form) or any other string, whose UTF-8 bytes are the key. The
signature of a message is ``v1,`` and the base64 of
HMAC-SHA256(key, ``{webhook-id}.{webhook-timestamp}.{body}``)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

__all__ = [
    "MAX_SECRET_BYTES",
    "MIN_SECRET_BYTES",
    "SECRET_PREFIX",
    "sign_webhook",
    "signing_key",
]

SECRET_PREFIX = "whsec_"
# The scheme's range for a key; a raw secret shorter than 24 bytes is as weak
# as a short key.
MIN_SECRET_BYTES = 24
MAX_SECRET_BYTES = 64
_MAX_RAW_SECRET_BYTES = 256


def signing_key(secret: str) -> bytes:
    """The HMAC key of ``secret``; ValueError saying what is wrong with it."""
    if secret.startswith(SECRET_PREFIX):
        encoded = secret[len(SECRET_PREFIX) :]
        try:
            key = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError(
                f"after {SECRET_PREFIX!r} a secret must be base64 (A-Z, a-z, 0-9, +, /, "
                "padded with =)"
            ) from None
        if not MIN_SECRET_BYTES <= len(key) <= MAX_SECRET_BYTES:
            raise ValueError(
                f"a {SECRET_PREFIX} secret must decode to {MIN_SECRET_BYTES} to "
                f"{MAX_SECRET_BYTES} bytes, got {len(key)}"
            )
        return key
    key = secret.encode("utf-8", "surrogatepass")
    if len(key) < MIN_SECRET_BYTES:
        raise ValueError(
            f"a raw secret must be at least {MIN_SECRET_BYTES} bytes, got {len(key)} "
            f"(or use {SECRET_PREFIX} and base64)"
        )
    if len(key) > _MAX_RAW_SECRET_BYTES:
        raise ValueError(f"a raw secret must be at most {_MAX_RAW_SECRET_BYTES} bytes")
    if secret != secret.strip():
        raise ValueError("a secret must not start or end with whitespace")
    return key


def sign_webhook(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header value for one message."""
    signed = b"%s.%d.%s" % (msg_id.encode(), timestamp, body)
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")
