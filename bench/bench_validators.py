"""Enforce with a custom validator over HTTPS on loopback, measured by ghz
against the sidecar's own health check, in one run on one sidecar:

- ``validator``: every decision asks the validator (keep-alive connections);
- ``cached``: the same question every time, answered from the sidecar's
  cache (``cache_ttl_s``);
- ``no policy``: an agent with no policy, Enforce's own floor;
- throughput at concurrency 32 of the health check, ``validator`` and
  ``cached`` (one connection, as the agent's client has);

and whether a slow validator stalls other agents: their p99 at concurrency
50, alone and while 50 concurrent calls wait on another agent's validator
that answers after 0.5 s (the ratio is the price they pay).

    .venv/bin/python bench/bench_validators.py     # --rounds N --calls N

The validators are loopback HTTPS servers in this process (a thread, its own
event loop); the sidecar is a ``pdp serve`` child. As in bench_sidecar.py,
each round measures everything back to back and the headline is the median
of the per-round ratios.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if str(Path(__file__).resolve().parent.parent) not in sys.path:  # run as a script
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import describe_machine, text_of
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
from tests._https import Delay, HttpsServer, reply_json
from tests._process import PdpProcess

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SLOW_S = 0.5
CROWD = 50  # the concurrency of the isolation runs, on each side
THROUGHPUT_CONCURRENCY = 32


def validator_policy(name: str, agent: str, server: HttpsServer, **rule: Any) -> dict[str, Any]:
    return {
        "name": name,
        "policyType": "custom_validator",
        "enforcementMode": "block",
        "appliesToAgents": [agent],
        "ruleDefinition": {
            "url": f"{server.url}/check",
            "secret": SECRET,
            "ca_file": server.ca_file,
            **rule,
        },
    }


def snapshot(fast: HttpsServer, slow: HttpsServer) -> dict[str, Any]:
    return {
        "revision": 1,
        "agents": [{"id": a} for a in ("checked", "cached", "plain", "slow")],
        "policies": [
            validator_policy("Checked", "checked", fast, timeout_ms=2000),
            validator_policy("Cached", "cached", fast, timeout_ms=2000, cache_ttl_s=3600),
            validator_policy("Slow", "slow", slow, timeout_ms=5000),
        ],
    }


def enforce_data(agent: str) -> str:
    return json.dumps({"agent_id": agent, "input": text_of(1024), "estimated_cost_usd": 0.02})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=10, help="rounds (default 10)")
    parser.add_argument("--calls", type=int, default=1000, help="calls per run (default 1000)")
    args = parser.parse_args()
    ghz = ghz_binary()
    print(describe_machine())
    print(f"command: {shlex.join([Path(sys.executable).name, *sys.argv])}", flush=True)
    rounds: list[dict[str, Result]] = []
    with (
        tempfile.TemporaryDirectory() as tmp,
        HttpsServer(reply_json({"allow": True})) as fast,
        HttpsServer(Delay(SLOW_S, reply_json({"allow": True}))) as slow,
    ):
        protoset = Path(tmp) / "services.protoset"
        write_protoset(protoset)
        document = Path(tmp) / "validators.json"
        document.write_text(json.dumps(snapshot(fast, slow)))
        state = str(Path(tmp) / "state.db")
        sidecar = PdpProcess(
            ["serve", "--snapshot", str(document), "--listen", "127.0.0.1:0", "--state", state]
        )
        try:

            def command(call: str, agent: str, concurrency: int, calls: int) -> list[str]:
                data = enforce_data(agent) if call == ENFORCE else "{}"
                return ghz_command(ghz, protoset, sidecar.address, call, data, concurrency, calls)

            runs = {
                "health": command(HEALTH, "", 1, args.calls),
                "validator": command(ENFORCE, "checked", 1, args.calls),
                "cached": command(ENFORCE, "cached", 1, args.calls),
                "no policy": command(ENFORCE, "plain", 1, args.calls),
                "others": command(ENFORCE, "plain", CROWD, args.calls * 2),
                "health c32": command(HEALTH, "", THROUGHPUT_CONCURRENCY, args.calls * 2),
                "validator c32": command(
                    ENFORCE, "checked", THROUGHPUT_CONCURRENCY, args.calls * 2
                ),
                "cached c32": command(ENFORCE, "cached", THROUGHPUT_CONCURRENCY, args.calls * 2),
            }
            slow_load = [
                ghz,
                "--insecure",
                "--protoset",
                str(protoset),
                "--call",
                ENFORCE,
                "--data",
                enforce_data("slow"),
                "--concurrency",
                str(CROWD),
                "--connections",
                "1",
                "--duration",
                "600s",
                "--format",
                "json",
                sidecar.address,
            ]
            for key in ("health", "validator", "cached", "no policy"):  # warm up
                run_ghz(runs[key])
            for index in range(args.rounds):
                order = ["health", "validator", "cached", "no policy"]
                if index % 2:
                    order.reverse()
                result = {key: run_ghz(runs[key]) for key in order}
                for key in ("health c32", "validator c32", "cached c32"):
                    result[key] = run_ghz(runs[key])
                result["others alone"] = run_ghz(runs["others"])
                result["others with slow"] = run_with_load(runs["others"], slow_load)
                rounds.append(result)
                print(".", end="", file=sys.stderr, flush=True)
            print(file=sys.stderr)
        finally:
            sidecar.stop()
        validator_calls = len(fast.requests)
    report(rounds, args, validator_calls)


def run_with_load(measured: list[str], load: list[str]) -> Result:
    """``measured`` while ``load`` runs alongside (started first, stopped after)."""
    background = subprocess.Popen(load, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        # Let the slow calls fill the validator's pool and queue behind it.
        time.sleep(0.5)
        return run_ghz(measured)
    finally:
        background.terminate()
        background.wait()


def report(rounds: list[dict[str, Result]], args: argparse.Namespace, calls: int) -> None:
    def values(key: str, attr: str) -> list[float]:
        return [getattr(r[key], attr) for r in rounds]

    def ratios(key: str, attr: str, base: str = "health") -> list[float]:
        return [getattr(r[key], attr) / getattr(r[base], attr) for r in rounds]

    print(
        f"{args.rounds} rounds of {args.calls} calls at concurrency 1 (1 KB input), back to "
        f"back; median over rounds (middle half in brackets); the fast validator answered "
        f"{calls} calls"
    )
    health = median(values("health", "p50"))
    print(f"health          p50 {health:7.0f} us   p99 {median(values('health', 'p99')):7.0f} us")
    for key in ("validator", "cached", "no policy"):
        p50, p99 = ratios(key, "p50"), ratios(key, "p99")
        print(
            f"{key:<15} p50 {median(values(key, 'p50')):7.0f} us   "
            f"p99 {median(values(key, 'p99')):7.0f} us   "
            f"vs health: p50 {median(p50):5.2f}x [{spread(p50)}]  p99 {median(p99):5.2f}x"
        )
    health_rps = median(values("health c32", "rps"))
    for key in ("validator", "cached"):
        rps = ratios(f"{key} c32", "rps", "health c32")
        print(
            f"{key:<15} throughput at concurrency {THROUGHPUT_CONCURRENCY}: "
            f"{median(values(f'{key} c32', 'rps')):6.0f} /s, health {health_rps:6.0f} /s: "
            f"{median(rps):4.2f}x [{spread(rps)}]"
        )
    alone, loaded = values("others alone", "p99"), values("others with slow", "p99")
    price = ratios("others with slow", "p99", "others alone")
    print(
        f"other agents at concurrency {CROWD}: p99 {median(alone):.0f} us alone, "
        f"{median(loaded):.0f} us while {CROWD} calls wait on a {SLOW_S:g} s validator: "
        f"{median(price):.2f}x [{spread(price)}]"
    )


if __name__ == "__main__":
    main()
