"""A background task that writes what a component queued in memory: every
``interval`` seconds, or sooner when woken. Every flusher of one interval
wakes on the same ticks of the event loop's clock, so the decision log, the
reservations and the call counters reach the database together and share
one commit (see ``_group_write``)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from pdp.state._errors import StateError

__all__ = ["Flusher"]

_LOG = logging.getLogger("pdp.state")


class Flusher:
    """Calls ``flush`` every ``interval`` seconds (sooner after :meth:`wake`)
    until :meth:`stop`. A failing flush is logged once per failure streak;
    what it did not write stays queued for the next one."""

    def __init__(self, flush: Callable[[], Awaitable[None]], interval: float, what: str) -> None:
        if not interval > 0:
            raise ValueError(f"flush_interval must be positive, got {interval}")
        self._flush = flush
        self._interval = interval
        self._what = what
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"pdp-{self._what}-flusher")

    def wake(self) -> None:
        self._wake.set()

    async def stop(self) -> None:
        """Stops the task once a flush in progress is done. The owner
        flushes what is left."""
        self._stopping = True
        task, self._task = self._task, None
        if task is not None:
            self._wake.set()
            await task

    async def _run(self) -> None:
        failing = False
        loop = asyncio.get_running_loop()
        interval = self._interval
        while not self._stopping:
            # On the interval's boundaries of the loop's clock: flushers of
            # one interval wake together and their writes share a commit.
            due = (loop.time() // interval + 1) * interval
            try:
                async with asyncio.timeout_at(due):
                    await self._wake.wait()
            except TimeoutError:
                pass
            self._wake.clear()
            try:
                await self._flush()
            except StateError as exc:
                if not failing:  # one line: a full disk must not fill the log too
                    _LOG.error("%s write failed; what is queued stays queued: %s", self._what, exc)
                failing = True
            else:
                if failing:
                    _LOG.info("%s writes recovered", self._what)
                failing = False
