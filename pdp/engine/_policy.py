"""What a policy type is made of: its registry entry (:class:`PolicyType`),
the compiled check it builds (:class:`Check`), what a firing check reports
(:class:`Hit`) and the spend budgets a check enforces (:class:`Budget`).

Each policy type lives in one module of ``_checks`` with its entry; the
registry (``_registry``) collects them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo

from ._context import Context
from ._fields import Reader
from ._model import PolicySpec
from ._periods import day_start, load_timezone, month_start
from ._types import Mode, Severity

__all__ = [
    "COMMON_RULE_FIELDS",
    "DEFAULT_APPROVAL_TIMEOUT_S",
    "MAX_APPROVAL_TIMEOUT_S",
    "ON_STATE_ERROR",
    "Budget",
    "Build",
    "Check",
    "CommonRule",
    "Hit",
    "PolicyType",
    "read_common_rule",
    "read_timezone",
]

DEFAULT_APPROVAL_TIMEOUT_S = 900.0
MAX_APPROVAL_TIMEOUT_S = 30 * 24 * 3600.0
# Keys every ruleDefinition may hold, whatever its type.
COMMON_RULE_FIELDS: tuple[str, ...] = ("approval_timeout_s",)


@dataclass(frozen=True, slots=True)
class Hit:
    """A check fired. ``mode`` and ``severity`` override the policy's own
    (a budget warning is softer than the policy); ``retry_after_ms`` says
    when the same call would pass (rate limits)."""

    message: str
    mode: Mode | None = None
    severity: Severity | None = None
    retry_after_ms: int = 0


@dataclass(frozen=True, slots=True)
class Budget:
    """A spend budget a check enforces: ``limit_usd`` per day, or per month
    starting on ``reset_day``, with boundaries at midnight in ``tz``."""

    period: str  # "daily" or "monthly"
    limit_usd: float
    tz: tzinfo = UTC
    reset_day: int = 1

    def start(self, now: datetime) -> datetime:
        """Start of the period containing ``now``, as an aware UTC datetime."""
        if self.period == "daily":
            return day_start(now, self.tz)
        return month_start(now, self.reset_day, self.tz)


class Check:
    """A compiled policy: immutable, shared by every request of a snapshot."""

    __slots__ = ()

    def run(self, ctx: Context) -> Hit | None:
        """None when the policy does not fire for this request, else a Hit."""
        raise NotImplementedError

    def budgets(self) -> tuple[Budget, ...]:
        """The spend budgets this check enforces (AgentStatus reports them)."""
        return ()


# Reads a policy's ruleDefinition (problems go to the reader) and returns its
# check, or None when the rule is unusable.
Build = Callable[[Reader, PolicySpec], Check | None]


@dataclass(frozen=True, slots=True)
class PolicyType:
    """One policy type: the registry entry its module defines as ``POLICY_TYPE``.

    ``name`` is the ``policyType`` of a snapshot; ``rule_fields`` are the keys
    its ``ruleDefinition`` may hold (any other key is an error); ``build``
    compiles one policy; ``default_severity`` applies when a policy names none;
    ``summary`` is its line in the documentation's table of types.

    A type whose checks read usage (``reads_usage``) also takes the common
    rule field ``on_state_error`` (``closed``, the default, or ``open``):
    what the policy does when the state backend cannot be reached. The
    registry reads it; the type's ``build`` does not see it."""

    name: str
    summary: str
    rule_fields: tuple[str, ...]
    build: Build
    default_severity: Severity = Severity.MEDIUM
    reads_usage: bool = False

    def __post_init__(self) -> None:
        if self.reads_usage and ON_STATE_ERROR not in self.rule_fields:
            object.__setattr__(self, "rule_fields", (*self.rule_fields, ON_STATE_ERROR))


ON_STATE_ERROR = "on_state_error"


def read_timezone(r: Reader) -> tzinfo:
    """The ``timezone`` field of a rule (an IANA name, default UTC)."""
    name = r.string("timezone", max_len=100)
    if name is None:
        return UTC
    tz = load_timezone(name)
    if tz is None:
        r.problems.add(r.at("timezone"), f"unknown time zone {name!r} (use an IANA name)")
        return UTC
    return tz


@dataclass(frozen=True, slots=True)
class CommonRule:
    """What every policy's ruleDefinition may say, whatever its type:
    ``approval_timeout_s``, seconds a reviewer has to decide a call the
    policy holds (require_approval) before it is denied as expired."""

    approval_timeout_s: float = DEFAULT_APPROVAL_TIMEOUT_S


def read_common_rule(r: Reader) -> CommonRule:
    """The :data:`COMMON_RULE_FIELDS` of a rule."""
    timeout = r.number(
        "approval_timeout_s", minimum=0, exclusive_minimum=True, maximum=MAX_APPROVAL_TIMEOUT_S
    )
    return CommonRule(DEFAULT_APPROVAL_TIMEOUT_S if timeout is None else timeout)
