"""The policy engine: pure, no I/O. It reads a snapshot document into a
compiled, immutable snapshot and answers Enforce and Authorize questions
from it. Usage (spend and call counts so far) reaches it through the usage
port (:class:`UsageView` for what it reads, :class:`UsagePort` for what a
state backend implements); a decision returns what the call charges. A
decision that holds a call for a reviewer says how long the reviewer has;
:class:`Approval` and :func:`request_digest` bind an approval to its request.

A custom validator's answer is I/O too: an evaluation that needs one
returns a :class:`Consultation` (the calls to make) and continues when
given the answers.

Being the lowest layer, it also holds the pure helpers every layer shares:
the clock (``utc_now``), the one RFC 3339 parser and formatter, the one
listen-address parser, and Standard Webhooks signing.

It also holds the one canonical form of an agent id (``canonical_agent_id``)
and the look-alike keys (``agent_id_keys``) the sidecar, the control plane
and the SDK share.

Exception tree::

    EngineError
    ├── AgentIdError            an agent id was refused; .reason says why
    ├── SnapshotError           a snapshot failed validation; .errors lists FieldErrors
    └── StateUnavailableError   usage cannot be read or written (backend unreachable)
"""

from ._address import ListenAddress, parse_listen_address
from ._agent_id import MAX_AGENT_ID_CHARS, agent_id_keys, canonical_agent_id
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
from ._caller_tokens import (
    CALLER_TOKEN_PREFIX,
    MAX_CALLER_TOKENS,
    caller_token_digest,
    caller_token_matches,
    new_caller_token,
)
from ._cel import COST_BUDGET, INLINE_COST, CelJob, CelResult
from ._compile import compile_snapshot
from ._consultation import Consultation
from ._context import NO_CEL_RESULTS
from ._document import MAX_DOCUMENT_BYTES, NO_ITEMS, parse_document, parse_document_items
from ._errors import AgentIdError, EngineError, FieldError, SnapshotError, StateUnavailableError
from ._explain import Explanation, Outcome, PolicyResult, decision_dict
from ._json_items import Pace, no_pace
from ._model import UNKNOWN_AGENTS
from ._pause import PauseState, differs_only_in_pause_state, read_pause_state, with_pause_state
from ._periods import load_timezone, month_start
from ._policy import COMMON_RULE_FIELDS, DEFAULT_APPROVAL_TIMEOUT_S
from ._registry import POLICY_TYPES
from ._signing import sign_webhook, signing_key
from ._snapshot import BudgetState, CompiledSnapshot
from ._time import Clock, SteadyClock, SystemClock, format_time, parse_rfc3339, utc_now
from ._trace import TraceFindings, evaluate_trace, per_execution_limit
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
    MAX_COST_USD,
    NO_USAGE,
    CallCharge,
    Charge,
    CostCharge,
    CounterKey,
    UsagePort,
    UsageRecord,
    UsageReport,
    UsageView,
)
from ._validator import (
    NO_ANSWERS,
    Answer,
    FailMode,
    Validator,
    ValidatorAnswer,
    ValidatorCall,
    ValidatorFailure,
)

__all__ = [
    "ACTIONS",
    "CALLER_TOKEN_PREFIX",
    "CALL_WINDOW_MAX_SECONDS",
    "COMMON_RULE_FIELDS",
    "COST_BUDGET",
    "DEFAULT_APPROVAL_TIMEOUT_S",
    "INLINE_COST",
    "MAX_AGENT_ID_CHARS",
    "MAX_CALLER_TOKENS",
    "MAX_COST_USD",
    "MAX_DOCUMENT_BYTES",
    "NO_ANSWERS",
    "NO_CEL_RESULTS",
    "NO_ITEMS",
    "NO_USAGE",
    "POLICY_TYPES",
    "UNKNOWN_AGENTS",
    "AgentIdError",
    "AgentInfo",
    "Answer",
    "Approval",
    "ApprovalState",
    "AuthorizeResult",
    "BudgetState",
    "CallCharge",
    "CelJob",
    "CelResult",
    "Charge",
    "Clock",
    "CompiledSnapshot",
    "Consultation",
    "ContextItem",
    "ContextKind",
    "CostCharge",
    "CounterKey",
    "Decision",
    "DecisionKind",
    "DenialReason",
    "EnforceInput",
    "EngineError",
    "Explanation",
    "FailMode",
    "FieldError",
    "FiredPolicy",
    "ListenAddress",
    "Mode",
    "Outcome",
    "Pace",
    "PauseState",
    "PiiFinding",
    "PolicyResult",
    "Severity",
    "SnapshotError",
    "StateUnavailableError",
    "SteadyClock",
    "SystemClock",
    "TraceFindings",
    "UsagePort",
    "UsageRecord",
    "UsageReport",
    "UsageView",
    "Validator",
    "ValidatorAnswer",
    "ValidatorCall",
    "ValidatorFailure",
    "Violation",
    "agent_id_keys",
    "already_decided",
    "approval_from_json",
    "approval_json",
    "approval_refusal",
    "caller_token_digest",
    "caller_token_matches",
    "canonical_agent_id",
    "compile_snapshot",
    "decision_dict",
    "differs_only_in_pause_state",
    "evaluate_trace",
    "fired_policies",
    "format_time",
    "load_timezone",
    "masked_excerpt",
    "month_start",
    "new_caller_token",
    "no_pace",
    "parse_document",
    "parse_document_items",
    "parse_listen_address",
    "parse_rfc3339",
    "per_execution_limit",
    "read_pause_state",
    "request_digest",
    "sign_webhook",
    "signing_key",
    "utc_now",
    "with_pause_state",
]
