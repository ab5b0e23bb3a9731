"""The policy engine: pure, no I/O. It reads a snapshot document into a
compiled, immutable snapshot and answers Enforce and Authorize questions
from it. Usage (spend and call counts so far) reaches it through the usage
port (:class:`UsageView` for what it reads, :class:`UsagePort` for what a
state backend implements); a decision returns what the call charges.

Being the lowest layer, it also holds the pure helpers every layer shares:
the clock (``utc_now``), the one RFC 3339 parser and formatter, and the one
listen-address parser.

Exception tree::

    EngineError
    └── SnapshotError   a snapshot failed validation; .errors lists FieldErrors
"""

from ._address import ListenAddress, parse_listen_address
from ._document import MAX_DOCUMENT_BYTES, parse_document
from ._errors import EngineError, FieldError, SnapshotError
from ._explain import Explanation, Outcome, PolicyResult, decision_dict
from ._pause import PauseState, differs_only_in_pause_state, read_pause_state, with_pause_state
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
    "MAX_DOCUMENT_BYTES",
    "NO_USAGE",
    "POLICY_TYPES",
    "AgentInfo",
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
    "ListenAddress",
    "Mode",
    "Outcome",
    "PauseState",
    "PiiFinding",
    "PolicyResult",
    "Severity",
    "SnapshotError",
    "UsagePort",
    "UsageRecord",
    "UsageReport",
    "UsageView",
    "Violation",
    "compile_snapshot",
    "decision_dict",
    "differs_only_in_pause_state",
    "format_time",
    "parse_document",
    "parse_listen_address",
    "parse_rfc3339",
    "read_pause_state",
    "utc_now",
    "with_pause_state",
]
