"""The small driver-neutral layer under :class:`~pdp.control.Store`: a
backend runs the statements of :mod:`._schema` and of the store, written
once with ``?`` placeholders, on SQLite (aiosqlite, one file, one control
plane) or PostgreSQL (asyncpg, shared by several control planes; see
:mod:`._postgres`).

A backend offers reads outside a transaction, write transactions (one
writer at a time: ``BEGIN IMMEDIATE`` in SQLite, an advisory lock in
PostgreSQL), a consistent multi-statement read, and change notices between
control planes on one database (PostgreSQL's LISTEN/NOTIFY; nothing to do
with one SQLite file)."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Protocol

import aiosqlite

from pdp.state import Database, StateError

from ._errors import StoreError
from ._schema import MIGRATIONS

__all__ = ["Backend", "Connection", "SqliteBackend"]

Rows = list[tuple[Any, ...]]


class Connection(Protocol):
    """Statements inside a transaction (or a consistent read)."""

    async def execute(self, sql: str, parameters: Sequence[Any] = ()) -> int:
        """Runs one statement; returns the number of rows it changed."""
        ...

    async def fetchall(self, sql: str, parameters: Sequence[Any] = ()) -> Rows: ...

    async def notify(self, payload: str) -> None:
        """Tells the other control planes on this database, once the
        transaction commits (nothing to tell with SQLite)."""
        ...


class Backend(Protocol):
    label: str  # the database as messages name it (never a password)
    shared: bool  # several control planes may use it at once

    async def fetchall(self, sql: str, parameters: Sequence[Any] = ()) -> Rows: ...

    def transaction(self) -> AbstractAsyncContextManager[Connection]: ...

    def reading(self) -> AbstractAsyncContextManager[Connection]:
        """Reads that see one committed state of the database."""
        ...

    def status(self) -> str | None:
        """None when the database answers; else what is wrong."""
        ...

    async def listen(
        self, on_notice: Callable[[str], None], on_reconnect: Callable[[], None]
    ) -> None:
        """Starts delivering other control planes' notices (and calls
        ``on_reconnect`` when notices may have been missed)."""
        ...

    async def close(self) -> None: ...


class _SqliteConnection:
    def __init__(self, connection: aiosqlite.Connection, label: str) -> None:
        self._db = connection
        self._label = label

    async def execute(self, sql: str, parameters: Sequence[Any] = ()) -> int:
        try:
            cursor = await self._db.execute(sql, parameters)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot write {self._label}: {exc}") from exc
        return cursor.rowcount

    async def fetchall(self, sql: str, parameters: Sequence[Any] = ()) -> Rows:
        try:
            async with self._db.execute(sql, parameters) as cursor:
                return [tuple(row) for row in await cursor.fetchall()]
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read {self._label}: {exc}") from exc

    async def notify(self, payload: str) -> None:
        return None  # one control plane per file: nobody else to tell


class SqliteBackend:
    """One SQLite file (WAL); connection, write serialisation and
    migrations are the state package's :class:`~pdp.state.Database`."""

    shared = False

    def __init__(self, database: Database) -> None:
        self._database = database
        self.path = database.path
        self.label = repr(str(database.path))

    @classmethod
    async def open(cls, path: str | os.PathLike[str]) -> SqliteBackend:
        try:
            database = await Database.open(path, migrations=MIGRATIONS, label="control database")
        except StateError as exc:
            raise StoreError(str(exc)) from exc
        return cls(database)

    def _connection(self) -> _SqliteConnection:
        try:
            return _SqliteConnection(self._database.connection, self.label)
        except StateError as exc:
            raise StoreError(str(exc)) from exc

    async def fetchall(self, sql: str, parameters: Sequence[Any] = ()) -> Rows:
        return await self._connection().fetchall(sql, parameters)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Connection]:
        try:
            async with self._database.transaction() as connection:
                yield _SqliteConnection(connection, self.label)
        except StateError as exc:
            raise StoreError(str(exc)) from exc

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[Connection]:
        # One control plane writes this file, from this connection: reads
        # between two of its awaits see one state.
        yield self._connection()

    def status(self) -> str | None:
        return None

    async def listen(
        self, on_notice: Callable[[str], None], on_reconnect: Callable[[], None]
    ) -> None:
        return None

    async def close(self) -> None:
        await self._database.close()
