"""What the client returns: plain, immutable Python values, no protobuf types."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime

__all__ = [
    "AgentStatusResult",
    "ApprovalResult",
    "ApprovalState",
    "AuthorizeResult",
    "Budget",
    "ContextItem",
    "Decision",
    "EnforceResult",
    "PiiFinding",
    "TraceResult",
    "UsageResult",
    "Violation",
    "decided_result",
]


class Decision(enum.StrEnum):
    """The outcome of an ``enforce_policy`` call that lets the call go ahead
    (or hold it for approval). ``BLOCK`` and ``AGENT_PAUSED`` are raised as
    ``PolicyBlockedError`` and ``AgentPausedError`` instead of returned.

    Each value equals its name, so ``result.decision == "ALLOW"`` holds.
    """

    ALLOW = "ALLOW"
    ALLOW_WITH_WARNINGS = "ALLOW_WITH_WARNINGS"
    PENDING_APPROVAL = "PENDING_APPROVAL"


CONTEXT_KINDS = ("document", "tool_result", "email", "web_page", "code")


@dataclass(frozen=True, slots=True)
class ContextItem:
    """Content an agent pulled in for a call, sent with ``enforce_policy`` so
    ``injection_scan`` policies look for instructions hidden in it.

    ``kind`` is one of ``document`` (a retrieved document), ``tool_result``,
    ``email``, ``web_page``, ``code``, or empty when unknown; ``source`` says
    where it came from (a URL, a file name, a tool name).
    """

    content: str
    kind: str = ""
    source: str = ""


@dataclass(frozen=True, slots=True)
class Violation:
    """One policy that fired.

    ``severity`` is one of ``low``, ``medium``, ``high``, ``critical``;
    ``enforcement_mode`` one of ``monitor``, ``warn``, ``require_approval``,
    ``block``. ``message`` never contains the PII values found.
    """

    policy_id: str
    policy_name: str
    policy_type: str
    severity: str
    message: str
    enforcement_mode: str


@dataclass(frozen=True, slots=True)
class PiiFinding:
    """One span of PII: ``field`` is ``"input"`` or ``"output"``; ``start`` and
    ``end`` are code-point offsets into the original text, end exclusive."""

    field: str
    pii_type: str
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class EnforceResult:
    """A decision that lets the call proceed, or holds it for approval.

    ``fail_open`` is True only when the sidecar could not be reached and the
    client was built with ``fail_open=True``: then no policy ran, the decision
    is ``ALLOW`` and every other field is empty.

    ``PENDING_APPROVAL``: ``approval_id`` names the approval and
    ``approval_expires_at`` (UTC) is when it is denied if nobody decides.
    After an approval let the call through, ``approval_id`` names it.
    """

    decision: Decision
    violations: list[Violation] = field(default_factory=list)
    masked_input: str | None = None
    masked_output: str | None = None
    pii_findings: list[PiiFinding] = field(default_factory=list)
    decision_id: str = ""
    approval_id: str | None = None
    snapshot_revision: int = 0
    fail_open: bool = False
    approval_expires_at: datetime | None = None

    @property
    def warnings(self) -> list[Violation]:
        """The violations of warn-mode policies: the call may go ahead, but
        someone should hear about it."""
        return [v for v in self.violations if v.enforcement_mode == "warn"]


# An EnforceResult is made for every decision. The frozen dataclass's
# ``__init__`` sets each field through ``object.__setattr__``; filling the
# slots through their descriptors makes the same value in under half the time.
_new_object = object.__new__
_RESULT_FIELDS = (
    "decision",
    "violations",
    "masked_input",
    "masked_output",
    "pii_findings",
    "decision_id",
    "approval_id",
    "snapshot_revision",
    "fail_open",
    "approval_expires_at",
)
(
    _set_decision,
    _set_violations,
    _set_masked_input,
    _set_masked_output,
    _set_pii_findings,
    _set_decision_id,
    _set_approval_id,
    _set_snapshot_revision,
    _set_fail_open,
    _set_approval_expires_at,
) = (vars(EnforceResult)[name].__set__ for name in _RESULT_FIELDS)


def decided_result(
    decision: Decision,
    violations: list[Violation],
    masked_input: str | None,
    masked_output: str | None,
    pii_findings: list[PiiFinding],
    decision_id: str,
    approval_id: str | None,
    snapshot_revision: int,
    approval_expires_at: datetime | None,
) -> EnforceResult:
    """``EnforceResult(...)`` of a decision the sidecar made (``fail_open``
    False), every field given, built faster."""
    result: EnforceResult = _new_object(EnforceResult)
    _set_decision(result, decision)
    _set_violations(result, violations)
    _set_masked_input(result, masked_input)
    _set_masked_output(result, masked_output)
    _set_pii_findings(result, pii_findings)
    _set_decision_id(result, decision_id)
    _set_approval_id(result, approval_id)
    _set_snapshot_revision(result, snapshot_revision)
    _set_fail_open(result, False)
    _set_approval_expires_at(result, approval_expires_at)
    return result


@dataclass(frozen=True, slots=True)
class AuthorizeResult:
    """Whether a source agent may act on a target agent now.

    ``denial`` is None when allowed, else one of ``no_grant``,
    ``grant_expired``, ``action_not_granted``, ``source_paused``,
    ``target_paused``. ``grant_expires_at`` is the (UTC) expiry of the grant
    that allowed the call, None when it has none.
    """

    allowed: bool
    reason: str
    denial: str | None = None
    grant_expires_at: datetime | None = None
    snapshot_revision: int = 0


@dataclass(frozen=True, slots=True)
class Budget:
    """Spend against one budget of one policy; ``period`` is ``"daily"``
    (cost_limit) or ``"monthly"`` (budget_cap)."""

    policy_id: str
    policy_name: str
    period: str
    limit_usd: float
    spent_usd: float
    period_start: datetime | None = None


@dataclass(frozen=True, slots=True)
class AgentStatusResult:
    """The kill-switch state of an agent, its spend and the sidecar's snapshot.

    ``known`` is False when the snapshot does not list the agent (policies for
    all agents still apply to it). ``snapshot_rejection`` is None, or the
    ``(path, message)`` errors of the last snapshot the sidecar refused while it
    kept serving the active one.
    """

    agent_id: str
    agent_name: str
    known: bool
    paused: bool
    reason: str = ""
    paused_since: datetime | None = None
    budgets: list[Budget] = field(default_factory=list)
    snapshot_revision: int = 0
    snapshot_source: str = ""
    snapshot_rejection: list[tuple[str, str]] | None = None


@dataclass(frozen=True, slots=True)
class UsageResult:
    """``duplicate`` is True when the request id was already recorded (nothing
    was added); ``daily_spend_usd`` is the agent's spend today (UTC)."""

    duplicate: bool
    daily_spend_usd: float


@dataclass(frozen=True, slots=True)
class TraceResult:
    """What the sidecar found in a finished call. Nothing was blocked (the
    call ran): each violation is recorded as an incident. ``anomaly`` is True
    when a block-mode policy fired or the cost is above the agent's
    per-execution limit."""

    trace_id: str
    violations: list[Violation]
    anomaly: bool


class ApprovalState(enum.StrEnum):
    """Where an approval stands; each value is its lowercase name."""

    PENDING = "pending"
    APPROVED = "approved"
    DENIED = "denied"
    EXPIRED = "expired"


@dataclass(frozen=True, slots=True)
class ApprovalResult:
    """An approval as ``await_approval`` found it. ``reviewer`` (the name of
    the API key that decided, or the user of ``pdp approvals``) and
    ``comment`` are empty until decided; ``decided_at`` is the expiry for an
    expired one. Times are UTC."""

    approval_id: str
    state: ApprovalState
    reviewer: str = ""
    comment: str = ""
    expires_at: datetime | None = None
    decided_at: datetime | None = None
