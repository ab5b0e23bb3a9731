"""Client overhead of the Go and Java clients: Enforce through the client vs
the raw generated stub on the same connection, same request, same deadline,
in alternating rounds against one real sidecar. A ratio near 1.0 means the
client adds nothing measurable to the sidecar's own latency.

    .venv/bin/python bench/bench_client_go_java.py [--calls 2000] [--rounds 5] [--only go|java]

With --bulk, decisions per second of the sidecar's own CPU (from /proc) as
bench/bench_bulk.py counts them, for each client's unary Enforce, its
EnforceStream (which packs the requests waiting to be sent) and a stream of
one request per message through the raw stub: C callers (--concurrency),
each stream with up to 8 requests in flight, every request the same 1 KB of
benign text, in alternating rounds of --seconds per mode:

    .venv/bin/python bench/bench_client_go_java.py --bulk [--seconds 3] [--concurrency 8]

Needs Go and Maven; the Java side builds clients/java once (into .tools/m2).
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

if str(Path(__file__).resolve().parent.parent) not in sys.path:  # run as a script
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import REPO, describe_machine, text_of
from bench.bench_sidecar import sidecar_args
from tests._process import PdpProcess

MAVEN = ["mvn", "-q", "-B", "-Dstyle.color=never", f"-Dmaven.repo.local={REPO / '.tools' / 'm2'}"]


def run_go(target: str, calls: int, rounds: int) -> None:
    subprocess.run(
        ["go", "run", "./internal/overhead", "-calls", str(calls), "-rounds", str(rounds), target],
        cwd=REPO / "clients" / "go",
        check=True,
    )


def java_classpath() -> str:
    java = REPO / "clients" / "java"
    classpath = java / "target" / "bench-classpath.txt"
    subprocess.run(
        [*MAVEN, "test-compile", "dependency:build-classpath", f"-Dmdep.outputFile={classpath}"],
        cwd=java,
        check=True,
    )
    paths = [
        str(java / "target" / "classes"),
        str(java / "target" / "test-classes"),
        classpath.read_text().strip(),
    ]
    return ":".join(paths)


def run_java(target: str, calls: int, rounds: int) -> None:
    subprocess.run(
        [
            "java",
            "-cp",
            java_classpath(),
            "dev.pdp.client.bench.ClientOverhead",
            target,
            str(calls),
            str(rounds),
        ],
        check=True,
    )


def run_go_bulk(target: str, pid: int, text: Path, args: argparse.Namespace) -> None:
    go = REPO / "clients" / "go"
    binary = text.parent / "bulk"
    subprocess.run(["go", "build", "-o", str(binary), "./internal/bulk"], cwd=go, check=True)
    subprocess.run(
        [
            str(binary),
            f"-pid={pid}",
            f"-input={text.read_text()}",
            f"-seconds={args.seconds}",
            f"-rounds={args.rounds}",
            f"-concurrency={args.concurrency}",
            target,
        ],
        check=True,
    )


def run_java_bulk(target: str, pid: int, text: Path, args: argparse.Namespace) -> None:
    subprocess.run(
        [
            "java",
            "-cp",
            java_classpath(),
            "dev.pdp.client.bench.ClientThroughput",
            target,
            str(pid),
            str(text),
            str(args.seconds),
            str(args.rounds),
            str(args.concurrency),
        ],
        check=True,
    )


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000, help="calls per round and way")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--only", choices=["go", "java"])
    parser.add_argument("--bulk", action="store_true", help="decisions per sidecar CPU-second")
    parser.add_argument("--seconds", type=float, default=3.0, help="--bulk: per mode and round")
    parser.add_argument("--concurrency", type=int, default=8, help="--bulk: callers")
    args = parser.parse_args()
    if args.bulk:
        print(describe_machine())
        print(f"command: {shlex.join([Path(sys.executable).name, *sys.argv])}")
        print(f"load average at the start: {load_average()}", flush=True)
    with tempfile.TemporaryDirectory() as state:
        sidecar = PdpProcess(sidecar_args(REPO / "examples" / "policies.yaml", Path(state)))
        text = Path(state) / "input.txt"
        text.write_text(text_of(1024))
        pid = sidecar.proc.pid
        try:
            if args.only in (None, "go"):
                if args.bulk:
                    run_go_bulk(sidecar.address, pid, text, args)
                else:
                    run_go(sidecar.address, args.calls, args.rounds)
            if args.only in (None, "java"):
                if args.bulk:
                    run_java_bulk(sidecar.address, pid, text, args)
                else:
                    run_java(sidecar.address, args.calls, args.rounds)
        finally:
            sidecar.stop()
    if args.bulk:
        print(f"load average at the end: {load_average()}")


if __name__ == "__main__":
    main()
