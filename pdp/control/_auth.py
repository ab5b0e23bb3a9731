"""API keys: ``pdp_`` and 32 random bytes (URL-safe base64), sent as the
``X-API-Key`` header. Only a SHA-256 of a key is stored (a salt adds nothing
to a 256-bit random secret); the comparison is constant-time."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime

from pdp.engine import format_time, parse_rfc3339, utc_now

from ._errors import ForbiddenError, UnauthorizedError
from ._store import Store

__all__ = ["API_KEY_HEADER", "ApiKey", "authenticate", "create_api_key", "revoke_api_keys"]

API_KEY_HEADER = "X-API-Key"
_KEY_PREFIX = "pdp_"
# Characters of a key stored in clear to find its row: the prefix and 8
# random characters, 48 bits that say nothing useful about the other 208.
_LOOKUP_CHARS = len(_KEY_PREFIX) + 8


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A key as created: ``secret`` is shown once and never stored."""

    id: str
    name: str
    secret: str
    created_at: str
    expires_at: str | None


def _sha256(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


async def create_api_key(store: Store, name: str, expires_at: datetime | None = None) -> ApiKey:
    secret = _KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(
        id=str(uuid.uuid4()),
        name=name,
        secret=secret,
        created_at=format_time(utc_now()),
        expires_at=None if expires_at is None else format_time(expires_at),
    )
    # An API key is not part of the snapshot: no new revision, no sidecar woken.
    async with store.side_transaction() as tx:
        await tx.add_api_key(
            key.id, name, secret[:_LOOKUP_CHARS], _sha256(secret), key.created_at, key.expires_at
        )
    return key


async def revoke_api_keys(
    store: Store, *, key_id: str | None = None, name: str | None = None
) -> int:
    """Revokes the live keys with this id or name; returns how many."""
    async with store.side_transaction() as tx:
        return await tx.revoke_api_keys(key_id=key_id, name=name, at=format_time(utc_now()))


async def authenticate(store: Store, presented: str | None) -> str:
    """The name of the key ``presented``; raises UnauthorizedError (missing or
    unknown key) or ForbiddenError (expired or revoked key)."""
    if not presented:
        raise UnauthorizedError(f"missing {API_KEY_HEADER} header", code="missing_api_key")
    digest = _sha256(presented)
    match = None
    for record in await store.api_keys_with_prefix(presented[:_LOOKUP_CHARS]):
        if hmac.compare_digest(record.key_sha256, digest):
            match = record
    if match is None:
        raise UnauthorizedError("invalid API key", code="invalid_api_key")
    if match.revoked_at is not None:
        raise ForbiddenError(
            f"API key {match.name!r} was revoked at {match.revoked_at}", code="api_key_revoked"
        )
    expires = parse_rfc3339(match.expires_at) if match.expires_at else None
    if expires is not None and expires <= utc_now():
        raise ForbiddenError(
            f"API key {match.name!r} expired at {match.expires_at}", code="api_key_expired"
        )
    return str(match.name)
