"""Serving the control plane with uvicorn in this process: used by
``pdp control`` and by tests that need a real server on a real port.

The server closes slow and idle connections and bounds their number
(``_connections.py``), serves TLS when given a certificate and its key,
and keeps uvicorn's own complaints about malformed requests to a few log
lines however many arrive."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import uvicorn

from pdp.engine import ListenAddress, parse_listen_address
from pdp.observe import MetricsServer, new_registry
from pdp.outbound import OutboundPolicy

from ._app import AnswerAlreadySent, create_app
from ._connections import ConnectionGuard, ConnectionLimits
from ._control import ControlPlane
from ._decisions import DEFAULT_DECISIONS_MAX_ROWS, DEFAULT_DECISIONS_RETENTION
from ._errors import StoreError
from ._guard import DEFAULT_MAX_BODY_BYTES
from ._location import DbLocation
from ._logs import RateLimitFilter
from ._metrics import ControlMetrics
from ._webhook_sender import DeliveryOptions

__all__ = ["ControlOptions", "ControlServer"]

log = logging.getLogger("pdp.control")


@dataclass(frozen=True, slots=True)
class ControlOptions:
    db: str | os.PathLike[str] | DbLocation  # a SQLite path or a postgresql:// location
    host: str = "127.0.0.1"
    port: int = 8080  # 0 picks a free port
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    shutdown_grace: float = 5.0
    metrics_listen: str | None = None  # host:port of /metrics; None: no metrics
    # PEM files: with both, the control plane serves https only.
    tls_cert: str | None = None
    tls_key: str | None = None
    docs: str = "open"  # who may read /docs and /openapi.json: open, key or off
    limits: ConnectionLimits = field(default_factory=ConnectionLimits)
    webhooks: DeliveryOptions = field(default_factory=DeliveryOptions)
    # Where webhook URLs and custom validator URLs may point (--outbound-allow).
    outbound: OutboundPolicy = field(default_factory=OutboundPolicy)
    # The decisions sidecars ship: kept this long, and at most this many.
    decision_log_retention: float = DEFAULT_DECISIONS_RETENTION.total_seconds()
    decision_log_max_rows: int = DEFAULT_DECISIONS_MAX_ROWS
    prune_interval: float = 60.0


class _Uvicorn(uvicorn.Server):
    """uvicorn without its signal handlers (the caller owns signals, and a
    test's event loop must keep its own), that ends long polls first when
    it shuts down so that they do not hold the shutdown up."""

    def __init__(self, config: uvicorn.Config, control: ControlPlane) -> None:
        super().__init__(config)
        self._control = control

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self._control.begin_shutdown()
        await super().shutdown(sockets)


class ControlServer:
    """``start()`` opens the database and serves; ``stop()`` ends both."""

    def __init__(self, options: ControlOptions) -> None:
        self.options = options
        self.control: ControlPlane | None = None
        self.base_url = ""
        self._server: _Uvicorn | None = None
        self._task: asyncio.Task[None] | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self.connections = ConnectionGuard(options.limits)
        self._metrics_server: MetricsServer | None = None
        self.metrics_url = ""

    async def start(self) -> None:
        """Returns once the server accepts connections. Raises StoreError
        (database), OSError (address) or ssl.SSLError (certificate)."""
        opts = self.options
        if (opts.tls_cert is None) != (opts.tls_key is None):
            raise OSError("serving TLS needs both a certificate and its key")
        control = await ControlPlane.open(opts.db)
        control.outbound = opts.outbound
        await control.warn_of_refused_urls()
        try:
            control.start_webhook_delivery(opts.webhooks)
            sock = _bind(opts.host, opts.port)
        except OSError:
            await control.close()
            raise
        host, port = sock.getsockname()[:2]
        scheme = "https" if opts.tls_cert else "http"
        self.base_url = f"{scheme}://{ListenAddress(host, port)}"
        metrics = None
        if opts.metrics_listen is not None:
            metrics = ControlMetrics(control)
            registry = new_registry()
            registry.register(metrics)
            listen = parse_listen_address(opts.metrics_listen, unix=False)
            self._metrics_server = MetricsServer(registry, listen.host, listen.port)
        config = uvicorn.Config(
            AnswerAlreadySent(
                create_app(
                    control, max_body_bytes=opts.max_body_bytes, metrics=metrics, docs=opts.docs
                )
            ),
            log_config=None,
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=max(1, round(opts.shutdown_grace)),
            http=self.connections.protocol(),
            timeout_keep_alive=max(1, round(opts.limits.idle_timeout)),
            ssl_certfile=opts.tls_cert,
            ssl_keyfile=opts.tls_key,
        )
        try:
            config.load()  # reads the certificate now, so that a bad one fails start-up
        except (OSError, ValueError) as exc:
            sock.close()
            await control.close()
            raise OSError(f"cannot serve TLS with {opts.tls_cert}: {exc}") from None
        _quiet_uvicorn_warnings()
        server = _Uvicorn(config, control)
        self.control, self._server = control, server
        control.approvals.start()
        control.decisions.start(
            retention=timedelta(seconds=opts.decision_log_retention),
            max_rows=opts.decision_log_max_rows,
            interval=opts.prune_interval,
        )
        self._task = asyncio.create_task(server.serve(sockets=[sock]))
        self._sweeper = asyncio.create_task(self.connections.run(), name="connection-sweeper")
        while not server.started:
            if self._task.done():
                await self.stop()
                raise StoreError("the control plane's HTTP server failed to start")
            await asyncio.sleep(0.01)
        log.info(
            "control plane listening on %s (database %s, snapshot revision %d)",
            self.base_url,
            control.store.label,
            control.revision,
        )
        if self._metrics_server is not None:
            try:
                await self._metrics_server.start()
            except BaseException:
                await self.stop()
                raise
            self.metrics_url = self._metrics_server.url
            log.info("serving metrics at %s", self.metrics_url)

    async def wait(self) -> None:
        """Returns when the server has stopped."""
        if self._task is not None:
            await asyncio.shield(self._task)

    async def stop(self) -> None:
        """Ends long polls, lets running requests finish, closes the database."""
        server, task, control = self._server, self._task, self.control
        if self._metrics_server is not None:
            await self._metrics_server.stop()
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        if server is not None:
            server.should_exit = True
        if task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if control is not None:
            await control.close()


_UVICORN_FILTER = RateLimitFilter()


def _quiet_uvicorn_warnings() -> None:
    """uvicorn writes a warning per malformed request ("Invalid HTTP request
    received."): a few lines per kind then, not one per request."""
    logger = logging.getLogger("uvicorn.error")
    if _UVICORN_FILTER not in logger.filters:
        logger.addFilter(_UVICORN_FILTER)


def _bind(host: str, port: int) -> socket.socket:
    infos: list[Any] = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock
