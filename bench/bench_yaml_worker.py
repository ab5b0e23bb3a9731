"""The YAML worker's CPU per reload: started as a sidecar starts it (only
the engine's YAML reading loaded) against ``python -m
pdp.engine._yaml_worker`` (the whole engine imported first, as before).

    .venv/bin/python bench/bench_yaml_worker.py     # --policies N --runs N

Both read the same document (bench_reload's, 10,000 policies by default),
alternating, from the same checkout. Printed: the median CPU seconds (user
+ system) and wall seconds of each, the ratio, and the same for a tiny
document (the start alone)."""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
from pathlib import Path

if str(Path(__file__).resolve().parent.parent) not in sys.path:  # run as a script
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_reload import dump, large_document
from pdp.engine._yaml_worker import WORKER_SOURCE

_WAYS = {
    "whole engine (-m)": [sys.executable, "-m", "pdp.engine._yaml_worker"],
    "YAML reading only": [sys.executable, "-c", WORKER_SOURCE],
}


def _run(command: list[str], data: bytes) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall = os.times().elapsed
    subprocess.run(command, input=data, stdout=subprocess.DEVNULL, check=True)
    wall = os.times().elapsed - wall
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--policies", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    documents = {
        f"{args.policies} policies": dump(large_document(args.policies, 1, "r1"), "yaml"),
        "tiny": b"agents: []\npolicies: []\n",
    }
    for label, data in documents.items():
        times: dict[str, list[tuple[float, float]]] = {way: [] for way in _WAYS}
        for _ in range(args.runs):
            for way, command in _WAYS.items():
                times[way].append(_run(command, data))
        print(f"{label} ({len(data) / 1e6:.1f} MB), median of {args.runs}, alternating:")
        medians = {}
        for way, runs in times.items():
            cpu = sorted(t[0] for t in runs)[args.runs // 2]
            wall = sorted(t[1] for t in runs)[args.runs // 2]
            medians[way] = cpu
            print(f"  {way:20} CPU {cpu:.3f} s  wall {wall:.3f} s")
        old, new = medians.values()
        print(f"  CPU saved {old - new:.3f} s per reload ({new / old:.2f}x)")
    print(f"load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
