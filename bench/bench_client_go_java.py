"""Client overhead of the Go and Java clients: Enforce through the client vs
the raw generated stub on the same connection, same request, same deadline,
in alternating rounds against one real sidecar. A ratio near 1.0 means the
client adds nothing measurable to the sidecar's own latency.

    .venv/bin/python bench/bench_client_go_java.py [--calls 2000] [--rounds 5] [--only go|java]

Needs Go and Maven; the Java side builds clients/java once (into .tools/m2).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

if str(Path(__file__).resolve().parent.parent) not in sys.path:  # run as a script
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import REPO
from bench.bench_sidecar import sidecar_args
from tests._process import PdpProcess

MAVEN = ["mvn", "-q", "-B", "-Dstyle.color=never", f"-Dmaven.repo.local={REPO / '.tools' / 'm2'}"]


def run_go(target: str, calls: int, rounds: int) -> None:
    subprocess.run(
        ["go", "run", "./internal/overhead", "-calls", str(calls), "-rounds", str(rounds), target],
        cwd=REPO / "clients" / "go",
        check=True,
    )


def run_java(target: str, calls: int, rounds: int) -> None:
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
    subprocess.run(
        [
            "java",
            "-cp",
            ":".join(paths),
            "dev.pdp.client.bench.ClientOverhead",
            target,
            str(calls),
            str(rounds),
        ],
        check=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000, help="calls per round and way")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--only", choices=["go", "java"])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as state:
        sidecar = PdpProcess(sidecar_args(REPO / "examples" / "policies.yaml", Path(state)))
        try:
            if args.only in (None, "go"):
                run_go(sidecar.address, args.calls, args.rounds)
            if args.only in (None, "java"):
                run_java(sidecar.address, args.calls, args.rounds)
        finally:
            sidecar.stop()


if __name__ == "__main__":
    main()
