"""Kill-switch propagation: from the REST call that pauses (or resumes) an
agent on the control plane to the moment each sidecar's Enforce answers
AGENT_PAUSED (or stops doing so).

    .venv/bin/python bench/bench_pause_propagation.py [--sidecars 3] [--pauses 50]

Starts a real `pdp control` and real `pdp serve` processes following it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO

import grpc
import httpx

from pdp.v1 import policy_decision_service_pb2 as pb
from pdp.v1 import policy_decision_service_pb2_grpc as pb_grpc

AGENT = "propagation-probe"


class Process:
    """A child `pdp` process whose log is read until it says where it listens."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pdp", *args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        stream: IO[str] | None = self.proc.stderr
        assert stream is not None
        for line in stream:
            match = re.search(r"listening on (\S+)", line)
            if match:
                self.address = match.group(1)
                return
        raise SystemExit(f"pdp {args[0]} did not start")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


def create_key(db: Path) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "pdp", "control", "create-key", "--db", str(db), "--name", "bench"],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip().splitlines()[-1]


async def until(stub: pb_grpc.PolicyDecisionServiceStub, paused: bool, t0: float) -> float:
    """Seconds from t0 until Enforce for AGENT reflects ``paused``."""
    want = pb.DECISION_AGENT_PAUSED
    while True:
        resp = await stub.Enforce(pb.EnforceRequest(agent_id=AGENT, input="hello"))
        if (resp.decision == want) is paused:
            return time.perf_counter() - t0
        await asyncio.sleep(0.002)


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


async def measure(base: str, key: str, sidecars: list[str], pauses: int) -> dict[str, list[float]]:
    channels = [grpc.aio.insecure_channel(a) for a in sidecars]
    stubs = [pb_grpc.PolicyDecisionServiceStub(c) for c in channels]
    times: dict[str, list[float]] = {"pause": [], "resume": []}
    async with httpx.AsyncClient(base_url=base, headers={"X-API-Key": key}) as http:
        for _ in range(pauses):
            for action, paused in (("pause", True), ("resume", False)):
                body = {"reason": "propagation benchmark"} if paused else None
                t0 = time.perf_counter()
                resp = await http.patch(f"/api/v1/agents/{AGENT}/{action}", json=body)
                resp.raise_for_status()
                done = await asyncio.gather(*(until(s, paused, t0) for s in stubs))
                times[action].extend(done)
    for c in channels:
        await c.close(grace=None)
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sidecars", type=int, default=3)
    parser.add_argument("--pauses", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "control.db"
        control = Process("control", "--listen", "127.0.0.1:0", "--db", str(db))
        sidecars: list[Process] = []
        try:
            key = create_key(db)
            base = control.address
            httpx.post(
                f"{base}/api/v1/agents", json={"name": AGENT}, headers={"X-API-Key": key}
            ).raise_for_status()
            url = f"{base}/api/v1/snapshot"
            for i in range(args.sidecars):
                sidecars.append(
                    Process(
                        "serve",
                        "--snapshot", url,
                        "--api-key", key,
                        "--listen", "127.0.0.1:0",
                        "--state", str(Path(tmp) / f"sidecar{i}.db"),
                    )
                )  # fmt: skip
            times = asyncio.run(measure(base, key, [s.address for s in sidecars], args.pauses))
        finally:
            for p in [*sidecars, control]:
                p.stop()
    print(f"machine: {os.cpu_count()} cores; {args.sidecars} sidecars, {args.pauses} pauses")
    for action, values in times.items():
        print(
            f"{action:>6}: n={len(values)}  p50 {statistics.median(values) * 1000:6.1f} ms  "
            f"p99 {percentile(values, 99) * 1000:6.1f} ms  max {max(values) * 1000:6.1f} ms"
        )


if __name__ == "__main__":
    main()
