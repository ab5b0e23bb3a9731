"""Call counters: calls counted per key and second, for windows of calls
(rate limits).

A call is counted in memory at once, so the next decision sees it (the check
and the count happen in one step of the event loop), and written to the
state database in the background within ``flush_interval``. A restart
reloads the counts of the last ``retention`` seconds; a crash (kill -9)
forgets at most the calls of the last interval.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import datetime

from pdp.engine import CALL_WINDOW_MAX_SECONDS, CounterKey
from pdp.state._database import Database, to_micros, utc_now
from pdp.state._errors import StateError
from pdp.state._flusher import Flusher
from pdp.state._windows import Windows

__all__ = ["CallCounters"]

_UPSERT = (
    "INSERT INTO call_counts (counter_key, second, count) VALUES (?, ?, ?)"
    " ON CONFLICT (counter_key, second) DO UPDATE SET count = count + excluded.count"
)
_LOAD_CHUNK_ROWS = 10_000
# How often counts older than the retention are dropped, in seconds.
_SWEEP_EVERY = 60


def _encode(key: CounterKey) -> str:
    return json.dumps(list(key), ensure_ascii=False, separators=(",", ":"))


def _decode(text: str) -> CounterKey | None:
    try:
        parts = json.loads(text)
    except ValueError:
        return None
    if not isinstance(parts, list) or not all(isinstance(p, str) for p in parts):
        return None
    return tuple(parts)


def _unix_second(moment: datetime) -> int:
    return to_micros(moment, "clock()") // 1_000_000


class CallCounters:
    """Calls per key and second: counted in memory, kept in the state
    database. Create with :meth:`open`, then :meth:`start` the writer;
    :meth:`close` writes what is left."""

    def __init__(
        self,
        db: Database,
        windows: Windows[CounterKey],
        *,
        clock: Callable[[], datetime],
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
        self._last_sweep = _unix_second(clock())
        self._closed = False

    @classmethod
    async def open(
        cls,
        db: Database,
        *,
        clock: Callable[[], datetime] = utc_now,
        retention: int = CALL_WINDOW_MAX_SECONDS,
        flush_interval: float = 0.05,
    ) -> CallCounters:
        """Loads the counts of the last ``retention`` seconds into memory."""
        if retention < 1:
            raise ValueError(f"retention must be at least 1 second, got {retention}")
        windows: Windows[CounterKey] = Windows()
        counters = cls(db, windows, clock=clock, retention=retention, flush_interval=flush_interval)
        cutoff = _unix_second(clock()) - retention
        async with db.connection.execute(
            "SELECT counter_key, second, count FROM call_counts WHERE second >= ? ORDER BY second",
            (cutoff,),
        ) as cursor:
            while rows := await cursor.fetchmany(_LOAD_CHUNK_ROWS):
                for text, second, count in rows:
                    key = _decode(text)
                    if key is not None:  # not written by this version: ignore
                        windows.add(key, count, second)
        return counters

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
            now = _unix_second(self._clock())
            if now - self._last_sweep >= _SWEEP_EVERY:
                await self._sweep(now - self._retention)
                self._last_sweep = now
            batch, self._pending = self._pending, {}
            if not batch:
                return
            rows = [(_encode(key), second, count) for (key, second), count in batch.items()]
            try:
                async with self._db.transaction() as connection:
                    await connection.executemany(_UPSERT, rows)
            except BaseException:
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

    async def _sweep(self, before: int) -> None:
        self._windows.sweep(before)
        async with self._db.transaction() as connection:
            await connection.execute("DELETE FROM call_counts WHERE second < ?", (before,))
