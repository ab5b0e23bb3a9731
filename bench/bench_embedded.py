"""pdp embedded in the agent's process: one Enforce through
``pdp.embedded.EmbeddedClient`` (the SDK's surface, the sidecar's handler,
no gRPC), for the README's 1 KB request on the example snapshot.

    .venv/bin/python bench/bench_embedded.py     # --calls N --unique-inputs

Prints p50 and p99 of the whole call (the SDK's request building and result
conversion included); the goal is a p50 of at most 30 us. ``--unique-inputs``
numbers every request's text at both ends, so no cache keyed by the text
answers (the texts are made before the clock starts).
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


async def measure(calls: int, unique: bool) -> list[float]:
    text = text_of(1024)
    texts = (
        [f"{i} {text[: 1024 - 2 * len(str(i)) - 2]} {i}" for i in range(calls)] if unique else []
    )
    with tempfile.TemporaryDirectory() as tmp:
        snapshot = str(REPO / "examples" / "policies.yaml")
        async with await EmbeddedClient.open(snapshot, state=f"{tmp}/state.db") as pdp:
            for _ in range(500):  # warm up
                await pdp.enforce_policy("my-chatbot", text, estimated_cost_usd=0.0)
            whole: list[float] = []
            for i in range(calls):
                sent = texts[i] if unique else text
                started = time.perf_counter()
                await pdp.enforce_policy("my-chatbot", sent, estimated_cost_usd=0.0)
                whole.append((time.perf_counter() - started) * 1e6)
            return whole


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--unique-inputs", action="store_true", help="a different text per call")
    args = parser.parse_args()
    print(describe_machine())
    print(f"command: {shlex.join([Path(sys.executable).name, *sys.argv])}", flush=True)
    whole = asyncio.run(measure(args.calls, args.unique_inputs))
    inputs = "unique 1 KB inputs" if args.unique_inputs else "1 KB"
    print(
        f"embedded Enforce, {inputs}, example snapshot: p50 {statistics.median(whole):.1f} us, "
        f"p99 {percentile(whole, 99):.1f} us over {args.calls} calls (goal: p50 <= 30 us)"
    )


if __name__ == "__main__":
    main()
