"""The policy engine: pure, no I/O. It reads a snapshot document into a
compiled, immutable snapshot and answers Enforce and Authorize questions
from it. Usage (spend and call counts so far) reaches it through the usage
port (:class:`UsageView` for what it reads, :class:`UsagePort` for what a
state backend implements); a decision returns what the call charges. A
decision that holds a call for a reviewer says how long the reviewer has;
:class:`Approval` and :func:`request_digest` bind an approval to its request.

Being the lowest layer, it also holds the pure helpers every layer shares:
the clock (``utc_now``), the one RFC 3339 parser and formatter, and the one
listen-address parser.

Exception tree::

    EngineError
    └── SnapshotError   a snapshot failed validation; .errors lists FieldErrors
"""

from ._address import ListenAddress, parse_listen_address
from ._approval import (
    Approval,
    ApprovalState,
    FiredPolicy,
    already_decided,
    approval_from_json,
    approval_json,
    approval_refusal,
    fired_policies,
    masked_excerpt,
    request_digest,
)
from ._document import parse_document
from ._errors import EngineError, FieldError, SnapshotError
from ._explain import Explanation, Outcome, PolicyResult, decision_dict
from ._policy import COMMON_RULE_FIELDS, DEFAULT_APPROVAL_TIMEOUT_S
from ._registry import POLICY_TYPES
from ._snapshot import BudgetState, CompiledSnapshot, compile_snapshot
from ._time import format_time, parse_rfc3339, utc_now
from ._types import (
    ACTIONS,
    AgentInfo,
    AuthorizeResult,
    ContextItem,
    ContextKind,
    Decision,
    DecisionKind,
    DenialReason,
    EnforceInput,
    Mode,
    PiiFinding,
    Severity,
    Violation,
)
from ._usage import (
    CALL_WINDOW_MAX_SECONDS,
    NO_USAGE,
    CallCharge,
    Charge,
    CounterKey,
    UsagePort,
    UsageRecord,
    UsageReport,
    UsageView,
)

__all__ = [
    "ACTIONS",
    "CALL_WINDOW_MAX_SECONDS",
    "COMMON_RULE_FIELDS",
    "DEFAULT_APPROVAL_TIMEOUT_S",
    "NO_USAGE",
    "POLICY_TYPES",
    "AgentInfo",
    "Approval",
    "ApprovalState",
    "AuthorizeResult",
    "BudgetState",
    "CallCharge",
    "Charge",
    "CompiledSnapshot",
    "ContextItem",
    "ContextKind",
    "CounterKey",
    "Decision",
    "DecisionKind",
    "DenialReason",
    "EnforceInput",
    "EngineError",
    "Explanation",
    "FieldError",
    "FiredPolicy",
    "ListenAddress",
    "Mode",
    "Outcome",
    "PiiFinding",
    "PolicyResult",
    "Severity",
    "SnapshotError",
    "UsagePort",
    "UsageRecord",
    "UsageReport",
    "UsageView",
    "Violation",
    "already_decided",
    "approval_from_json",
    "approval_json",
    "approval_refusal",
    "compile_snapshot",
    "decision_dict",
    "fired_policies",
    "format_time",
    "masked_excerpt",
    "parse_document",
    "parse_listen_address",
    "parse_rfc3339",
    "request_digest",
    "utc_now",
]
