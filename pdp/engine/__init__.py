"""The policy engine: pure, no I/O. It reads a snapshot document into a
compiled, immutable snapshot and answers Enforce and Authorize questions
from it. Everything that needs I/O (spend so far) reaches it as an argument.

Exception tree::

    EngineError
    └── SnapshotError   a snapshot failed validation; .errors lists FieldErrors
"""

from ._document import parse_document
from ._errors import EngineError, FieldError, SnapshotError
from ._model import POLICY_TYPES
from ._snapshot import BudgetState, CompiledSnapshot, compile_snapshot
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
    "ContextItem",
    "ContextKind",
    "Decision",
    "DecisionKind",
    "DenialReason",
    "EnforceInput",
    "EngineError",
    "FieldError",
    "Mode",
    "PiiFinding",
    "Severity",
    "SnapshotError",
    "SpendView",
    "Violation",
    "compile_snapshot",
    "parse_document",
]
