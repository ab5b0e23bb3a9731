"""Delivering the webhook outbox: a background task of ``pdp control``.

Each due delivery (``webhook_deliveries``, status pending) is POSTed to its
webhook's URL, signed the Standard Webhooks way (``webhook-id``: the
delivery's stable id; ``webhook-timestamp``: the attempt's time;
``webhook-signature``: ``v1,`` and the base64 HMAC-SHA256 of
``id.timestamp.body``). A 2xx answer delivers it; anything else (another
status, a connection error, no answer within the timeout) schedules the
next attempt after the next delay of the retry schedule, with jitter, and
the last failure marks it failed. A URL the outbound policy refuses fails
the delivery at once, without retries. At most ``concurrency`` attempts
run at once.

The outcome of an attempt is committed after it ends, so a kill -9 during
an attempt sends it again after the restart with the same id: delivery is
at least once, and receivers dedupe by ``webhook-id``. Control planes
sharing a PostgreSQL database lease the deliveries they attempt
(:mod:`._webhook_leases`), so that each attempt is made by one of them,
and renew the leases of their attempts under way every third of a lease."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx

from pdp.engine import sign_webhook, utc_now
from pdp.outbound import OutboundPolicy, OutboundRefusedError
from pdp.state import to_micros

from ._store import Store
from ._webhook_leases import delivery_claims
from ._webhook_transport import webhook_client
from ._webhooks import Webhook

__all__ = ["DEFAULT_RETRY_SCHEDULE", "DeliveryOptions", "WebhookSender"]

log = logging.getLogger("pdp.control.webhooks")

# Seconds before each retry (Standard Webhooks' suggested schedule): eight
# attempts over about a day.
DEFAULT_RETRY_SCHEDULE: tuple[float, ...] = (5, 300, 1800, 7200, 18000, 36000, 36000)
RETENTION = timedelta(days=7)  # finished deliveries are kept this long
_JITTER = 0.2  # each delay is drawn from +-20% of the schedule's
_MAX_IDLE_SECONDS = 1.0
_PRUNE_EVERY_SECONDS = 600.0
_MAX_ERROR_CHARS = 500
_MAX_ANSWER_BYTES = 64 * 1024
# How an outcome ends the delivery's lease (_webhook_leases.py); without
# leases, lease_owner is NULL and the owner ''.
_RELEASE = "lease_owner = NULL, lease_until_us = NULL"
_HELD = " WHERE id = ? AND status = 'pending' AND COALESCE(lease_owner, '') = ?"
# A renewal is a database round trip given a third of a lease: under a
# second, a database slow to answer for a moment would lose leases.
MIN_LEASE_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class DeliveryOptions:
    schedule: tuple[float, ...] = DEFAULT_RETRY_SCHEDULE
    timeout: float = 10.0  # seconds an attempt may take, answer included
    concurrency: int = 16
    ca_file: str | None = None  # trusted besides the system's CAs
    # Seconds a control plane on a shared database holds a delivery it
    # attempts before another may take it over (_webhook_leases.py); renewed
    # every third of it while the attempt is under way, so an attempt may
    # last longer than one lease.
    lease: float = 15.0

    def __post_init__(self) -> None:
        if any(not d >= 0 for d in self.schedule):
            raise ValueError("every delay of the retry schedule must be 0 or more seconds")
        if not self.timeout > 0:
            raise ValueError("the webhook timeout must be more than 0 seconds")
        if self.concurrency < 1:
            raise ValueError("webhook concurrency must be at least 1")
        if not self.lease >= MIN_LEASE_SECONDS:
            raise ValueError(
                f"the webhook lease ({self.lease:g} s) must be at least "
                f"{MIN_LEASE_SECONDS:g} s: it is renewed every third of it"
            )


@dataclass(frozen=True, slots=True)
class _Write:
    sql: str
    parameters: tuple[object, ...]
    outcome: str
    done: asyncio.Future[None]


@dataclass(frozen=True, slots=True)
class _Due:
    id: str
    webhook_id: str
    body: bytes
    attempts: int


class WebhookSender:
    """Start with :meth:`start`; :meth:`wake` when deliveries were queued."""

    def __init__(
        self,
        store: Store,
        target: Callable[[str], Webhook | None],
        options: DeliveryOptions | None = None,
        *,
        clock: Callable[[], datetime] = utc_now,
        refresh: Callable[[], Awaitable[None]] | None = None,
        outbound: OutboundPolicy | None = None,
    ) -> None:
        self._store = store
        self._outbound = outbound or OutboundPolicy()
        self._target = target
        self._refresh = refresh
        self.options = options or DeliveryOptions()
        self._clock = clock
        self._claims = delivery_claims(store, self.options.lease)
        self._wake = asyncio.Event()
        self._in_flight: dict[str, asyncio.Task[None]] = {}
        # Attempts that ended while the outbox was being read: that read may
        # predate their outcome, so their rows are not started from it.
        self._ended_during_read: set[str] = set()
        self._ready: collections.deque[_Due] = collections.deque()
        self._task: asyncio.Task[None] | None = None
        self._client: httpx.AsyncClient | None = None
        self._last_prune = 0.0
        self._writes: list[_Write] = []
        self._flusher: asyncio.Task[None] | None = None
        self._renewer: asyncio.Task[None] | None = None
        # Attempts since start, by outcome: delivered, retried, failed.
        self.outcomes: dict[str, int] = {"delivered": 0, "retried": 0, "failed": 0}

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        if self._task is not None:
            return
        self._client = webhook_client(
            self._outbound,
            ca_file=self.options.ca_file,
            timeout=self.options.timeout,
            concurrency=self.options.concurrency,
        )
        self._task = asyncio.create_task(self._run(), name="webhook-sender")
        if self._claims.owner:
            self._renewer = asyncio.create_task(self._renew_leases(), name="webhook-leases")

    async def stop(self) -> None:
        """Stops sending; attempts under way are abandoned and made again
        after the next start."""
        task, self._task = self._task, None
        renewer, self._renewer = self._renewer, None
        self._ready.clear()
        tasks = [
            t for t in (task, renewer, self._flusher, *self._in_flight.values()) if t is not None
        ]
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        if task is not None:
            await self._claims.give_back()
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            try:
                idle = await self._start_due()
                await self._prune()
            except Exception:
                log.exception("reading the webhook outbox failed; trying again")
                idle = _MAX_IDLE_SECONDS
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(idle):
                    await self._wake.wait()

    async def _renew_leases(self) -> None:
        """Every third of a lease, renews the leases of the attempts under
        way: a lease taken just after a renewal is renewed within two thirds
        of it as long as the database answers within a third (a renewal's
        time limit); one that fails is tried again at the next third."""
        loop = asyncio.get_running_loop()
        every = self.options.lease / 3
        next_at = loop.time()
        while True:
            next_at = max(next_at + every, loop.time())
            await asyncio.sleep(next_at - loop.time())
            under_way = list(self._in_flight)
            if not under_way:
                continue
            try:
                async with asyncio.timeout(every):
                    await self._claims.renew(under_way)
            except Exception as exc:
                log.warning(
                    "cannot renew the leases of %d webhook deliveries under way: %s",
                    len(under_way),
                    exc or type(exc).__name__,
                )

    async def _start_due(self) -> float:
        """Starts the due deliveries there is room for; returns how long to
        wait before the next one is due (at most a second). Due rows are read
        in batches, so that a backlog costs one read per batch."""
        idle = _MAX_IDLE_SECONDS
        room = self.options.concurrency - len(self._in_flight)
        if room > 0 and not self._ready:
            idle = await self._read_due(room)
        while room > 0 and self._ready:
            due = self._ready.popleft()
            room -= 1
            task = asyncio.create_task(self._attempt(due), name=f"webhook-{due.id}")
            self._in_flight[due.id] = task
            task.add_done_callback(functools.partial(self._finished, due.id))
        return idle

    async def _read_due(self, room: int) -> float:
        """Reads (claims, on a shared database) the oldest due deliveries
        not under way into the ready queue; returns the seconds until the
        next one falls due."""
        if self._refresh is not None:
            await self._refresh()
        now = to_micros(self._clock(), "now")
        self._ended_during_read.clear()
        batch = self.options.concurrency * 8
        rows = await self._claims.claim(
            now, room, batch, self._in_flight.keys(), self._ended_during_read
        )
        self._ready.extend(_Due(*row) for row in rows)
        if self._ready:
            return _MAX_IDLE_SECONDS  # a finishing attempt wakes the loop
        later = await self._store.fetchall(
            "SELECT MIN(next_attempt_at_us) FROM webhook_deliveries"
            " WHERE status = 'pending' AND next_attempt_at_us > ?",
            (now,),
        )
        if later[0][0] is None:
            return _MAX_IDLE_SECONDS
        return min(_MAX_IDLE_SECONDS, (int(later[0][0]) - now) / 1e6)

    def _finished(self, delivery_id: str, _task: asyncio.Task[None]) -> None:
        self._in_flight.pop(delivery_id, None)
        self._ended_during_read.add(delivery_id)
        self._wake.set()

    async def _attempt(self, due: _Due) -> None:
        hook = self._target(due.webhook_id)
        if hook is None:
            # Its webhook was deleted (by another control plane on a shared
            # database, since this one deletes the deliveries with it).
            async with self._store.side_transaction() as tx:
                await tx.execute(
                    "DELETE FROM webhook_deliveries WHERE id = ?"
                    " AND webhook_id NOT IN (SELECT id FROM webhooks)",
                    (due.id,),
                )
            return
        client = self._client
        assert client is not None
        timestamp = int(time.time())
        headers = {
            "Content-Type": "application/json",
            "webhook-id": due.id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign_webhook(hook.key, due.id, timestamp, due.body),
        }
        status: int | None = None
        error: str | None = None
        refused = False
        try:
            async with asyncio.timeout(self.options.timeout):
                async with client.stream("POST", hook.url, content=due.body, headers=headers) as r:
                    status = r.status_code
                    # Read (a short answer) to its end, so that the connection
                    # is kept for the next delivery; a long one is cut.
                    read = 0
                    async for chunk in r.aiter_raw():
                        read += len(chunk)
                        if read > _MAX_ANSWER_BYTES:
                            break
            if not 200 <= status < 300:
                error = f"the receiver answered HTTP {status}"
        except TimeoutError:
            error = f"no answer within {self.options.timeout:g} s"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}".rstrip(": ")
        except OutboundRefusedError as exc:
            error, refused = f"refused by the outbound policy: {exc.reason}", True
        try:
            await self._record(due, status, error, final=refused)
        except Exception:
            log.exception("recording the outcome of webhook delivery %s failed", due.id)

    async def _record(
        self, due: _Due, status: int | None, error: str | None, *, final: bool = False
    ) -> None:
        """``final``: a failure that another attempt would not change."""
        attempts = due.attempts + 1
        final = final or attempts > len(self.options.schedule)
        now = self._clock()
        now_us = to_micros(now, "now")
        schedule = self.options.schedule
        # The outcome releases the lease, and only its holder records one.
        owner = self._claims.owner
        if error is None:
            sql = (
                "UPDATE webhook_deliveries SET status = 'delivered', attempts = ?,"
                " last_status = ?, last_error = NULL, finished_at_us = ?, " + _RELEASE + _HELD
            )
            parameters: tuple[object, ...] = (attempts, status, now_us, due.id, owner)
        elif final:
            log.warning("webhook delivery %s failed after %d attempts: %s", due.id, attempts, error)
            sql = (
                "UPDATE webhook_deliveries SET status = 'failed', attempts = ?,"
                " last_status = ?, last_error = ?, finished_at_us = ?, " + _RELEASE + _HELD
            )
            parameters = (attempts, status, error[:_MAX_ERROR_CHARS], now_us, due.id, owner)
        else:
            delay = schedule[attempts - 1] * random.uniform(1 - _JITTER, 1 + _JITTER)
            log.info(
                "webhook delivery %s attempt %d failed (%s); next in %.1f s",
                due.id,
                attempts,
                error,
                delay,
            )
            sql = (
                "UPDATE webhook_deliveries SET attempts = ?, next_attempt_at_us = ?,"
                " last_status = ?, last_error = ?, " + _RELEASE + _HELD
            )
            next_us = to_micros(now + timedelta(seconds=delay), "next")
            parameters = (attempts, next_us, status, error[:_MAX_ERROR_CHARS], due.id, owner)
        outcome = "delivered" if error is None else "failed" if final else "retried"
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._writes.append(_Write(sql, parameters, outcome, done))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush(), name="webhook-outcomes")
        await done

    async def _flush(self) -> None:
        """Records the outcomes queued so far, in one transaction per batch
        (one statement per kind of outcome): the attempts that end together
        cost one commit."""
        while self._writes:
            batch, self._writes = self._writes, []
            by_sql: dict[str, list[tuple[object, ...]]] = {}
            for write in batch:
                by_sql.setdefault(write.sql, []).append(write.parameters)
            try:
                async with self._store.side_transaction() as tx:
                    for sql, rows in by_sql.items():
                        await tx.executemany(sql, rows)
            except Exception as exc:
                for write in batch:
                    if not write.done.done():
                        write.done.set_exception(exc)
                continue
            for write in batch:
                self.outcomes[write.outcome] += 1
                if not write.done.done():
                    write.done.set_result(None)

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    @property
    def taken_over(self) -> int:
        """Deliveries claimed after another control plane's lease expired."""
        return self._claims.taken_over

    async def _prune(self) -> None:
        """Forgets deliveries that finished longer ago than RETENTION, and
        the budget periods whose cost.threshold was sent long ago."""
        moment = time.monotonic()
        if moment - self._last_prune < _PRUNE_EVERY_SECONDS:
            return
        self._last_prune = moment
        cutoff = to_micros(self._clock() - RETENTION, "cutoff")
        periods = to_micros(self._clock() - timedelta(days=100), "cutoff")
        async with self._store.side_transaction() as tx:
            await tx.execute(
                "DELETE FROM webhook_deliveries WHERE status != 'pending' AND finished_at_us < ?",
                (cutoff,),
            )
            await tx.execute("DELETE FROM cost_thresholds WHERE reached_at_us < ?", (periods,))
