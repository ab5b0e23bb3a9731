"""pdp embedded, as the peer bench drives it: a process of its own that runs
``pdp.embedded.EmbeddedClient`` on the bench's snapshot, checks the cases,
then makes the same load as ghz does against the servers (calls one at a
time for latency, then ``concurrency`` callers for throughput) and prints
one JSON line: both loads and its own CPU time over the second.

    .venv/bin/python bench/peers/_embedded.py --calls N --many N --concurrency C
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path

if str(Path(__file__).resolve().parents[2]) not in sys.path:  # run as a script
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from pdp_client import PolicyBlockedError

from bench._common import percentile
from bench.peers._report import cpu_ticks, rss_of
from bench.peers._servers import ALLOWED, CASES, Call
from bench.peers._tools import PEERS_DIR
from pdp.embedded import EmbeddedClient

__all__ = ["main"]


async def _allowed(pdp: EmbeddedClient, call: Call) -> bool:
    try:
        result = await pdp.enforce_policy(
            call["agent_id"],
            call["input"],
            estimated_cost_usd=call["estimated_cost_usd"],
            tool=call["tool"],
            metadata=call["metadata"],
        )
    except PolicyBlockedError:
        return False
    if result.decision != "ALLOW":
        raise SystemExit(f"embedded: unexpected decision {result.decision}")
    return True


async def _timed(pdp: EmbeddedClient, calls: int, concurrency: int) -> tuple[list[float], float]:
    """Latencies (µs) of ``calls`` calls made by ``concurrency`` callers, and
    the wall-clock seconds they took."""
    latencies: list[float] = []
    per_caller = calls // concurrency

    async def caller() -> None:
        for _ in range(per_caller):
            started = time.perf_counter()
            await _allowed(pdp, ALLOWED)
            latencies.append((time.perf_counter() - started) * 1e6)

    started = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(concurrency)))
    return latencies, time.perf_counter() - started


async def measure(calls: int, many: int, concurrency: int) -> dict[str, float]:
    snapshot = str(PEERS_DIR / "policies" / "pdp.yaml")
    with tempfile.TemporaryDirectory() as tmp:
        async with await EmbeddedClient.open(snapshot, state=f"{tmp}/state.db") as pdp:
            for what, case, expected in CASES:
                if await _allowed(pdp, case) != expected:
                    raise SystemExit(f"embedded, {what}: expected allowed={expected}")
            await _timed(pdp, calls // 10, 1)  # warm up, as ghz's --skipFirst
            one, _ = await _timed(pdp, calls, 1)
            before = cpu_ticks(os.getpid())
            loaded, seconds = await _timed(pdp, many, concurrency)
            ticks = cpu_ticks(os.getpid()) - before
            rss = rss_of(os.getpid())
    return {
        "p50": percentile(one, 50),
        "p99": percentile(one, 99),
        "rps": len(loaded) / seconds,
        "sent": len(loaded),
        "cpu_ticks": ticks,
        "rss": rss,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=1000, help="calls one at a time")
    parser.add_argument("--many", type=int, default=4000, help="calls under concurrency")
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(measure(args.calls, args.many, args.concurrency))))


if __name__ == "__main__":
    main()
