"""Limits on the control plane's connections, so that slow or idle clients
cannot hold the snapshot feed hostage.

uvicorn closes a connection idle between requests (``timeout_keep_alive``)
but never one that is slow to send a request: a client that sends a header
byte every few seconds (slowloris) keeps its connection, and enough of them
exhaust the process's file descriptors. Here every connection of one server
is watched by a :class:`ConnectionGuard`:

- a request's headers must arrive within ``header_timeout`` seconds of the
  connection being ready for them, and its body within ``body_timeout``
  seconds of the headers; a connection too slow for either is closed;
- beyond ``max_connections`` open connections, a new connection closes the
  one that has waited longest for a request's headers (a slow or idle
  client), or, when every connection is busy with a request (long polls
  included), the new one itself. So a flood of slow clients displaces
  itself, never a sidecar whose long poll is being answered.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from ._logs import RateLimitedLog

__all__ = ["ConnectionGuard", "ConnectionLimits"]

log = RateLimitedLog(logging.getLogger("pdp.control"))


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    """Seconds and counts; see the module's docstring."""

    max_connections: int = 1000
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    idle_timeout: float = 5.0  # between requests on a kept-alive connection


class _Watch:
    """What the guard last saw of one connection: h11's state of the
    client's side, the request in progress, and since when."""

    __slots__ = ("cycle", "since", "state")

    def __init__(self, now: float) -> None:
        self.state: Any = h11.IDLE
        self.cycle: object = None
        self.since = now


class ConnectionGuard:
    """Shared by the connections of one server. ``protocol()`` is the
    uvicorn protocol class to serve with; ``run()`` sweeps until cancelled."""

    def __init__(self, limits: ConnectionLimits) -> None:
        self.limits = limits
        # Insertion order is the order connections opened in.
        self._open: dict[H11Protocol, _Watch] = {}

    @property
    def open_connections(self) -> int:
        return len(self._open)

    def protocol(self) -> type[H11Protocol]:
        guard = self

        class GuardedH11Protocol(H11Protocol):
            def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
                super().connection_made(transport)
                guard._admit(self)

            def connection_lost(self, exc: Exception | None) -> None:
                guard._open.pop(self, None)
                super().connection_lost(exc)

        return GuardedH11Protocol

    def _admit(self, connection: H11Protocol) -> None:
        now = connection.loop.time()
        self._open[connection] = _Watch(now)
        if len(self._open) <= self.limits.max_connections:
            return
        self._sweep(now)
        waiting = [c for c, w in self._open.items() if w.state is h11.IDLE and c is not connection]
        victim = min(waiting, key=lambda c: self._open[c].since) if waiting else connection
        log.warning(
            "connection limit",
            "more than %d connections: closing %s",
            self.limits.max_connections,
            "one waiting for a request" if waiting else "the new one (every other is busy)",
        )
        self._close(victim)

    def _sweep(self, now: float) -> None:
        limits = self.limits
        for connection, watch in list(self._open.items()):
            state = connection.conn.their_state
            cycle = connection.cycle
            if state is not watch.state or cycle is not watch.cycle:
                watch.state, watch.cycle, watch.since = state, cycle, now
                continue
            waited = now - watch.since
            if state is h11.IDLE and waited > limits.header_timeout:
                log.info("slow headers", "closing a connection: no request within %gs", waited)
                self._close(connection)
            elif state is h11.SEND_BODY and waited > limits.body_timeout:
                log.info("slow body", "closing a connection: request body not sent in %gs", waited)
                self._close(connection)

    def _close(self, connection: H11Protocol) -> None:
        self._open.pop(connection, None)
        transport = connection.transport
        if not transport.is_closing():
            transport.close()

    async def run(self) -> None:
        """Closes slow connections until cancelled, checking a few times
        within the shorter timeout."""
        loop = asyncio.get_running_loop()
        interval = min(0.5, self.limits.header_timeout / 4, self.limits.body_timeout / 4)
        while True:
            await asyncio.sleep(interval)
            try:
                self._sweep(loop.time())
            except Exception as exc:  # a failed sweep must not end the sweeping
                log.error("sweep failed", "checking connections failed: %r", exc)
