"""The uplink: what a sidecar that follows a control plane tells it, in the
background and never on a decision's latency.

Events that must not be lost (approvals, traces) are written to the outbox
in the state database and stay there until the control plane has taken
them. Decision events (a policy fired) wait in a bounded queue in memory:
when it is full the oldest is dropped and counted (:attr:`Uplink.dropped`),
and what is queued when the sidecar stops is sent once more, then lost. One
task ships both in batches (``POST /api/v1/sidecar/events``), retrying with
exponential backoff and jitter; the control plane takes each event id once,
so a batch sent twice adds nothing twice. The HTTP client is shared with the
sidecar's other calls to the control plane (approvals)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import re
import ssl
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime
from typing import Any, NamedTuple
from urllib.parse import urljoin

import httpx

from pdp.engine import Violation, format_time
from pdp.state import Outbox, OutboxEvent

__all__ = ["DEFAULT_MAX_QUEUED_DECISIONS", "Uplink", "fired_policies"]

log = logging.getLogger("pdp.server.uplink")

DEFAULT_MAX_QUEUED_DECISIONS = 10_000
# The control plane names the event it refused: "events[3].data.agentId".
_REFUSED_EVENT = re.compile(r"^events\[(\d+)\]")


class _DecisionEvent(NamedTuple):
    decision_id: str
    time: datetime
    agent_id: str
    decision: str
    violations: tuple[Violation, ...]
    snapshot_revision: int
    request_id: str
    approval_id: str


def fired_policies(
    violations: Iterable[Violation], *, severity: bool = True
) -> list[dict[str, Any]]:
    """The policies that fired, as events name them (never their messages,
    which may quote the request)."""
    out: list[dict[str, Any]] = []
    for v in violations:
        item: dict[str, Any] = {
            "id": v.policy_id,
            "name": v.policy_name,
            "type": v.policy_type,
            "mode": v.mode.wire_name,
        }
        if severity:
            item["severity"] = v.severity.wire_name
        out.append(item)
    return out


def _decision_json(event: _DecisionEvent) -> dict[str, Any]:
    return {
        "id": str(uuid.UUID(hex=event.decision_id)),
        "type": "decision",
        "time": format_time(event.time),
        "data": {
            "decisionId": event.decision_id,
            "agentId": event.agent_id,
            "decision": event.decision,
            "policies": fired_policies(event.violations),
            "snapshotRevision": event.snapshot_revision,
            "requestId": event.request_id,
            "approvalId": event.approval_id,
        },
    }


def _outbox_json(event: OutboxEvent) -> dict[str, Any]:
    return {
        "id": event.event_id,
        "type": event.type,
        "time": format_time(event.time),
        "data": dict(event.data),
    }


class _ShipError(Exception):
    pass


class Uplink:
    """Ships events to the control plane whose snapshot URL is
    ``snapshot_url`` (its API is the URL's parent: ``.../api/v1/``); a
    callable gives the URL in use now (the replica the snapshot feed follows)."""

    def __init__(
        self,
        snapshot_url: str | Callable[[], str],
        api_key: str | Callable[[], str | None] | None,
        outbox: Outbox,
        sidecar_id: str,
        *,
        verify: ssl.SSLContext | bool = True,
        on_refused: Callable[[], Awaitable[None]] | None = None,
        max_queued_decisions: int = DEFAULT_MAX_QUEUED_DECISIONS,
        batch_size: int = 500,
        interval: float = 0.2,
        backoff_initial: float = 0.2,
        backoff_max: float = 10.0,
        timeout: float = 10.0,
    ) -> None:
        if max_queued_decisions < 1:
            raise ValueError(f"max_queued_decisions must be at least 1, got {max_queued_decisions}")
        self._snapshot_url = snapshot_url if callable(snapshot_url) else (lambda: snapshot_url)
        self.sidecar_id = sidecar_id
        self._outbox = outbox
        self._max_queued = max_queued_decisions
        self._batch_size = batch_size
        self._interval = interval
        self._backoff = (backoff_initial, backoff_max)
        self._decisions: deque[_DecisionEvent] = deque()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopped = False
        self.dropped = 0
        self.shipped = 0
        # The snapshot feed's key, read when sent: a rotated key file is
        # read again by the feed (on_refused) and used here too.
        self._api_key = api_key if callable(api_key) else (lambda: api_key)
        self._on_refused = on_refused
        # Sidecar calls that wait (approvals) hold a connection each.
        self.client = httpx.AsyncClient(
            headers={"Accept": "application/json"},
            timeout=httpx.Timeout(timeout, connect=2.0),
            limits=httpx.Limits(max_connections=512, max_keepalive_connections=32),
            verify=verify,
        )

    @property
    def api_url(self) -> str:
        return urljoin(self._snapshot_url(), ".")

    @property
    def events_url(self) -> str:
        return self.url("sidecar/events")

    def url(self, path: str) -> str:
        """The control plane's URL for ``path`` (relative to ``/api/v1/``)."""
        return urljoin(self.api_url, path)

    def headers(self) -> dict[str, str]:
        """What every request to the control plane carries: the API key."""
        key = self._api_key()
        return {"X-API-Key": key} if key else {}

    async def refused(self) -> None:
        """A 401 or 403: the key may have been rotated; read it again."""
        if self._on_refused is not None:
            await self._on_refused()

    @property
    def queued_decisions(self) -> int:
        return len(self._decisions)

    def decision(
        self,
        decision_id: str,
        time: datetime,
        agent_id: str,
        decision: str,
        violations: tuple[Violation, ...],
        snapshot_revision: int,
        request_id: str,
        approval_id: str,
    ) -> None:
        """Queues a decision event. Synchronous and O(1): the hot path calls
        it. When the queue is full the oldest event is dropped and counted."""
        queue = self._decisions
        if len(queue) >= self._max_queued:
            queue.popleft()
            self.dropped += 1
        queue.append(
            _DecisionEvent(
                decision_id,
                time,
                agent_id,
                decision,
                violations,
                snapshot_revision,
                request_id,
                approval_id,
            )
        )

    async def publish(self, events: Iterable[OutboxEvent]) -> None:
        """Stores events durably in the outbox and ships them soon."""
        await self._outbox.add(events)
        self.wake()

    def wake(self) -> None:
        """Ships what waits now (an approval was written to the outbox)."""
        self._wake.set()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="pdp-uplink")

    async def stop(self, grace: float = 1.0) -> None:
        """Stops shipping after one last attempt (at most ``grace`` seconds);
        what the outbox holds is shipped after the next start. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        with contextlib.suppress(_ShipError, httpx.HTTPError, TimeoutError):
            async with asyncio.timeout(grace):
                await self.ship_once()
        await self.client.aclose()

    async def _run(self) -> None:
        failures = 0
        while True:
            if failures == 0:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._interval):
                        await self._wake.wait()
            self._wake.clear()
            try:
                while await self.ship_once() >= self._batch_size:
                    pass  # a full batch: more may wait
            except _ShipError as exc:
                if failures == 0:
                    log.warning("cannot send events to the control plane (will retry): %s", exc)
                failures += 1
                initial, most = self._backoff
                delay = min(most, initial * 2 ** (failures - 1))
                await asyncio.sleep(random.uniform(delay / 2, delay))
                continue
            except Exception:  # a shipper that dies would hold events forever
                log.exception("sending events to the control plane failed")
                failures += 1
                await asyncio.sleep(self._backoff[1])
                continue
            if failures:
                log.info("events reach the control plane again")
            failures = 0

    async def ship_once(self) -> int:
        """Sends one batch (the outbox's oldest events, then queued
        decisions); returns how many events it held. Raises _ShipError when
        the control plane did not take it (queued decisions go back)."""
        durable = await self._outbox.peek(self._batch_size)
        room = self._batch_size - len(durable)
        queue = self._decisions
        decisions = [queue.popleft() for _ in range(min(room, len(queue)))]
        if not durable and not decisions:
            return 0
        events = [_outbox_json(e) for e in durable] + [_decision_json(d) for d in decisions]
        try:
            response = await self.client.post(
                self.events_url,
                json={"sidecarId": self.sidecar_id, "events": events},
                headers=self.headers(),
            )
        except httpx.HTTPError as exc:
            self._requeue(decisions)
            raise _ShipError(str(exc) or type(exc).__name__) from None
        if response.status_code == 200:
            if durable:
                await self._outbox.remove(e.seq for e in durable)
            self.shipped += len(events)
            return len(events)
        refused = _refused_index(response) if response.status_code == 422 else None
        if refused is None or refused >= len(events):
            self._requeue(decisions)
            if response.status_code in (401, 403):
                await self.refused()
            raise _ShipError(f"HTTP {response.status_code}: {response.text[:200].strip()}")
        # The control plane will never take this event: drop it, keep the rest.
        log.error(
            "the control plane refused event %s (%s): %s; dropped",
            events[refused]["id"],
            events[refused]["type"],
            response.text[:300].strip(),
        )
        if refused < len(durable):
            await self._outbox.remove([durable[refused].seq])
        else:
            del decisions[refused - len(durable)]
        self._requeue(decisions)
        return 0

    def _requeue(self, decisions: list[_DecisionEvent]) -> None:
        queue = self._decisions
        queue.extendleft(reversed(decisions))
        while len(queue) > self._max_queued:
            queue.popleft()
            self.dropped += 1


def _refused_index(response: httpx.Response) -> int | None:
    try:
        field = response.json()["error"]["field"]
    except (ValueError, KeyError, TypeError):
        return None
    match = _REFUSED_EVENT.match(field) if isinstance(field, str) else None
    return int(match.group(1)) if match else None
