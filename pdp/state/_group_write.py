"""Write transactions that run whole on the database's thread, and group
commit: the writes queued while one commits are committed together.

A transaction made of awaited statements hands off to the connection's
thread (and wakes the event loop on its way back) once per statement:
BEGIN, each statement, COMMIT. A write here is one function of the
``sqlite3`` connection, run inside BEGIN IMMEDIATE ... COMMIT in one
hand-off. The writes of the decision log, the reservations and the call
counters (flushed on the same tick) and the usage reports of concurrent
calls share one commit. One that raises fails alone: the group is rolled
back and each of its writes is made again in a transaction of its own.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import aiosqlite

__all__ = ["GroupWriter", "Work"]

T = TypeVar("T")
# A write: runs on the connection's thread, inside a transaction; what it
# returns is the caller's. It must not commit, roll back or await, and it
# touches nothing but the database: it runs again when another write of
# its group fails.
Work = Callable[[sqlite3.Connection], T]

_Outcome = tuple[bool, Any]  # (succeeded, its result or its exception)


class GroupWriter:
    """The queue of writes of one connection and the task that commits them.

    ``lock`` is the connection's write lock (held while a group runs, so a
    transaction of awaited statements never interleaves with one);
    ``connection`` returns the open connection or raises (closed);
    ``failed`` turns a ``sqlite3.Error`` into the error the caller sees.
    """

    def __init__(
        self,
        lock: asyncio.Lock,
        connection: Callable[[], aiosqlite.Connection],
        failed: Callable[[sqlite3.Error], Exception],
    ) -> None:
        self._lock = lock
        self._connection = connection
        self._failed = failed
        self._queued: list[tuple[Work[Any], asyncio.Future[Any]]] = []
        self._committer: asyncio.Task[None] | None = None

    async def write(self, work: Work[T]) -> T:
        """Runs ``work`` in a write transaction; see the module. Once queued
        it runs whether or not its caller is still waiting (cancelling the
        caller does not undo a commit under way)."""
        self._connection()  # closed: raise now, not from the queue
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queued.append((work, future))
        if self._committer is None or self._committer.done():
            self._committer = asyncio.ensure_future(self._commit_queued())
        return await asyncio.shield(future)

    async def finish(self) -> None:
        """Returns once every write queued so far is made (or failed)."""
        while self._committer is not None and not self._committer.done():
            await asyncio.shield(self._committer)

    async def _commit_queued(self) -> None:
        async with self._lock:
            try:
                # One step of the event loop lets the writers woken with this
                # one (the flushers share a tick) join its group.
                await asyncio.sleep(0)
                while self._queued:
                    group, self._queued = self._queued, []
                    outcomes = await self._run(group)
                    for (_, future), (ok, value) in zip(group, outcomes, strict=True):
                        if future.done():
                            continue
                        if ok:
                            future.set_result(value)
                        elif isinstance(value, sqlite3.Error):
                            future.set_exception(self._failed(value))
                        else:
                            future.set_exception(value)
            except BaseException as exc:
                # Cancelled with the event loop: nothing waits much longer,
                # but no caller may wait forever either.
                for _, future in self._queued:
                    if not future.done():
                        future.set_exception(exc)
                self._queued = []
                raise

    async def _run(self, group: list[tuple[Work[Any], asyncio.Future[Any]]]) -> list[_Outcome]:
        works = [work for work, _ in group]
        try:
            connection = self._connection()
            # aiosqlite's own queue to its thread, with no statement around.
            submit: Callable[..., Awaitable[list[_Outcome]]] = connection._execute
            return await submit(_run_group, connection, works)
        except sqlite3.Error as exc:
            error = self._failed(exc)
            return [(False, error) for _ in works]
        except Exception as exc:  # closed meanwhile
            return [(False, exc) for _ in works]


def _run_group(connection: aiosqlite.Connection, works: list[Work[Any]]) -> list[_Outcome]:
    """On the connection's thread: every write of the group in one
    transaction. When one raises, the transaction is rolled back and each
    write runs again in a transaction of its own, so only the one that
    raised fails. (Not savepoints: in a savepoint SQLite copies each page
    it changes to a statement journal first, which costs more than the
    writes.)"""
    raw: sqlite3.Connection = connection._conn
    if len(works) > 1:
        try:
            return [(True, result) for result in _transaction(raw, works)]
        except Exception:
            pass
    outcomes: list[_Outcome] = []
    for work in works:
        try:
            outcomes.append((True, _transaction(raw, [work])[0]))
        except Exception as exc:
            outcomes.append((False, exc))
    return outcomes


def _transaction(raw: sqlite3.Connection, works: list[Work[Any]]) -> list[Any]:
    raw.execute("BEGIN IMMEDIATE")
    try:
        results = [work(raw) for work in works]
        raw.execute("COMMIT")
    except BaseException:
        if raw.in_transaction:
            raw.execute("ROLLBACK")
        raise
    return results
