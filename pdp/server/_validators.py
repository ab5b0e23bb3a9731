"""The sidecar's calls to custom validators.

Each endpoint (a URL with its CA file) has its own connection pool
(``_http_client``): at most ``max_connections`` calls in flight, and TLS set
up when a snapshot naming it is activated, off the event loop. A slow endpoint
fills its own pool and its callers wait at most their ``timeout_ms``; nothing
else waits on it. Every call is a coroutine on the event loop.

A call POSTs the engine's question as JSON, signed the Standard Webhooks way
(``webhook-id``, ``webhook-timestamp``, ``webhook-signature``), and reads
``{"allow": bool, "message": str}``. Anything else (no answer within the
timeout, a connection error, a non-2xx status, another content type, a
malformed body) is a :class:`ValidatorFailure` naming what went wrong; the
policy's ``fail_mode`` then decides (in the engine). Failures are counted
per endpoint and logged, at most one line per endpoint every
``_LOG_INTERVAL`` seconds.

Answers of a validator with ``cache_ttl_s`` are kept that long, by a digest
of the question (the policy and the request context, not the request id),
in a bounded cache: the least recently used answer goes first."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import ssl
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pdp.engine import (
    Answer,
    FailMode,
    Validator,
    ValidatorAnswer,
    ValidatorCall,
    ValidatorFailure,
    sign_webhook,
    utc_now,
)
from pdp.outbound import OutboundPolicy

from ._errors import HttpCallError
from ._http_client import HttpPool, HttpResponse

__all__ = ["MAX_ANSWER_BYTES", "ValidatorCaller", "ValidatorStats", "parse_answer", "read_answer"]

log = logging.getLogger("pdp.server")

MAX_ANSWER_BYTES = 64 * 1024
_MAX_MESSAGE_CHARS = 1000
_USER_AGENT = "pdp-sidecar"
_LOG_INTERVAL = 10.0
_RETIRE_AFTER = 15.0  # seconds an endpoint a new snapshot dropped keeps serving calls in flight
_Endpoint = tuple[str, str | None]  # url, ca_file
_CacheKey = tuple[str, bytes]  # url, digest of the question


@dataclass(slots=True)
class ValidatorStats:
    """What one endpoint's calls gave, since the sidecar started."""

    calls: int = 0  # requests sent
    answers: int = 0  # usable answers
    failures: int = 0  # no usable answer
    failed_open: int = 0  # of the failures, those whose policy let the call through
    cache_hits: int = 0


class _Client:
    """One endpoint's connection pool, or why it has none (an unreadable CA
    file)."""

    __slots__ = ("pool", "problem")

    def __init__(self, pool: HttpPool | None, problem: str = "") -> None:
        self.pool = pool
        self.problem = problem


class _Tally:
    """One endpoint's counts and its log's pace; kept while the sidecar runs."""

    __slots__ = ("log_after", "origin", "stats", "unlogged")

    def __init__(self, origin: str) -> None:
        self.origin = origin
        self.stats = ValidatorStats()
        self.log_after = 0.0
        self.unlogged = 0


def _tls_context(ca_file: str | None) -> ssl.SSLContext:
    """The system's trust store, or ``ca_file`` alone (reads files: run it
    off the event loop)."""
    if ca_file is None:
        return ssl.create_default_context()
    return ssl.create_default_context(cafile=ca_file)


def _open_client(endpoint: _Endpoint, max_connections: int, outbound: OutboundPolicy) -> _Client:
    url, ca_file = endpoint
    tls: ssl.SSLContext | None = None
    if url.lower().startswith("https:"):
        try:
            tls = _tls_context(ca_file)
        except (OSError, ssl.SSLError) as exc:
            problem = f"cannot read ca_file {ca_file!r}: {exc.strerror or exc}"
            log.error("custom validator %s: %s", url, problem)
            return _Client(None, problem)
    return _Client(HttpPool(url, tls, max_connections, outbound))


class ValidatorCaller:
    """Answers the engine's validator calls. ``clock`` gives the signature's
    timestamp and the cache's time (the sidecar's clock); ``outbound`` says
    where calls may go (a refused destination is a failure of the call)."""

    def __init__(
        self,
        *,
        clock: Callable[[], datetime] = utc_now,
        max_connections: int = 32,
        cache_entries: int = 10_000,
        outbound: OutboundPolicy | None = None,
    ) -> None:
        self._clock = clock
        self._outbound = outbound or OutboundPolicy()
        self._max_connections = max_connections
        self._cache_entries = cache_entries
        self._clients: dict[_Endpoint, _Client] = {}
        self._opening: dict[_Endpoint, asyncio.Future[_Client]] = {}
        self._cache: OrderedDict[_CacheKey, tuple[datetime, ValidatorAnswer]] = OrderedDict()
        self._retiring: set[asyncio.Task[None]] = set()
        self._tallies: dict[_Endpoint, _Tally] = {}

    def stats(self, url: str, ca_file: str | None = None) -> ValidatorStats:
        """The counts of the endpoint ``url`` (with ``ca_file``)."""
        tally = self._tallies.get((url, ca_file))
        return tally.stats if tally is not None else ValidatorStats()

    def stats_by_origin(self) -> dict[str, ValidatorStats]:
        """Every endpoint's counts, summed by ``scheme://host:port`` (what
        metrics may show: a URL's path may hold a token)."""
        out: dict[str, ValidatorStats] = {}
        for tally in sorted(self._tallies.values(), key=lambda t: t.origin):
            total = out.setdefault(tally.origin, ValidatorStats())
            for name in ("calls", "answers", "failures", "failed_open", "cache_hits"):
                setattr(total, name, getattr(total, name) + getattr(tally.stats, name))
        return out

    def _tally(self, endpoint: _Endpoint, origin: str) -> _Tally:
        tally = self._tallies.get(endpoint)
        if tally is None:
            tally = self._tallies[endpoint] = _Tally(origin)
        return tally

    async def prepare(self, validators: Iterable[Validator]) -> None:
        """Sets up the clients of ``validators`` (those of a snapshot being
        activated), off the event loop; clients no other validator uses are
        closed once the calls they may still carry are over."""
        wanted = {(v.url, v.ca_file) for v in validators}
        await asyncio.gather(*(self._client(endpoint) for endpoint in wanted))
        dropped = [e for e in self._clients if e not in wanted]
        retired = [self._clients.pop(endpoint) for endpoint in dropped]
        if retired:
            task = asyncio.create_task(_close_later(retired, _RETIRE_AFTER))
            self._retiring.add(task)
            task.add_done_callback(self._retiring.discard)

    async def aclose(self) -> None:
        for task in list(self._retiring):
            task.cancel()
        await asyncio.gather(*self._retiring, *self._opening.values(), return_exceptions=True)
        clients, self._clients = list(self._clients.values()), {}
        _close(clients)

    async def answer(self, calls: Sequence[ValidatorCall], request_id: str) -> dict[str, Answer]:
        """The answers to ``calls`` (made concurrently), by policy id."""
        if len(calls) == 1:
            call = calls[0]
            return {call.policy_id: await self._ask(call, request_id)}
        answers = await asyncio.gather(*(self._ask(call, request_id) for call in calls))
        return {call.policy_id: answer for call, answer in zip(calls, answers, strict=True)}

    async def _client(self, endpoint: _Endpoint) -> _Client:
        client = self._clients.get(endpoint)
        if client is not None:
            return client
        opening = self._opening.get(endpoint)
        if opening is None:  # one opening per endpoint, however many calls wait for it
            opening = asyncio.ensure_future(
                asyncio.to_thread(_open_client, endpoint, self._max_connections, self._outbound)
            )
            self._opening[endpoint] = opening

            # Kept when it opens, even if every call that waited for it gave up.
            def opened(done: asyncio.Future[_Client]) -> None:
                del self._opening[endpoint]
                if not done.cancelled() and done.exception() is None:
                    self._clients.setdefault(endpoint, done.result())

            opening.add_done_callback(opened)
        return await asyncio.shield(opening)

    async def _ask(self, call: ValidatorCall, request_id: str) -> Answer:
        validator = call.validator
        endpoint = (validator.url, validator.ca_file)
        tally = self._tally(endpoint, validator.origin)
        key: _CacheKey | None = None
        if validator.cache_ttl_s > 0:
            key = (validator.url, _digest(call.payload))
            cached = self._cached(key)
            if cached is not None:
                tally.stats.cache_hits += 1
                return cached
        answer: Answer
        try:
            async with asyncio.timeout(validator.timeout_s):
                client = await self._client(endpoint)
                tally.stats.calls += 1
                answer = await self._post(client, call, request_id)
        except TimeoutError:
            answer = ValidatorFailure(f"no answer within {validator.timeout_s * 1000:g} ms")
        except Exception as exc:  # a call's failure is its policy's to decide, never the RPC's
            log.exception("custom validator %s: unexpected error", validator.origin)
            answer = ValidatorFailure(f"unexpected error: {type(exc).__name__}")
        if isinstance(answer, ValidatorFailure):
            self._failed(tally, call, answer)
        else:
            tally.stats.answers += 1
            if key is not None:
                self._remember(key, answer, validator.cache_ttl_s)
        return answer

    async def _post(self, client: _Client, call: ValidatorCall, request_id: str) -> Answer:
        if client.pool is None:
            return ValidatorFailure(client.problem)
        validator = call.validator
        body = json.dumps(
            {**call.payload, "requestId": request_id}, ensure_ascii=False, separators=(",", ":")
        ).encode("utf-8")
        msg_id = "msg_" + os.urandom(16).hex()
        timestamp = int(self._clock().timestamp())
        headers = {
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": _USER_AGENT,
            "webhook-id": msg_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign_webhook(validator.key, msg_id, timestamp, body),
        }
        try:
            response = await client.pool.post(body, headers, MAX_ANSWER_BYTES)
        except HttpCallError as exc:
            return ValidatorFailure(exc.reason)
        return read_answer(response)

    def _cached(self, key: _CacheKey) -> ValidatorAnswer | None:
        entry = self._cache.get(key)
        if entry is None:
            return None
        if entry[0] <= self._clock():
            del self._cache[key]
            return None
        self._cache.move_to_end(key)
        return entry[1]

    def _remember(self, key: _CacheKey, answer: ValidatorAnswer, ttl_s: float) -> None:
        cache = self._cache
        cache[key] = (self._clock() + timedelta(seconds=ttl_s), answer)
        cache.move_to_end(key)
        while len(cache) > self._cache_entries:
            cache.popitem(last=False)

    def _failed(self, tally: _Tally, call: ValidatorCall, failure: ValidatorFailure) -> None:
        validator = call.validator
        stats = tally.stats
        stats.failures += 1
        opened = validator.fail_mode is FailMode.OPEN
        if opened:
            stats.failed_open += 1
        now = time.monotonic()
        if now < tally.log_after:
            tally.unlogged += 1
            return
        more = f" ({tally.unlogged} more failures since the last report)" if tally.unlogged else ""
        tally.log_after, tally.unlogged = now + _LOG_INTERVAL, 0
        log.warning(
            "custom validator %s of policy %r failed: %s; %s%s",
            validator.origin,
            call.policy_name,
            failure.reason,
            "failing open: the policy does not fire" if opened else "failing closed",
            more,
        )


def read_answer(response: HttpResponse) -> Answer:
    """The validator's answer in ``response``, or what is wrong with it."""
    if not 200 <= response.status < 300:
        return ValidatorFailure(f"answered HTTP {response.status}")
    media_type = response.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != "application/json" and not media_type.endswith("+json"):
        shown = media_type or "none"
        return ValidatorFailure(f"answered with content type {shown}, not application/json")
    return parse_answer(response.body)


def parse_answer(body: bytes) -> Answer:
    """``{"allow": bool, "message": str}`` (message optional), or what is
    wrong with it."""
    try:
        value: Any = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return ValidatorFailure("malformed answer: not JSON")
    if not isinstance(value, dict):
        return ValidatorFailure("malformed answer: not a JSON object")
    allow = value.get("allow")
    if not isinstance(allow, bool):
        return ValidatorFailure('malformed answer: "allow" must be true or false')
    message = value.get("message", "")
    if message is None:
        message = ""
    if not isinstance(message, str):
        return ValidatorFailure('malformed answer: "message" must be a string')
    return ValidatorAnswer(allow, message[:_MAX_MESSAGE_CHARS])


def _digest(payload: object) -> bytes:
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("ascii")).digest()


def _close(clients: Iterable[_Client]) -> None:
    for client in clients:
        if client.pool is not None:
            client.pool.close()


async def _close_later(clients: list[_Client], delay: float) -> None:
    try:
        await asyncio.sleep(delay)
    finally:
        _close(clients)
