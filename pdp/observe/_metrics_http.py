"""``GET /metrics`` in the Prometheus text format, served by asyncio on the
event loop that runs the server being measured. Collectors are called there
too, so they read the server's state without locks; a scrape costs the loop
the time it takes to render (a few hundred microseconds)."""

from __future__ import annotations

import asyncio
import contextlib

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    GCCollector,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)

__all__ = ["MetricsServer", "ObserveError", "new_registry"]

_MAX_REQUEST_BYTES = 8192
_READ_TIMEOUT = 5.0


class ObserveError(Exception):
    """Base of the errors of ``pdp.observe``: the metrics endpoint cannot listen."""


def new_registry() -> CollectorRegistry:
    """A registry of its own (several servers may run in one process, as in
    tests) with the process, platform and garbage-collector metrics."""
    registry = CollectorRegistry(auto_describe=True)
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    return registry


class MetricsServer:
    """Serves ``registry`` at ``/metrics`` on ``host:port`` (port 0: a free one)."""

    def __init__(self, registry: CollectorRegistry, host: str, port: int) -> None:
        self.registry = registry
        self.host = host
        self.port = port
        self.url = ""
        self._server: asyncio.Server | None = None
        # Connections being served: stop() closes them, since Server.close()
        # leaves an open connection (a slow scraper) to the garbage collector.
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        try:
            self._server = await asyncio.start_server(self._serve, self.host, self.port)
        except OSError as exc:
            raise ObserveError(f"metrics cannot listen on {self.host}:{self.port}: {exc}") from None
        sockname = self._server.sockets[0].getsockname()
        host = f"[{sockname[0]}]" if ":" in sockname[0] else sockname[0]
        self.port = sockname[1]
        self.url = f"http://{host}:{self.port}/metrics"

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for writer in list(self._writers):
                writer.transport.abort()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            await self._answer(reader, writer)
        finally:
            self._writers.discard(writer)
            writer.close()

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(_READ_TIMEOUT):
                head = await reader.readuntil(b"\r\n\r\n")
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError):
            return
        request_line = head.split(b"\r\n", 1)[0].decode("latin-1", "replace").split()
        method, target = [*request_line, "", ""][:2]
        path = target.split("?", 1)[0]
        if len(head) > _MAX_REQUEST_BYTES:
            status, body, kind = "431 Request Header Fields Too Large", b"", "text/plain"
        elif path != "/metrics":
            status, body, kind = "404 Not Found", b"only /metrics is served here\n", "text/plain"
        elif method not in ("GET", "HEAD"):
            status, body, kind = "405 Method Not Allowed", b"", "text/plain"
        else:
            status, body, kind = "200 OK", generate_latest(self.registry), CONTENT_TYPE_LATEST
        headers = (
            f"HTTP/1.1 {status}\r\nContent-Type: {kind}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        )
        with contextlib.suppress(OSError):
            writer.write(headers.encode("latin-1") + (b"" if method == "HEAD" else body))
            await writer.drain()
