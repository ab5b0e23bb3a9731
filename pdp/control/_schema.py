"""The control plane's schema: one list of versioned migrations that both
backends apply, SQLite as written and PostgreSQL through
:func:`~pdp.control._dialect.postgres_schema`.

To add a table (or a column, or an index): append a step to
:data:`MIGRATIONS` written in SQL both databases read (types ``TEXT``,
``INTEGER`` (64-bit in both), ``REAL``, ``BLOB``; ``INTEGER PRIMARY KEY
AUTOINCREMENT`` for a sequence; no ``PRAGMA``, no SQLite date functions).
Both backends record the version they reached (``PRAGMA user_version`` in
SQLite, the ``pdp_control_schema`` row in PostgreSQL) and refuse a database
whose version is newer than this list."""

from __future__ import annotations

from pdp.state import APPROVALS_INDEXES, APPROVALS_TABLE

__all__ = ["MIGRATIONS", "SCHEMA_VERSION"]

# Entry N moves a database from user_version N to N+1 in one transaction.
# Append only: never edit a step that has shipped.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """
        CREATE TABLE snapshot_revision (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            revision INTEGER NOT NULL CHECK (revision >= 0)
        )
        """,
        "INSERT INTO snapshot_revision (id, revision) VALUES (1, 0)",
        # seq keeps creation order, which is the document order.
        """
        CREATE TABLE agents (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL UNIQUE,
            name TEXT NOT NULL UNIQUE,
            object_json TEXT NOT NULL
        )
        """,
        """
        CREATE TABLE policies (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL UNIQUE,
            name TEXT NOT NULL UNIQUE,
            object_json TEXT NOT NULL
        )
        """,
        """
        CREATE TABLE grants (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL UNIQUE,
            source_agent_id TEXT NOT NULL REFERENCES agents (id),
            object_json TEXT NOT NULL,
            revoked_at TEXT
        )
        """,
        # Only a SHA-256 of each key is kept; prefix finds the candidate rows
        # so that the hash comparison can be constant-time.
        """
        CREATE TABLE api_keys (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            prefix TEXT NOT NULL,
            key_sha256 TEXT NOT NULL UNIQUE,
            created_at TEXT NOT NULL,
            expires_at TEXT,
            revoked_at TEXT
        )
        """,
        "CREATE INDEX api_keys_by_prefix ON api_keys (prefix)",
    ),
    (
        # The candidate snapshot's policies (at most one candidate), shadowed
        # by sidecars until it is promoted or dropped.
        """
        CREATE TABLE snapshot_candidate (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            policies_json TEXT NOT NULL,
            created_at TEXT NOT NULL
        )
        """,
    ),
    (
        # Roles: keys made before roles existed keep working as admin.
        "ALTER TABLE api_keys ADD COLUMN role TEXT NOT NULL DEFAULT 'admin'"
        " CHECK (role IN ('admin', 'reviewer', 'sidecar'))",
    ),
    (
        # Sidecar events: the ids already taken, so that a retried batch adds
        # nothing twice (pruned after a day, see _events.DEDUPE_WINDOW).
        """
        CREATE TABLE sidecar_events (
            event_id TEXT PRIMARY KEY,
            type TEXT NOT NULL,
            sidecar_id TEXT NOT NULL,
            received_at_us INTEGER NOT NULL
        )
        """,
        "CREATE INDEX sidecar_events_by_time ON sidecar_events (received_at_us)",
    ),
    (
        # Approvals, as sidecars report them (approval.requested) and
        # reviewers decide them: the sidecar's table, plus which sidecar
        # asked and which one used it.
        APPROVALS_TABLE,
        *APPROVALS_INDEXES,
        "ALTER TABLE approvals ADD COLUMN sidecar_id TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE approvals ADD COLUMN consumed_by TEXT",
    ),
    (
        # The published settings (unknownAgents, ...), one JSON object.
        """
        CREATE TABLE settings (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            settings_json TEXT NOT NULL
        )
        """,
    ),
    (
        # Webhooks and the outbox of their deliveries: a delivery row is
        # written in the transaction of the event it carries and kept, with
        # its stable id (the webhook-id header), until it is delivered or
        # its retries run out.
        """
        CREATE TABLE webhooks (
            id TEXT PRIMARY KEY,
            url TEXT NOT NULL,
            events_json TEXT NOT NULL,
            secret TEXT NOT NULL,
            created_at TEXT NOT NULL
        )
        """,
        """
        CREATE TABLE webhook_deliveries (
            id TEXT PRIMARY KEY,
            webhook_id TEXT NOT NULL,
            event_id TEXT NOT NULL,
            event_type TEXT NOT NULL,
            body BLOB NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at_us INTEGER NOT NULL,
            last_status INTEGER,
            last_error TEXT,
            created_at_us INTEGER NOT NULL,
            finished_at_us INTEGER
        )
        """,
        "CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at_us)",
        "CREATE INDEX webhook_deliveries_by_webhook"
        " ON webhook_deliveries (webhook_id, created_at_us)",
        # cost.threshold is sent once per agent, budget policy and period.
        """
        CREATE TABLE cost_thresholds (
            agent_id TEXT NOT NULL,
            policy_id TEXT NOT NULL,
            period_start TEXT NOT NULL,
            reached_at_us INTEGER NOT NULL,
            PRIMARY KEY (agent_id, policy_id, period_start)
        )
        """,
    ),
    (
        # Traces: finished calls, posted or shipped by sidecars. Their costs
        # are the agent's spend as the control plane knows it; a repeated
        # request id answers the stored result (result_json).
        """
        CREATE TABLE traces (
            id TEXT PRIMARY KEY,
            agent_id TEXT NOT NULL,
            request_id TEXT,
            sidecar_id TEXT NOT NULL DEFAULT '',
            cost_usd REAL NOT NULL CHECK (cost_usd >= 0),
            anomaly INTEGER NOT NULL,
            result_json TEXT NOT NULL,
            created_at_us INTEGER NOT NULL
        )
        """,
        "CREATE UNIQUE INDEX traces_by_request ON traces (agent_id, request_id)"
        " WHERE request_id IS NOT NULL",
        "CREATE INDEX traces_by_agent ON traces (agent_id, created_at_us)",
        # One incident per policy that fired on a trace; seq pages them.
        """
        CREATE TABLE incidents (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL UNIQUE,
            trace_id TEXT NOT NULL,
            agent_id TEXT NOT NULL,
            policy_id TEXT NOT NULL,
            policy_name TEXT NOT NULL,
            policy_type TEXT NOT NULL,
            mode TEXT NOT NULL,
            severity TEXT NOT NULL,
            message TEXT NOT NULL,
            decision TEXT NOT NULL,
            anomaly INTEGER NOT NULL,
            cost_usd REAL NOT NULL,
            request_id TEXT NOT NULL,
            masked_excerpt TEXT NOT NULL,
            source TEXT NOT NULL,
            sidecar_id TEXT NOT NULL,
            created_at_us INTEGER NOT NULL
        )
        """,
        "CREATE INDEX incidents_by_agent ON incidents (agent_id, seq)",
        "CREATE INDEX incidents_by_policy ON incidents (policy_id, seq)",
        "CREATE INDEX incidents_by_time ON incidents (created_at_us)",
    ),
    (
        # Decisions sidecars ship (``decision`` events), pruned by age and
        # count (_decisions.py). AUTOINCREMENT: a seq is never reused, so a
        # page's cursor stays valid while old rows are deleted.
        """
        CREATE TABLE decisions (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            decision_id TEXT NOT NULL,
            sidecar_id TEXT NOT NULL,
            decided_at_us INTEGER NOT NULL,
            received_at_us INTEGER NOT NULL,
            agent_id TEXT NOT NULL,
            decision TEXT NOT NULL,
            policies_json TEXT NOT NULL,
            revision INTEGER NOT NULL,
            request_id TEXT NOT NULL,
            approval_id TEXT NOT NULL
        )
        """,
        "CREATE INDEX decisions_by_time ON decisions (decided_at_us)",
        "CREATE INDEX decisions_by_agent ON decisions (agent_id, seq)",
    ),
    (
        # Webhook delivery leases: which control plane on a shared database
        # is attempting a due delivery, and until when (_webhook_leases.py).
        "ALTER TABLE webhook_deliveries ADD COLUMN lease_owner TEXT",
        "ALTER TABLE webhook_deliveries ADD COLUMN lease_until_us INTEGER",
    ),
)

SCHEMA_VERSION = len(MIGRATIONS)
