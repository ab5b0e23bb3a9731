import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Decision(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DECISION_UNSPECIFIED: _ClassVar[Decision]
    DECISION_ALLOW: _ClassVar[Decision]
    DECISION_ALLOW_WITH_WARNINGS: _ClassVar[Decision]
    DECISION_BLOCK: _ClassVar[Decision]
    DECISION_PENDING_APPROVAL: _ClassVar[Decision]
    DECISION_AGENT_PAUSED: _ClassVar[Decision]

class EnforcementMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ENFORCEMENT_MODE_UNSPECIFIED: _ClassVar[EnforcementMode]
    ENFORCEMENT_MODE_MONITOR: _ClassVar[EnforcementMode]
    ENFORCEMENT_MODE_WARN: _ClassVar[EnforcementMode]
    ENFORCEMENT_MODE_REQUIRE_APPROVAL: _ClassVar[EnforcementMode]
    ENFORCEMENT_MODE_BLOCK: _ClassVar[EnforcementMode]

class Severity(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SEVERITY_UNSPECIFIED: _ClassVar[Severity]
    SEVERITY_LOW: _ClassVar[Severity]
    SEVERITY_MEDIUM: _ClassVar[Severity]
    SEVERITY_HIGH: _ClassVar[Severity]
    SEVERITY_CRITICAL: _ClassVar[Severity]

class Action(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ACTION_UNSPECIFIED: _ClassVar[Action]
    ACTION_EXECUTE: _ClassVar[Action]
    ACTION_READ: _ClassVar[Action]
    ACTION_WRITE: _ClassVar[Action]
    ACTION_DELETE: _ClassVar[Action]
    ACTION_INVOKE: _ClassVar[Action]
    ACTION_QUERY: _ClassVar[Action]
    ACTION_SUBSCRIBE: _ClassVar[Action]
    ACTION_DELEGATE: _ClassVar[Action]

class AuthorizeDenial(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    AUTHORIZE_DENIAL_UNSPECIFIED: _ClassVar[AuthorizeDenial]
    AUTHORIZE_DENIAL_NO_GRANT: _ClassVar[AuthorizeDenial]
    AUTHORIZE_DENIAL_GRANT_EXPIRED: _ClassVar[AuthorizeDenial]
    AUTHORIZE_DENIAL_ACTION_NOT_GRANTED: _ClassVar[AuthorizeDenial]
    AUTHORIZE_DENIAL_SOURCE_PAUSED: _ClassVar[AuthorizeDenial]
    AUTHORIZE_DENIAL_TARGET_PAUSED: _ClassVar[AuthorizeDenial]
    AUTHORIZE_DENIAL_UNKNOWN_AGENT: _ClassVar[AuthorizeDenial]

class ContextKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CONTEXT_KIND_UNSPECIFIED: _ClassVar[ContextKind]
    CONTEXT_KIND_DOCUMENT: _ClassVar[ContextKind]
    CONTEXT_KIND_TOOL_RESULT: _ClassVar[ContextKind]
    CONTEXT_KIND_EMAIL: _ClassVar[ContextKind]
    CONTEXT_KIND_WEB_PAGE: _ClassVar[ContextKind]
    CONTEXT_KIND_CODE: _ClassVar[ContextKind]

class ApprovalState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    APPROVAL_STATE_UNSPECIFIED: _ClassVar[ApprovalState]
    APPROVAL_STATE_PENDING: _ClassVar[ApprovalState]
    APPROVAL_STATE_APPROVED: _ClassVar[ApprovalState]
    APPROVAL_STATE_DENIED: _ClassVar[ApprovalState]
    APPROVAL_STATE_EXPIRED: _ClassVar[ApprovalState]
DECISION_UNSPECIFIED: Decision
DECISION_ALLOW: Decision
DECISION_ALLOW_WITH_WARNINGS: Decision
DECISION_BLOCK: Decision
DECISION_PENDING_APPROVAL: Decision
DECISION_AGENT_PAUSED: Decision
ENFORCEMENT_MODE_UNSPECIFIED: EnforcementMode
ENFORCEMENT_MODE_MONITOR: EnforcementMode
ENFORCEMENT_MODE_WARN: EnforcementMode
ENFORCEMENT_MODE_REQUIRE_APPROVAL: EnforcementMode
ENFORCEMENT_MODE_BLOCK: EnforcementMode
SEVERITY_UNSPECIFIED: Severity
SEVERITY_LOW: Severity
SEVERITY_MEDIUM: Severity
SEVERITY_HIGH: Severity
SEVERITY_CRITICAL: Severity
ACTION_UNSPECIFIED: Action
ACTION_EXECUTE: Action
ACTION_READ: Action
ACTION_WRITE: Action
ACTION_DELETE: Action
ACTION_INVOKE: Action
ACTION_QUERY: Action
ACTION_SUBSCRIBE: Action
ACTION_DELEGATE: Action
AUTHORIZE_DENIAL_UNSPECIFIED: AuthorizeDenial
AUTHORIZE_DENIAL_NO_GRANT: AuthorizeDenial
AUTHORIZE_DENIAL_GRANT_EXPIRED: AuthorizeDenial
AUTHORIZE_DENIAL_ACTION_NOT_GRANTED: AuthorizeDenial
AUTHORIZE_DENIAL_SOURCE_PAUSED: AuthorizeDenial
AUTHORIZE_DENIAL_TARGET_PAUSED: AuthorizeDenial
AUTHORIZE_DENIAL_UNKNOWN_AGENT: AuthorizeDenial
CONTEXT_KIND_UNSPECIFIED: ContextKind
CONTEXT_KIND_DOCUMENT: ContextKind
CONTEXT_KIND_TOOL_RESULT: ContextKind
CONTEXT_KIND_EMAIL: ContextKind
CONTEXT_KIND_WEB_PAGE: ContextKind
CONTEXT_KIND_CODE: ContextKind
APPROVAL_STATE_UNSPECIFIED: ApprovalState
APPROVAL_STATE_PENDING: ApprovalState
APPROVAL_STATE_APPROVED: ApprovalState
APPROVAL_STATE_DENIED: ApprovalState
APPROVAL_STATE_EXPIRED: ApprovalState

class Violation(_message.Message):
    __slots__ = ("policy_id", "policy_name", "policy_type", "severity", "message", "enforcement_mode", "retry_after_ms")
    POLICY_ID_FIELD_NUMBER: _ClassVar[int]
    POLICY_NAME_FIELD_NUMBER: _ClassVar[int]
    POLICY_TYPE_FIELD_NUMBER: _ClassVar[int]
    SEVERITY_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    ENFORCEMENT_MODE_FIELD_NUMBER: _ClassVar[int]
    RETRY_AFTER_MS_FIELD_NUMBER: _ClassVar[int]
    policy_id: str
    policy_name: str
    policy_type: str
    severity: Severity
    message: str
    enforcement_mode: EnforcementMode
    retry_after_ms: int
    def __init__(self, policy_id: _Optional[str] = ..., policy_name: _Optional[str] = ..., policy_type: _Optional[str] = ..., severity: _Optional[_Union[Severity, str]] = ..., message: _Optional[str] = ..., enforcement_mode: _Optional[_Union[EnforcementMode, str]] = ..., retry_after_ms: _Optional[int] = ...) -> None: ...

class ContextItem(_message.Message):
    __slots__ = ("kind", "source", "content")
    KIND_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    kind: ContextKind
    source: str
    content: str
    def __init__(self, kind: _Optional[_Union[ContextKind, str]] = ..., source: _Optional[str] = ..., content: _Optional[str] = ...) -> None: ...

class PiiFinding(_message.Message):
    __slots__ = ("field", "pii_type", "start", "end")
    FIELD_FIELD_NUMBER: _ClassVar[int]
    PII_TYPE_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    field: str
    pii_type: str
    start: int
    end: int
    def __init__(self, field: _Optional[str] = ..., pii_type: _Optional[str] = ..., start: _Optional[int] = ..., end: _Optional[int] = ...) -> None: ...

class EnforceRequest(_message.Message):
    __slots__ = ("agent_id", "input", "output", "estimated_cost_usd", "model", "tool", "metadata", "request_id", "approval_id", "context")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    INPUT_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    ESTIMATED_COST_USD_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    TOOL_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    APPROVAL_ID_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    input: str
    output: str
    estimated_cost_usd: float
    model: str
    tool: str
    metadata: _containers.ScalarMap[str, str]
    request_id: str
    approval_id: str
    context: _containers.RepeatedCompositeFieldContainer[ContextItem]
    def __init__(self, agent_id: _Optional[str] = ..., input: _Optional[str] = ..., output: _Optional[str] = ..., estimated_cost_usd: _Optional[float] = ..., model: _Optional[str] = ..., tool: _Optional[str] = ..., metadata: _Optional[_Mapping[str, str]] = ..., request_id: _Optional[str] = ..., approval_id: _Optional[str] = ..., context: _Optional[_Iterable[_Union[ContextItem, _Mapping]]] = ...) -> None: ...

class EnforceResponse(_message.Message):
    __slots__ = ("decision", "violations", "masked_input", "masked_output", "pii_findings", "decision_id", "approval_id", "snapshot_revision", "paused_reason", "request_id", "approval_expires_at")
    DECISION_FIELD_NUMBER: _ClassVar[int]
    VIOLATIONS_FIELD_NUMBER: _ClassVar[int]
    MASKED_INPUT_FIELD_NUMBER: _ClassVar[int]
    MASKED_OUTPUT_FIELD_NUMBER: _ClassVar[int]
    PII_FINDINGS_FIELD_NUMBER: _ClassVar[int]
    DECISION_ID_FIELD_NUMBER: _ClassVar[int]
    APPROVAL_ID_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_REVISION_FIELD_NUMBER: _ClassVar[int]
    PAUSED_REASON_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    APPROVAL_EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    decision: Decision
    violations: _containers.RepeatedCompositeFieldContainer[Violation]
    masked_input: str
    masked_output: str
    pii_findings: _containers.RepeatedCompositeFieldContainer[PiiFinding]
    decision_id: str
    approval_id: str
    snapshot_revision: int
    paused_reason: str
    request_id: str
    approval_expires_at: _timestamp_pb2.Timestamp
    def __init__(self, decision: _Optional[_Union[Decision, str]] = ..., violations: _Optional[_Iterable[_Union[Violation, _Mapping]]] = ..., masked_input: _Optional[str] = ..., masked_output: _Optional[str] = ..., pii_findings: _Optional[_Iterable[_Union[PiiFinding, _Mapping]]] = ..., decision_id: _Optional[str] = ..., approval_id: _Optional[str] = ..., snapshot_revision: _Optional[int] = ..., paused_reason: _Optional[str] = ..., request_id: _Optional[str] = ..., approval_expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class EnforceBatchRequest(_message.Message):
    __slots__ = ("requests",)
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    requests: _containers.RepeatedCompositeFieldContainer[EnforceRequest]
    def __init__(self, requests: _Optional[_Iterable[_Union[EnforceRequest, _Mapping]]] = ...) -> None: ...

class EnforceBatchResponse(_message.Message):
    __slots__ = ("responses",)
    RESPONSES_FIELD_NUMBER: _ClassVar[int]
    responses: _containers.RepeatedCompositeFieldContainer[EnforceResponse]
    def __init__(self, responses: _Optional[_Iterable[_Union[EnforceResponse, _Mapping]]] = ...) -> None: ...

class EnforceStreamRequest(_message.Message):
    __slots__ = ("id", "request", "items")
    ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    id: str
    request: EnforceRequest
    items: _containers.RepeatedCompositeFieldContainer[EnforceStreamItem]
    def __init__(self, id: _Optional[str] = ..., request: _Optional[_Union[EnforceRequest, _Mapping]] = ..., items: _Optional[_Iterable[_Union[EnforceStreamItem, _Mapping]]] = ...) -> None: ...

class EnforceStreamItem(_message.Message):
    __slots__ = ("id", "request")
    ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    id: str
    request: EnforceRequest
    def __init__(self, id: _Optional[str] = ..., request: _Optional[_Union[EnforceRequest, _Mapping]] = ...) -> None: ...

class EnforceStreamResponse(_message.Message):
    __slots__ = ("id", "response", "error", "answers")
    ID_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    ANSWERS_FIELD_NUMBER: _ClassVar[int]
    id: str
    response: EnforceResponse
    error: RequestError
    answers: _containers.RepeatedCompositeFieldContainer[EnforceStreamAnswer]
    def __init__(self, id: _Optional[str] = ..., response: _Optional[_Union[EnforceResponse, _Mapping]] = ..., error: _Optional[_Union[RequestError, _Mapping]] = ..., answers: _Optional[_Iterable[_Union[EnforceStreamAnswer, _Mapping]]] = ...) -> None: ...

class EnforceStreamAnswer(_message.Message):
    __slots__ = ("id", "response", "error")
    ID_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    id: str
    response: EnforceResponse
    error: RequestError
    def __init__(self, id: _Optional[str] = ..., response: _Optional[_Union[EnforceResponse, _Mapping]] = ..., error: _Optional[_Union[RequestError, _Mapping]] = ...) -> None: ...

class RequestError(_message.Message):
    __slots__ = ("code", "field", "message")
    CODE_FIELD_NUMBER: _ClassVar[int]
    FIELD_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    code: str
    field: str
    message: str
    def __init__(self, code: _Optional[str] = ..., field: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class AuthorizeRequest(_message.Message):
    __slots__ = ("source_agent_id", "target_agent_id", "action")
    SOURCE_AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    TARGET_AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    source_agent_id: str
    target_agent_id: str
    action: Action
    def __init__(self, source_agent_id: _Optional[str] = ..., target_agent_id: _Optional[str] = ..., action: _Optional[_Union[Action, str]] = ...) -> None: ...

class AuthorizeResponse(_message.Message):
    __slots__ = ("allowed", "reason", "denial", "grant_expires_at", "snapshot_revision")
    ALLOWED_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    DENIAL_FIELD_NUMBER: _ClassVar[int]
    GRANT_EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_REVISION_FIELD_NUMBER: _ClassVar[int]
    allowed: bool
    reason: str
    denial: AuthorizeDenial
    grant_expires_at: _timestamp_pb2.Timestamp
    snapshot_revision: int
    def __init__(self, allowed: _Optional[bool] = ..., reason: _Optional[str] = ..., denial: _Optional[_Union[AuthorizeDenial, str]] = ..., grant_expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., snapshot_revision: _Optional[int] = ...) -> None: ...

class AgentStatusRequest(_message.Message):
    __slots__ = ("agent_id",)
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    def __init__(self, agent_id: _Optional[str] = ...) -> None: ...

class AgentStatusResponse(_message.Message):
    __slots__ = ("state",)
    STATE_FIELD_NUMBER: _ClassVar[int]
    state: AgentState
    def __init__(self, state: _Optional[_Union[AgentState, _Mapping]] = ...) -> None: ...

class WatchAgentStatusRequest(_message.Message):
    __slots__ = ("agent_id",)
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    def __init__(self, agent_id: _Optional[str] = ...) -> None: ...

class WatchAgentStatusResponse(_message.Message):
    __slots__ = ("state",)
    STATE_FIELD_NUMBER: _ClassVar[int]
    state: AgentState
    def __init__(self, state: _Optional[_Union[AgentState, _Mapping]] = ...) -> None: ...

class AgentState(_message.Message):
    __slots__ = ("agent_id", "agent_name", "known", "paused", "paused_reason", "paused_since", "budgets", "snapshot", "state_backend")
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    AGENT_NAME_FIELD_NUMBER: _ClassVar[int]
    KNOWN_FIELD_NUMBER: _ClassVar[int]
    PAUSED_FIELD_NUMBER: _ClassVar[int]
    PAUSED_REASON_FIELD_NUMBER: _ClassVar[int]
    PAUSED_SINCE_FIELD_NUMBER: _ClassVar[int]
    BUDGETS_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    STATE_BACKEND_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    agent_name: str
    known: bool
    paused: bool
    paused_reason: str
    paused_since: _timestamp_pb2.Timestamp
    budgets: _containers.RepeatedCompositeFieldContainer[BudgetStatus]
    snapshot: SnapshotStatus
    state_backend: StateBackendStatus
    def __init__(self, agent_id: _Optional[str] = ..., agent_name: _Optional[str] = ..., known: _Optional[bool] = ..., paused: _Optional[bool] = ..., paused_reason: _Optional[str] = ..., paused_since: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., budgets: _Optional[_Iterable[_Union[BudgetStatus, _Mapping]]] = ..., snapshot: _Optional[_Union[SnapshotStatus, _Mapping]] = ..., state_backend: _Optional[_Union[StateBackendStatus, _Mapping]] = ...) -> None: ...

class StateBackendStatus(_message.Message):
    __slots__ = ("backend", "healthy", "message")
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    HEALTHY_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    backend: str
    healthy: bool
    message: str
    def __init__(self, backend: _Optional[str] = ..., healthy: _Optional[bool] = ..., message: _Optional[str] = ...) -> None: ...

class BudgetStatus(_message.Message):
    __slots__ = ("policy_id", "policy_name", "period", "limit_usd", "spent_usd", "period_start")
    POLICY_ID_FIELD_NUMBER: _ClassVar[int]
    POLICY_NAME_FIELD_NUMBER: _ClassVar[int]
    PERIOD_FIELD_NUMBER: _ClassVar[int]
    LIMIT_USD_FIELD_NUMBER: _ClassVar[int]
    SPENT_USD_FIELD_NUMBER: _ClassVar[int]
    PERIOD_START_FIELD_NUMBER: _ClassVar[int]
    policy_id: str
    policy_name: str
    period: str
    limit_usd: float
    spent_usd: float
    period_start: _timestamp_pb2.Timestamp
    def __init__(self, policy_id: _Optional[str] = ..., policy_name: _Optional[str] = ..., period: _Optional[str] = ..., limit_usd: _Optional[float] = ..., spent_usd: _Optional[float] = ..., period_start: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class SnapshotStatus(_message.Message):
    __slots__ = ("revision", "source", "activated_at", "staleness", "last_rejection")
    REVISION_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    ACTIVATED_AT_FIELD_NUMBER: _ClassVar[int]
    STALENESS_FIELD_NUMBER: _ClassVar[int]
    LAST_REJECTION_FIELD_NUMBER: _ClassVar[int]
    revision: int
    source: str
    activated_at: _timestamp_pb2.Timestamp
    staleness: _duration_pb2.Duration
    last_rejection: SnapshotRejection
    def __init__(self, revision: _Optional[int] = ..., source: _Optional[str] = ..., activated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., staleness: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., last_rejection: _Optional[_Union[SnapshotRejection, _Mapping]] = ...) -> None: ...

class SnapshotRejection(_message.Message):
    __slots__ = ("rejected_at", "errors", "revision", "source")
    REJECTED_AT_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    rejected_at: _timestamp_pb2.Timestamp
    errors: _containers.RepeatedCompositeFieldContainer[FieldError]
    revision: int
    source: str
    def __init__(self, rejected_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., errors: _Optional[_Iterable[_Union[FieldError, _Mapping]]] = ..., revision: _Optional[int] = ..., source: _Optional[str] = ...) -> None: ...

class FieldError(_message.Message):
    __slots__ = ("path", "message")
    PATH_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    path: str
    message: str
    def __init__(self, path: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class ReportUsageRequest(_message.Message):
    __slots__ = ("agent_id", "cost_usd", "request_id")
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    COST_USD_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    cost_usd: float
    request_id: str
    def __init__(self, agent_id: _Optional[str] = ..., cost_usd: _Optional[float] = ..., request_id: _Optional[str] = ...) -> None: ...

class ReportUsageResponse(_message.Message):
    __slots__ = ("duplicate", "daily_spend_usd")
    DUPLICATE_FIELD_NUMBER: _ClassVar[int]
    DAILY_SPEND_USD_FIELD_NUMBER: _ClassVar[int]
    duplicate: bool
    daily_spend_usd: float
    def __init__(self, duplicate: _Optional[bool] = ..., daily_spend_usd: _Optional[float] = ...) -> None: ...

class AwaitApprovalRequest(_message.Message):
    __slots__ = ("approval_id", "timeout")
    APPROVAL_ID_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    approval_id: str
    timeout: _duration_pb2.Duration
    def __init__(self, approval_id: _Optional[str] = ..., timeout: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class AwaitApprovalResponse(_message.Message):
    __slots__ = ("state", "reviewer", "comment", "expires_at", "decided_at")
    STATE_FIELD_NUMBER: _ClassVar[int]
    REVIEWER_FIELD_NUMBER: _ClassVar[int]
    COMMENT_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    DECIDED_AT_FIELD_NUMBER: _ClassVar[int]
    state: ApprovalState
    reviewer: str
    comment: str
    expires_at: _timestamp_pb2.Timestamp
    decided_at: _timestamp_pb2.Timestamp
    def __init__(self, state: _Optional[_Union[ApprovalState, str]] = ..., reviewer: _Optional[str] = ..., comment: _Optional[str] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., decided_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class SubmitTraceRequest(_message.Message):
    __slots__ = ("agent_id", "input", "output", "cost_usd", "model", "tool", "metadata", "request_id", "started_at", "duration", "context")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    INPUT_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    COST_USD_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    TOOL_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    DURATION_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    input: str
    output: str
    cost_usd: float
    model: str
    tool: str
    metadata: _containers.ScalarMap[str, str]
    request_id: str
    started_at: _timestamp_pb2.Timestamp
    duration: _duration_pb2.Duration
    context: _containers.RepeatedCompositeFieldContainer[ContextItem]
    def __init__(self, agent_id: _Optional[str] = ..., input: _Optional[str] = ..., output: _Optional[str] = ..., cost_usd: _Optional[float] = ..., model: _Optional[str] = ..., tool: _Optional[str] = ..., metadata: _Optional[_Mapping[str, str]] = ..., request_id: _Optional[str] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., duration: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., context: _Optional[_Iterable[_Union[ContextItem, _Mapping]]] = ...) -> None: ...

class SubmitTraceResponse(_message.Message):
    __slots__ = ("trace_id", "violations", "anomaly")
    TRACE_ID_FIELD_NUMBER: _ClassVar[int]
    VIOLATIONS_FIELD_NUMBER: _ClassVar[int]
    ANOMALY_FIELD_NUMBER: _ClassVar[int]
    trace_id: str
    violations: _containers.RepeatedCompositeFieldContainer[Violation]
    anomaly: bool
    def __init__(self, trace_id: _Optional[str] = ..., violations: _Optional[_Iterable[_Union[Violation, _Mapping]]] = ..., anomaly: _Optional[bool] = ...) -> None: ...
