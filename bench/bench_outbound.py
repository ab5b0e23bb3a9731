"""What the outbound policy costs a new connection, in one run against the
connection it replaces (``asyncio.open_connection`` by the URL's host, as
validators connected before), to a loopback HTTPS server in this process:

- ``address``: a URL whose host is an address (127.0.0.1): parsed and
  checked, no lookup;
- ``name``: a URL whose host is a name (localhost): one lookup, every
  address checked, then the connection to a checked address (the baseline
  looks the name up inside ``open_connection``).

Each connection is opened, TLS handshaken and closed; rounds alternate the
two ways, and the headline is the median of the per-round ratios. The
check alone (``OutboundPolicy.resolve`` of an address) is timed too. A call
on a kept-alive connection does not pass through the policy at all.

    .venv/bin/python bench/bench_outbound.py     # --rounds N --connections N
"""

from __future__ import annotations

import argparse
import asyncio
import ssl
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

if str(Path(__file__).resolve().parent.parent) not in sys.path:  # run as a script
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import describe_machine
from pdp.outbound import OutboundPolicy, open_connection
from tests._https import HttpsServer, test_certificates

Connect = Callable[[], Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]]]


async def per_connection_us(connect: Connect, count: int) -> float:
    started = time.perf_counter()
    for _ in range(count):
        _reader, writer = await connect()
        writer.transport.abort()
    return (time.perf_counter() - started) / count * 1e6


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--connections", type=int, default=200)
    args = parser.parse_args()
    print(describe_machine())
    tls = ssl.create_default_context(cafile=str(test_certificates().ca_file))
    policy = OutboundPolicy()
    count = 20_000
    started = time.perf_counter()
    for _ in range(count):
        await policy.resolve("127.0.0.1", 443)
    check_us = (time.perf_counter() - started) / count * 1e6
    print(f"the check of an address alone: {check_us:.1f} µs")
    with HttpsServer() as server:
        port = server.port
        for host in ("127.0.0.1", "localhost"):

            def before(
                host: str = host,
            ) -> Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
                return asyncio.open_connection(host, port, ssl=tls, server_hostname=host)

            def checked(
                host: str = host,
            ) -> Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
                return open_connection(policy, host, port, tls=tls, limit=64 * 1024)

            await per_connection_us(checked, 20)  # warm up both
            await per_connection_us(before, 20)
            ratios, firsts, seconds = [], [], []
            for i in range(args.rounds):
                pair = (before, checked) if i % 2 == 0 else (checked, before)
                timed = {fn: await per_connection_us(fn, args.connections) for fn in pair}
                firsts.append(timed[before])
                seconds.append(timed[checked])
                ratios.append(timed[checked] / timed[before])
            label = "address" if host == "127.0.0.1" else "name"
            print(
                f"{label:8} ({host}): {statistics.median(firsts):7.0f} µs -> "
                f"{statistics.median(seconds):7.0f} µs per connection, "
                f"median ratio {statistics.median(ratios):.3f}x "
                f"(rounds {min(ratios):.3f}-{max(ratios):.3f})"
            )


if __name__ == "__main__":
    asyncio.run(main())
