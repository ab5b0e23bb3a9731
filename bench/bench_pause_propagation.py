"""Kill-switch propagation: from the REST call that pauses (or resumes) an
agent on the control plane to the moment each sidecar's Enforce answers
AGENT_PAUSED (or stops doing so).

    .venv/bin/python bench/bench_pause_propagation.py [--sidecars 3] [--pauses 50]
    .venv/bin/python bench/bench_pause_propagation.py --at-size-limit [--sidecars 1] [--pauses 5]
    .venv/bin/python bench/bench_pause_propagation.py --postgres-replicas 2 [--sidecars 4]

Starts a real `pdp control` and real `pdp serve` processes following it.
With ``--postgres-replicas N`` it starts a private PostgreSQL cluster and N
`pdp control` processes on one database; sidecar i follows replica i mod N
(the others listed after it, for failover) and every pause is written to
replica 0, so that most sidecars learn of it through another replica
(LISTEN/NOTIFY).
With ``--at-size-limit`` the control plane's database is first filled with
injection_scan policies (long literal pattern lists, the costliest kind to
compile) until the published document is just under the sidecars' size
limit, so that each pause travels in a document of about 63 MiB.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import grpc
import httpx

if str(Path(__file__).resolve().parent.parent) not in sys.path:  # run as a script
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import WORDS, describe_machine, percentile
from pdp.control import Agent, Policy, Store
from pdp.engine import format_time, utc_now
from pdp.v1 import policy_decision_service_pb2 as pb
from pdp.v1 import policy_decision_service_pb2_grpc as pb_grpc
from tests._postgres import PASSWORD, PostgresServer
from tests._process import PdpProcess, run_pdp

AGENT = "propagation-probe"
# Just under the sidecars' limit of 64 MiB, leaving the room the control
# plane keeps for pauses.
SIZE_LIMIT_TARGET = 62 * 1024 * 1024
PATTERNS_PER_POLICY = 1000


def created_key(output: str) -> str:
    """The API key in what ``pdp control create-key`` printed: its last line."""
    lines = output.strip().splitlines()
    if not lines or not lines[-1].startswith("pdp_"):
        raise ValueError(f"no API key in the output of pdp control create-key: {output!r}")
    return lines[-1]


def create_key(db: Path | str, env: dict[str, str] | None = None) -> str:
    done = run_pdp("control", "create-key", "--db", str(db), "--name", "bench", env=env)
    if done.returncode != 0:
        raise SystemExit(f"pdp control create-key failed: {done.stderr}")
    return created_key(done.stdout)


async def fill_to_size_limit(db: Path) -> int:
    """Stores the probe agent and enough large injection_scan policies for
    a document of about SIZE_LIMIT_TARGET bytes; returns their number."""
    rng = random.Random(20240611)
    now = format_time(utc_now())
    patterns = [
        " ".join(rng.choice(WORDS) for _ in range(150))[:990] for _ in range(PATTERNS_PER_POLICY)
    ]
    policy_bytes = sum(len(p) + 3 for p in patterns)
    count = SIZE_LIMIT_TARGET // policy_bytes
    store = await Store.open(db)
    try:
        async with store.transaction(await store.revision()) as tx:
            await tx.put_agent(Agent(id=AGENT, name=AGENT, createdAt=now, updatedAt=now))
            for i in range(count):
                await tx.put_policy(
                    Policy(
                        id=f"bulk-{i}",
                        name=f"Bulk patterns {i}",
                        policyType="injection_scan",
                        enforcementMode="block",
                        ruleDefinition={
                            "patterns": [f"{p} {i}" for p in patterns],
                            "use_builtin": False,
                        },
                        createdAt=now,
                        updatedAt=now,
                    )
                )
    finally:
        await store.close()
    return count


async def until(stub: pb_grpc.PolicyDecisionServiceStub, paused: bool, t0: float) -> float:
    """Seconds from t0 until Enforce for AGENT reflects ``paused``."""
    want = pb.DECISION_AGENT_PAUSED
    while True:
        resp = await stub.Enforce(pb.EnforceRequest(agent_id=AGENT, input="hello"))
        if (resp.decision == want) is paused:
            return time.perf_counter() - t0
        await asyncio.sleep(0.002)


async def measure(base: str, key: str, sidecars: list[str], pauses: int) -> dict[str, list[float]]:
    channels = [grpc.aio.insecure_channel(a) for a in sidecars]
    stubs = [pb_grpc.PolicyDecisionServiceStub(c) for c in channels]
    times: dict[str, list[float]] = {"pause": [], "resume": [], "PATCH": []}
    async with httpx.AsyncClient(base_url=base, headers={"X-API-Key": key}, timeout=300.0) as http:
        for _ in range(pauses):
            for action, paused in (("pause", True), ("resume", False)):
                body = {"reason": "propagation benchmark"} if paused else None
                t0 = time.perf_counter()
                resp = await http.patch(f"/api/v1/agents/{AGENT}/{action}", json=body)
                resp.raise_for_status()
                times["PATCH"].append(time.perf_counter() - t0)
                done = await asyncio.gather(*(until(s, paused, t0) for s in stubs))
                times[action].extend(done)
    for c in channels:
        await c.close(grace=None)
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sidecars", type=int, default=3)
    parser.add_argument("--pauses", type=int, default=None, help="default 50, 5 at the size limit")
    parser.add_argument(
        "--at-size-limit",
        action="store_true",
        help="publish a document of about 63 MiB (large injection_scan policies)",
    )
    parser.add_argument(
        "--postgres-replicas",
        type=int,
        default=0,
        help="N control planes on one PostgreSQL database (a private cluster) instead of one "
        "on SQLite",
    )
    args = parser.parse_args()
    if args.pauses is None:
        args.pauses = 5 if args.at_size_limit else 50
    if args.postgres_replicas and args.at_size_limit:
        parser.error("--postgres-replicas and --at-size-limit do not go together")
    postgres = PostgresServer() if args.postgres_replicas else None
    with tempfile.TemporaryDirectory() as tmp:
        sidecars: list[PdpProcess] = []
        controls: list[PdpProcess] = []
        big = 0
        try:
            if postgres is not None:
                postgres.start()
                db: Path | str = postgres.new_database()
                env = {"PDP_DB_PASSWORD": PASSWORD}
                replicas = args.postgres_replicas
            else:
                db, env, replicas = Path(tmp) / "control.db", {}, 1
                big = asyncio.run(fill_to_size_limit(db)) if args.at_size_limit else 0
            for _ in range(replicas):
                # Starting compiles the stored document: long at the size limit.
                controls.append(
                    PdpProcess(
                        ["control", "--listen", "127.0.0.1:0", "--db", str(db)],
                        listening=r"listening on (http://\S+)",
                        timeout=600,
                        env=env,
                    )
                )
            key = create_key(db, env)
            base = controls[0].address
            if not big:
                httpx.post(
                    f"{base}/api/v1/agents", json={"name": AGENT}, headers={"X-API-Key": key}
                ).raise_for_status()
            size = len(httpx.get(f"{base}/api/v1/snapshot", headers={"X-API-Key": key}).content)
            urls = [f"{c.address}/api/v1/snapshot" for c in controls]
            key_file = Path(tmp) / "api-key"
            key_file.write_text(key)
            for i in range(args.sidecars):
                first = i % len(urls)
                follow = ",".join(urls[first:] + urls[:first])
                sidecars.append(
                    PdpProcess([
                        "serve",
                        "--snapshot", follow,
                        "--api-key-file", str(key_file),
                        "--listen", "127.0.0.1:0",
                        "--state", str(Path(tmp) / f"sidecar{i}.db"),
                    ], timeout=600)
                )  # fmt: skip
            times = asyncio.run(measure(base, key, [s.address for s in sidecars], args.pauses))
        finally:
            for p in [*sidecars, *controls]:
                p.stop()
            if postgres is not None:
                postgres.remove()
    print(describe_machine())
    where = (
        f"{args.postgres_replicas} control planes on one PostgreSQL (pauses written to the first)"
        if args.postgres_replicas
        else "one control plane on SQLite"
    )
    print(
        f"{args.sidecars} sidecars, {where}, {args.pauses} pauses, a document of "
        f"{size / 2**20:.1f} MiB"
        + (f" ({big} injection_scan policies of {PATTERNS_PER_POLICY} patterns)" if big else "")
    )
    for action, values in times.items():
        print(
            f"{action:>6}: n={len(values)}  p50 {statistics.median(values) * 1000:6.1f} ms  "
            f"p99 {percentile(values, 99) * 1000:6.1f} ms  max {max(values) * 1000:6.1f} ms"
        )


if __name__ == "__main__":
    main()
