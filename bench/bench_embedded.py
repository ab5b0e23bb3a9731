"""pdp embedded in the agent's process: one Enforce through
``pdp.embedded.EmbeddedClient`` (the SDK's surface, the sidecar's handler,
no gRPC), for the README's 1 KB request on the example snapshot.

    .venv/bin/python bench/bench_embedded.py     # --calls N

Prints p50 and p99 of the whole call (the SDK's request building and result
conversion included); the goal is a p50 of at most 30 us.
``bench/bench_engine.py`` measures the engine's decision alone."""

from __future__ import annotations

import argparse
import asyncio
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

if str(Path(__file__).resolve().parent.parent) not in sys.path:  # run as a script
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import REPO, describe_machine, percentile, text_of
from pdp.embedded import EmbeddedClient


async def measure(calls: int) -> list[float]:
    text = text_of(1024)
    with tempfile.TemporaryDirectory() as tmp:
        snapshot = str(REPO / "examples" / "policies.yaml")
        async with await EmbeddedClient.open(snapshot, state=f"{tmp}/state.db") as pdp:
            for _ in range(500):  # warm up
                await pdp.enforce_policy("my-chatbot", text, estimated_cost_usd=0.0)
            whole: list[float] = []
            for _ in range(calls):
                started = time.perf_counter()
                await pdp.enforce_policy("my-chatbot", text, estimated_cost_usd=0.0)
                whole.append((time.perf_counter() - started) * 1e6)
            return whole


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=20_000)
    args = parser.parse_args()
    print(describe_machine())
    print(f"command: {shlex.join([Path(sys.executable).name, *sys.argv])}", flush=True)
    whole = asyncio.run(measure(args.calls))
    print(
        f"embedded Enforce, 1 KB, example snapshot: p50 {statistics.median(whole):.1f} us, "
        f"p99 {percentile(whole, 99):.1f} us over {args.calls} calls (goal: p50 <= 30 us)"
    )


if __name__ == "__main__":
    main()
