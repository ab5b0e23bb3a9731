"""What the state database costs per Enforce: the CPU time of the event-loop
thread (queueing the decision-log row, reserving the cost, flushing) and of
the database's thread (writing them), per decision.

    .venv/bin/python bench/bench_state_writes.py             # --rounds N --decisions N
    .venv/bin/python bench/bench_state_writes.py --baseline /work/main

Each measurement is a process of its own: a state database already holding
``--fill`` decisions' reservations and log rows (a sidecar some minutes into
its reservations' time to live), then bursts of 80 decisions (a flush
interval's worth at about 1,600 calls/s) each followed by the flushes the
sidecar makes every 50 ms. Request ids are the sidecar's own (``--ids
random`` measures random 128-bit ids instead). ``--baseline DIR`` measures
another checkout (its ``.venv``) in the same rounds, alternating which goes
first; the figure is the median over rounds. CPU time per thread comes from
/proc (10 ms ticks: each measurement runs long enough for hundreds).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

if sys.argv[1:2] == ["--one"]:  # one measurement, of the checkout it runs in
    sys.path[0] = os.getcwd()
elif str(Path(__file__).resolve().parent.parent) not in sys.path:  # run as a script
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import REPO, describe_machine

BURST = 80  # decisions per flush interval


def _thread_ticks() -> dict[str, int]:
    ticks: dict[str, int] = {}
    for tid in os.listdir("/proc/self/task"):
        fields = Path(f"/proc/self/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks[tid] = int(fields[11]) + int(fields[12])
    return ticks


def _id_maker(kind: str) -> Callable[[], str]:
    if kind == "random":
        rng = random.Random(os.urandom(16))
        return lambda: rng.getrandbits(128).to_bytes(16).hex()
    try:
        from pdp.server._ids import new_id
    except ImportError:  # a checkout from before growing ids: its random ones
        return _id_maker("random")
    return new_id


async def _measure(decisions: int, fill: int, ids: str) -> dict[str, Any]:
    """One measurement, in this process: µs of CPU per decision by thread."""
    from pdp.engine import CostCharge
    from pdp.state import Database, DecisionLog, DecisionRecord, SqliteUsage

    new_id = _id_maker(ids)
    with tempfile.TemporaryDirectory() as tmp:
        db = await Database.open(Path(tmp) / "state.db")
        log = DecisionLog(db)
        usage = await SqliteUsage.open(db)
        now = datetime.now(UTC)

        async def burst() -> None:
            for _ in range(BURST):
                request_id = new_id()
                charge = CostCharge(
                    agent_id="my-chatbot", amount_usd=0.0001, request_id=request_id, limits=()
                )
                if await usage.charge([charge]):
                    raise SystemExit("a charge with no limits was refused")
                log.append(
                    DecisionRecord(
                        decision_id=new_id(),
                        decided_at=now,
                        agent_id="my-chatbot",
                        decision="ALLOW",
                        policies_fired=(),
                        pii_counts={},
                        snapshot_revision=1,
                        request_id=request_id,
                        approval_id="",
                    )
                )
            await asyncio.gather(log.flush(), usage.settle_expired(), usage.counters.flush())

        for _ in range(fill // BURST):
            await burst()
        before, started = _thread_ticks(), time.perf_counter()
        for _ in range(decisions // BURST):
            await burst()
        after, wall = _thread_ticks(), time.perf_counter() - started
        await log.close()
        await usage.close()
        await db.close()
    per_tick = 1e6 / os.sysconf("SC_CLK_TCK") / (decisions // BURST * BURST)
    spent = sorted((after[t] - before.get(t, 0) for t in after), reverse=True)
    main_tid = str(os.getpid())
    loop = (after[main_tid] - before[main_tid]) * per_tick
    import pdp

    return {
        "pdp_from": str(pdp.__file__),
        "loop_us": loop,
        "database_us": sum(spent) * per_tick - loop,
        "wall_us": wall * 1e6 / decisions,
    }


def _run_one(python: str, cwd: Path, decisions: int, fill: int, ids: str) -> dict[str, Any]:
    command = [python, str(Path(__file__).resolve()), "--one", str(decisions), str(fill), ids]
    out = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=True)
    figures: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    if not figures.pop("pdp_from", "").startswith(str(cwd)):
        raise SystemExit(f"the measurement in {cwd} did not run that checkout's pdp")
    return figures


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--one":
        decisions, fill, ids = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
        print(json.dumps(asyncio.run(_measure(decisions, fill, ids))))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="rounds (default 5)")
    parser.add_argument(
        "--decisions", type=int, default=24_000, help="decisions measured (default 24,000)"
    )
    parser.add_argument(
        "--fill",
        type=int,
        default=160_000,
        help="decisions made first, not measured (default 160,000)",
    )
    parser.add_argument(
        "--ids", choices=("sidecar", "random"), default="sidecar", help="request ids"
    )
    parser.add_argument("--baseline", metavar="DIR", type=Path, help="another checkout")
    args = parser.parse_args()
    runs = {"this": (sys.executable, REPO)}
    if args.baseline:
        python = args.baseline / ".venv" / "bin" / "python"
        if not python.exists():
            parser.error(f"--baseline: no {python}")
        runs["baseline"] = (str(python), args.baseline.resolve())
    print(describe_machine())
    print(f"command: {shlex.join([Path(sys.executable).name, *sys.argv])}", flush=True)
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in runs}
    for index in range(args.rounds):
        order = list(runs) if index % 2 == 0 else list(reversed(runs))
        for name in order:
            python, cwd = runs[name]
            results[name].append(_run_one(python, cwd, args.decisions, args.fill, args.ids))
        print(".", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    print(
        f"{args.rounds} rounds of {args.decisions} decisions after {args.fill}, "
        f"{BURST} per flush; ids: {args.ids}; CPU time per decision, median over rounds"
    )
    for name, rounds in results.items():

        def med(key: str, rounds: list[dict[str, Any]] = rounds) -> float:
            return float(statistics.median(r[key] for r in rounds))

        print(
            f"  {name:8}  event loop {med('loop_us'):5.1f} us   database thread "
            f"{med('database_us'):5.1f} us   wall {med('wall_us'):5.1f} us"
        )


if __name__ == "__main__":
    main()
