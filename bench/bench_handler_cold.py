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
of the rounds' means.
"""

from __future__ import annotations

import argparse
import asyncio
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if str(Path(__file__).resolve().parent.parent) not in sys.path:  # run as a script
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


def main() -> None:
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
        figures = asyncio.run(_measure(snapshot, sizes, args.calls, args.rounds))
    shown = f"{args.snapshot} without its policies" if args.no_policies else args.snapshot
    print(f"snapshot: {shown}; the handler's time per call, median of round means")
    for size, micros in figures.items():
        print(f"  {size:3} MB read between calls: {micros:6.1f} us")


if __name__ == "__main__":
    main()
