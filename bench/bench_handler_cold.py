"""The sidecar's Enforce handler in this process, with its caches warm and
with other memory read between two calls, as gRPC, the event loop and the
load generator do in a served sidecar.

    .venv/bin/python bench/bench_handler_cold.py        # --calls N --mb 0,1,4,16
    .venv/bin/python bench/bench_handler_cold.py --no-policies   # around the checks only

The handler is the one a gRPC call runs (bytes in, bytes out: parsing,
translation, the decision, the usage charge, the decision log, the
response), on a sidecar with no listener and its state in a temporary
SQLite file; 1 KB of text for ``my-chatbot`` as in ``bench_sidecar.py``.
Before each call the bench reads one byte of every 64 of a buffer of the
given size, so that much of the CPU's caches holds other data. Only the
handler is timed; rounds alternate the sizes, and the figure is the median
of the rounds' means. ``--baseline DIR`` measures another checkout (its
``.venv``) in the same rounds, each round a new process of each checkout
in alternating order: the time of one process moves with where its memory
lands, so a comparison needs many.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if sys.argv[1:2] == ["--one"]:  # one process's measurement, of the checkout it runs in
    sys.path[0] = os.getcwd()
elif str(Path(__file__).resolve().parent.parent) not in sys.path:  # run as a script
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import REPO, describe_machine, text_of

AGENT = "my-chatbot"
ESTIMATE_USD = 0.0001
MB = 1024 * 1024


class _Context:
    """What the handler reads of a gRPC call's context: no metadata."""

    def invocation_metadata(self) -> tuple[()]:
        return ()


async def _measure(snapshot: Path, sizes: list[int], calls: int, rounds: int) -> dict[int, float]:
    from pdp.server import ServeOptions, Sidecar
    from pdp.v1 import policy_decision_service_pb2 as pb

    with tempfile.TemporaryDirectory() as tmp:
        state = str(Path(tmp) / "state.db")
        sidecar = Sidecar(
            ServeOptions(snapshot=str(snapshot), listen=None, state=state, local_state=state)
        )
        await sidecar.start()
        try:
            servicer = sidecar.servicer
            request = pb.EnforceRequest(
                agent_id=AGENT, input=text_of(1024), estimated_cost_usd=ESTIMATE_USD
            ).SerializeToString()
            context: Any = _Context()
            other = bytearray(max(sizes) * MB or 1)
            view = memoryview(other)
            means: dict[int, list[float]] = {size: [] for size in sizes}
            for _ in range(200):  # warm up
                await servicer.enforce(request, context)
            for index in range(rounds):
                for size in sizes if index % 2 == 0 else list(reversed(sizes)):
                    spent = 0.0
                    for call in range(calls):
                        if size:
                            view[0 : size * MB : 64].tobytes()
                        started = time.perf_counter()
                        await servicer.enforce(request, context)
                        spent += time.perf_counter() - started
                        if call % 40 == 39:
                            await asyncio.sleep(0.001)  # the state's flushers run
                    means[size].append(spent / calls * 1e6)
                print(".", end="", file=sys.stderr, flush=True)
            print(file=sys.stderr)
        finally:
            await sidecar.stop()
    return {size: statistics.median(values) for size, values in means.items()}


def _one_process(python: str, cwd: Path, snapshot: Path, sizes: list[int], calls: int) -> Any:
    command = [python, str(Path(__file__).resolve()), "--one", str(snapshot), str(calls)]
    command += [str(size) for size in sizes]
    out = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=True)
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    if not figures.pop("pdp_from").startswith(str(cwd)):
        raise SystemExit(f"the measurement in {cwd} did not run that checkout's pdp")
    return {int(size): micros for size, micros in figures.items()}


def main() -> None:
    if sys.argv[1:2] == ["--one"]:
        import pdp

        snapshot, calls, sizes = Path(sys.argv[2]), int(sys.argv[3]), list(map(int, sys.argv[4:]))
        figures: dict[Any, Any] = asyncio.run(_measure(snapshot, sizes, calls, 1))
        figures["pdp_from"] = str(pdp.__file__)
        print(json.dumps(figures))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=1000, help="calls per round and size")
    parser.add_argument("--rounds", type=int, default=5, help="rounds (default 5)")
    parser.add_argument(
        "--snapshot",
        type=Path,
        default=REPO / "examples" / "policies.yaml",
        help="snapshot (default examples/policies.yaml)",
    )
    parser.add_argument(
        "--mb",
        default="0,1,4,16",
        help="MB of other memory read before each call, comma-separated (default 0,1,4,16)",
    )
    parser.add_argument(
        "--no-policies",
        action="store_true",
        help="the snapshot with its policy list emptied: what the handler costs around the checks",
    )
    parser.add_argument(
        "--baseline",
        metavar="DIR",
        type=Path,
        help="also measure another checkout (its .venv); each round is then one process per "
        "checkout, in alternating order",
    )
    args = parser.parse_args()
    sizes = [int(part) for part in args.mb.split(",") if part.strip()]
    if not sizes or min(sizes) < 0:
        parser.error(f"--mb: sizes in MB, 0 or more; got {args.mb!r}")
    print(describe_machine())
    print(f"command: {shlex.join([Path(sys.executable).name, *sys.argv])}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        snapshot = args.snapshot
        if args.no_policies:
            import yaml

            document = yaml.safe_load(args.snapshot.read_text(encoding="utf-8"))
            document["policies"] = []
            snapshot = Path(tmp) / "no-policies.yaml"
            snapshot.write_text(yaml.safe_dump(document), encoding="utf-8")
        if args.baseline is None:
            figures = {"this": asyncio.run(_measure(snapshot, sizes, args.calls, args.rounds))}
        else:
            python = args.baseline / ".venv" / "bin" / "python"
            if not python.exists():
                parser.error(f"--baseline: no {python}")
            runs = {"this": (sys.executable, REPO), "baseline": (str(python), args.baseline)}
            means: dict[str, list[dict[int, float]]] = {name: [] for name in runs}
            for index in range(args.rounds):
                for name in list(runs) if index % 2 == 0 else list(reversed(runs)):
                    exe, cwd = runs[name]
                    means[name].append(
                        _one_process(exe, cwd.resolve(), snapshot.resolve(), sizes, args.calls)
                    )
                print(".", end="", file=sys.stderr, flush=True)
            print(file=sys.stderr)
            figures = {
                name: {size: statistics.median(r[size] for r in rounds) for size in sizes}
                for name, rounds in means.items()
            }
    shown = f"{args.snapshot} without its policies" if args.no_policies else args.snapshot
    print(f"snapshot: {shown}; the handler's time per call, median of round means")
    for name, by_size in figures.items():
        cells = "   ".join(f"{size} MB {micros:6.1f} us" for size, micros in by_size.items())
        print(f"  {name:8}  other memory read between calls: {cells}")


if __name__ == "__main__":
    main()
