"""The usage port on Redis: spend, reservations and call counts shared by
every sidecar of an agent (``pdp serve --state redis://HOST:PORT/DB``).

The engine reads a copy in memory (:class:`Mirror`), kept up to date from
the change stream. A charge is one Lua script (:data:`CHARGE`): the limits
checked again on Redis's numbers and the charges applied, atomically, in
one round trip; a report is another (:data:`REPORT`). What a script
changed is applied to the copy at once, so this sidecar's next decision
sees it; the other sidecars see it from the stream.

When Redis cannot be reached, reads and writes raise
:class:`~pdp.engine.StateUnavailableError` (each policy that reads usage
then fails closed or open), :meth:`status` says why, and a background task
reconnects and reloads the copy by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
import ssl
from collections.abc import Callable, Coroutine, Sequence
from datetime import datetime, timedelta
from typing import Any

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.connection import SSLConnection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import (
    AuthenticationError,
    AuthorizationError,
    NoPermissionError,
    RedisError,
    ResponseError,
)

from pdp.engine import (
    CallCharge,
    Charge,
    Clock,
    CounterKey,
    StateUnavailableError,
    SteadyClock,
    UsageRecord,
    UsageReport,
)
from pdp.state._counters import encode_key
from pdp.state._database import from_micros, to_micros
from pdp.state._decision_counts import DecisionCounts
from pdp.state._errors import StateError, UsageConflictError
from pdp.state._ledger import DEFAULT_RESERVATION_TTL, to_micro_usd
from pdp.state._location import RedisLocation
from pdp.state._pruner import DEFAULT_RETENTION, USAGE_RETENTION_FLOOR
from pdp.state._redis_mirror import Mirror, parse_event_id
from pdp.state._redis_scripts import CHARGE, LOAD, REPORT, SETTLE
from pdp.state._status import StateStatus
from pdp.state._windows import Windows

__all__ = ["RedisUsage"]

_LOG = logging.getLogger("pdp.state")
_STREAM = "pdp:v1:events"
_MICROS_PER_USD = 1_000_000
_EPOCH = from_micros(0)
_ONE_MICROSECOND = timedelta(microseconds=1)
# Connections for the hot path's scripts; a caller beyond them waits.
_MAX_CONNECTIONS = 64
# Seconds for a connection, a free place in the pool or an answer on the hot
# path: past it the call fails closed (a loaded host may take a second).
_TIMEOUT = 2.0
_BLOCK_MS = 1000  # how long the stream reader waits for news
_CATCH_UP = 0.25  # how long a refused charge waits for the copy to catch up
_RECONNECT = (0.1, 2.0)  # first and longest pause between reconnection attempts
_MIN_REDIS = (5, 0)  # streams

OnStatus = Callable[[StateStatus], Coroutine[Any, Any, None]]


def _client(
    location: RedisLocation, password: str | None, ca_file: str | None, timeout: float = _TIMEOUT
) -> Redis:
    tls: dict[str, Any] = {}
    if location.tls:
        tls = {
            "connection_class": SSLConnection,
            "ssl_ca_certs": ca_file,
            "ssl_cert_reqs": "required",
        }
    # Callers beyond _MAX_CONNECTIONS wait for a connection (at most the
    # timeout) rather than fail.
    pool = BlockingConnectionPool(
        max_connections=_MAX_CONNECTIONS,
        timeout=_TIMEOUT,
        host=location.host,
        port=location.port,
        db=location.db,
        username=location.username,
        password=password,
        socket_timeout=timeout,
        socket_connect_timeout=_TIMEOUT,
        decode_responses=True,
        client_name="pdp-sidecar",
        # A failed script is not sent again: a charge is not idempotent,
        # and the caller decides again on what the failure says.
        retry=Retry(NoBackoff(), 0),
        **tls,
    )
    return Redis.from_pool(pool)


class RedisUsage:
    """Usage of the agents of every sidecar sharing one Redis database.
    Create with :meth:`open`, :meth:`start` the background tasks,
    :meth:`close` when done."""

    def __init__(
        self,
        location: RedisLocation,
        client: Redis,
        reader: Redis,
        *,
        clock: SteadyClock,
        reservation_ttl: float,
        retention: timedelta,
        on_status: OnStatus | None,
    ) -> None:
        self.location = location
        self._client = client
        self._reader = reader
        self._clock = clock
        self._ttl = reservation_ttl
        keep = max(retention, USAGE_RETENTION_FLOOR)
        self._keep_micros = keep // _ONE_MICROSECOND
        self._retention_ms = keep // timedelta(milliseconds=1)
        self._origin = os.urandom(8).hex()
        self.decision_counts = DecisionCounts(client, retention=keep)
        self._charge_script = client.register_script(CHARGE)
        self._report_script = client.register_script(REPORT)
        self._settle_script = client.register_script(SETTLE)
        self._load_script = client.register_script(LOAD)
        self._mirror = Mirror()
        self._spend: Windows[str] = self._mirror.spend
        self._calls: Windows[CounterKey] = self._mirror.calls
        # Events this process applied when its script answered: the stream
        # brings them again, to be skipped.
        self._own: set[str] = set()
        self._caught_up = asyncio.Condition()
        self._down: str | None = "not connected yet"
        self._up = asyncio.Event()
        self._on_status = on_status
        self._tasks: list[asyncio.Task[None]] = []
        self._recovering: asyncio.Task[None] | None = None
        self._following: asyncio.Task[None] | None = None
        self._sending: set[asyncio.Future[Any]] = set()
        self._closed = False

    @classmethod
    async def open(
        cls,
        location: RedisLocation,
        *,
        password: str | None = None,
        ca_file: str | None = None,
        clock: Clock | None = None,
        reservation_ttl: float = DEFAULT_RESERVATION_TTL,
        retention: timedelta = DEFAULT_RETENTION,
        on_status: OnStatus | None = None,
    ) -> RedisUsage:
        """Connects and loads the copy. A server that refuses the password,
        is not a Redis, or is too old raises StateError naming the URL; one
        that cannot be reached is retried in the background (the port is
        unavailable meanwhile)."""
        if not reservation_ttl > 0:
            raise ValueError(f"reservation_ttl must be positive, got {reservation_ttl}")
        steady = clock if isinstance(clock, SteadyClock) else SteadyClock(clock)
        usage = cls(
            location,
            _client(location, password, ca_file),
            # The reader waits for news for _BLOCK_MS: give it longer.
            _client(location, password, ca_file, timeout=_BLOCK_MS / 1000 + 2 * _TIMEOUT),
            clock=steady,
            reservation_ttl=reservation_ttl,
            retention=retention,
            on_status=on_status,
        )
        try:
            await usage._connect()
        except (AuthenticationError, AuthorizationError, NoPermissionError) as exc:
            await usage._close_clients()
            raise StateError(
                f"cannot use --state {location}: authentication failed: {exc}"
            ) from None
        except ResponseError as exc:
            await usage._close_clients()
            raise StateError(f"cannot use --state {location}: the server answered {exc}") from None
        except StateError:
            await usage._close_clients()
            raise
        except (RedisError, OSError) as exc:
            if _tls_refused(exc):
                await usage._close_clients()
                message = f"cannot use --state {location}: TLS failed ({_reason(exc)})"
                hint = "; give the CA that signs its certificate with --state-ca-file"
                raise StateError(message + hint) from None
            usage._down = f"Redis at {location} is unreachable: {_reason(exc)}"
            _LOG.error(
                "--state %s: %s; serving, with budgets and rate limits failing closed until "
                "it answers",
                location,
                usage._down,
            )
        return usage

    async def _connect(self) -> None:
        info = await self._client.info("server")
        version = tuple(int(part) for part in str(info.get("redis_version", "0")).split(".")[:2])
        if version < _MIN_REDIS:
            raise StateError(
                f"cannot use --state {self.location}: Redis {info.get('redis_version')} is too"
                " old (5.0 or newer is needed)"
            )
        await self._reload()

    async def _reload(self) -> None:
        document = await self._load_script(keys=[], args=[])
        self._mirror = Mirror.load(
            document, steady=self._clock.steady(), monotonic=self._clock.monotonic()
        )
        self._spend, self._calls = self._mirror.spend, self._mirror.calls
        self._own.clear()
        self._down = None
        self._up.set()

    # -- the engine's reads (hot path, memory only) ------------------------------

    def spent_since(self, agent_id: str, since: datetime) -> float:
        if self._down is not None:
            raise StateUnavailableError(self._down)
        since_micros = (since - _EPOCH) // _ONE_MICROSECOND
        total = self._spend.total_since(agent_id, since_micros)
        reserved = self._mirror.reservations.total_since(agent_id, since_micros)
        return (total + reserved) / _MICROS_PER_USD

    def calls_since(self, key: CounterKey, since: int) -> int:
        if self._down is not None:
            raise StateUnavailableError(self._down)
        return self._calls.total_since(key, since)

    def nth_call_since(self, key: CounterKey, since: int, n: int) -> int | None:
        if self._down is not None:
            raise StateUnavailableError(self._down)
        return self._calls.nth_since(key, since, n)

    def status(self) -> StateStatus:
        return StateStatus("redis", self._down is None, self._down or "")

    # -- writes ---------------------------------------------------------------------

    def _times(self) -> list[Any]:
        now_us = to_micros(self._clock(), "clock()")
        return [
            self._origin,
            f"{self._clock.steady():.3f}",
            now_us,
            now_us - self._keep_micros,
            self._retention_ms,
        ]

    async def charge(self, charges: Sequence[Charge]) -> tuple[Charge, ...]:
        if self._down is not None:
            raise StateUnavailableError(self._down)
        calls: list[list[Any]] = []
        cost: list[Any] | None = None
        steady = self._clock.steady()
        for charge in charges:
            if isinstance(charge, CallCharge):
                limits = [[since, most] for since, most in charge.limits]
                calls.append([encode_key(charge.key), charge.second, limits])
            else:
                limits = [
                    [(since - _EPOCH) // _ONE_MICROSECOND, _usd_micros(limit)]
                    for since, limit in charge.limits
                ]
                cost = [
                    charge.agent_id,
                    charge.request_id,
                    _usd_micros(charge.amount_usd),
                    round(steady + self._ttl, 3),
                    limits,
                ]
        payload = json.dumps({"calls": calls, "cost": cost} if cost else {"calls": calls})
        args = [*self._times(), 86_400, payload]
        applied, refused, last, _ = await self._run(
            self._charge_script, args, lambda answer: answer[3]
        )
        if applied:
            return ()
        # Refused on Redis's numbers: let the copy catch up with them before
        # the call is decided again.
        await self._wait_for(str(last))
        return tuple(charges[int(index)] for index in refused)

    async def record(self, report: UsageReport) -> UsageRecord:
        agent_id, request_id = report.agent_id, report.request_id
        if not isinstance(agent_id, str) or not agent_id:
            raise ValueError("agent_id must be a non-empty string")
        if not isinstance(request_id, str) or not request_id:
            raise ValueError("request_id must be a non-empty string")
        amount = to_micro_usd(report.cost_usd)
        if self._down is not None:
            raise StateUnavailableError(self._down)
        args = [*self._times(), agent_id, request_id, amount]
        answer = await self._run(
            self._report_script, args, lambda answer: answer[2] if answer[0] == "new" else ()
        )
        verdict = answer[0]
        if verdict == "new":
            at = from_micros(int(answer[1]))
            return UsageRecord(request_id, agent_id, amount / _MICROS_PER_USD, at, False)
        if verdict == "reserved_by":
            raise UsageConflictError(
                request_id,
                f"request_id {request_id!r} holds a reservation for agent {answer[1]!r};"
                f" this report has agent {agent_id!r}",
            )
        _, stored_agent, stored_amount, stored_at, how = answer
        stored = int(stored_amount) / _MICROS_PER_USD
        if verdict == "duplicate":
            return UsageRecord(request_id, stored_agent, stored, from_micros(int(stored_at)), True)
        settled = "settled at its estimate when its reservation expired"
        raise UsageConflictError(
            request_id,
            f"request_id {request_id!r} was "
            f"{settled if how == 'expired_reservation' else 'already recorded'} for agent"
            f" {stored_agent!r} with cost_usd {stored}; this report has agent {agent_id!r}"
            f" with cost_usd {amount / _MICROS_PER_USD}",
        )

    async def _run(
        self, script: Any, args: list[Any], emitted: Callable[[Any], Sequence[str]]
    ) -> Any:
        """Runs ``script`` and applies to the copy the events it appended
        (``emitted`` finds them in its answer). Once sent, a script runs in
        Redis whatever happens here: it is seen through to its answer, and
        applied, even if the caller is cancelled meanwhile."""
        run = asyncio.ensure_future(self._send(script, args, emitted))
        self._sending.add(run)
        run.add_done_callback(self._sending.discard)
        return await asyncio.shield(run)

    async def _send(
        self, script: Any, args: list[Any], emitted: Callable[[Any], Sequence[str]]
    ) -> Any:
        try:
            answer = await script(keys=[], args=args)
            self._apply_own(emitted(answer))
            return answer
        except ResponseError as exc:
            self._mark_down(f"Redis at {self.location} answered with an error: {exc}")
        except (RedisError, OSError) as exc:
            self._mark_down(f"Redis at {self.location} is unreachable: {_reason(exc)}")
        assert self._down is not None
        raise StateUnavailableError(self._down)

    def _apply_own(self, emitted: Sequence[str]) -> None:
        """Applies what this process's script just did (its events, flat:
        id, event, ...), so that its next decision sees it; the stream
        brings them again, and the reader skips them. Events the reader
        already applied are skipped here."""
        mirror = self._mirror
        steady, monotonic = self._clock.steady(), self._clock.monotonic()
        for event_id, encoded in zip(emitted[::2], emitted[1::2], strict=True):
            if parse_event_id(event_id) <= mirror.last:
                continue
            self._own.add(event_id)
            mirror.apply(json.loads(encoded), steady=steady, monotonic=monotonic)

    def _apply_stream(self, entries: Sequence[Any]) -> None:
        mirror = self._mirror
        steady, monotonic = self._clock.steady(), self._clock.monotonic()
        own = self._own
        for event_id, fields in entries:
            mirror.last = parse_event_id(event_id)
            if event_id in own:
                own.discard(event_id)
                continue
            mirror.apply(json.loads(fields["e"]), steady=steady, monotonic=monotonic)

    async def _wait_for(self, event_id: str) -> None:
        target = parse_event_id(event_id)
        async with self._caught_up:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._caught_up.wait_for(lambda: self._mirror.last >= target), _CATCH_UP
                )

    # -- background -------------------------------------------------------------

    def start(self) -> None:
        """Follows the change stream and settles expired reservations."""
        self._following = asyncio.create_task(self._follow(), name="pdp-redis-stream")
        self.decision_counts.start()
        self._tasks.append(asyncio.create_task(self._settle(), name="pdp-redis-settle"))
        if self._down is not None:
            self._start_recovery()

    async def _follow(self) -> None:
        while True:
            await self._up.wait()
            if self._closed:
                return
            start = self._mirror
            try:
                answer = await self._reader.xread(
                    {_STREAM: "{}-{}".format(*start.last)}, count=1000, block=_BLOCK_MS
                )
            except (RedisError, OSError) as exc:
                if self._closed:
                    return
                self._mark_down(f"Redis at {self.location} is unreachable: {_reason(exc)}")
                continue
            if self._mirror is not start:
                continue  # reloaded meanwhile: read again from the new copy
            streams: Any = answer or []
            for _, entries in streams:
                self._apply_stream(entries)
            async with self._caught_up:
                self._caught_up.notify_all()

    async def _settle(self) -> None:
        interval = min(1.0, self._ttl / 4)
        while True:
            await asyncio.sleep(interval)
            if self._down is not None:
                continue
            with contextlib.suppress(StateUnavailableError):
                await self.settle_expired()

    async def settle_expired(self) -> None:
        """Settles, at their estimate, the reservations that expired
        (done every second in the background)."""
        expired = self._mirror.reservations.expired(self._clock.monotonic())
        agents = sorted({reservation.agent_id for reservation in expired})
        if agents:
            args = [*self._times(), json.dumps(agents)]
            await self._run(self._settle_script, args, lambda answer: answer)

    def _mark_down(self, reason: str) -> None:
        if self._down is None:
            _LOG.error("%s; budgets and rate limits fail closed until it answers", reason)
            self._down = reason
            self._up.clear()
            self._notify()
        self._start_recovery()

    def _start_recovery(self) -> None:
        if self._closed or (self._recovering is not None and not self._recovering.done()):
            return
        self._recovering = asyncio.create_task(self._recover(), name="pdp-redis-reconnect")

    async def _recover(self) -> None:
        pause = _RECONNECT[0]
        while self._down is not None:
            await asyncio.sleep(pause)
            try:
                await self._connect()
            except (RedisError, OSError, StateError) as exc:
                self._down = f"Redis at {self.location} is unreachable: {_reason(exc)}"
                pause = min(_RECONNECT[1], pause * 2)
                continue
            _LOG.info("Redis at %s answers again: budgets and rate limits served", self.location)
            self._notify()

    def _notify(self) -> None:
        if self._on_status is not None:
            task: asyncio.Task[None] = asyncio.create_task(self._on_status(self.status()))
            self._tasks.append(task)
            task.add_done_callback(lambda done: self._tasks.remove(done))

    async def close(self) -> None:
        self._closed = True
        self._up.set()  # a reader waiting for Redis to come back: to its end
        follow = self._following
        if follow is not None:
            # Cancelling a blocked XREAD leaves redis-py's connection behind:
            # closing the connection ends the read instead.
            await self._reader.connection_pool.disconnect(inuse_connections=True)
            await asyncio.gather(follow, return_exceptions=True)
        tasks = [*self._tasks]
        if self._recovering is not None:
            tasks.append(self._recovering)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        # Scripts under way finish (each at most the timeout) before their
        # connections close.
        await asyncio.gather(*self._sending, return_exceptions=True)
        await self.decision_counts.close()
        await self._close_clients()

    async def _close_clients(self) -> None:
        for client in (self._client, self._reader):
            await client.aclose()


def _usd_micros(usd: float) -> int:
    if not math.isfinite(usd):
        raise ValueError(f"amount must be finite, got {usd}")
    return round(usd * _MICROS_PER_USD) if usd < 1e9 else to_micro_usd(usd)


def _tls_refused(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it) is a failed TLS handshake: a
    configuration error, not an outage."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLError) or "CERTIFICATE_VERIFY_FAILED" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _reason(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__
