"""SubmitTrace measured by ghz against the sidecar's own health check and
Enforce of the same call, in one run on one standalone sidecar (SQLite
state, the example snapshot):

- ``enforce``: Enforce of 1 KB of text for ``my-chatbot``;
- ``trace``: SubmitTrace of the same text with its output and cost, a new
  request id every call (each trace is evaluated, its cost recorded and its
  answer committed to the state database before it is answered);
- Enforce's p99 at concurrency 8, alone and while 8 callers submit traces
  (the ratio is what traces cost the decisions of the hot path).

    .venv/bin/python bench/bench_traces.py     # --rounds N --calls N

Each round measures everything back to back; the headline is the median of
the per-round ratios, as in bench_sidecar.py.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
from pathlib import Path

if str(Path(__file__).resolve().parent.parent) not in sys.path:  # run as a script
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import REPO, describe_machine, text_of
from bench.bench_sidecar import (
    ENFORCE,
    HEALTH,
    Result,
    ghz_binary,
    ghz_command,
    median,
    run_ghz,
    spread,
    write_protoset,
)
from bench.bench_validators import run_with_load
from tests._process import PdpProcess

TRACE = "pdp.v1.PolicyDecisionService/SubmitTrace"
CROWD = 8


def enforce_data() -> str:
    return json.dumps({"agent_id": "my-chatbot", "input": text_of(1024)})


def trace_data() -> str:
    # ghz fills {{newUUID}} per call: every trace is a new call.
    return json.dumps(
        {
            "agent_id": "my-chatbot",
            "input": text_of(1024),
            "output": text_of(256),
            "cost_usd": 0.0001,
            "model": "gpt-4o",
            "request_id": "{{newUUID}}",
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=10, help="rounds (default 10)")
    parser.add_argument("--calls", type=int, default=1000, help="calls per run (default 1000)")
    args = parser.parse_args()
    ghz = ghz_binary()
    print(describe_machine())
    print(f"command: {shlex.join([Path(sys.executable).name, *sys.argv])}", flush=True)
    rounds: list[dict[str, Result]] = []
    with tempfile.TemporaryDirectory() as tmp:
        protoset = Path(tmp) / "services.protoset"
        write_protoset(protoset)
        state = str(Path(tmp) / "state.db")
        snapshot = str(REPO / "examples" / "policies.yaml")
        sidecar = PdpProcess(
            ["serve", "--snapshot", snapshot, "--listen", "127.0.0.1:0", "--state", state]
        )
        try:

            def command(call: str, data: str, concurrency: int, calls: int) -> list[str]:
                return ghz_command(ghz, protoset, sidecar.address, call, data, concurrency, calls)

            runs = {
                "health": command(HEALTH, "{}", 1, args.calls),
                "enforce": command(ENFORCE, enforce_data(), 1, args.calls),
                "trace": command(TRACE, trace_data(), 1, args.calls),
                "enforce c8": command(ENFORCE, enforce_data(), CROWD, args.calls * 2),
            }
            load = command(TRACE, trace_data(), CROWD, 1_000_000)
            for key in ("health", "enforce", "trace"):  # warm up
                run_ghz(runs[key])
            for index in range(args.rounds):
                order = ["health", "enforce", "trace"]
                if index % 2:
                    order.reverse()
                result = {key: run_ghz(runs[key]) for key in order}
                result["enforce alone"] = run_ghz(runs["enforce c8"])
                result["enforce with traces"] = run_with_load(runs["enforce c8"], load)
                rounds.append(result)
                print(".", end="", file=sys.stderr, flush=True)
            print(file=sys.stderr)
        finally:
            sidecar.stop()
    report(rounds, args)


def report(rounds: list[dict[str, Result]], args: argparse.Namespace) -> None:
    def values(key: str, attr: str) -> list[float]:
        return [getattr(r[key], attr) for r in rounds]

    def ratios(key: str, attr: str, base: str) -> list[float]:
        return [getattr(r[key], attr) / getattr(r[base], attr) for r in rounds]

    print(
        f"{args.rounds} rounds of {args.calls} calls at concurrency 1 (1 KB input), back to "
        "back; median over rounds (middle half in brackets)"
    )
    print(f"health          p50 {median(values('health', 'p50')):7.0f} us")
    for key in ("enforce", "trace"):
        p50 = ratios(key, "p50", "health")
        print(
            f"{key:<15} p50 {median(values(key, 'p50')):7.0f} us   "
            f"p99 {median(values(key, 'p99')):7.0f} us   "
            f"vs health: p50 {median(p50):5.2f}x [{spread(p50)}]"
        )
    versus = ratios("trace", "p50", "enforce")
    print(f"trace vs enforce: p50 {median(versus):.2f}x [{spread(versus)}]")
    alone, loaded = values("enforce alone", "p99"), values("enforce with traces", "p99")
    price = ratios("enforce with traces", "p99", "enforce alone")
    print(
        f"Enforce at concurrency {CROWD}: p99 {median(alone):.0f} us alone, "
        f"{median(loaded):.0f} us while {CROWD} callers submit traces: "
        f"{median(price):.2f}x [{spread(price)}]"
    )


if __name__ == "__main__":
    main()
