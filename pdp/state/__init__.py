"""Durable state of the sidecar: one SQLite database (WAL) holding the spend
ledger and its open reservations, the call counters, the decision log, the
last good snapshot, the approvals, the traces evaluated (and a standalone
sidecar's incidents) and the outbox of events for the control plane,
pruned by age by one :class:`Pruner`.

:class:`SqliteUsage` implements the engine's usage port over the ledger and
the counters; :class:`RedisUsage` implements it on a Redis server shared by
several sidecars (``--state redis://...``; the decision log and the last
good snapshot stay in a local SQLite file).

Nothing on the hot path waits on SQLite: the engine reads in-memory sums
and counts, a call is counted in memory and written in the
background, and decisions are queued with the synchronous
:meth:`DecisionLog.append`.

Exception tree::

    StateError               the state database cannot be opened, read or written
    ├── StateInUseError      another sidecar holds the state file's lock
    ├── UsageConflictError   a request_id was already recorded with a different
    │                        agent or amount; ``.request_id`` names it
    ├── ApprovalNotFoundError   no approval has this id
    └── ApprovalDecidedError    the approval was already decided or has expired
"""

from pdp.engine import UsageRecord
from pdp.state._approvals import (
    APPROVAL_COLUMNS,
    NEXT_CHANGE,
    ApprovalStore,
    Reads,
    Writes,
    approval_from_row,
    approval_row,
    approvals_authority,
    decide_approval,
    decide_within,
    expire_within,
    list_approvals,
    read_approval,
    read_within,
    set_approvals_authority,
    status_filter,
)
from pdp.state._counters import CallCounters
from pdp.state._database import (
    APPROVALS_INDEXES,
    APPROVALS_TABLE,
    Database,
    from_micros,
    to_micros,
)
from pdp.state._decision_log import DecisionLog, DecisionRecord
from pdp.state._decision_reader import (
    CLOUDEVENT_DECISION_TYPE,
    DecisionFilter,
    DecisionLogReader,
    decision_cloudevent,
)
from pdp.state._errors import (
    ApprovalDecidedError,
    ApprovalNotFoundError,
    StateError,
    UsageConflictError,
)
from pdp.state._ledger import DEFAULT_RESERVATION_TTL, SpendLedger
from pdp.state._location import (
    REDIS_PASSWORD_ENV,
    RedisLocation,
    StateLocation,
    parse_state_location,
)
from pdp.state._lock import StateFileLock, StateInUseError, lock_state_file
from pdp.state._outbox import Outbox, OutboxEvent, sidecar_id
from pdp.state._pruner import (
    DEFAULT_DECISION_LOG_MAX_ROWS,
    DEFAULT_DECISION_LOG_RETENTION,
    DEFAULT_RETENTION,
    USAGE_RETENTION_FLOOR,
    Pruner,
    PruneRule,
    sidecar_rules,
)
from pdp.state._redis_usage import RedisUsage
from pdp.state._server_url import SqliteLocation, file_or_scheme, read_password, server_url
from pdp.state._snapshot_store import SnapshotStore, StoredSnapshot
from pdp.state._status import SQLITE_STATUS, StateStatus, UsageBackend
from pdp.state._traces import IncidentRecord, TraceLog
from pdp.state._usage import SqliteUsage

__all__ = [
    "APPROVALS_INDEXES",
    "APPROVALS_TABLE",
    "APPROVAL_COLUMNS",
    "CLOUDEVENT_DECISION_TYPE",
    "DEFAULT_DECISION_LOG_MAX_ROWS",
    "DEFAULT_DECISION_LOG_RETENTION",
    "DEFAULT_RESERVATION_TTL",
    "DEFAULT_RETENTION",
    "NEXT_CHANGE",
    "REDIS_PASSWORD_ENV",
    "SQLITE_STATUS",
    "USAGE_RETENTION_FLOOR",
    "ApprovalDecidedError",
    "ApprovalNotFoundError",
    "ApprovalStore",
    "CallCounters",
    "Database",
    "DecisionFilter",
    "DecisionLog",
    "DecisionLogReader",
    "DecisionRecord",
    "IncidentRecord",
    "Outbox",
    "OutboxEvent",
    "PruneRule",
    "Pruner",
    "Reads",
    "RedisLocation",
    "RedisUsage",
    "SnapshotStore",
    "SpendLedger",
    "SqliteLocation",
    "SqliteUsage",
    "StateError",
    "StateFileLock",
    "StateInUseError",
    "StateLocation",
    "StateStatus",
    "StoredSnapshot",
    "TraceLog",
    "UsageBackend",
    "UsageConflictError",
    "UsageRecord",
    "Writes",
    "approval_from_row",
    "approval_row",
    "approvals_authority",
    "decide_approval",
    "decide_within",
    "decision_cloudevent",
    "expire_within",
    "file_or_scheme",
    "from_micros",
    "list_approvals",
    "lock_state_file",
    "parse_state_location",
    "read_approval",
    "read_password",
    "read_within",
    "server_url",
    "set_approvals_authority",
    "sidecar_id",
    "sidecar_rules",
    "status_filter",
    "to_micros",
]
