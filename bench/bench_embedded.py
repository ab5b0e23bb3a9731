"""pdp embedded in the agent's process: one Enforce through
``pdp.embedded.EmbeddedClient`` (the SDK's surface, the sidecar's handler,
no gRPC), for the README's 1 KB request on the example snapshot.

    .venv/bin/python bench/bench_embedded.py     # --calls N --unique-inputs --yield --parts

Prints p50 and p99 of the whole call (the SDK's request building and result
conversion included); the goal is a p50 of at most 30 us. ``--unique-inputs``
numbers every request's text at both ends, so no cache keyed by the text
answers (the texts are made before the clock starts). ``--yield`` lets the
event loop run between two calls (off the clock), as an agent that awaits
I/O between decisions does: the decision log's writer then runs in between.
``--parts`` also times each stage of the call alone (median of back-to-back
runs of that stage) and prints what the whole call spends beyond them.
``bench/bench_engine.py`` measures the engine's decision alone."""

from __future__ import annotations

import argparse
import asyncio
import shlex
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

if str(Path(__file__).resolve().parent.parent) not in sys.path:  # run as a script
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pdp_client._bulk import enforce_call

from bench._common import REPO, describe_machine, median_us, percentile, text_of
from pdp.embedded import EmbeddedClient
from pdp.embedded._results import enforce_answer
from pdp.engine import Decision
from pdp.server._translate import enforce_input

AGENT = "my-chatbot"
OPTIONS: dict[str, Any] = {"estimated_cost_usd": 0.0}


async def measure(pdp: EmbeddedClient, texts: list[str], give_way: bool) -> list[float]:
    for text in texts[:500]:  # warm up
        await pdp.enforce_policy(AGENT, text, **OPTIONS)
    whole: list[float] = []
    for text in texts:
        started = time.perf_counter()
        await pdp.enforce_policy(AGENT, text, **OPTIONS)
        whole.append((time.perf_counter() - started) * 1e6)
        if give_way:
            await asyncio.sleep(0)
    return whole


def _done(coroutine: Coroutine[Any, Any, Any]) -> Any:
    """The value of a coroutine that never waits (an in-process decision
    with nothing to charge), without an event loop turn."""
    try:
        coroutine.send(None)
    except StopIteration as stop:
        return stop.value
    coroutine.close()
    raise RuntimeError("the decision waited: its parts cannot be timed alone")


def parts(pdp: EmbeddedClient, text: str, runs: int) -> dict[str, float]:
    """Median microseconds of each stage of one call, each timed alone."""
    servicer = pdp.sidecar.servicer
    # The servicer's own parts, so that each stage is timed as the call runs it.
    limits, usage, clock = servicer._limits, servicer._usage, servicer._clock
    call = enforce_call(AGENT, text, OPTIONS)  # type: ignore[arg-type]
    message = call.request
    request = enforce_input(message, limits)
    active = pdp.sidecar.holder.active
    assert active is not None
    snapshot = active.snapshot
    now, steady = clock(), clock.steady()
    decision = snapshot.enforce(request, usage, now, steady=steady)
    assert isinstance(decision, Decision), "the example snapshot consults no validator"
    assert not decision.charges, "a decision with charges waits on the usage backend"
    context: Any = None

    def no_answer(*_: object) -> None:
        return None

    def checked_and_decided() -> object:
        return snapshot.enforce(enforce_input(message, limits), usage, now, steady=steady)

    timed: dict[str, Callable[[], object]] = {
        "SDK request: argument checks, EnforceRequest, Call": (
            lambda: enforce_call(AGENT, text, OPTIONS)  # type: ignore[arg-type]
        ),
        "sidecar's request checks (enforce_input)": lambda: enforce_input(message, limits),
        "engine decision + request checks": checked_and_decided,
        "servicer, answer left out": (
            lambda: _done(servicer.enforce_message(message, context, no_answer))
        ),
        "answer as the SDK's EnforceResult": (
            lambda: enforce_answer(decision, "d" * 32, "", "r" * 32, None)
        ),
        "whole call, no event loop turn": (
            lambda: _done(pdp.enforce_policy(AGENT, text, **OPTIONS))
        ),
    }
    return {name: median_us(fn, runs) for name, fn in timed.items()}


def print_parts(times: dict[str, float]) -> None:
    build, checks, engine_checks, servicer, answer, whole = times.values()
    engine = engine_checks - checks
    bookkeeping = servicer - engine_checks
    rest = whole - build - servicer - answer
    rows = [
        ("SDK request: argument checks, EnforceRequest, Call", build),
        ("sidecar's request checks (enforce_input)", checks),
        ("engine decision", engine),
        ("servicer's bookkeeping: ids, clock, decision-log record", bookkeeping),
        ("answer as the SDK's EnforceResult", answer),
        ("coroutine hand-offs, dispatch (the rest)", rest),
    ]
    print("where the time goes, median of each stage timed alone:")
    for name, us in rows:
        print(f"  {name:58s} {us:6.1f} us")
    print(f"  {'whole call (driven without an event loop turn)':58s} {whole:6.1f} us")


async def run(args: argparse.Namespace) -> None:
    text = text_of(1024)
    if args.unique_inputs:
        texts = [f"{i} {text[: 1024 - 2 * len(str(i)) - 2]} {i}" for i in range(args.calls)]
    else:
        texts = [text] * args.calls
    with tempfile.TemporaryDirectory() as tmp:
        snapshot = str(REPO / "examples" / "policies.yaml")
        async with await EmbeddedClient.open(snapshot, state=f"{tmp}/state.db") as pdp:
            whole = await measure(pdp, texts, args.give_way)
            if args.parts:
                times = parts(pdp, text, args.calls)
    inputs = "unique 1 KB inputs" if args.unique_inputs else "1 KB"
    way = ", the loop run between calls" if args.give_way else ""
    p50, p99 = statistics.median(whole), percentile(whole, 99)
    print(
        f"embedded Enforce, {inputs}{way}, example snapshot: p50 {p50:.1f} us, "
        f"p99 {p99:.1f} us over {args.calls} calls (goal: p50 <= 30 us)"
    )
    if args.parts:
        print_parts(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--unique-inputs", action="store_true", help="a different text per call")
    parser.add_argument(
        "--yield",
        dest="give_way",
        action="store_true",
        help="let the event loop run between two calls (off the clock)",
    )
    parser.add_argument("--parts", action="store_true", help="also time each stage alone")
    args = parser.parse_args()
    print(describe_machine())
    print(f"command: {shlex.join([Path(sys.executable).name, *sys.argv])}", flush=True)
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
