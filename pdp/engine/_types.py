"""The engine's own input and output types; no wire or storage types here."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from ._usage import Charge

__all__ = [
    "ACTIONS",
    "AgentInfo",
    "AuthorizeResult",
    "ContextItem",
    "ContextKind",
    "Decision",
    "DecisionKind",
    "DenialReason",
    "EnforceInput",
    "Mode",
    "PiiFinding",
    "Severity",
    "Violation",
]

ACTIONS: frozenset[str] = frozenset(
    {"execute", "read", "write", "delete", "invoke", "query", "subscribe", "delegate"}
)


class Mode(enum.IntEnum):
    """Enforcement mode; a larger value is stricter."""

    MONITOR = 1
    WARN = 2
    REQUIRE_APPROVAL = 3
    BLOCK = 4

    @property
    def wire_name(self) -> str:
        return self.name.lower()


class Severity(enum.IntEnum):
    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4

    @property
    def wire_name(self) -> str:
        return self.name.lower()


class DecisionKind(enum.Enum):
    ALLOW = "ALLOW"
    ALLOW_WITH_WARNINGS = "ALLOW_WITH_WARNINGS"
    BLOCK = "BLOCK"
    PENDING_APPROVAL = "PENDING_APPROVAL"
    AGENT_PAUSED = "AGENT_PAUSED"


class DenialReason(enum.Enum):
    NO_GRANT = "no_grant"
    GRANT_EXPIRED = "grant_expired"
    ACTION_NOT_GRANTED = "action_not_granted"
    SOURCE_PAUSED = "source_paused"
    TARGET_PAUSED = "target_paused"
    UNKNOWN_AGENT = "unknown_agent"


class ContextKind(enum.Enum):
    """Where a piece of context an agent pulled in came from."""

    UNSPECIFIED = "unspecified"
    DOCUMENT = "document"  # a retrieved document (RAG)
    TOOL_RESULT = "tool_result"
    EMAIL = "email"
    WEB_PAGE = "web_page"
    CODE = "code"  # source code or a code comment


@dataclass(frozen=True, slots=True)
class ContextItem:
    """Content an agent pulled in (a retrieved document, a tool result, an
    email, a web page, code), scanned for instructions hidden in it."""

    content: str
    kind: ContextKind = ContextKind.UNSPECIFIED
    source: str = ""  # where it came from: a URL, a file name, a tool name


@dataclass(slots=True, kw_only=True)
class EnforceInput:
    """One Enforce request. ``input`` is the input side (gated before the call),
    ``output`` the output side (scanned after it); either may be absent.
    ``context`` is content the agent pulled in for the call.

    Built by keyword on every request, and treated as read-only by the
    engine; not frozen, because a frozen dataclass costs twice as much to
    build on the hot path."""

    agent_id: str
    input: str | None = None
    output: str | None = None
    estimated_cost_usd: float | None = None
    model: str = ""
    tool: str = ""
    metadata: Mapping[str, str] = field(default_factory=dict)
    request_id: str = ""
    context: tuple[ContextItem, ...] = ()


@dataclass(frozen=True, slots=True)
class AgentInfo:
    """An agent as the snapshot knows it. ``known`` is False for an agent the
    snapshot does not list: policies for all agents still apply to it."""

    id: str
    name: str
    known: bool = True
    paused: bool = False
    pause_reason: str = ""
    paused_since: datetime | None = None


@dataclass(frozen=True, slots=True)
class Violation:
    policy_id: str
    policy_name: str
    policy_type: str
    severity: Severity
    message: str
    mode: Mode
    # When the same call would pass (rate limits); 0 when time does not help.
    retry_after_ms: int = 0


@dataclass(frozen=True, slots=True)
class PiiFinding:
    """A span of PII in ``field`` ("input" or "output"), code-point offsets,
    end exclusive. The value itself is never kept."""

    field: str
    pii_type: str
    start: int
    end: int


@dataclass(slots=True)
class Decision:
    """What ``CompiledSnapshot.enforce`` answers. Built on every decision
    that charges or fires something and treated as read-only everywhere
    (an agent's plain ALLOW is one object shared by its requests); not
    frozen, because a frozen dataclass of this size costs four times as much
    to build on the hot path."""

    kind: DecisionKind
    agent: AgentInfo
    violations: tuple[Violation, ...] = ()
    masked_input: str | None = None
    masked_output: str | None = None
    pii_findings: tuple[PiiFinding, ...] = ()
    # PII types and counts from policies with log_access: what the decision
    # log may keep (never the values).
    pii_counts: Mapping[str, int] = field(default_factory=dict)
    snapshot_revision: int = 0
    # What the call charges to usage if it proceeds (set only when the
    # decision lets it proceed); the server applies them through the port.
    charges: tuple[Charge, ...] = ()
    # PENDING_APPROVAL only: seconds a reviewer has before the approval
    # expires (the shortest approval_timeout_s of the policies holding it).
    approval_timeout_s: float = 0.0


@dataclass(frozen=True, slots=True)
class AuthorizeResult:
    allowed: bool
    reason: str
    denial: DenialReason | None = None
    grant_expires_at: datetime | None = None
