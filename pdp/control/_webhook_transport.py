"""The HTTP client that delivers webhooks: it verifies https against the
system's CAs (and ``ca_file``), follows no redirect, and connects only
where the outbound policy allows (``pdp.outbound``), so a webhook URL does
not reach the node's cloud metadata service, whatever its name resolves to."""

from __future__ import annotations

import ssl

import httpx

from pdp.outbound import OutboundPolicy, outbound_transport

__all__ = ["webhook_client"]


def webhook_client(
    outbound: OutboundPolicy, *, ca_file: str | None, timeout: float, concurrency: int
) -> httpx.AsyncClient:
    verify: ssl.SSLContext = ssl.create_default_context()
    if ca_file is not None:
        verify.load_verify_locations(ca_file)
    transport = outbound_transport(
        outbound, verify=verify, limits=httpx.Limits(max_connections=concurrency)
    )
    return httpx.AsyncClient(
        transport=transport,
        timeout=httpx.Timeout(timeout),
        follow_redirects=False,
        headers={"User-Agent": "pdp-webhooks"},
    )
