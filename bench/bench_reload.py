"""Reloading a large snapshot under load: does the hot path stall?

    .venv/bin/python bench/bench_reload.py     # --policies N --clients C --format yaml|json

A sidecar serves a snapshot of N policies (default 10,000: ten per agent
for N/10 agents, plus the example's organisation-wide ones) from a file.
C clients (default 8) call Enforce for one agent without pause. After a
steady period the file is replaced by the same document with one policy
changed and a new revision; the run waits for the new revision to be in
force (a changed decision), then goes on for a while.

Printed: steady throughput and p99, then in the reload window (from the
write until the new revision answers, at least one second) throughput as a
ratio to steady, p99 as a ratio to steady, the slowest call, failed calls,
and the seconds until the new revision was in force. Targets: throughput
>= 0.7x, p99 <= 3x, no call over 250 ms, nothing failed, in force within 5 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
import yaml

if str(Path(__file__).resolve().parent.parent) not in sys.path:  # run as a script
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import REPO, describe_machine, percentile, text_of
from pdp.v1 import policy_decision_service_pb2 as pb
from tests._process import PdpProcess

STEADY = 3.0  # seconds measured before the reload
AFTER = 2.0  # seconds measured after the new revision is in force


def large_document(policies: int, revision: int, marker: str) -> dict[str, Any]:
    """The example snapshot plus ``policies`` agent-scoped policies (ten per
    agent); ``marker`` is the message of the example's expression policy, so
    a new revision changes exactly one policy and shows in the answers."""
    document: dict[str, Any] = yaml.safe_load((REPO / "examples" / "policies.yaml").read_text())
    document["revision"] = revision
    agents = document["agents"]
    extra = []
    for i in range(policies):
        agent = f"agent-{i // 10:05d}"
        if i % 10 == 0:
            agents.append({"id": f"id-{agent}", "name": agent})
        kind = i % 3
        rule: dict[str, Any]
        if kind == 0:
            rule = {"patterns": [f"forbidden phrase {i}", f"secret code {i}"], "action": "block"}
            extra.append(_policy(f"patterns {i}", "injection_scan", rule, agent))
        elif kind == 1:
            rule = {"max_cost_per_execution": 1.0 + i % 7, "daily_budget": 100.0 + i}
            extra.append(_policy(f"cost {i}", "cost_limit", rule, agent))
        else:
            expression = f'request.tool == "tool-{i}" && "env" in request.metadata'
            rule = {"expression": expression, "message": f"tool {i}"}
            extra.append(_policy(f"expression {i}", "expression", rule, agent))
    for policy in document["policies"]:
        if policy["policyType"] == "expression":
            policy["ruleDefinition"]["message"] = marker
    document["policies"].extend(extra)
    return document


def _policy(name: str, policy_type: str, rule: dict[str, Any], agent: str) -> dict[str, Any]:
    return {
        "name": name,
        "policyType": policy_type,
        "enforcementMode": "block",
        "ruleDefinition": rule,
        "appliesToAgents": [agent],
        "isActive": True,
    }


def dump(document: dict[str, Any], fmt: str) -> bytes:
    if fmt == "json":
        return json.dumps(document).encode()
    return yaml.safe_dump(document, sort_keys=False).encode()


def write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


class Load:
    """C callers of Enforce, recording (finished at, latency, marker seen)."""

    def __init__(self, address: str, clients: int) -> None:
        self.address = address
        self.clients = clients
        self.calls: list[tuple[float, float, str]] = []
        self.failed = 0
        self.stopping = False

    async def run(self) -> None:
        request = pb.EnforceRequest(
            agent_id="my-chatbot", tool="shell", metadata={"env": "prod"}, input=text_of(1024)
        )
        async with grpc.aio.insecure_channel(self.address) as channel:
            stub = channel.unary_unary(
                "/pdp.v1.PolicyDecisionService/Enforce",
                request_serializer=pb.EnforceRequest.SerializeToString,
                response_deserializer=pb.EnforceResponse.FromString,
            )

            async def caller() -> None:
                while not self.stopping:
                    started = time.perf_counter()
                    try:
                        answer = await stub(request, timeout=10)
                    except grpc.RpcError:
                        self.failed += 1
                        continue
                    ended = time.perf_counter()
                    message = answer.violations[0].message if answer.violations else ""
                    self.calls.append((ended, ended - started, message))

            await asyncio.gather(*(caller() for _ in range(self.clients)))

    def window(self, start: float, end: float) -> list[float]:
        return [latency for at, latency, _ in self.calls if start <= at < end]


async def measure(args: argparse.Namespace, path: Path, address: str) -> dict[str, float]:
    load = Load(address, args.clients)
    task = asyncio.create_task(load.run())
    await asyncio.sleep(1.0)  # warm up
    steady_start = time.perf_counter()
    await asyncio.sleep(STEADY)
    new = await asyncio.to_thread(dump, large_document(args.policies, 2, "revision 2"), args.format)
    written = time.perf_counter()
    await asyncio.to_thread(write_atomically, path, new)

    def in_force() -> bool:
        recent = load.calls[-args.clients * 4 :]
        return any(m == "revision 2" for at, _, m in recent if at > written)

    while not in_force() and time.perf_counter() - written < 60:  # noqa: ASYNC110 (polled: the answers are the signal)
        await asyncio.sleep(0.01)
    in_force_at = time.perf_counter()
    await asyncio.sleep(AFTER)
    load.stopping = True
    await task
    steady = load.window(steady_start, written)
    window_end = max(in_force_at, written + 1.0)
    reload = load.window(written, window_end)
    steady_rate = len(steady) / (written - steady_start)
    reload_rate = len(reload) / (window_end - written)
    return {
        "steady_rate": steady_rate,
        "steady_p99": percentile(steady, 99),
        "rate_ratio": reload_rate / steady_rate,
        "p99_ratio": percentile(reload, 99) / percentile(steady, 99) if reload else 0.0,
        "slowest_ms": max(reload, default=0.0) * 1000,
        "failed": load.failed,
        "in_force_s": in_force_at - written,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--policies", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--format", choices=["yaml", "json"], default="yaml")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(describe_machine())
    print(f"command: {shlex.join([Path(sys.executable).name, *sys.argv])}", flush=True)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"policies.{args.format}"
        first = dump(large_document(args.policies, 1, "revision 1"), args.format)
        for index in range(args.rounds):
            write_atomically(path, first)
            server = ["serve", "--snapshot", str(path), "--listen", "127.0.0.1:0"]
            server += ["--state", str(Path(tmp) / f"state-{index}.db")]
            sidecar = PdpProcess(server, timeout=120)
            try:
                results.append(asyncio.run(measure(args, path, sidecar.address)))
            finally:
                sidecar.stop()
            print(".", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    print(
        f"\n{args.policies} policies ({args.format}, {len(first) / 1e6:.1f} MB), "
        f"{args.clients} clients, {args.rounds} rounds (median [min-max])"
    )
    rows = [
        ("steady throughput (calls/s)", "steady_rate", "{:,.0f}"),
        ("throughput in the reload window / steady", "rate_ratio", "{:.2f}x"),
        ("p99 in the reload window / steady", "p99_ratio", "{:.2f}x"),
        ("slowest call in the window (ms)", "slowest_ms", "{:.0f}"),
        ("failed calls", "failed", "{:.0f}"),
        ("new revision in force after (s)", "in_force_s", "{:.2f}"),
    ]
    print("| | median | range |\n|---|---|---|")
    for label, key, fmt in rows:
        values = [r[key] for r in results]
        print(
            f"| {label} | {fmt.format(statistics.median(values))} | "
            f"{fmt.format(min(values))}-{fmt.format(max(values))} |"
        )


if __name__ == "__main__":
    main()
