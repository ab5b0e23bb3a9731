"""Approvals, the engine's part: what an approval is, the digest that binds
it to one request, the excerpt a reviewer sees, and the decision a request
gets when its approval does not let it through. Storing, deciding and
waiting are the state's and the server's."""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ._pii import PII_TYPES, PiiDetector, mask_text
from ._time import format_time, parse_rfc3339
from ._types import Decision, DecisionKind, EnforceInput, Mode, Violation

__all__ = [
    "EXCERPT_CHARS",
    "Approval",
    "ApprovalState",
    "FiredPolicy",
    "already_decided",
    "approval_from_json",
    "approval_json",
    "approval_refusal",
    "fired_policies",
    "masked_excerpt",
    "request_digest",
]

EXCERPT_CHARS = 200
# Masked before it is cut: a value that starts in the excerpt is found whole.
_EXCERPT_SCAN_CHARS = 4096
_DIGEST_VERSION = 1


class ApprovalState(enum.Enum):
    PENDING = "pending"
    APPROVED = "approved"
    DENIED = "denied"
    EXPIRED = "expired"


@dataclass(frozen=True, slots=True)
class FiredPolicy:
    """A policy that fired for the request an approval holds."""

    id: str
    name: str
    type: str
    mode: str  # wire name: "require_approval", "warn", ...

    def as_json(self) -> dict[str, str]:
        """As approvals list it (REST, events, the state database)."""
        return {"id": self.id, "name": self.name, "type": self.type, "mode": self.mode}

    @classmethod
    def from_json(cls, item: Mapping[str, Any]) -> FiredPolicy:
        return cls(str(item["id"]), str(item["name"]), str(item["type"]), str(item["mode"]))


def fired_policies(violations: Iterable[Violation]) -> tuple[FiredPolicy, ...]:
    return tuple(
        FiredPolicy(v.policy_id, v.policy_name, v.policy_type, v.mode.wire_name) for v in violations
    )


@dataclass(frozen=True, slots=True)
class Approval:
    """One request held for a reviewer. ``digest`` binds it to that request
    (:func:`request_digest`); ``policies`` are those that fired; the
    ``require_approval`` ones are what an approval lets through. Decided
    once; ``consumed_at`` is when the approved request went through (once)."""

    id: str
    agent_id: str
    digest: str
    policies: tuple[FiredPolicy, ...]
    masked_excerpt: str
    request_id: str
    created_at: datetime
    expires_at: datetime
    state: ApprovalState = ApprovalState.PENDING
    reviewer: str = ""
    comment: str = ""
    decided_at: datetime | None = None
    consumed_at: datetime | None = None

    def state_at(self, now: datetime) -> ApprovalState:
        """The state at ``now``: a pending approval past its expiry is expired."""
        if self.state is ApprovalState.PENDING and now >= self.expires_at:
            return ApprovalState.EXPIRED
        return self.state

    def decided(self, now: datetime) -> bool:
        return self.state_at(now) is not ApprovalState.PENDING

    @property
    def approved_policies(self) -> frozenset[str]:
        """Ids of the require_approval policies an approval lets through."""
        wanted = Mode.REQUIRE_APPROVAL.wire_name
        return frozenset(p.id for p in self.policies if p.mode == wanted)


def request_digest(agent_id: str, request: EnforceInput) -> str:
    """SHA-256 (hex) of what a request asks: the agent (its canonical id),
    input, output, tool, model, metadata, estimated cost and context items
    (kind, source, content). The encoding is canonical: a JSON object with
    sorted keys, no spaces, UTF-8, absent values as null; so a retry of the
    same request has the same digest, and any change gives another."""
    document = {
        "v": _DIGEST_VERSION,
        "agent": agent_id,
        "input": request.input,
        "output": request.output,
        "tool": request.tool,
        "model": request.model,
        "metadata": dict(request.metadata),
        "cost": request.estimated_cost_usd,
        "context": [[c.kind.value, c.source, c.content] for c in request.context],
    }
    encoded = json.dumps(
        document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )
    return hashlib.sha256(encoded.encode("utf-8")).hexdigest()


_ALL_PII = PiiDetector(PII_TYPES)


def masked_excerpt(text: str | None, limit: int = EXCERPT_CHARS) -> str:
    """The start of ``text`` for a reviewer: every PII type masked, then cut
    to ``limit`` characters (an ellipsis marks the cut)."""
    if not text:
        return ""
    window = text[:_EXCERPT_SCAN_CHARS]
    masked = mask_text(window, _ALL_PII.find(window))
    if len(masked) <= limit and len(text) <= len(window):
        return masked
    return masked[: limit - 1] + "…"


def approval_refusal(decision: Decision, message: str) -> Decision:
    """``decision`` (which holds the call for approval) turned into a BLOCK
    because its approval does not let it through: the require_approval
    violations become block ones saying why, the others stay."""
    violations = tuple(
        dataclasses.replace(v, mode=Mode.BLOCK, message=message)
        if v.mode is Mode.REQUIRE_APPROVAL
        else v
        for v in decision.violations
    )
    return dataclasses.replace(
        decision,
        kind=DecisionKind.BLOCK,
        violations=tuple(sorted(violations, key=lambda v: -v.mode)),
        charges=(),
        approval_timeout_s=0.0,
    )


def already_decided(approval: Approval, now: datetime) -> str:
    """Why ``approval`` can be decided no more (it is decided, or expired)."""
    if approval.state_at(now) is ApprovalState.EXPIRED:
        return (
            f"approval {approval.id} expired at {format_time(approval.expires_at)} "
            "without a decision"
        )
    by = f" by {approval.reviewer}" if approval.reviewer else ""
    when = f" at {format_time(approval.decided_at)}" if approval.decided_at else ""
    return f"approval {approval.id} was already {approval.state.value}{by}{when}"


def _time_or_none(moment: datetime | None) -> str | None:
    return None if moment is None else format_time(moment)


def approval_json(approval: Approval, now: datetime) -> dict[str, Any]:
    """An approval as the REST API and ``pdp approvals list --json`` show it
    (camelCase; ``status`` is the state at ``now``; ``expiresInSeconds`` is
    the time left while pending, else null)."""
    state = approval.state_at(now)
    pending = state is ApprovalState.PENDING
    return {
        "id": approval.id,
        "agentId": approval.agent_id,
        "status": state.value,
        "policies": [p.as_json() for p in approval.policies],
        "maskedExcerpt": approval.masked_excerpt,
        "requestId": approval.request_id,
        "digest": approval.digest,
        "createdAt": format_time(approval.created_at),
        "expiresAt": format_time(approval.expires_at),
        "expiresInSeconds": (
            max(0.0, (approval.expires_at - now).total_seconds()) if pending else None
        ),
        "reviewer": approval.reviewer or None,
        "comment": approval.comment or None,
        "decidedAt": _time_or_none(
            approval.decided_at or (approval.expires_at if state is ApprovalState.EXPIRED else None)
        ),
        "consumedAt": _time_or_none(approval.consumed_at),
    }


def _parsed_time(value: object) -> datetime | None:
    return parse_rfc3339(value) if isinstance(value, str) else None


def approval_from_json(body: Mapping[str, Any]) -> Approval:
    """The inverse of :func:`approval_json` (raises KeyError, ValueError or
    TypeError for a body that is not one)."""
    created, expires = _parsed_time(body["createdAt"]), _parsed_time(body["expiresAt"])
    if created is None or expires is None:
        raise ValueError("createdAt and expiresAt must be RFC 3339 timestamps")
    return Approval(
        id=str(body["id"]),
        agent_id=str(body["agentId"]),
        digest=str(body["digest"]),
        policies=tuple(FiredPolicy.from_json(p) for p in body["policies"]),
        masked_excerpt=str(body["maskedExcerpt"]),
        request_id=str(body["requestId"]),
        created_at=created,
        expires_at=expires,
        state=ApprovalState(body["status"]),
        reviewer=body.get("reviewer") or "",
        comment=body.get("comment") or "",
        decided_at=_parsed_time(body.get("decidedAt")),
        consumed_at=_parsed_time(body.get("consumedAt")),
    )
