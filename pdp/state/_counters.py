"""Call counters: calls counted per key and second, for windows of calls
(rate limits).

A call is counted in memory at once, so the next decision sees it (the check
and the count happen in one step of the event loop), and written to the
state database in the background within ``flush_interval``. A restart
reloads the counts of the last ``retention`` seconds; a crash (kill -9)
forgets at most the calls of the last interval.

Seconds are on the steady timeline (:class:`~pdp.engine.SteadyClock`): a
step of the wall clock does not move windows of calls. A restart starts the
timeline at the wall clock again; counts it finds in its future (the wall
clock was stepped back while no sidecar ran) are taken as made now.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from functools import partial

from pdp.engine import CALL_WINDOW_MAX_SECONDS, Clock, CounterKey, SteadyClock
from pdp.state._database import Database
from pdp.state._errors import StateError
from pdp.state._flusher import Flusher
from pdp.state._windows import Windows

__all__ = ["CallCounters", "decode_key", "encode_key"]

_UPSERT = (
    "INSERT INTO call_counts (counter_key, second, count) VALUES (?, ?, ?)"
    " ON CONFLICT (counter_key, second) DO UPDATE SET count = count + excluded.count"
)
_LOAD_CHUNK_ROWS = 10_000
# How often counts older than the retention are dropped from memory, in seconds.
_SWEEP_EVERY = 60


def encode_key(key: CounterKey) -> str:
    return json.dumps(list(key), ensure_ascii=False, separators=(",", ":"))


def decode_key(text: str) -> CounterKey | None:
    try:
        parts = json.loads(text)
    except ValueError:
        return None
    if not isinstance(parts, list) or not all(isinstance(p, str) for p in parts):
        return None
    return tuple(parts)


def _upsert(rows: list[tuple[str, int, int]], connection: sqlite3.Connection) -> None:
    connection.executemany(_UPSERT, rows)


class CallCounters:
    """Calls per key and second: counted in memory, kept in the state
    database. Create with :meth:`open`, then :meth:`start` the writer;
    :meth:`close` writes what is left."""

    def __init__(
        self,
        db: Database,
        windows: Windows[CounterKey],
        *,
        clock: SteadyClock,
        retention: int,
        flush_interval: float,
    ) -> None:
        self._db = db
        self._windows = windows
        self._clock = clock
        self._retention = retention
        self._pending: dict[tuple[CounterKey, int], int] = {}
        self._flusher = Flusher(self.flush, flush_interval, "call counter")
        self._flush_lock = asyncio.Lock()
        self._last_sweep = self._now()
        self._closed = False

    @classmethod
    async def open(
        cls,
        db: Database,
        *,
        clock: Clock | None = None,
        retention: int = CALL_WINDOW_MAX_SECONDS,
        flush_interval: float = 0.05,
    ) -> CallCounters:
        """Loads the counts of the last ``retention`` seconds into memory."""
        if retention < 1:
            raise ValueError(f"retention must be at least 1 second, got {retention}")
        windows: Windows[CounterKey] = Windows()
        steady = clock if isinstance(clock, SteadyClock) else SteadyClock(clock)
        counters = cls(
            db, windows, clock=steady, retention=retention, flush_interval=flush_interval
        )
        now = counters._now()
        cutoff = now - retention
        async with db.connection.execute(
            "SELECT counter_key, second, count FROM call_counts WHERE second >= ? ORDER BY second",
            (cutoff,),
        ) as cursor:
            while rows := await cursor.fetchmany(_LOAD_CHUNK_ROWS):
                for text, second, count in rows:
                    key = decode_key(text)
                    if key is not None:  # not written by this version: ignore
                        windows.add(key, count, min(second, now))
        return counters

    def _now(self) -> int:
        return int(self._clock.steady())

    def calls_since(self, key: CounterKey, since: int) -> int:
        return self._windows.total_since(key, since)

    def nth_call_since(self, key: CounterKey, since: int, n: int) -> int | None:
        return self._windows.nth_since(key, since, n)

    def add(self, key: CounterKey, second: int, count: int = 1) -> None:
        """Counts ``count`` calls under ``key`` at ``second``: in memory now,
        in the database at the next flush."""
        if self._closed:
            raise StateError("call counters are closed")
        self._windows.add(key, count, second)
        slot = (key, second)
        self._pending[slot] = self._pending.get(slot, 0) + count

    def start(self) -> None:
        """Starts writing counts in the background."""
        self._flusher.start()

    async def flush(self) -> None:
        """Writes every count added before this call; raises StateError if
        the database refuses (the counts stay queued)."""
        async with self._flush_lock:
            now = self._now()
            if now - self._last_sweep >= _SWEEP_EVERY:
                # Memory only: the state's pruner deletes the rows.
                self._windows.sweep(now - self._retention)
                self._last_sweep = now
            batch, self._pending = self._pending, {}
            if not batch:
                return
            rows = [(encode_key(key), second, count) for (key, second), count in batch.items()]
            try:
                await self._db.write(partial(_upsert, rows))
            except Exception:  # not written (a cancelled caller's write goes on)
                for slot, count in batch.items():
                    self._pending[slot] = self._pending.get(slot, 0) + count
                raise

    async def close(self) -> None:
        """Stops the writer after a final flush. Later counts raise."""
        if self._closed:
            return
        await self._flusher.stop()
        await self.flush()
        self._closed = True
