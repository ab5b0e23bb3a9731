"""Where a reload costs the serving process: each step timed in-process, and
how much the event loop is held up while a holder loads a new revision.

    .venv/bin/python bench/bench_reload_steps.py     # --policies N --format json|yaml

The document is bench_reload's (10,000 policies, one changed between
revisions). First each step of an activation runs alone, timed (reading
the document with and without the active document's items, the pause
state, compiling with and without reuse). Then, on one event loop, a
decision task (the engine's Enforce for the bench's request, yielding to
the loop after each) and a loop-lag probe (sleeps of 1 ms, recording how
late each wakes) run for a steady second, then while a ``SnapshotHolder``
activates the next revision: printed are decisions per second in the reload
window as a ratio to steady, and the probe's p99 and largest lag in each."""

from __future__ import annotations

import argparse
import asyncio
import shlex
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

if str(Path(__file__).resolve().parent.parent) not in sys.path:  # run as a script
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import FixedSpend, describe_machine, percentile, text_of
from bench.bench_reload import dump, large_document
from pdp.engine import (
    EnforceInput,
    compile_snapshot,
    parse_document_items,
    read_pause_state,
    utc_now,
)
from pdp.snapshot import NewDocument, SnapshotHolder

T = TypeVar("T")


def timed(label: str, fn: Callable[[], T]) -> T:
    started = time.perf_counter()
    out = fn()
    print(f"  {label:<44} {(time.perf_counter() - started) * 1000:8.1f} ms")
    return out


def steps(first: bytes, second: bytes) -> None:
    print("steps, each alone:")
    old, items = parse_document_items(first)
    active = compile_snapshot(old)
    timed("read (no earlier items)", lambda: parse_document_items(second))
    new, _ = timed(
        "read (the active document's items)", lambda: parse_document_items(second, items)
    )
    timed("pause state", lambda: read_pause_state(new))
    timed("compile (nothing reused)", lambda: compile_snapshot(new))
    timed("compile (reusing the active snapshot)", lambda: compile_snapshot(new, reuse=active))


class Probe:
    """Decisions made and loop lags seen, with when each happened."""

    def __init__(self) -> None:
        self.decisions: list[float] = []
        self.lags: list[tuple[float, float]] = []
        self.stopping = False

    async def decide(self, holder: SnapshotHolder) -> None:
        request = EnforceInput(agent_id="my-chatbot", input=text_of(1024), tool="shell")
        spend = FixedSpend()
        while not self.stopping:
            active = holder.active
            assert active is not None
            active.snapshot.enforce(request, spend, utc_now())
            self.decisions.append(time.perf_counter())
            await asyncio.sleep(0)

    async def lag(self) -> None:
        while not self.stopping:
            started = time.perf_counter()
            await asyncio.sleep(0.001)
            woke = time.perf_counter()
            self.lags.append((woke, (woke - started - 0.001) * 1000))

    def window(self, start: float, end: float) -> tuple[float, float, float]:
        rate = sum(start <= t < end for t in self.decisions) / (end - start)
        lags = [lag for t, lag in self.lags if start <= t < end] or [0.0]
        return rate, percentile(lags, 99), max(lags)


async def reload(first: bytes, second: bytes) -> dict[str, float]:
    holder = SnapshotHolder()
    await holder.report(NewDocument("bench", first))
    probe = Probe()
    tasks = [asyncio.create_task(probe.decide(holder)), asyncio.create_task(probe.lag())]
    await asyncio.sleep(0.5)  # warm up
    steady_start = time.perf_counter()
    await asyncio.sleep(1.0)
    started = time.perf_counter()
    await holder.report(NewDocument("bench", second))
    done = time.perf_counter()
    await asyncio.sleep(0.5)
    probe.stopping = True
    await asyncio.gather(*tasks)
    steady = probe.window(steady_start, started)
    during = probe.window(started, done)
    return {
        "seconds": done - started,
        "rate_ratio": during[0] / steady[0],
        "steady_lag_p99": steady[1],
        "lag_p99": during[1],
        "lag_max": during[2],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--policies", type=int, default=10_000)
    parser.add_argument("--format", choices=["yaml", "json"], default="json")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(describe_machine())
    print(f"command: {shlex.join([Path(sys.executable).name, *sys.argv])}", flush=True)
    first = dump(large_document(args.policies, 1, "revision 1"), args.format)
    second = dump(large_document(args.policies, 2, "revision 2"), args.format)
    if args.format == "json":
        steps(first, second)
    results = [asyncio.run(reload(first, second)) for _ in range(args.rounds)]
    print(f"holder reload ({args.format}), {args.rounds} rounds (median [min-max]):")
    for label, key, unit in [
        ("activation took", "seconds", "s"),
        ("decisions/s during it / steady", "rate_ratio", "x"),
        ("loop lag p99, steady", "steady_lag_p99", " ms"),
        ("loop lag p99 during it", "lag_p99", " ms"),
        ("largest loop lag during it", "lag_max", " ms"),
    ]:
        values = [r[key] for r in results]
        print(
            f"  {label:<34} {statistics.median(values):7.2f}{unit} "
            f"[{min(values):.2f}-{max(values):.2f}]"
        )


if __name__ == "__main__":
    main()
