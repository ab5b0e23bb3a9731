"""pdp embedded in the agent's process: one Enforce through
``pdp.embedded.EmbeddedClient`` (the SDK's surface, the sidecar's handler,
no gRPC), for the README's 1 KB request on the example snapshot.

    .venv/bin/python bench/bench_embedded.py     # --calls N --unique-inputs --yield --parts
    .venv/bin/python bench/bench_embedded.py --baseline /path/to/other/checkout  # --rounds N

Prints p50 and p99 of the whole call (the SDK's request building and result
conversion included); the goal is a p50 of at most 30 us. ``--unique-inputs``
numbers every request's text at both ends, so no cache keyed by the text
answers (the texts are made before the clock starts). ``--yield`` lets the
event loop run between two calls (off the clock), as an agent that awaits
I/O between decisions does: the decision log's writer then runs in between.
``--parts`` also times each stage of the call alone (median of back-to-back
runs of that stage) and prints what the whole call spends beyond them.
``--baseline DIR`` runs this bench of another checkout (its ``.venv``, its
``pdp`` and ``pdp_client``) and of this one in turn, ``--rounds`` times,
each in a process of its own, and prints the ratio of their median p50s.
``bench/bench_engine.py`` measures the engine's decision alone."""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

if str(Path(__file__).resolve().parent.parent) not in sys.path:  # run as a script
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pdp_client._calls import Call, enforce

from bench._common import REPO, describe_machine, median_us, percentile, text_of
from pdp.embedded import EmbeddedClient
from pdp.embedded._results import enforce_answer
from pdp.engine import Decision
from pdp.server._translate import enforce_input

AGENT = "my-chatbot"


def sdk_call(text: str) -> Call[Any]:
    """The SDK's call for the timed request, as ``EmbeddedClient`` makes it."""
    return enforce(
        AGENT,
        text,
        output=None,
        estimated_cost_usd=0.0,
        model=None,
        tool=None,
        metadata=None,
        request_id=None,
    )


async def measure(pdp: EmbeddedClient, texts: list[str], give_way: bool) -> list[float]:
    for _ in range(500):  # warm up
        await pdp.enforce_policy(AGENT, texts[0], estimated_cost_usd=0.0)
    whole: list[float] = []
    for text in texts:
        started = time.perf_counter()
        await pdp.enforce_policy(AGENT, text, estimated_cost_usd=0.0)
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
    message = sdk_call(text).request
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

    async def checked_and_decided() -> object:
        # A coroutine driven as the servicer's is: the difference is the servicer's work.
        return snapshot.enforce(enforce_input(message, limits), usage, now, steady=steady)

    timed: dict[str, Callable[[], object]] = {
        "SDK request: argument checks, EnforceRequest, Call": (lambda: sdk_call(text)),
        "sidecar's request checks (enforce_input)": lambda: enforce_input(message, limits),
        "engine decision + request checks": lambda: _done(checked_and_decided()),
        "servicer, answer left out": (
            lambda: _done(servicer.enforce_message(message, context, no_answer))
        ),
        "answer as the SDK's EnforceResult": (
            lambda: enforce_answer(decision, "d" * 32, "", "r" * 32, None)
        ),
        "whole call, no event loop turn": (
            lambda: _done(pdp.enforce_policy(AGENT, text, estimated_cost_usd=0.0))
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
        ("the rest: hand-offs, and stages running with colder caches", rest),
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


_FIGURES = re.compile(r"p50 (\d+(?:\.\d+)?) us, p99 (\d+(?:\.\d+)?) us")


def read_figures(output: str) -> tuple[float, float]:
    """p50 and p99 (us) from what this bench printed."""
    found = _FIGURES.search(output)
    if found is None:
        raise ValueError(f"no 'p50 ... us, p99 ... us' in the bench's output: {output!r}")
    return float(found[1]), float(found[2])


def run_checkout(checkout: Path, flags: list[str]) -> tuple[float, float]:
    """p50 and p99 of this bench run from ``checkout`` with its own venv
    and its own ``pdp`` and ``pdp_client`` sources."""
    python = checkout / ".venv" / "bin" / "python"
    sources = [str(checkout), str(checkout / "clients" / "python")]
    done = subprocess.run(
        [str(python), str(checkout / "bench" / "bench_embedded.py"), *flags],
        cwd=checkout,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sources)},
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"{checkout}: the bench failed:\n{done.stderr}")
    return read_figures(done.stdout)


def against(baseline: Path, flags: list[str], rounds: int) -> None:
    this = Path(__file__).resolve().parent.parent
    p50s: dict[str, list[float]] = {"baseline": [], "this": []}
    for turn in range(1, rounds + 1):
        for name, checkout in (("baseline", baseline), ("this", this)):
            p50, p99 = run_checkout(checkout, flags)
            p50s[name].append(p50)
            load = os.getloadavg()[0]
            print(f"round {turn} {name:8s}: p50 {p50:.1f} us, p99 {p99:.1f} us, load {load:.2f}")
    ratio = statistics.median(p50s["this"]) / statistics.median(p50s["baseline"])
    print(f"p50, this checkout / baseline, median of {rounds} rounds: {ratio:.2f}x")


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
    parser.add_argument("--baseline", type=Path, help="another checkout, run in turn with this one")
    parser.add_argument("--rounds", type=int, default=5, help="runs of each with --baseline")
    args = parser.parse_args()
    print(describe_machine())
    print(f"command: {shlex.join([Path(sys.executable).name, *sys.argv])}", flush=True)
    if args.baseline is None:
        asyncio.run(run(args))
        return
    if args.parts:
        parser.error("--parts times this checkout alone; run it without --baseline")
    baseline = args.baseline.resolve()
    if not (baseline / ".venv" / "bin" / "python").exists():
        parser.error(f"--baseline: no {baseline / '.venv/bin/python'}")
    flags = [f"--calls={args.calls}"]
    flags += ["--unique-inputs"] if args.unique_inputs else []
    flags += ["--yield"] if args.give_way else []
    against(baseline, flags, args.rounds)


if __name__ == "__main__":
    main()
