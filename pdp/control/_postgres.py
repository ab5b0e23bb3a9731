"""The PostgreSQL backend (asyncpg): several control planes share one
database.

- Migrations: the same steps as SQLite (:mod:`._schema`, rewritten by
  :mod:`._dialect`), applied under an advisory lock so that replicas starting
  together migrate once; the version reached is the row of
  ``pdp_control_schema``. A database at a version this pdp does not know is
  refused.
- Writes: one at a time across every replica (a transaction-scoped advisory
  lock), as SQLite's ``BEGIN IMMEDIATE`` does for one file.
- Notices: a write's ``NOTIFY`` on :data:`CHANNEL` is delivered when it
  commits to every replica's listening connection, which wakes its long
  polls. The listener reconnects by itself; while it is down,
  :meth:`PostgresBackend.status` says so."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import asyncpg

from ._backend import Connection, Rows
from ._dialect import postgres_query, postgres_schema
from ._errors import DatabaseUnavailableError, StoreError
from ._location import DB_PASSWORD_ENV, PostgresLocation
from ._schema import MIGRATIONS

__all__ = ["CHANNEL", "PostgresBackend"]

log = logging.getLogger("pdp.control")

CHANNEL = "pdp_control"
# Advisory lock keys (any two bigints no other program on the database uses).
_MIGRATION_LOCK = 0x7064_7000_0001
_WRITE_LOCK = 0x7064_7000_0002
_CONNECT_TIMEOUT = 5.0
_RECONNECT_SECONDS = (0.05, 0.1, 0.2, 0.5, 1.0)
_DRIVER_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, asyncio.TimeoutError)
# Errors that mean "the server does not answer" rather than "the statement failed".
_UNAVAILABLE = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.ConnectionDoesNotExistError,
    asyncpg.AdminShutdownError,
    asyncpg.ConnectionFailureError,
)


def _rowcount(status: str) -> int:
    """The row count of a command tag (``UPDATE 1``, ``INSERT 0 3``)."""
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else 0


class _PostgresConnection:
    def __init__(self, connection: asyncpg.Connection, backend: PostgresBackend) -> None:
        self._db = connection
        self._backend = backend

    async def execute(self, sql: str, parameters: Sequence[Any] = ()) -> int:
        try:
            status = await self._db.execute(postgres_query(sql), *parameters)
        except _DRIVER_ERRORS as exc:
            raise self._backend.error("write", exc) from exc
        return _rowcount(str(status))

    async def fetchall(self, sql: str, parameters: Sequence[Any] = ()) -> Rows:
        try:
            records = await self._db.fetch(postgres_query(sql), *parameters)
        except _DRIVER_ERRORS as exc:
            raise self._backend.error("read", exc) from exc
        return [tuple(record.values()) for record in records]

    async def notify(self, payload: str) -> None:
        await self.execute("SELECT pg_notify(?, ?)", (CHANNEL, payload))


class PostgresBackend:
    shared = True

    def __init__(self, location: PostgresLocation, pool: asyncpg.Pool) -> None:
        self.location = location
        self.label = str(location)
        self._pool = pool
        self._listener: asyncpg.Connection | None = None
        self._listen_task: asyncio.Task[None] | None = None
        self._lost: str | None = None
        self._closing = False

    @classmethod
    async def open(cls, location: PostgresLocation) -> PostgresBackend:
        """Connects, and migrates the schema (StoreError saying why not)."""
        try:
            pool = await asyncpg.create_pool(
                min_size=1,
                max_size=8,
                command_timeout=30,
                **_connect_arguments(location),
            )
        except asyncpg.InvalidPasswordError as exc:
            raise StoreError(
                f"{location}: {exc} (the password comes from ${DB_PASSWORD_ENV} or "
                "--db-password-file)"
            ) from exc
        except asyncpg.InvalidAuthorizationSpecificationError as exc:
            raise StoreError(f"{location}: {exc}") from exc
        except asyncpg.InvalidCatalogNameError as exc:
            raise StoreError(f"{location}: {exc} (create it first: CREATE DATABASE)") from exc
        except _DRIVER_ERRORS as exc:
            raise StoreError(f"cannot connect to {location}: {_reason(exc)}") from exc
        backend = cls(location, pool)
        try:
            await backend._migrate()
        except BaseException:
            await pool.close()
            raise
        return backend

    def error(self, verb: str, exc: BaseException) -> StoreError:
        kind = DatabaseUnavailableError if isinstance(exc, _UNAVAILABLE) else StoreError
        return kind(f"cannot {verb} {self.label}: {_reason(exc)}")

    async def _migrate(self) -> None:
        try:
            async with self._pool.acquire() as conn:
                await conn.execute("SELECT pg_advisory_lock($1)", _MIGRATION_LOCK)
                try:
                    await self._migrate_locked(conn)
                finally:
                    await conn.execute("SELECT pg_advisory_unlock($1)", _MIGRATION_LOCK)
        except StoreError:
            raise
        except _DRIVER_ERRORS as exc:
            raise StoreError(f"cannot migrate {self.label}: {_reason(exc)}") from exc

    async def _migrate_locked(self, conn: asyncpg.Connection) -> None:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS pdp_control_schema ("
            "id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL)"
        )
        stored = await conn.fetchval("SELECT version FROM pdp_control_schema WHERE id = 1")
        version = 0 if stored is None else int(stored)
        known = len(MIGRATIONS)
        if version > known:
            raise StoreError(
                f"{self.label} has schema version {version}, newer than this pdp knows "
                f"({known}): it was written by a newer pdp; run that version, or point --db "
                "at another database"
            )
        for step in range(version, known):
            async with conn.transaction():
                for statement in MIGRATIONS[step]:
                    await conn.execute(postgres_schema(statement))
                await conn.execute(
                    "INSERT INTO pdp_control_schema (id, version) VALUES (1, $1) "
                    "ON CONFLICT (id) DO UPDATE SET version = excluded.version",
                    step + 1,
                )
        if version < known:
            log.info("migrated %s from schema version %d to %d", self.label, version, known)

    async def fetchall(self, sql: str, parameters: Sequence[Any] = ()) -> Rows:
        try:
            async with self._pool.acquire() as conn:
                return await _PostgresConnection(conn, self).fetchall(sql, parameters)
        except _DRIVER_ERRORS as exc:
            raise self.error("read", exc) from exc

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Connection]:
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock($1)", _WRITE_LOCK)
                yield _PostgresConnection(conn, self)
        except _DRIVER_ERRORS as exc:
            raise self.error("write", exc) from exc

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[Connection]:
        try:
            async with (
                self._pool.acquire() as conn,
                conn.transaction(isolation="repeatable_read", readonly=True),
            ):
                yield _PostgresConnection(conn, self)
        except _DRIVER_ERRORS as exc:
            raise self.error("read", exc) from exc

    def status(self) -> str | None:
        return self._lost

    async def listen(
        self, on_notice: Callable[[str], None], on_reconnect: Callable[[], None]
    ) -> None:
        """Connects the listening connection now (StoreError when it
        cannot), then keeps it connected in the background."""
        await self._connect_listener(on_notice)
        self._listen_task = asyncio.create_task(
            self._keep_listening(on_notice, on_reconnect), name="postgres-listener"
        )

    async def _connect_listener(self, on_notice: Callable[[str], None]) -> None:
        def deliver(_conn: object, _pid: int, _channel: str, payload: str) -> None:
            on_notice(payload)

        try:
            conn = await asyncpg.connect(**_connect_arguments(self.location))
            await conn.add_listener(CHANNEL, deliver)
        except _DRIVER_ERRORS as exc:
            raise StoreError(f"cannot listen on {self.label}: {_reason(exc)}") from exc
        self._listener = conn

    async def _keep_listening(
        self, on_notice: Callable[[str], None], on_reconnect: Callable[[], None]
    ) -> None:
        attempt = 0
        while not self._closing:
            conn = self._listener
            if conn is not None and not conn.is_closed():
                try:
                    # A cheap query notices a server that went away (and a
                    # half-open TCP connection) within the interval.
                    await asyncio.wait_for(conn.fetchval("SELECT 1"), 2.0)
                    if self._lost is not None:
                        self._lost = None
                        log.info("%s answers again", self.label)
                        on_reconnect()
                    attempt = 0
                    await asyncio.sleep(0.5)
                    continue
                except _DRIVER_ERRORS as exc:
                    self._mark_lost(_reason(exc))
                    with contextlib.suppress(*_DRIVER_ERRORS):
                        conn.terminate()
                    self._listener = None
            await asyncio.sleep(_RECONNECT_SECONDS[min(attempt, len(_RECONNECT_SECONDS) - 1)])
            attempt += 1
            try:
                await self._connect_listener(on_notice)
            except StoreError as exc:
                self._mark_lost(str(exc))
                continue
            self._lost = None
            log.info("%s answers again; reloading what changed meanwhile", self.label)
            on_reconnect()

    def _mark_lost(self, reason: str) -> None:
        if self._lost is None:
            log.error("lost the connection to %s: %s", self.label, reason)
        self._lost = f"the database {self.label} is unreachable: {reason}"

    async def close(self) -> None:
        self._closing = True
        task, self._listen_task = self._listen_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        conn, self._listener = self._listener, None
        if conn is not None:
            with contextlib.suppress(*_DRIVER_ERRORS):
                await asyncio.wait_for(conn.close(), 2.0)
        with contextlib.suppress(*_DRIVER_ERRORS):
            await asyncio.wait_for(self._pool.close(), 5.0)


def _server_tls(location: PostgresLocation) -> ssl.SSLContext | str:
    """What asyncpg's ``ssl`` takes for ``location``: a context trusting
    only its ``ca_file`` when it has one (StoreError when it cannot be
    read), else the system's for ``verify-full``, else the ``sslmode``."""
    if location.ca_file is None:
        if location.sslmode == "verify-full":
            return ssl.create_default_context()
        return location.sslmode
    try:
        context = ssl.create_default_context(cafile=location.ca_file)
    except (OSError, ssl.SSLError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise StoreError(f"--db-ca-file: cannot read {location.ca_file!r}: {reason}") from None
    # verify-ca trusts any name the CA signed, as libpq does.
    context.check_hostname = location.sslmode != "verify-ca"
    return context


def _connect_arguments(location: PostgresLocation) -> dict[str, Any]:
    sslmode: Any = _server_tls(location)
    return {
        "host": location.host,
        "port": location.port,
        "user": location.user,
        "database": location.database,
        "password": location.password,
        "ssl": sslmode,
        "timeout": _CONNECT_TIMEOUT,
        # The listener and pool connections live long: asyncpg's statement
        # cache keeps each rewritten statement prepared once per connection.
        "server_settings": {"application_name": "pdp-control"},
    }


def _reason(exc: BaseException) -> str:
    if isinstance(exc, asyncio.TimeoutError):
        return "timed out"
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
