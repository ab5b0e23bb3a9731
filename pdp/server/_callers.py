"""Who is calling: with ``--require-caller-token`` every call names its
agent's caller token in the ``x-pdp-caller-token`` metadata, and may act
only as that agent (Enforce, ReportUsage, Authorize as the source,
AgentStatus, WatchAgentStatus, AwaitApproval of the agent's approvals).

The token is hashed (SHA-256) and compared with the digests the active
snapshot lists for the agent, each in constant time: the sidecar never holds
a token, and a token costs one hash per call."""

from __future__ import annotations

from typing import Any

import grpc

from pdp.engine import CompiledSnapshot, caller_token_digest, caller_token_matches

from ._errors import RequestError

__all__ = ["CALLER_TOKEN_METADATA", "CallerCheck"]

CALLER_TOKEN_METADATA = "x-pdp-caller-token"
# A token is ~50 characters; anything much longer is not one.
_MAX_TOKEN_CHARS = 512


class CallerCheck:
    """Binds callers to agents when ``required``; otherwise admits all."""

    __slots__ = ("required",)

    def __init__(self, required: bool) -> None:
        self.required = required

    def check(
        self,
        context: grpc.aio.ServicerContext[Any, Any],
        snapshot: CompiledSnapshot,
        agent_id: str,
        field: str = "agent_id",
    ) -> None:
        """Raises UNAUTHENTICATED without a token, PERMISSION_DENIED when the
        token is not one of ``agent_id``'s (an id the snapshot resolves)."""
        if not self.required:
            return
        token = _token_of(context)
        if token is None:
            raise RequestError(
                "",
                f"this sidecar requires a caller token: send the agent's token in the "
                f"{CALLER_TOKEN_METADATA} metadata (the SDKs' caller_token option)",
                grpc.StatusCode.UNAUTHENTICATED,
            )
        digest = caller_token_digest(token)
        expected = snapshot.caller_tokens.get(agent_id, ())
        if expected and caller_token_matches(expected, digest):
            return
        raise RequestError(
            field, _refusal(snapshot, agent_id, digest), grpc.StatusCode.PERMISSION_DENIED
        )


def _token_of(context: grpc.aio.ServicerContext[Any, Any]) -> str | None:
    for key, value in context.invocation_metadata() or ():
        if key == CALLER_TOKEN_METADATA:
            if isinstance(value, bytes):
                value = value.decode("utf-8", "replace")
            return value[:_MAX_TOKEN_CHARS] if value else None
    return None


def _refusal(snapshot: CompiledSnapshot, agent_id: str, digest: bytes) -> str:
    # Whose token it is (if anyone's) makes the mistake plain; the caller
    # holds that token, so it learns nothing it did not know.
    for owner, digests in snapshot.caller_tokens.items():
        if caller_token_matches(digests, digest):
            return f"the caller token is agent {owner!r}'s; it cannot act as agent {agent_id!r}"
    return (
        f"the caller token is not one of agent {agent_id!r}'s (unknown, revoked, or the "
        f"snapshot lists no caller token for that agent)"
    )
