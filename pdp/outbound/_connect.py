"""Opening a connection the outbound policy allows, for asyncio streams."""

from __future__ import annotations

import asyncio
import ssl

from ._policy import OutboundPolicy

__all__ = ["open_connection"]


async def open_connection(
    policy: OutboundPolicy,
    host: str,
    port: int,
    *,
    tls: ssl.SSLContext | None,
    limit: int,
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A connection to ``host``: to the first of its checked addresses that
    accepts, with TLS for the name ``host`` (SNI and the certificate's
    check). OutboundRefusedError when the policy refuses ``host``; OSError
    (or ssl.SSLError) when no address can be reached."""
    addresses = await policy.resolve(host, port)
    last: OSError | None = None
    for address in addresses:
        try:
            return await asyncio.open_connection(
                address,
                port,
                ssl=tls,
                server_hostname=host if tls is not None else None,
                limit=limit,
            )
        except ssl.SSLError:
            raise  # the peer answered: another address would not change its certificate
        except OSError as exc:
            last = exc
    assert last is not None
    raise last
