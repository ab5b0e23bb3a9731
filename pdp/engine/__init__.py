"""The policy engine: pure, no I/O. It reads a snapshot document into a
compiled, immutable snapshot and answers Enforce and Authorize questions
from it. Everything that needs I/O (spend so far) reaches it as an argument.

Being the lowest layer, it also holds the pure helpers every layer shares:
the clock (``utc_now``), the one RFC 3339 parser and formatter, and the one
listen-address parser.

Exception tree::

    EngineError
    └── SnapshotError   a snapshot failed validation; .errors lists FieldErrors
"""

from ._address import ListenAddress, parse_listen_address
from ._document import parse_document
from ._errors import EngineError, FieldError, SnapshotError
from ._model import POLICY_TYPES
from ._snapshot import BudgetState, CompiledSnapshot, compile_snapshot
from ._time import format_time, parse_rfc3339, utc_now
from ._types import (
    ACTIONS,
    AgentInfo,
    AuthorizeResult,
    Decision,
    DecisionKind,
    DenialReason,
    EnforceInput,
    Mode,
    PiiFinding,
    Severity,
    SpendView,
    Violation,
)

__all__ = [
    "ACTIONS",
    "POLICY_TYPES",
    "AgentInfo",
    "AuthorizeResult",
    "BudgetState",
    "CompiledSnapshot",
    "Decision",
    "DecisionKind",
    "DenialReason",
    "EnforceInput",
    "EngineError",
    "FieldError",
    "ListenAddress",
    "Mode",
    "PiiFinding",
    "Severity",
    "SnapshotError",
    "SpendView",
    "Violation",
    "compile_snapshot",
    "format_time",
    "parse_document",
    "parse_listen_address",
    "parse_rfc3339",
    "utc_now",
]
