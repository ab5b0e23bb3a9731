"""The state database: one SQLite file in WAL mode, with versioned migrations.

WAL with ``synchronous=NORMAL`` makes every commit survive a crash of this
process (kill -9 included); only a power loss may undo the last commits.
Times are stored as integer microseconds since the Unix epoch (UTC), so they
sort and compare exactly.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Sequence
from contextlib import asynccontextmanager, suppress
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import aiosqlite

from pdp.engine import utc_now
from pdp.state._errors import StateError
from pdp.state._group_write import GroupWriter, Work

T = TypeVar("T")

__all__ = [
    "APPROVALS_INDEXES",
    "APPROVALS_TABLE",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "Database",
    "from_micros",
    "to_micros",
    "utc_now",
]

# Approvals: requests held for a reviewer. Never the request's text: its
# digest and an excerpt with every PII type masked. changed_seq grows with
# every change, so a reader finds what changed since it last looked (a
# decision made by `pdp approvals` in another process). The control plane's
# approvals table is this one with two more columns. Both migrations use
# these statements: never edit them, append a step instead.
APPROVALS_TABLE = """
    CREATE TABLE approvals (
        id TEXT PRIMARY KEY,
        agent_id TEXT NOT NULL,
        digest TEXT NOT NULL,
        policies_json TEXT NOT NULL,
        masked_excerpt TEXT NOT NULL,
        request_id TEXT NOT NULL,
        created_at_us INTEGER NOT NULL,
        expires_at_us INTEGER NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('pending', 'approved', 'denied', 'expired')),
        reviewer TEXT NOT NULL DEFAULT '',
        comment TEXT NOT NULL DEFAULT '',
        decided_at_us INTEGER,
        consumed_at_us INTEGER,
        changed_seq INTEGER NOT NULL
    )
"""
APPROVALS_INDEXES = (
    "CREATE INDEX approvals_by_change ON approvals (changed_seq)",
    "CREATE INDEX approvals_by_state ON approvals (state, expires_at_us)",
    "CREATE INDEX approvals_by_time ON approvals (created_at_us)",
)

# One entry per schema version; entry N (0-based) moves a database from
# user_version N to N+1 in one transaction. Append only: never edit a step
# that has shipped.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        # Spend ledger. request_id is the idempotency key; amounts are integer
        # micro-dollars so sums are exact.
        """
        CREATE TABLE usage (
            request_id TEXT PRIMARY KEY,
            agent_id TEXT NOT NULL,
            amount_micro_usd INTEGER NOT NULL CHECK (amount_micro_usd >= 0),
            recorded_at_us INTEGER NOT NULL
        )
        """,
        "CREATE INDEX usage_by_time ON usage (recorded_at_us)",
        # Decision log. Ids, enums, counts and policy ids only: no column can
        # hold request text or a PII value.
        """
        CREATE TABLE decision_log (
            seq INTEGER PRIMARY KEY,
            decision_id TEXT NOT NULL,
            decided_at_us INTEGER NOT NULL,
            agent_id TEXT NOT NULL,
            decision TEXT NOT NULL,
            policies_fired_json TEXT NOT NULL,
            pii_counts_json TEXT NOT NULL,
            snapshot_revision INTEGER NOT NULL,
            request_id TEXT NOT NULL,
            approval_id TEXT NOT NULL
        )
        """,
        "CREATE INDEX decision_log_by_agent ON decision_log (agent_id, seq)",
        # The last good snapshot: at most one row.
        """
        CREATE TABLE last_good_snapshot (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            document TEXT NOT NULL,
            revision INTEGER NOT NULL,
            source TEXT NOT NULL,
            activated_at_us INTEGER NOT NULL
        )
        """,
    ),
    (
        # Calls counted per key (a JSON array, e.g. ["agent", "<id>"]) and
        # second of Unix time, for windows of calls (rate limits).
        """
        CREATE TABLE call_counts (
            counter_key TEXT NOT NULL,
            second INTEGER NOT NULL,
            count INTEGER NOT NULL CHECK (count > 0),
            PRIMARY KEY (counter_key, second)
        ) WITHOUT ROWID
        """,
        "CREATE INDEX call_counts_by_second ON call_counts (second)",
    ),
    (
        # Open cost reservations: a call's estimated cost held against its
        # agent's budgets until its usage report replaces it or it expires
        # (expires_at_us, calendar time) and is settled at its estimate.
        """
        CREATE TABLE reservations (
            request_id TEXT PRIMARY KEY,
            agent_id TEXT NOT NULL,
            amount_micro_usd INTEGER NOT NULL CHECK (amount_micro_usd >= 0),
            reserved_at_us INTEGER NOT NULL,
            expires_at_us INTEGER NOT NULL
        )
        """,
        # How a usage record came to be: a usage report, or a reservation
        # that expired unreported and was settled at its estimate.
        "ALTER TABLE usage ADD COLUMN settled TEXT NOT NULL DEFAULT 'reported'",
    ),
    (
        # Events for the control plane that must not be lost (approvals,
        # traces), kept until the control plane has taken them.
        """
        CREATE TABLE outbox (
            seq INTEGER PRIMARY KEY,
            event_id TEXT NOT NULL UNIQUE,
            type TEXT NOT NULL,
            time_us INTEGER NOT NULL,
            data_json TEXT NOT NULL
        )
        """,
        # Facts about this sidecar (its id), by name.
        """
        CREATE TABLE sidecar_meta (
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL
        ) WITHOUT ROWID
        """,
    ),
    (
        # Approvals: requests held for a reviewer.
        APPROVALS_TABLE,
        *APPROVALS_INDEXES,
    ),
    (
        # Traces this sidecar evaluated (result_json answers a repeated
        # request id) and, in standalone mode, their incidents. No request
        # text: the input only as a masked excerpt.
        """
        CREATE TABLE traces (
            trace_id TEXT PRIMARY KEY,
            agent_id TEXT NOT NULL,
            request_id TEXT NOT NULL,
            result_json TEXT NOT NULL,
            recorded_at_us INTEGER NOT NULL
        )
        """,
        "CREATE INDEX traces_by_time ON traces (recorded_at_us)",
        """
        CREATE TABLE incidents (
            seq INTEGER PRIMARY KEY,
            trace_id TEXT NOT NULL,
            agent_id TEXT NOT NULL,
            policy_id TEXT NOT NULL,
            policy_name TEXT NOT NULL,
            policy_type TEXT NOT NULL,
            mode TEXT NOT NULL,
            severity TEXT NOT NULL,
            message TEXT NOT NULL,
            anomaly INTEGER NOT NULL,
            cost_usd REAL NOT NULL,
            request_id TEXT NOT NULL,
            masked_excerpt TEXT NOT NULL,
            created_at_us INTEGER NOT NULL
        )
        """,
        "CREATE INDEX incidents_by_agent ON incidents (agent_id, seq)",
        "CREATE INDEX incidents_by_time ON incidents (created_at_us)",
    ),
)

SCHEMA_VERSION = len(MIGRATIONS)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MICROSECOND = timedelta(microseconds=1)
# Other processes (a CLI, a second sidecar) may hold the write lock briefly.
_BUSY_TIMEOUT_MS = 5000
_WAL_SIZE_LIMIT = 16 * 1024 * 1024


def to_micros(moment: datetime, field: str) -> int:
    """Microseconds since the epoch; ``field`` names the value in errors."""
    if moment.utcoffset() is None:
        raise ValueError(f"{field} must be a timezone-aware datetime, got {moment!r}")
    return (moment - _EPOCH) // _ONE_MICROSECOND


def from_micros(micros: int) -> datetime:
    return _EPOCH + timedelta(microseconds=micros)


class Database:
    """One connection to the state database. Create with :meth:`open`.

    aiosqlite runs the connection on its own thread, so calls never block the
    event loop. Writers go through :meth:`write` (a transaction run whole on
    that thread, committed with the writes queued beside it) or
    :meth:`transaction` (awaited statements); both are serialised, so
    transactions of different components (the ledger, the decision log)
    never interleave on the shared connection.
    """

    def __init__(
        self,
        connection: aiosqlite.Connection,
        path: Path,
        migrations: Sequence[Sequence[str]],
        label: str,
    ) -> None:
        self._connection: aiosqlite.Connection | None = connection
        self._path = path
        self._migrations = migrations
        self._label = label
        self._write_lock = asyncio.Lock()
        self._writer = GroupWriter(self._write_lock, lambda: self.connection, self._write_failed)

    @classmethod
    async def open(
        cls,
        path: str | os.PathLike[str],
        *,
        migrations: Sequence[Sequence[str]] = MIGRATIONS,
        label: str = "state database",
    ) -> Database:
        """Open (creating if needed) the database file at ``path`` and bring
        its schema up to date with ``migrations`` (entry N moves user_version
        N to N+1). ``label`` names the database in errors. The parent
        directory must exist."""
        file_path = Path(path)
        if not file_path.parent.is_dir():
            raise StateError(
                f"cannot open {label} {str(file_path)!r}: "
                f"directory {str(file_path.parent)!r} does not exist"
            )
        try:
            # isolation_level=None: transactions are explicit (BEGIN IMMEDIATE).
            connection = await aiosqlite.connect(file_path, isolation_level=None)
        except sqlite3.Error as exc:
            raise StateError(f"cannot open {label} {str(file_path)!r}: {exc}") from exc
        database = cls(connection, file_path, migrations, label)
        try:
            await database._configure()
            await database._migrate()
        except BaseException:
            await database.close()
            raise
        return database

    @property
    def path(self) -> Path:
        return self._path

    @property
    def connection(self) -> aiosqlite.Connection:
        """The open connection, for reads. Write through :meth:`transaction`."""
        if self._connection is None:
            raise StateError(f"{self._label} {str(self._path)!r} is closed")
        return self._connection

    @property
    def closed(self) -> bool:
        return self._connection is None

    def write(self, work: Work[T]) -> Awaitable[T]:
        """Runs ``work(connection)`` (a plain ``sqlite3`` connection, on the
        database's thread) in a write transaction, in one hand-off to that
        thread; writes queued meanwhile share its commit, and one that
        raises fails alone (see ``_group_write``). ``work`` must not
        commit or roll back, and may run twice. sqlite3 errors surface as :class:`StateError`;
        once queued, the write is made even if the caller is cancelled."""
        return self._writer.write(work)

    def _write_failed(self, exc: sqlite3.Error) -> StateError:
        error = StateError(f"{self._label} write failed: {exc}")
        error.__cause__ = exc
        return error

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """A write transaction: committed when the block exits normally, rolled
        back when it raises. sqlite3 errors surface as :class:`StateError`."""
        async with self._write_lock:
            connection = self.connection
            try:
                await connection.execute("BEGIN IMMEDIATE")
                yield connection
                await connection.commit()
            except BaseException as exc:
                # Also on cancellation: a cancelled BEGIN still runs on the
                # connection's thread, and the rollback queued behind it must
                # end that transaction before the next writer begins.
                await _rollback_quietly(connection)
                if isinstance(exc, sqlite3.Error):
                    raise StateError(f"{self._label} write failed: {exc}") from exc
                raise

    async def close(self) -> None:
        """Close the connection once the writes queued and any running
        transaction have finished. Closing twice is harmless."""
        await self._writer.finish()
        async with self._write_lock:
            connection, self._connection = self._connection, None
            if connection is not None:
                await connection.close()

    async def _configure(self) -> None:
        connection = self.connection
        try:
            await connection.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
            async with connection.execute("PRAGMA journal_mode = WAL") as cursor:
                row = await cursor.fetchone()
            mode = str(row[0]).lower() if row is not None else ""
            if mode != "wal":
                raise StateError(
                    f"{self._label} {str(self._path)!r} cannot use WAL mode (got {mode!r})"
                )
            await connection.execute("PRAGMA synchronous = NORMAL")
            # The write-ahead log is reset, not shrunk, after a checkpoint:
            # cap what it keeps, so the files stop growing under steady load.
            await connection.execute(f"PRAGMA journal_size_limit = {_WAL_SIZE_LIMIT}")
            await connection.execute("PRAGMA foreign_keys = ON")
        except sqlite3.Error as exc:
            raise StateError(f"cannot open {self._label} {str(self._path)!r}: {exc}") from exc

    async def _migrate(self) -> None:
        # Each step re-reads user_version inside its own write transaction, so
        # two processes opening the same file at once apply every step once.
        while True:
            async with self.transaction() as connection:
                async with connection.execute("PRAGMA user_version") as cursor:
                    row = await cursor.fetchone()
                version = int(row[0]) if row is not None else 0
                latest = len(self._migrations)
                if version > latest:
                    raise StateError(
                        f"{self._label} {str(self._path)!r} has schema version {version}, "
                        f"newer than this version of pdp supports ({latest})"
                    )
                if version == latest:
                    return
                for statement in self._migrations[version]:
                    await connection.execute(statement)
                # PRAGMA takes no parameters; version is an int we computed.
                await connection.execute(f"PRAGMA user_version = {version + 1}")


async def _rollback_quietly(connection: aiosqlite.Connection) -> None:
    # sqlite3's rollback() is a no-op outside a transaction; a failure here
    # must not hide the error that caused the rollback.
    with suppress(sqlite3.Error, ValueError):
        await connection.rollback()
