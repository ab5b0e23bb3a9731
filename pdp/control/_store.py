"""The control plane's database: one SQLite file (WAL) holding agents,
policies, grants, API keys and the snapshot revision.

Versioned migrations (``PRAGMA user_version``) run when the file is opened.
Every write goes through :meth:`Store.transaction` (``BEGIN IMMEDIATE``) and
bumps the revision in the same transaction as the change it publishes."""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import aiosqlite

from pdp.state import Database, StateError

from ._errors import StoreError
from ._state import State

__all__ = ["MIGRATIONS", "ApiKeyRecord", "Store", "Transaction"]

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
)


class ApiKeyRecord:
    __slots__ = ("created_at", "expires_at", "id", "key_sha256", "name", "revoked_at")

    def __init__(self, row: sqlite3.Row | tuple[Any, ...]) -> None:
        (
            self.id,
            self.name,
            self.key_sha256,
            self.created_at,
            self.expires_at,
            self.revoked_at,
        ) = tuple(row)


def _dump(obj: Mapping[str, Any]) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


class Transaction:
    """The writes of one transaction; obtained from :meth:`Store.transaction`."""

    def __init__(self, connection: aiosqlite.Connection) -> None:
        self._db = connection

    async def bump_revision(self, expected: int) -> int:
        """Moves the revision from ``expected`` to ``expected + 1``; a
        different stored revision means another writer got in (StoreError)."""
        cursor = await self._db.execute(
            "UPDATE snapshot_revision SET revision = revision + 1 WHERE id = 1 AND revision = ?",
            (expected,),
        )
        if cursor.rowcount != 1:
            raise StoreError(
                f"the stored snapshot revision is no longer {expected}: another process "
                "wrote to this database (run one control plane per database)"
            )
        return expected + 1

    async def put_agent(self, agent: Mapping[str, Any]) -> None:
        await self._db.execute(
            "INSERT INTO agents (id, name, object_json) VALUES (?, ?, ?) "
            "ON CONFLICT (id) DO UPDATE SET name = excluded.name, "
            "object_json = excluded.object_json",
            (agent["id"], agent["name"], _dump(agent)),
        )

    async def put_policy(self, policy: Mapping[str, Any]) -> None:
        await self._db.execute(
            "INSERT INTO policies (id, name, object_json) VALUES (?, ?, ?) "
            "ON CONFLICT (id) DO UPDATE SET name = excluded.name, "
            "object_json = excluded.object_json",
            (policy["id"], policy["name"], _dump(policy)),
        )

    async def delete_policy(self, policy_id: str) -> None:
        await self._db.execute("DELETE FROM policies WHERE id = ?", (policy_id,))

    async def add_grant(self, grant: Mapping[str, Any]) -> None:
        await self._db.execute(
            "INSERT INTO grants (id, source_agent_id, object_json) VALUES (?, ?, ?)",
            (grant["id"], grant["sourceAgentId"], _dump(grant)),
        )

    async def revoke_grant(self, grant_id: str, revoked_at: str) -> None:
        await self._db.execute(
            "UPDATE grants SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
            (revoked_at, grant_id),
        )


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
    async def transaction(self) -> AsyncIterator[Transaction]:
        """A write transaction, committed when the block exits normally."""
        try:
            async with self._database.transaction() as connection:
                yield Transaction(connection)
        except StateError as exc:
            raise StoreError(str(exc)) from exc

    async def load_state(self) -> State:
        """Everything the snapshot publishes, as stored."""
        try:
            revision = await self._scalar("SELECT revision FROM snapshot_revision WHERE id = 1")
            agents = await self._objects("SELECT object_json FROM agents ORDER BY seq")
            policies = await self._objects("SELECT object_json FROM policies ORDER BY seq")
            grants = await self._objects(
                "SELECT object_json FROM grants WHERE revoked_at IS NULL ORDER BY seq"
            )
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read {str(self.path)!r}: {exc}") from exc
        return State(int(revision), agents, policies, grants)

    async def revoked_grant(self, grant_id: str) -> tuple[dict[str, Any], str] | None:
        """A revoked grant and when it was revoked, or None."""
        async with self.connection.execute(
            "SELECT object_json, revoked_at FROM grants WHERE id = ? AND revoked_at IS NOT NULL",
            (grant_id,),
        ) as cursor:
            row = await cursor.fetchone()
        return None if row is None else (json.loads(row[0]), str(row[1]))

    async def add_api_key(
        self,
        key_id: str,
        name: str,
        prefix: str,
        key_sha256: str,
        created_at: str,
        expires_at: str | None,
    ) -> None:
        async with self.transaction():
            await self.connection.execute(
                "INSERT INTO api_keys (id, name, prefix, key_sha256, created_at, expires_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (key_id, name, prefix, key_sha256, created_at, expires_at),
            )

    async def api_keys_with_prefix(self, prefix: str) -> list[ApiKeyRecord]:
        try:
            async with self.connection.execute(
                "SELECT id, name, key_sha256, created_at, expires_at, revoked_at "
                "FROM api_keys WHERE prefix = ?",
                (prefix,),
            ) as cursor:
                rows = await cursor.fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read {str(self.path)!r}: {exc}") from exc
        return [ApiKeyRecord(row) for row in rows]

    async def revoke_api_keys(self, *, key_id: str | None, name: str | None, at: str) -> int:
        """Revokes the live keys with this id or name; returns how many."""
        async with self.transaction():
            cursor = await self.connection.execute(
                "UPDATE api_keys SET revoked_at = ? "
                "WHERE revoked_at IS NULL AND (id = ? OR name = ?)",
                (at, key_id, name),
            )
            return cursor.rowcount

    async def close(self) -> None:
        await self._database.close()

    async def _scalar(self, sql: str) -> Any:
        async with self.connection.execute(sql) as cursor:
            row = await cursor.fetchone()
        if row is None:
            raise StoreError(f"{str(self.path)!r} is missing its snapshot revision")
        return row[0]

    async def _objects(self, sql: str) -> list[dict[str, Any]]:
        async with self.connection.execute(sql) as cursor:
            rows = await cursor.fetchall()
        return [json.loads(row[0]) for row in rows]
