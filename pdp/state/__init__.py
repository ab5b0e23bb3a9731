"""Durable state of the sidecar: one SQLite database (WAL) holding the spend
ledger, the decision log and the last good snapshot.

Nothing on the hot path waits on SQLite: budget checks read the ledger's
in-memory sums (:meth:`SpendLedger.spent_since`) and decisions are queued with
the synchronous :meth:`DecisionLog.append`.

Exception tree::

    StateError               the state database cannot be opened, read or written
    └── UsageConflictError   a request_id was already recorded with a different
                             agent or amount; ``.request_id`` names it
"""

from pdp.state._database import Database
from pdp.state._decision_log import DecisionLog, DecisionRecord
from pdp.state._errors import StateError, UsageConflictError
from pdp.state._ledger import SpendLedger, UsageRecord
from pdp.state._snapshot_store import SnapshotStore, StoredSnapshot

__all__ = [
    "Database",
    "DecisionLog",
    "DecisionRecord",
    "SnapshotStore",
    "SpendLedger",
    "StateError",
    "StoredSnapshot",
    "UsageConflictError",
    "UsageRecord",
]
