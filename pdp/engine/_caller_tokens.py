"""Caller tokens: what binds a caller of the sidecar to one agent.

A token is a random secret given once to the agent's deployment; snapshots
carry only its SHA-256 (``callerTokens: [{sha256: HEX}]`` on the agent), so
whoever reads a snapshot cannot act as the agent. A sidecar run with
``--require-caller-token`` hashes the token a call presents and compares
the digest with the agent's in constant time."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

from ._fields import Problems, Reader

__all__ = [
    "CALLER_TOKEN_PREFIX",
    "MAX_CALLER_TOKENS",
    "caller_token_digest",
    "caller_token_matches",
    "new_caller_token",
    "read_caller_tokens",
]

CALLER_TOKEN_PREFIX = "pdpct_"
# Enough for a rotation (the new token next to the old) with room to spare.
MAX_CALLER_TOKENS = 16
_HEX_SHA256 = re.compile(r"[0-9a-f]{64}")


def new_caller_token() -> tuple[str, str]:
    """A new token and the hex SHA-256 a snapshot lists for it."""
    token = CALLER_TOKEN_PREFIX + secrets.token_urlsafe(32)
    return token, caller_token_digest(token).hex()


def caller_token_digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


def caller_token_matches(expected: tuple[bytes, ...], digest: bytes) -> bool:
    """Whether ``digest`` is one of ``expected``; every comparison is made,
    each in constant time, so the answer's timing says nothing of which."""
    found = False
    for candidate in expected:
        found |= hmac.compare_digest(candidate, digest)
    return found


def read_caller_tokens(r: Reader, problems: Problems) -> tuple[bytes, ...]:
    """The digests of an agent's ``callerTokens`` (each ``{sha256, id?,
    createdAt?}``)."""
    out: list[bytes] = []
    for path, item in r.items("callerTokens", max_items=MAX_CALLER_TOKENS):
        tr = Reader(item, path, problems, ("sha256", "id", "createdAt"))
        tr.string("id", max_len=200)
        tr.timestamp("createdAt")
        value = tr.string("sha256", required=True, max_len=64)
        if value is None:
            continue
        if not _HEX_SHA256.fullmatch(value):
            problems.add(
                tr.at("sha256"),
                "must be a SHA-256 in 64 lowercase hex digits (the token itself never "
                "goes in a snapshot; `pdp caller-token` prints both)",
            )
            continue
        out.append(bytes.fromhex(value))
    return tuple(out)
