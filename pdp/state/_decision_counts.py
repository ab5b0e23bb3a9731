"""Decisions counted per day, agent and decision kind in Redis, summed over
every sidecar that shares it: ``HGETALL pdp:v1:decisions:2026-12-02``
answers ``{"<agent id>|ALLOW": 1204, "<agent id>|BLOCK": 17, ...}``.

Counted in memory when the decision is logged (a dict increment on the
hot path) and added to Redis in one pipeline every second; what Redis does
not take stays counted for the next time, up to a bound."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta

from redis.asyncio import Redis
from redis.exceptions import RedisError

from pdp.state._decision_log import DecisionRecord

__all__ = ["DECISION_COUNTS_KEY", "DecisionCounts"]

_LOG = logging.getLogger("pdp.state")
DECISION_COUNTS_KEY = "pdp:v1:decisions:"
_MAX_PENDING = 100_000  # distinct (day, agent, decision) waiting; beyond, new ones are dropped


class DecisionCounts:
    """Counts decisions in memory and adds them to Redis in the background."""

    def __init__(self, client: Redis, *, retention: timedelta, interval: float = 1.0) -> None:
        self._client = client
        self._expire = int(retention.total_seconds())
        self._interval = interval
        self._pending: dict[tuple[str, str], int] = {}
        self._task: asyncio.Task[None] | None = None
        self.dropped = 0

    def count(self, record: DecisionRecord) -> None:
        """Counts one logged decision. Synchronous and O(1)."""
        slot = (record.decided_at.date().isoformat(), f"{record.agent_id}|{record.decision}")
        pending = self._pending
        if slot in pending:
            pending[slot] += 1
        elif len(pending) < _MAX_PENDING:
            pending[slot] = 1
        else:
            self.dropped += 1

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="pdp-redis-decision-counts")

    async def flush(self) -> None:
        """Adds what was counted to Redis; on failure it stays counted here."""
        batch, self._pending = self._pending, {}
        if not batch:
            return
        try:
            async with self._client.pipeline(transaction=False) as pipe:
                for (day, field), n in batch.items():
                    pipe.hincrby(DECISION_COUNTS_KEY + day, field, n)
                for day in {day for day, _ in batch}:
                    pipe.expire(DECISION_COUNTS_KEY + day, self._expire)
                await pipe.execute()
        except (RedisError, OSError):
            for slot, n in batch.items():
                self._pending[slot] = self._pending.get(slot, 0) + n
            raise

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        with contextlib.suppress(RedisError, OSError):
            await self.flush()

    async def _run(self) -> None:
        failing = False
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.flush()
            except (RedisError, OSError):
                if not failing:
                    _LOG.warning("decision counts not written to Redis; kept for the next try")
                failing = True
            else:
                failing = False
