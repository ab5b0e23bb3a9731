"""pdp next to its peers: OPA answering Envoy's external authorization gRPC
API and Cerbos's CheckResources, against pdp's Enforce, EnforceBatch and
embedded mode, with equivalent policies, the same load, on the same
machine, in one run.

    make bench-peers                              # ghz, the peers' builds, then this
    .venv/bin/python bench/peers/run.py           # --rounds N --calls N --many N --concurrency C

The peers are built from the Go module proxy into .tools/peers/ once
(versions pinned by bench/peers/*/go.mod); a peer that cannot be built is
reported with the reason and left out. Each server is its own process on
loopback; before anything is timed, each must decide every case of
``_servers.CASES`` as expected. Each round measures every target in turn
(the order reversed every other round): ghz at concurrency 1 for latency,
then at ``--concurrency`` for throughput while the server's CPU time is read
from /proc. The table shows medians over rounds and each target's ratio to
pdp unary, the median of the per-round ratios.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

if str(Path(__file__).resolve().parents[2]) not in sys.path:  # run as a script
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench._common import describe_machine
from bench.bench_sidecar import ghz_binary, sidecar_args, write_protoset
from bench.peers._report import (
    BASELINE,
    TICK_US,
    Load,
    Sample,
    cpu_ticks,
    parse_ghz,
    render_table,
    rows_of,
    rss_of,
)
from bench.peers._servers import (
    ALLOWED,
    BATCH,
    CERBOS_CALL,
    ENFORCE,
    ENFORCE_BATCH,
    OPA_CALL,
    GoServer,
    cerbos_message,
    check_cases,
    opa_message,
    pdp_batch_message,
    pdp_message,
    start_cerbos,
    start_opa,
)
from bench.peers._tools import PEERS_DIR, build
from tests._process import PdpProcess, run_python

__all__ = ["main"]

Measure = Callable[[], tuple[Sample, int]]  # a sample and the RSS after it


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def ghz(
    ghz_bin: str,
    address: str,
    call: str,
    data: dict[str, Any],
    *,
    protoset: Path | None,
    concurrency: int,
    calls: int,
) -> Load:
    command = [ghz_bin, "--insecure", "--call", call, "--data", json.dumps(data)]
    if protoset is not None:  # else ghz asks the server (reflection)
        command += ["--protoset", str(protoset)]
    command += ["--concurrency", str(concurrency), "--connections", "1", "--total", str(calls)]
    command += ["--skipFirst", str(calls // 10), "--format", "json", address]
    out = subprocess.run(command, capture_output=True, text=True, check=False)
    if not out.stdout.strip():  # ghz itself failed (cannot connect, unknown method)
        raise SystemExit(f"{call} at {address}: ghz: {out.stderr.strip()}")
    try:
        return parse_ghz(out.stdout)
    except (ValueError, KeyError) as exc:
        raise SystemExit(f"{call} at {address}: {exc}") from None


def server_target(
    args: argparse.Namespace,
    ghz_bin: str,
    pid: int,
    address: str,
    call: str,
    data: dict[str, Any],
    protoset: Path | None,
    per_call: int = 1,
) -> Measure:
    def measure() -> tuple[Sample, int]:
        latency = ghz(
            ghz_bin, address, call, data, protoset=protoset, concurrency=1, calls=args.calls
        )
        before = cpu_ticks(pid)
        calls = max(args.many // per_call, args.concurrency * 10)
        load = ghz(
            ghz_bin,
            address,
            call,
            data,
            protoset=protoset,
            concurrency=args.concurrency,
            calls=calls,
        )
        cpu = (cpu_ticks(pid) - before) * TICK_US
        return Sample(latency, load, cpu, per_call), rss_of(pid)

    return measure


def embedded_target(args: argparse.Namespace) -> Measure:
    script = str(PEERS_DIR / "_embedded.py")
    flags = ["--calls", str(args.calls), "--many", str(args.many)]
    flags += ["--concurrency", str(args.concurrency)]

    def measure() -> tuple[Sample, int]:
        done = run_python(script, *flags, timeout=600)
        if done.returncode != 0:
            raise SystemExit(f"pdp embedded failed:\n{done.stderr}")
        out = json.loads(done.stdout.strip().splitlines()[-1])
        latency = Load(out["p50"], out["p99"], 0.0, args.calls)
        load = Load(0.0, 0.0, out["rps"], out["sent"])
        return Sample(latency, load, out["cpu_ticks"] * TICK_US), out["rss"]

    return measure


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="rounds (default 5)")
    parser.add_argument("--calls", type=int, default=1000, help="calls at concurrency 1")
    parser.add_argument(
        "--many",
        type=int,
        default=4000,
        help=f"decisions under load per target (EnforceBatch: /{BATCH} calls)",
    )
    parser.add_argument("--concurrency", type=int, default=16, help="callers under load")
    parser.add_argument(
        "--peers",
        type=lambda v: [p for p in v.split(",") if p],
        default=["opa-envoy", "cerbos"],
        help="comma-separated peers to build and run (default opa-envoy,cerbos)",
    )
    args = parser.parse_args()
    ghz_bin = ghz_binary()
    print(describe_machine())
    print(f"command: {shlex.join([Path(sys.executable).name, *sys.argv])}")
    print(f"load average at start: {loadavg()}", flush=True)
    built = {name: build(name) for name in args.peers}
    go = subprocess.run(["go", "env", "GOVERSION"], capture_output=True, text=True, check=False)
    print(f"peers built with {go.stdout.strip() or 'no go on PATH'}")
    for peer in built.values():
        if peer.binary is None:
            print(f"NOT RUN: {peer.name} ({peer.module} {peer.version}): {peer.error}")
        else:
            print(f"{peer.name}: {peer.module} {peer.version} ({peer.binary})")
        if peer.note:
            print(f"  {peer.note}")
    print(
        f"pdp: policies {PEERS_DIR / 'policies' / 'pdp.yaml'} (literal patterns, not the "
        f"built-in detector); EnforceBatch of {BATCH}",
        flush=True,
    )
    servers: list[GoServer] = []
    pdp: PdpProcess | None = None
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        protoset = tmp / "pdp.protoset"
        write_protoset(protoset)
        try:
            pdp = PdpProcess(sidecar_args(PEERS_DIR / "policies" / "pdp.yaml", tmp))
            targets: dict[str, Measure] = {}
            pid = pdp.proc.pid
            for call in (ENFORCE, ENFORCE_BATCH):
                check_cases(pdp.address, call)
            targets[BASELINE] = server_target(
                args, ghz_bin, pid, pdp.address, ENFORCE, pdp_message(ALLOWED), protoset
            )
            targets[f"pdp batch ({BATCH}/call)"] = server_target(
                args,
                ghz_bin,
                pid,
                pdp.address,
                ENFORCE_BATCH,
                pdp_batch_message(ALLOWED),
                protoset,
                BATCH,
            )
            targets["pdp embedded"] = embedded_target(args)
            peers = (
                ("opa-envoy", "OPA (Envoy ext_authz)", start_opa, OPA_CALL, opa_message),
                ("cerbos", "Cerbos", start_cerbos, CERBOS_CALL, cerbos_message),
            )
            for key, name, start, call, to_message in peers:
                binary = built[key].binary if key in built else None
                if binary is None:
                    continue
                server = start(binary, tmp)
                servers.append(server)
                check_cases(server.address, call)
                targets[name] = server_target(
                    args, ghz_bin, server.pid, server.address, call, to_message(ALLOWED), None
                )
            print("every target decided every case as expected", flush=True)
            for measure in targets.values():  # warm up; not recorded
                measure()
            rounds: list[dict[str, Sample]] = []
            rss: dict[str, int] = {}
            for index in range(args.rounds):
                order = list(targets) if index % 2 == 0 else list(reversed(targets))
                samples = {}
                for name in order:
                    samples[name], rss[name] = targets[name]()
                rounds.append({name: samples[name] for name in targets})
                print(".", end="", file=sys.stderr, flush=True)
            print(file=sys.stderr)
        finally:
            for server in servers:
                server.stop()
            if pdp is not None:
                pdp.stop()
    print(
        f"{args.rounds} rounds; latency: {args.calls} calls at concurrency 1; throughput and "
        f"CPU: {args.many} decisions at concurrency {args.concurrency} over 1 connection; "
        f"medians over rounds (ratio to {BASELINE}: median of per-round ratios)"
    )
    print(render_table(rows_of(rounds, rss)))
    print(f"load average at end: {loadavg()}")


if __name__ == "__main__":
    main()
