"""The sidecar over gRPC, measured by an independent load generator (ghz)
against the server's own grpc.health.v1.Health/Check as the empty-RPC
baseline, in one run on one server.

    make bench        # installs ghz into .tools/ with `go install`, then runs this

Enforce carries 1 KB of benign text through the example snapshot (four
baseline policies and one expression policy).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))
from bench_engine import text_of  # noqa: E402

HEALTH = "grpc.health.v1.Health.Check"
ENFORCE = "pdp.v1.PolicyDecisionService.Enforce"


def ghz_binary() -> str:
    found = shutil.which("ghz") or str(REPO / ".tools" / "ghz")
    if not Path(found).exists():
        sys.exit("ghz not found: run `make bench` (it installs ghz into .tools/)")
    return found


def start_sidecar(state_dir: Path) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pdp",
            "serve",
            "--snapshot",
            str(REPO / "examples" / "policies.yaml"),
            "--listen",
            "127.0.0.1:0",
            "--state",
            str(state_dir / "state.db"),
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    for line in proc.stderr:
        match = re.search(r"listening on (\S+)", line)
        if match:
            return proc, match.group(1)
    raise SystemExit("sidecar did not start")


def write_protoset(path: Path) -> None:
    """The descriptors of both services, for ghz (Python's reflection does not
    resolve method symbols)."""
    from google.protobuf import descriptor_pb2
    from grpc_health.v1 import health_pb2

    from pdp.v1 import policy_decision_service_pb2 as pb

    files: dict[str, Any] = {}

    def add(fd: Any) -> None:
        for dep in fd.dependencies:
            add(dep)
        if fd.name not in files:
            proto = descriptor_pb2.FileDescriptorProto()
            fd.CopyToProto(proto)
            files[fd.name] = proto

    add(health_pb2.DESCRIPTOR)
    add(pb.DESCRIPTOR)
    fds = descriptor_pb2.FileDescriptorSet(file=list(files.values()))
    path.write_bytes(fds.SerializeToString())


def run_ghz(
    ghz: str,
    protoset: Path,
    address: str,
    call: str,
    data: dict[str, Any],
    concurrency: int,
    total: int,
) -> dict[str, Any]:
    out = subprocess.run(
        [
            ghz,
            "--insecure",
            "--protoset",
            str(protoset),
            "--call",
            call,
            "--data",
            json.dumps(data),
            "--concurrency",
            str(concurrency),
            "--connections",
            "1",
            "--total",
            str(total),
            "--skipFirst",
            str(min(500, total // 10)),
            "--format",
            "json",
            address,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    report: dict[str, Any] = json.loads(out.stdout)
    errors = report.get("errorDistribution") or {}
    if errors:
        raise SystemExit(f"{call} had errors: {errors}")
    return report


def percentile(report: dict[str, Any], pct: int) -> float:
    for entry in report["latencyDistribution"]:
        if entry["percentage"] == pct:
            return float(entry["latency"]) / 1000  # ns -> us
    raise KeyError(pct)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--calls", type=int, default=5000)
    args = parser.parse_args()
    ghz = ghz_binary()
    enforce = {"agent_id": "my-chatbot", "input": text_of(1024), "estimated_cost_usd": 0.02}
    with tempfile.TemporaryDirectory() as tmp:
        protoset = Path(tmp) / "services.protoset"
        write_protoset(protoset)
        proc, address = start_sidecar(Path(tmp))
        try:
            # Alternate health and Enforce so drift on a shared machine hits both.
            rows: dict[str, list[float]] = {
                k: [] for k in ("h50", "h99", "e50", "e99", "hrps", "erps")
            }
            for _ in range(args.rounds):
                h = run_ghz(ghz, protoset, address, HEALTH, {}, 1, args.calls)
                e = run_ghz(ghz, protoset, address, ENFORCE, enforce, 1, args.calls)
                rows["h50"].append(percentile(h, 50))
                rows["h99"].append(percentile(h, 99))
                rows["e50"].append(percentile(e, 50))
                rows["e99"].append(percentile(e, 99))
                h = run_ghz(ghz, protoset, address, HEALTH, {}, 32, args.calls * 4)
                e = run_ghz(ghz, protoset, address, ENFORCE, enforce, 32, args.calls * 4)
                rows["hrps"].append(h["rps"])
                rows["erps"].append(e["rps"])
        finally:
            proc.terminate()
            proc.wait()
    med = {k: statistics.median(v) for k, v in rows.items()}
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    many = args.calls * 4
    print(f"rounds: {args.rounds}; {args.calls} calls at concurrency 1, {many} at 32; medians")
    print(f"concurrency 1   health p50 {med['h50']:7.0f} us  p99 {med['h99']:7.0f} us")
    print(f"                enforce p50 {med['e50']:7.0f} us  p99 {med['e99']:7.0f} us")
    p50, p99 = med["e50"] / med["h50"], med["e99"] / med["h99"]
    print(f"                ratio   p50 {p50:7.2f}x    p99 {p99:7.2f}x")
    print(f"concurrency 32  health {med['hrps']:8.0f} calls/s   enforce {med['erps']:8.0f} calls/s")
    print(f"                ratio  {med['erps'] / med['hrps']:8.2f}x")


if __name__ == "__main__":
    main()
