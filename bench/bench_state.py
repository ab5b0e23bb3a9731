"""The state backends under load, in one run: Enforce with SQLite state and
with Redis state against the same sidecar's health check (ghz), the budget
race (200 concurrent callers of $0.50 against a $10 daily budget: admitted
total vs budget, both backends), and throughput of ``--workers 1`` vs
``--workers 2`` (Redis state) at concurrency 32 over 8 connections.

    .venv/bin/python bench/bench_state.py               # --rounds N --calls N
    .venv/bin/python bench/bench_state.py --only race   # one part: state, race, workers

The snapshot gives the agent a daily budget, a monthly cap and a rate
limit (all far from their limits), so every Enforce reserves its estimate
and counts a call: with Redis, one script per call. A redis-server is
started on a free loopback port (Debian's ``redis-server`` must be
installed); ghz comes from ``make bench``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shlex
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

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
from tests._process import PdpProcess
from tests._redis import RedisServer

AGENT = "bench-agent"
PARTS = ("state", "race", "workers")
MANY = 32
CONNECTIONS = 8


def snapshot(daily_budget: float) -> dict[str, Any]:
    return {
        "revision": 1,
        "agents": [{"id": AGENT}],
        "policies": [
            {
                "name": "Daily Budget",
                "policyType": "cost_limit",
                "enforcementMode": "block",
                "ruleDefinition": {"daily_budget": daily_budget},
            },
            {
                "name": "Monthly Cap",
                "policyType": "budget_cap",
                "enforcementMode": "block",
                "ruleDefinition": {"monthly_cap_usd": daily_budget * 31},
            },
            {
                "name": "Rate",
                "policyType": "rate_limit",
                "enforcementMode": "block",
                "ruleDefinition": {"max_requests": 10**9, "per_seconds": 60},
            },
        ],
    }


def serve_args(policies: Path, state: str, directory: Path, workers: int = 1) -> list[str]:
    return [
        "serve", "--snapshot", str(policies), "--listen", "127.0.0.1:0", "--state", state,
        *(["--local-state", str(directory / "local.db")] if state.startswith("redis") else []),
        *(["--workers", str(workers)] if workers > 1 else []),
    ]  # fmt: skip


def enforce_data(tag: str) -> str:
    # ghz fills {{.RequestNumber}}: every call its own request id.
    return json.dumps(
        {
            "agent_id": AGENT,
            "input": text_of(1024),
            "estimated_cost_usd": 0.001,
            "request_id": f"{tag}-{{{{.RequestNumber}}}}",
        }
    )


def _load_setup(directory: Path) -> tuple[str, Path, Path]:
    """ghz, its protoset, and a snapshot whose budgets are never reached."""
    protoset = directory / "services.protoset"
    write_protoset(protoset)
    policies = directory / "budgets.yaml"
    policies.write_text(yaml.safe_dump(snapshot(10**6)))
    return ghz_binary(), protoset, policies


def state_part(directory: Path, redis: RedisServer, rounds: int, calls: int) -> None:
    ghz, protoset, policies = _load_setup(directory)
    print(f"\n== Enforce with each state backend, ratio to health (c=1, {calls} calls)")
    for name, state in (("sqlite", str(directory / "state.db")), ("redis", redis.url)):
        redis.flush()
        args = serve_args(policies, state, directory)
        sidecar = PdpProcess(args)
        print(f"sidecar: pdp {shlex.join(args)}", flush=True)
        try:
            p50: list[float] = []
            found: dict[str, list[Result]] = {"health": [], "enforce": []}
            for index in range(rounds + 1):
                health = run_ghz(
                    ghz_command(ghz, protoset, sidecar.address, HEALTH, "{}", 1, calls)
                )
                enforce = run_ghz(
                    ghz_command(
                        ghz, protoset, sidecar.address, ENFORCE, enforce_data(f"{name}{index}"),
                        1, calls,
                    )
                )  # fmt: skip
                if index:  # the first round warms up
                    found["health"].append(health)
                    found["enforce"].append(enforce)
                    p50.append(enforce.p50 / health.p50)
        finally:
            sidecar.stop()
        print(
            f"{name:7} health p50 {median([r.p50 for r in found['health']]):5.0f} us"
            f"  enforce p50 {median([r.p50 for r in found['enforce']]):5.0f} us"
            f"  p99 {median([r.p99 for r in found['enforce']]):5.0f} us"
            f"  ratio p50 {median(p50):.2f}x [{spread(p50)}]"
        )


async def _race(address: str, callers: int, cost: float) -> int:
    import grpc

    from pdp.v1 import policy_decision_service_pb2 as pb
    from pdp.v1 import policy_decision_service_pb2_grpc as pb_grpc

    async with grpc.aio.insecure_channel(address) as channel:
        stub = pb_grpc.PolicyDecisionServiceStub(channel)
        answers = await asyncio.gather(
            *(
                stub.Enforce(
                    pb.EnforceRequest(
                        agent_id=AGENT, input="hi", estimated_cost_usd=cost, request_id=f"r{i}"
                    )
                )
                for i in range(callers)
            )
        )
    return sum(answer.decision == pb.DECISION_ALLOW for answer in answers)


def race_part(directory: Path, redis: RedisServer) -> None:
    budget, cost, callers = 10.0, 0.5, 200
    policies = directory / "race.yaml"
    policies.write_text(yaml.safe_dump(snapshot(budget)))
    print(f"\n== The budget race: {callers} concurrent callers of ${cost} against ${budget}/day")
    for name, state in (("sqlite", str(directory / "race.db")), ("redis", redis.url)):
        redis.flush()
        sidecar = PdpProcess(serve_args(policies, state, directory))
        try:
            admitted = asyncio.run(_race(sidecar.address, callers, cost))
        finally:
            sidecar.stop()
        total = admitted * cost
        verdict = "holds" if total <= budget else "EXCEEDED"
        print(f"{name:7} admitted {admitted:3} calls = ${total:.2f} of ${budget:.2f}: {verdict}")


def workers_part(directory: Path, redis: RedisServer, rounds: int, calls: int) -> None:
    ghz, protoset, policies = _load_setup(directory)
    total = calls * 4
    print(
        f"\n== Throughput, Redis state: --workers 1 vs 2 (c={MANY} over {CONNECTIONS} "
        f"connections, {total} calls a round)"
    )
    rps: dict[int, list[float]] = {1: [], 2: []}
    for workers in (1, 2):
        redis.flush()
        args = serve_args(policies, redis.url, directory, workers)
        sidecar = PdpProcess(
            args, listening=r"listening on (\S+)" + (r" \(" if workers > 1 else "")
        )
        print(f"sidecar: pdp {shlex.join(args)}", flush=True)
        try:
            for index in range(rounds + 1):
                command = ghz_command(
                    ghz, protoset, sidecar.address, ENFORCE, enforce_data(f"w{workers}-{index}"),
                    MANY, total,
                )  # fmt: skip
                command[command.index("--connections") + 1] = str(CONNECTIONS)
                result = run_ghz(command)
                if index:
                    rps[workers].append(result.rps)
        finally:
            sidecar.stop()
    one, two = median(rps[1]), median(rps[2])
    print(f"workers 1: {one:6.0f} calls/s   workers 2: {two:6.0f} calls/s   ratio {two / one:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="rounds per measure (default 5)")
    parser.add_argument("--calls", type=int, default=1000, help="calls per round (default 1000)")
    parser.add_argument("--only", choices=PARTS, action="append", help="run only this part")
    args = parser.parse_args()
    parts = args.only or list(PARTS)
    print(describe_machine())
    print(f"command: {shlex.join([Path(sys.executable).name, *sys.argv])}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        redis = RedisServer(directory)
        redis.start()
        try:
            if "state" in parts:
                state_part(directory, redis, args.rounds, args.calls)
            if "race" in parts:
                race_part(directory, redis)
            if "workers" in parts:
                workers_part(directory, redis, args.rounds, args.calls)
        finally:
            redis.stop()


if __name__ == "__main__":
    main()
