"""The control plane's database: agents, policies, grants, API keys and
the snapshot revision, in one SQLite file (WAL; the default) or in
PostgreSQL, shared by several control planes (see :mod:`._backend`).

Versioned migrations (:mod:`._schema`) run when the database is opened.
Writes take one of two paths (each a transaction; one writer at a time):

- :meth:`Store.transaction` for what the snapshot publishes (agents,
  policies, grants, settings): it bumps the revision in the same
  transaction as the change, so every published change has its own
  revision, and tells the other control planes on the database;
- :meth:`Store.side_transaction` for everything else (API keys, approvals,
  sidecar events): it cannot write the published tables nor the revision, so
  such writes never wake a long-polling sidecar."""

from __future__ import annotations

import dataclasses
import json
import os
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from ._backend import Backend, Connection, SqliteBackend
from ._errors import StaleRevisionError, StoreError
from ._location import (
    DB_PASSWORD_ENV,
    DbLocation,
    PostgresLocation,
    SqliteLocation,
    parse_db_location,
)
from ._objects import DEFAULT_SETTINGS, Agent, Grant, Policy, Settings
from ._schema import MIGRATIONS
from ._state import State

__all__ = ["MIGRATIONS", "ApiKeyRecord", "SideTransaction", "SnapshotTransaction", "Store"]

ModelT = TypeVar("ModelT", bound=BaseModel)
# The notices writes send to the other control planes on the database: a
# snapshot write "revision N", a change of the candidate "candidate".
REVISION_NOTICE = "revision"
CANDIDATE_NOTICE = "candidate"


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

    def __init__(self, connection: Connection, revision: int) -> None:
        self._db = connection
        self.revision = revision
        # What features write beside the change (its events), in the same
        # transaction.
        self.side = SideTransaction(connection)

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

    async def put_settings(self, settings: Settings) -> None:
        await self._db.execute(
            "INSERT INTO settings (id, settings_json) VALUES (1, ?) "
            "ON CONFLICT (id) DO UPDATE SET settings_json = excluded.settings_json",
            (settings.model_dump_json(),),
        )

    async def drop_candidate(self) -> None:
        """Removes the candidate snapshot (it was promoted by this transaction)."""
        await self._db.execute("DELETE FROM snapshot_candidate")
        await self._db.notify(CANDIDATE_NOTICE)


# A statement that writes one of the tables the snapshot publishes.
_PUBLISHED_WRITE = re.compile(
    r"\b(INSERT|UPDATE|DELETE|REPLACE|DROP|ALTER)\b.*"
    r"\b(agents|policies|grants|settings|snapshot_revision)\b",
    re.IGNORECASE | re.DOTALL,
)


class SideTransaction:
    """Writes that are not part of the snapshot, from
    :meth:`Store.side_transaction`: they leave the revision alone.

    Features with tables of their own (approvals, sidecar events) write them
    with :meth:`execute`, which refuses statements that write the published
    tables, and run what must follow the commit (waking waiters) through
    :meth:`after_commit`."""

    def __init__(self, connection: Connection) -> None:
        self._db = connection
        self._after_commit: list[Callable[[], None]] = []
        self._before_commit: list[Callable[[], Awaitable[None]]] = []

    async def execute(self, sql: str, parameters: Sequence[Any] = ()) -> int:
        """Runs one statement on a table the snapshot does not publish;
        returns the number of rows it changed."""
        if _PUBLISHED_WRITE.search(sql):
            raise StoreError("a side transaction cannot write what the snapshot publishes")
        return await self._db.execute(sql, parameters)

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> int:
        """Runs one statement once per row of parameters; returns the number
        of rows changed in all."""
        if _PUBLISHED_WRITE.search(sql):
            raise StoreError("a side transaction cannot write what the snapshot publishes")
        changed = 0
        for parameters in rows:
            changed += await self._db.execute(sql, parameters)
        return changed

    async def fetchall(self, sql: str, parameters: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Reads within the transaction (what it wrote included)."""
        return await self._db.fetchall(sql, parameters)

    async def notify(self, payload: str) -> None:
        """Tells the other control planes on this database once the
        transaction commits (``ControlPlane`` dispatches it)."""
        await self._db.notify(payload)

    def before_commit(self, callback: Callable[[], Awaitable[None]]) -> None:
        """Awaits ``callback()`` at the end of the transaction, before it
        commits (writes buffered during it, made at once)."""
        self._before_commit.append(callback)

    async def _finish(self) -> None:
        while self._before_commit:
            callbacks, self._before_commit = self._before_commit, []
            for callback in callbacks:
                await callback()

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
        return await self._db.execute(
            "UPDATE api_keys SET revoked_at = ? WHERE revoked_at IS NULL AND (id = ? OR name = ?)",
            (at, key_id, name),
        )

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
        await self._db.notify(CANDIDATE_NOTICE)

    async def drop_candidate(self) -> None:
        await self._db.execute("DELETE FROM snapshot_candidate")
        await self._db.notify(CANDIDATE_NOTICE)


class Store:
    """The control plane's database; create with :meth:`open`."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.label = backend.label
        # The SQLite file, or None with PostgreSQL.
        self.path = backend.path if isinstance(backend, SqliteBackend) else None

    @classmethod
    async def open(cls, where: str | os.PathLike[str] | DbLocation) -> Store:
        """Opens (creating and migrating if needed) the database at
        ``where``: a SQLite path, a ``postgresql://`` URL (its password from
        ``$PDP_DB_PASSWORD``), or a parsed location."""
        location = _location(where)
        if isinstance(location, SqliteLocation):
            return cls(await SqliteBackend.open(location.path))
        from ._postgres import PostgresBackend  # asyncpg loads only when used

        if location.password is None and os.environ.get(DB_PASSWORD_ENV):
            location = dataclasses.replace(location, password=os.environ[DB_PASSWORD_ENV])
        return cls(await PostgresBackend.open(location))

    @property
    def shared(self) -> bool:
        """Several control planes may use this database at once."""
        return self.backend.shared

    @asynccontextmanager
    async def transaction(self, revision: int) -> AsyncIterator[SnapshotTransaction]:
        """A write to what the snapshot publishes, committed when the block
        exits normally. It first moves the stored revision from ``revision``
        to ``revision + 1``; a different stored revision means another writer
        got in (StaleRevisionError), and nothing is written."""
        async with self.backend.transaction() as connection:
            changed = await connection.execute(
                "UPDATE snapshot_revision SET revision = revision + 1 "
                "WHERE id = 1 AND revision = ?",
                (revision,),
            )
            if changed != 1:
                raise StaleRevisionError(
                    f"the stored snapshot revision is no longer {revision}: another control "
                    f"plane wrote to {self.label}"
                )
            await connection.notify(f"{REVISION_NOTICE} {revision + 1}")
            tx = SnapshotTransaction(connection, revision + 1)
            yield tx
            await tx.side._finish()
        tx.side._committed()

    @asynccontextmanager
    async def side_transaction(self) -> AsyncIterator[SideTransaction]:
        """A write to what the snapshot does not publish, committed when the
        block exits normally. The revision stays as it is."""
        async with self.backend.transaction() as connection:
            tx = SideTransaction(connection)
            yield tx
            await tx._finish()
        tx._committed()

    async def revision(self) -> int:
        """The snapshot revision as stored."""
        return await _revision(self.backend, self.label)

    async def load_state(self) -> State:
        """Everything the snapshot publishes, as stored (one consistent read)."""
        async with self.backend.reading() as db:
            revision = await _revision(db, self.label)
            agents = await self._objects(db, Agent, "SELECT object_json FROM agents ORDER BY seq")
            policies = await self._objects(
                db, Policy, "SELECT object_json FROM policies ORDER BY seq"
            )
            grants = await self._objects(
                db, Grant, "SELECT object_json FROM grants WHERE revoked_at IS NULL ORDER BY seq"
            )
            stored = await self._objects(db, Settings, "SELECT settings_json FROM settings")
        settings = stored[0] if stored else DEFAULT_SETTINGS
        return State(revision, agents, policies, grants, settings=settings)

    async def load_candidate(self) -> tuple[list[Policy], str] | None:
        """The candidate snapshot's policies and when it was published, or None."""
        rows = await self.backend.fetchall(
            "SELECT policies_json, created_at FROM snapshot_candidate WHERE id = 1"
        )
        if not rows:
            return None
        row = rows[0]
        try:
            items = json.loads(row[0])
        except ValueError as exc:
            raise StoreError(f"{self.label} holds a candidate that cannot be read") from exc
        policies = [self._object(Policy, json.dumps(item)) for item in items]
        return policies, str(row[1])

    async def revoked_grant(self, grant_id: str) -> Grant | None:
        """A revoked grant (``revokedAt`` set), or None."""
        rows = await self.backend.fetchall(
            "SELECT object_json, revoked_at FROM grants WHERE id = ? AND revoked_at IS NOT NULL",
            (grant_id,),
        )
        if not rows:
            return None
        return self._object(Grant, rows[0][0], revokedAt=str(rows[0][1]))

    async def fetchall(self, sql: str, parameters: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """A read outside any transaction (of what features keep in their own
        tables)."""
        return await self.backend.fetchall(sql, parameters)

    async def api_keys_with_prefix(self, prefix: str) -> list[ApiKeyRecord]:
        rows = await self.backend.fetchall(
            "SELECT id, name, key_sha256, created_at, expires_at, revoked_at, role "
            "FROM api_keys WHERE prefix = ?",
            (prefix,),
        )
        return [ApiKeyRecord(*row) for row in rows]

    async def close(self) -> None:
        await self.backend.close()

    async def _objects(self, db: Connection, model: type[ModelT], sql: str) -> list[ModelT]:
        return [self._object(model, row[0]) for row in await db.fetchall(sql)]

    def _object(self, model: type[ModelT], text: str, **columns: Any) -> ModelT:
        try:
            return model.model_validate({**json.loads(text), **columns})
        except (ValueError, ValidationError) as exc:
            # Only a database edited by hand (or by a newer pdp) gets here.
            raise StoreError(
                f"{self.label} holds a {model.__name__.lower()} that cannot be read: {exc}"
            ) from exc


def _location(where: str | os.PathLike[str] | DbLocation) -> DbLocation:
    if isinstance(where, SqliteLocation | PostgresLocation):
        return where
    if not isinstance(where, str):
        return SqliteLocation(os.fspath(where))
    try:
        return parse_db_location(where)
    except ValueError as exc:
        raise StoreError(f"--db: {exc}") from None  # never echoed: it may hold a password


async def _revision(db: Backend | Connection, label: str) -> int:
    rows = await db.fetchall("SELECT revision FROM snapshot_revision WHERE id = 1")
    if not rows:
        raise StoreError(f"{label} is missing its snapshot revision")
    return int(rows[0][0])
