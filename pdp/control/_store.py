"""The control plane's database: one SQLite file (WAL) holding agents,
policies, grants, API keys and the snapshot revision.

Versioned migrations (``PRAGMA user_version``) run when the file is opened.
Writes take one of two paths (each a ``BEGIN IMMEDIATE`` transaction):

- :meth:`Store.transaction` for what the snapshot publishes (agents,
  policies, grants): it bumps the revision in the same transaction as the
  change, so every published change has its own revision;
- :meth:`Store.side_transaction` for everything else (API keys, approvals,
  sidecar events): it cannot write the published tables nor the revision, so
  such writes never wake a long-polling sidecar."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import sqlite3
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import aiosqlite
from pydantic import BaseModel, ValidationError

from pdp.state import APPROVALS_INDEXES, APPROVALS_TABLE, Database, StateError

from ._errors import StoreError
from ._objects import Agent, Grant, Policy
from ._state import State

__all__ = ["MIGRATIONS", "ApiKeyRecord", "SideTransaction", "SnapshotTransaction", "Store"]

ModelT = TypeVar("ModelT", bound=BaseModel)

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
)


@dataclasses.dataclass(frozen=True, slots=True)
class ApiKeyRecord:
    id: str
    name: str
    key_sha256: str
    created_at: str
    expires_at: str | None
    revoked_at: str | None
    role: str


def _dump(obj: BaseModel, exclude: set[str] | None = None) -> str:
    fields: Mapping[str, Any] = obj.model_dump(exclude=exclude)
    return json.dumps(fields, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


class SnapshotTransaction:
    """Writes to what the snapshot publishes, from :meth:`Store.transaction`,
    which has already moved the stored revision to :attr:`revision`."""

    def __init__(self, connection: aiosqlite.Connection, revision: int) -> None:
        self._db = connection
        self.revision = revision

    async def put_agent(self, agent: Agent) -> None:
        await self._db.execute(
            "INSERT INTO agents (id, name, object_json) VALUES (?, ?, ?) "
            "ON CONFLICT (id) DO UPDATE SET name = excluded.name, "
            "object_json = excluded.object_json",
            (agent.id, agent.name, _dump(agent)),
        )

    async def put_policy(self, policy: Policy) -> None:
        await self._db.execute(
            "INSERT INTO policies (id, name, object_json) VALUES (?, ?, ?) "
            "ON CONFLICT (id) DO UPDATE SET name = excluded.name, "
            "object_json = excluded.object_json",
            (policy.id, policy.name, _dump(policy)),
        )

    async def delete_policy(self, policy_id: str) -> None:
        await self._db.execute("DELETE FROM policies WHERE id = ?", (policy_id,))

    async def delete_agent(self, agent_id: str) -> None:
        """Deletes the agent and the grants it is the source of (revoked or not)."""
        await self._db.execute("DELETE FROM grants WHERE source_agent_id = ?", (agent_id,))
        await self._db.execute("DELETE FROM agents WHERE id = ?", (agent_id,))

    async def add_grant(self, grant: Grant) -> None:
        await self._db.execute(
            "INSERT INTO grants (id, source_agent_id, object_json) VALUES (?, ?, ?)",
            (grant.id, grant.sourceAgentId, _dump(grant, exclude={"revokedAt"})),
        )

    async def revoke_grant(self, grant_id: str, revoked_at: str) -> None:
        await self._db.execute(
            "UPDATE grants SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
            (revoked_at, grant_id),
        )

    async def drop_candidate(self) -> None:
        """Removes the candidate snapshot (it was promoted by this transaction)."""
        await self._db.execute("DELETE FROM snapshot_candidate")


# A statement that writes one of the tables the snapshot publishes.
_PUBLISHED_WRITE = re.compile(
    r"\b(INSERT|UPDATE|DELETE|REPLACE|DROP|ALTER)\b.*\b(agents|policies|grants|snapshot_revision)\b",
    re.IGNORECASE | re.DOTALL,
)


class SideTransaction:
    """Writes that are not part of the snapshot, from
    :meth:`Store.side_transaction`: they leave the revision alone.

    Features with tables of their own (approvals, sidecar events) write them
    with :meth:`execute`, which refuses statements that write the published
    tables, and run what must follow the commit (waking waiters) through
    :meth:`after_commit`."""

    def __init__(self, connection: aiosqlite.Connection) -> None:
        self._db = connection
        self._after_commit: list[Callable[[], None]] = []

    async def execute(self, sql: str, parameters: Sequence[Any] = ()) -> int:
        """Runs one statement on a table the snapshot does not publish;
        returns the number of rows it changed."""
        if _PUBLISHED_WRITE.search(sql):
            raise StoreError("a side transaction cannot write what the snapshot publishes")
        cursor = await self._db.execute(sql, parameters)
        return cursor.rowcount

    async def fetchall(self, sql: str, parameters: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Reads within the transaction (what it wrote included)."""
        async with self._db.execute(sql, parameters) as cursor:
            return [tuple(row) for row in await cursor.fetchall()]

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Calls ``callback`` once the transaction has committed (never when it
        rolls back)."""
        self._after_commit.append(callback)

    def _committed(self) -> None:
        callbacks, self._after_commit = self._after_commit, []
        for callback in callbacks:
            callback()

    async def add_api_key(
        self,
        key_id: str,
        name: str,
        prefix: str,
        key_sha256: str,
        created_at: str,
        expires_at: str | None,
        role: str,
    ) -> None:
        await self._db.execute(
            "INSERT INTO api_keys (id, name, prefix, key_sha256, created_at, expires_at, role) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (key_id, name, prefix, key_sha256, created_at, expires_at, role),
        )

    async def revoke_api_keys(self, *, key_id: str | None, name: str | None, at: str) -> int:
        """Revokes the live keys with this id or name; returns how many."""
        cursor = await self._db.execute(
            "UPDATE api_keys SET revoked_at = ? WHERE revoked_at IS NULL AND (id = ? OR name = ?)",
            (at, key_id, name),
        )
        return cursor.rowcount

    async def put_candidate(self, policies: list[Policy], created_at: str) -> None:
        """Publishes (replaces) the candidate snapshot's policies."""
        text = json.dumps(
            [p.model_dump() for p in policies],
            ensure_ascii=False,
            separators=(",", ":"),
            allow_nan=False,
        )
        await self._db.execute(
            "INSERT INTO snapshot_candidate (id, policies_json, created_at) VALUES (1, ?, ?) "
            "ON CONFLICT (id) DO UPDATE SET policies_json = excluded.policies_json, "
            "created_at = excluded.created_at",
            (text, created_at),
        )

    async def drop_candidate(self) -> None:
        await self._db.execute("DELETE FROM snapshot_candidate")


class Store:
    """The control plane's database; create with :meth:`open`. Connection,
    WAL, write serialisation and migrations are the state package's
    :class:`~pdp.state.Database`; this class adds the control plane's tables."""

    def __init__(self, database: Database) -> None:
        self._database = database
        self.path = database.path

    @classmethod
    async def open(cls, path: str | os.PathLike[str]) -> Store:
        """Opens (creating and migrating if needed) the database at ``path``."""
        try:
            database = await Database.open(path, migrations=MIGRATIONS, label="control database")
        except StateError as exc:
            raise StoreError(str(exc)) from exc
        return cls(database)

    @property
    def connection(self) -> aiosqlite.Connection:
        try:
            return self._database.connection
        except StateError as exc:
            raise StoreError(str(exc)) from exc

    @asynccontextmanager
    async def transaction(self, revision: int) -> AsyncIterator[SnapshotTransaction]:
        """A write to what the snapshot publishes, committed when the block
        exits normally. It first moves the stored revision from ``revision``
        to ``revision + 1``; a different stored revision means another writer
        got in (StoreError), and nothing is written."""
        async with self._write() as connection:
            cursor = await connection.execute(
                "UPDATE snapshot_revision SET revision = revision + 1 "
                "WHERE id = 1 AND revision = ?",
                (revision,),
            )
            if cursor.rowcount != 1:
                raise StoreError(
                    f"the stored snapshot revision is no longer {revision}: another process "
                    "wrote to this database (run one control plane per database)"
                )
            yield SnapshotTransaction(connection, revision + 1)

    @asynccontextmanager
    async def side_transaction(self) -> AsyncIterator[SideTransaction]:
        """A write to what the snapshot does not publish, committed when the
        block exits normally. The revision stays as it is."""
        async with self._write() as connection:
            tx = SideTransaction(connection)
            yield tx
        tx._committed()

    @asynccontextmanager
    async def _write(self) -> AsyncIterator[aiosqlite.Connection]:
        try:
            async with self._database.transaction() as connection:
                yield connection
        except StateError as exc:
            raise StoreError(str(exc)) from exc

    async def revision(self) -> int:
        """The snapshot revision as stored."""
        return int(await self._scalar("SELECT revision FROM snapshot_revision WHERE id = 1"))

    async def load_state(self) -> State:
        """Everything the snapshot publishes, as stored."""
        try:
            revision = await self.revision()
            agents = await self._objects(Agent, "SELECT object_json FROM agents ORDER BY seq")
            policies = await self._objects(Policy, "SELECT object_json FROM policies ORDER BY seq")
            grants = await self._objects(
                Grant, "SELECT object_json FROM grants WHERE revoked_at IS NULL ORDER BY seq"
            )
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read {str(self.path)!r}: {exc}") from exc
        return State(revision, agents, policies, grants)

    async def load_candidate(self) -> tuple[list[Policy], str] | None:
        """The candidate snapshot's policies and when it was published, or None."""
        try:
            async with self.connection.execute(
                "SELECT policies_json, created_at FROM snapshot_candidate WHERE id = 1"
            ) as cursor:
                row = await cursor.fetchone()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read {str(self.path)!r}: {exc}") from exc
        if row is None:
            return None
        try:
            items = json.loads(row[0])
        except ValueError as exc:
            raise StoreError(f"{str(self.path)!r} holds a candidate that cannot be read") from exc
        policies = [self._object(Policy, json.dumps(item)) for item in items]
        return policies, str(row[1])

    async def revoked_grant(self, grant_id: str) -> Grant | None:
        """A revoked grant (``revokedAt`` set), or None."""
        async with self.connection.execute(
            "SELECT object_json, revoked_at FROM grants WHERE id = ? AND revoked_at IS NOT NULL",
            (grant_id,),
        ) as cursor:
            row = await cursor.fetchone()
        if row is None:
            return None
        return self._object(Grant, row[0], revokedAt=str(row[1]))

    async def fetchall(self, sql: str, parameters: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """A read outside any transaction (of what features keep in their own
        tables)."""
        try:
            async with self.connection.execute(sql, parameters) as cursor:
                rows = await cursor.fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read {str(self.path)!r}: {exc}") from exc
        return [tuple(row) for row in rows]

    async def api_keys_with_prefix(self, prefix: str) -> list[ApiKeyRecord]:
        try:
            async with self.connection.execute(
                "SELECT id, name, key_sha256, created_at, expires_at, revoked_at, role "
                "FROM api_keys WHERE prefix = ?",
                (prefix,),
            ) as cursor:
                rows = await cursor.fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read {str(self.path)!r}: {exc}") from exc
        return [ApiKeyRecord(*row) for row in rows]

    async def close(self) -> None:
        await self._database.close()

    async def _scalar(self, sql: str) -> Any:
        async with self.connection.execute(sql) as cursor:
            row = await cursor.fetchone()
        if row is None:
            raise StoreError(f"{str(self.path)!r} is missing its snapshot revision")
        return row[0]

    async def _objects(self, model: type[ModelT], sql: str) -> list[ModelT]:
        async with self.connection.execute(sql) as cursor:
            rows = await cursor.fetchall()
        return [self._object(model, row[0]) for row in rows]

    def _object(self, model: type[ModelT], text: str, **columns: Any) -> ModelT:
        try:
            return model.model_validate({**json.loads(text), **columns})
        except (ValueError, ValidationError) as exc:
            # Only a database edited by hand (or by a newer pdp) gets here.
            raise StoreError(
                f"{str(self.path)!r} holds a {model.__name__.lower()} that cannot be read: {exc}"
            ) from exc
