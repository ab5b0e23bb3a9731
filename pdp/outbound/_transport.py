"""An httpx transport whose connections the outbound policy allows.

httpcore opens a transport's connections through its network backend; this
one resolves and checks the host, connects to a checked address, and lets
httpcore start TLS with the URL's host name as usual (SNI, certificate).
Environment proxies are not used: the destination itself is what is
checked."""

from __future__ import annotations

import ssl
from collections.abc import Iterable

import httpcore
import httpx

from ._policy import OutboundPolicy

__all__ = ["OutboundBackend", "outbound_transport"]


class OutboundBackend(httpcore.AsyncNetworkBackend):
    """httpcore's own backend, connecting only where ``policy`` allows."""

    def __init__(self, policy: OutboundPolicy) -> None:
        self._policy = policy
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's signature
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            addresses = await self._policy.resolve(host, port)
        except OSError as exc:  # httpx reports httpcore's errors, not the resolver's
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc.strerror or exc}") from None
        last: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        assert last is not None
        raise last

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's signature
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("outbound requests go over TCP only")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def outbound_transport(
    policy: OutboundPolicy, *, verify: ssl.SSLContext, limits: httpx.Limits
) -> httpx.AsyncHTTPTransport:
    """An HTTP/1.1 transport (TLS verified with ``verify``) whose connections
    go only where ``policy`` allows."""
    transport = httpx.AsyncHTTPTransport(verify=verify, limits=limits, trust_env=False)
    # httpx takes no network backend: its pool is made again, with one.
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=verify,
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry,
        network_backend=OutboundBackend(policy),
    )
    return transport
