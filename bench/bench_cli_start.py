"""How long the ``pdp`` command takes to start, against a baseline.

    .venv/bin/python bench/bench_cli_start.py --baseline /path/to/other/checkout  # --runs N

Runs ``pdp --version``, ``pdp ctl --help`` and ``pdp ctl agents list``
(against a control plane this script starts on a SQLite file, with an
admin key) from this checkout and from the baseline's ``.venv``,
alternating, each from an empty directory so that each imports its own
checkout. Printed per command: the median wall and CPU time (user + system)
of each, and this checkout's as a ratio to the baseline's."""

from __future__ import annotations

import argparse
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_COMMANDS = {
    "pdp --version": ["--version"],
    "pdp ctl --help": ["ctl", "--help"],
    "pdp ctl agents list": ["ctl", "agents", "list"],
}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _start(python: str, args: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU seconds of ``python -m pdp ARGS``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(
        [python, "-m", "pdp", *args], cwd=cwd, env=env, stdout=subprocess.DEVNULL, check=True
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", type=Path, required=True, help="another checkout")
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    pythons = {
        "baseline": str(args.baseline.resolve() / ".venv" / "bin" / "python"),
        "this": str(Path(__file__).resolve().parent.parent / ".venv" / "bin" / "python"),
    }
    if not Path(pythons["baseline"]).exists():
        parser.error(f"--baseline: no {pythons['baseline']}")
    with tempfile.TemporaryDirectory(prefix="pdp-cli-start-") as directory:
        cwd = Path(directory)
        this = pythons["this"]
        made = subprocess.run(
            [this, "-m", "pdp", "control", "create-key", "--db", "cp.db", "--name", "bench",
             "--role", "admin"],
            cwd=cwd, capture_output=True, text=True, check=True,
        )  # fmt: skip
        (cwd / "key").write_text(made.stdout.strip().splitlines()[-1] + "\n")
        port = _free_port()
        control = subprocess.Popen(
            [this, "-m", "pdp", "control", "--db", "cp.db", "--listen", f"127.0.0.1:{port}"],
            cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        env = {**os.environ, "PDP_URL": f"http://127.0.0.1:{port}", "PDP_API_KEY_FILE": "key"}
        try:
            deadline = time.monotonic() + 30
            while subprocess.run(
                [this, "-m", "pdp", "ctl", "agents", "list"],
                cwd=cwd, env=env, capture_output=True, check=False,
            ).returncode != 0:  # fmt: skip
                if time.monotonic() > deadline:
                    sys.exit("the control plane did not answer within 30 s")
                time.sleep(0.2)
            times: dict[tuple[str, str], list[tuple[float, float]]] = {
                (name, who): [] for name in _COMMANDS for who in pythons
            }
            for _ in range(args.runs):
                for name, command in _COMMANDS.items():
                    for who, python in pythons.items():
                        times[name, who].append(_start(python, command, cwd, env))
        finally:
            control.terminate()
            control.wait(timeout=30)
    print(f"median of {args.runs} starts each, alternating; load {os.getloadavg()[0]:.2f}")
    for name in _COMMANDS:
        wall = {who: sorted(t[0] for t in times[name, who])[args.runs // 2] for who in pythons}
        cpu = {who: sorted(t[1] for t in times[name, who])[args.runs // 2] for who in pythons}
        print(
            f"{name:20} wall {wall['baseline'] * 1000:5.0f} -> {wall['this'] * 1000:5.0f} ms "
            f"({wall['this'] / wall['baseline']:.2f}x)   CPU {cpu['baseline'] * 1000:5.0f} -> "
            f"{cpu['this'] * 1000:5.0f} ms ({cpu['this'] / cpu['baseline']:.2f}x)"
        )


if __name__ == "__main__":
    main()
