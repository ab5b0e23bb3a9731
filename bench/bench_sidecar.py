"""The sidecar over gRPC, measured by an independent load generator (ghz)
against the server's own grpc.health.v1.Health/Check as the empty-RPC
baseline, in one run on one server.

    make bench                                   # installs ghz into .tools/, then runs this
    .venv/bin/python bench/bench_sidecar.py      # --rounds N --calls N --snapshot FILE

Enforce carries 1 KB of benign text through the example snapshot (four
baseline policies and one expression policy) with an estimate small enough
that the daily budget never runs out, so every call is allowed and reserves
its cost; ``--snapshot`` measures another one (an empty policy list gives
the floor: Enforce's own cost). ``--unique-inputs`` makes every request's
text differ (numbers at both ends), so no cache keyed by the text can
answer. ``--baseline DIR`` runs a second sidecar from another checkout (with
its own ``.venv``: ``make .venv/.installed`` there) in the same rounds:
before and after a change, on the same machine at the same time.
The sidecar's CPU time per call (user + system, all its threads, from
/proc) is printed for both RPCs, and the part of it its event-loop thread
spent (the rest is gRPC's poller thread and the state database's thread).

A shared machine drifts by tens of percent within seconds, so the run is many
short rounds, each measuring health and Enforce back to back (in alternating
order), and the headline is the median of the per-round ratios: drift within
a round hits both sides of its ratio. Median absolute values are printed too.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if str(Path(__file__).resolve().parent.parent) not in sys.path:  # run as a script
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import REPO, cpu_seconds, describe_machine, text_of
from tests._process import PdpProcess

HEALTH = "grpc.health.v1.Health.Check"
ENFORCE = "pdp.v1.PolicyDecisionService.Enforce"
MANY = 32  # the concurrency of the throughput rounds


@dataclass(frozen=True, slots=True)
class Result:
    p50: float  # us
    p99: float  # us
    rps: float
    cpu_us: float | None = None  # the server's CPU time per call, when measured
    loop_cpu_us: float | None = None  # of which its main (event-loop) thread's


def ghz_binary() -> str:
    found = shutil.which("ghz") or str(REPO / ".tools" / "ghz")
    if not Path(found).exists():
        sys.exit("ghz not found: run `make bench` (it installs ghz into .tools/)")
    return found


def sidecar_args(snapshot: Path, state_dir: Path) -> list[str]:
    """``pdp ARGS`` of the sidecar measured."""
    return [
        "serve",
        "--snapshot",
        str(snapshot),
        "--listen",
        "127.0.0.1:0",
        "--state",
        str(state_dir / "state.db"),
    ]


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


def ghz_command(
    ghz: str,
    protoset: Path,
    address: str,
    call: str,
    data: str,
    concurrency: int,
    total: int,
    metadata: dict[str, str] | None = None,
) -> list[str]:
    extra = ["--metadata", json.dumps(metadata)] if metadata else []
    return [
        ghz,
        *extra,
        "--insecure",
        "--protoset",
        str(protoset),
        "--call",
        call,
        "--data",
        data,
        "--concurrency",
        str(concurrency),
        "--connections",
        "1",
        "--total",
        str(total),
        "--skipFirst",
        str(total // 10),
        "--format",
        "json",
        address,
    ]


def parse_ghz_report(text: str) -> Result:
    """ghz's ``--format json`` report: p50 and p99 in microseconds, and calls
    per second. Raises ValueError when a call failed (the figures would not
    measure what they say)."""
    report: dict[str, Any] = json.loads(text)
    errors = report.get("errorDistribution") or {}
    if errors:
        raise ValueError(f"calls failed: {errors}")
    latency = {
        entry["percentage"]: entry["latency"] / 1000 for entry in report["latencyDistribution"]
    }
    return Result(p50=latency[50], p99=latency[99], rps=float(report["rps"]))


def run_ghz(command: list[str], pid: int | None = None) -> Result:
    """Runs ghz; with the server's ``pid``, also its CPU time per call over
    the run (every call counted, the ones ``--skipFirst`` leaves out of the
    latencies too)."""
    before = cpu_seconds(pid) if pid is not None else 0.0
    loop_before = main_thread_cpu_seconds(pid) if pid is not None else 0.0
    out = subprocess.run(command, capture_output=True, text=True, check=True)
    try:
        result = parse_ghz_report(out.stdout)
    except ValueError as exc:
        raise SystemExit(f"{command[command.index('--call') + 1]}: {exc}") from None
    if pid is None:
        return result
    calls = int(command[command.index("--total") + 1])
    cpu_us = (cpu_seconds(pid) - before) / calls * 1e6
    loop_us = (main_thread_cpu_seconds(pid) - loop_before) / calls * 1e6
    return Result(result.p50, result.p99, result.rps, cpu_us, loop_us)


def main_thread_cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid``'s main thread (the
    sidecar's event loop), from /proc; the rest of ``cpu_seconds`` is its
    other threads (gRPC's poller, the state database's)."""
    fields = Path(f"/proc/{pid}/task/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def median(values: list[float]) -> float:
    return statistics.median(values)


def spread(values: list[float], digits: int = 2) -> str:
    """The middle half of ``values`` (25th to 75th percentile)."""
    if len(values) < 4:
        low, high = min(values), max(values)
    else:
        low, _, high = statistics.quantiles(values, n=4)
    return f"{low:.{digits}f}-{high:.{digits}f}"


# Sidecar options per mode: what is measured against "off" (each its own process).
MODES = {
    "off": [],
    "metrics": ["--metrics-listen", "127.0.0.1:0"],
    "shadow": ["--shadow-snapshot", "{candidate}"],
    # Enforce carries the agent's caller token; the snapshot lists its hash.
    "caller-token": ["--require-caller-token"],
}
AGENT = "my-chatbot"
# Per call: $50 of daily budget lasts 500,000 calls, more than a run makes.
ESTIMATE_USD = 0.0001
# Where --unique-inputs puts the run's number (each ghz run gets its own).
RUN_MARK = "@RUN@"


def enforce_data(unique: bool) -> str:
    """The Enforce request as ghz's JSON: 1 KB of text, the same every call,
    or (``unique``) numbered at both ends by run and request number (plain
    numbers: a hex or base64-like token would make the injection scan
    decode it, which an ordinary unique prompt does not ask for)."""
    text = text_of(1024)
    if unique:
        head, tail = f"{RUN_MARK} {{{{.RequestNumber}}}} ", " {{.RequestNumber}}"
        text = head + text[: 1024 - len(head) - len(tail)] + tail
    return json.dumps({"agent_id": AGENT, "input": text, "estimated_cost_usd": ESTIMATE_USD})


def with_caller_token(snapshot: Path, out: Path) -> str:
    """Writes ``snapshot`` with a caller token hash for AGENT to ``out``;
    returns the token."""
    import yaml

    from pdp.engine import new_caller_token

    token, digest = new_caller_token()
    document = yaml.safe_load(snapshot.read_text(encoding="utf-8"))
    agents = document.setdefault("agents", [])
    agent = next((a for a in agents if AGENT in (a.get("id"), a.get("name"))), None)
    if agent is None:
        agent = {"id": AGENT}
        agents.append(agent)
    agent["callerTokens"] = [{"sha256": digest}]
    out.write_text(json.dumps(document), encoding="utf-8")
    return token


def mode_list(value: str) -> list[str]:
    modes = [m.strip() for m in value.split(",") if m.strip()]
    unknown = [m for m in modes if m not in MODES]
    if unknown or not modes:
        raise argparse.ArgumentTypeError(f"modes are {', '.join(MODES)}; got {value!r}")
    return ["off", *(m for m in modes if m != "off")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=15, help="rounds (default 15)")
    parser.add_argument(
        "--calls",
        type=int,
        default=1000,
        help=f"calls per concurrency-1 run; runs at concurrency {MANY} make 4x as many "
        "(default 1000)",
    )
    parser.add_argument(
        "--snapshot",
        type=Path,
        default=REPO / "examples" / "policies.yaml",
        help="snapshot the sidecar serves (default examples/policies.yaml)",
    )
    parser.add_argument(
        "--unique-inputs",
        action="store_true",
        help="every Enforce carries a different text (numbered at both ends)",
    )
    parser.add_argument(
        "--baseline",
        metavar="DIR",
        type=Path,
        help="also run a sidecar from this checkout (with its .venv) in every round, "
        "reported as mode 'baseline'",
    )
    parser.add_argument(
        "--modes",
        type=mode_list,
        default=["off"],
        help="comma-separated: off, metrics (--metrics-listen), shadow (--shadow-snapshot with "
        "a copy of the snapshot, so every request is decided twice), caller-token "
        "(--require-caller-token, Enforce sends the token); each is a sidecar of its "
        "own, measured in every round (default off)",
    )
    args = parser.parse_args()
    if args.baseline:
        if not (args.baseline / ".venv" / "bin" / "python").exists():
            parser.error(f"--baseline: no {args.baseline / '.venv/bin/python'}")
        args.modes.append("baseline")
    ghz = ghz_binary()
    enforce = enforce_data(args.unique_inputs)
    print(describe_machine())
    print(f"command: {shlex.join([Path(sys.executable).name, *sys.argv])}", flush=True)
    rounds: list[dict[str, Result]] = []
    sidecars: dict[str, PdpProcess] = {}
    with tempfile.TemporaryDirectory() as tmp:
        protoset = Path(tmp) / "services.protoset"
        write_protoset(protoset)
        candidate = Path(tmp) / "candidate.yaml"
        candidate.write_bytes(args.snapshot.read_bytes())
        try:
            runs: dict[str, list[str]] = {}
            for mode in args.modes:
                state = Path(tmp) / mode
                state.mkdir()
                extra = [a.format(candidate=candidate) for a in MODES.get(mode, [])]
                snapshot = args.snapshot.resolve()
                metadata: dict[str, str] | None = None
                if mode == "caller-token":
                    snapshot = state / "snapshot.json"
                    token = with_caller_token(args.snapshot, snapshot)
                    metadata = {"x-pdp-caller-token": token}
                server = [*sidecar_args(snapshot, state), *extra]
                # A checkout's python runs the pdp of its working directory.
                home = args.baseline.resolve() if mode == "baseline" else None
                python = str(home / ".venv" / "bin" / "python") if home else None
                sidecars[mode] = PdpProcess(server, python=python, cwd=str(home) if home else None)
                address = sidecars[mode].address
                print(
                    f"sidecar ({mode}): "
                    f"{shlex.join([python or Path(sys.executable).name, '-m', 'pdp', *server])}",
                    flush=True,
                )

                def command(
                    call: str,
                    concurrency: int,
                    calls: int,
                    address: str = address,
                    metadata: dict[str, str] | None = metadata,
                ) -> list[str]:
                    data = enforce if call == ENFORCE else "{}"
                    sent = metadata if call == ENFORCE else None
                    return ghz_command(ghz, protoset, address, call, data, concurrency, calls, sent)

                runs[f"{mode}:h1"] = command(HEALTH, 1, args.calls)
                runs[f"{mode}:e1"] = command(ENFORCE, 1, args.calls)
                runs[f"{mode}:hN"] = command(HEALTH, MANY, args.calls * 4)
                runs[f"{mode}:eN"] = command(ENFORCE, MANY, args.calls * 4)
            shown = shlex.join(runs["off:e1"]).replace(shlex.quote(enforce), "'{...1 KB...}'")
            started = 0

            def run(key: str) -> Result:
                nonlocal started
                started += 1
                command = [a.replace(RUN_MARK, str(started)) for a in runs[key]]
                return run_ghz(command, sidecars[key.split(":")[0]].proc.pid)

            print(
                f"load: {shown}  (the same for {HEALTH} with '{{}}', and both at {MANY})",
                flush=True,
            )
            for mode in args.modes:  # warm both paths up; not recorded
                for key in ("h1", "e1"):
                    run(f"{mode}:{key}")
            for index in range(args.rounds):
                # Alternate which goes first, so neither always follows the other.
                order = ("h1", "e1", "hN", "eN") if index % 2 == 0 else ("e1", "h1", "eN", "hN")
                modes = args.modes if index % 2 == 0 else list(reversed(args.modes))
                rounds.append({f"{m}:{key}": run(f"{m}:{key}") for m in modes for key in order})
                print(".", end="", file=sys.stderr, flush=True)
            print(file=sys.stderr)
        finally:
            for sidecar in sidecars.values():
                sidecar.stop()
    for mode in args.modes:
        report(
            [
                {k.split(":")[1]: r for k, r in rnd.items() if k.startswith(f"{mode}:")}
                for rnd in rounds
            ],
            args,
            mode,
        )
    if len(args.modes) > 1:
        report_modes(rounds, args.modes)


def report(rounds: list[dict[str, Result]], args: argparse.Namespace, mode: str = "off") -> None:
    def values(key: str, attr: str) -> list[float]:
        return [getattr(r[key], attr) for r in rounds]

    def ratios(attr: str, enforce: str, health: str) -> list[float]:
        return [getattr(r[enforce], attr) / getattr(r[health], attr) for r in rounds]

    p50, p99 = ratios("p50", "e1", "h1"), ratios("p99", "e1", "h1")
    rps = ratios("rps", "eN", "hN")
    print(
        f"{args.rounds} rounds of {args.calls} calls at concurrency 1 and {args.calls * 4} at "
        f"{MANY}, health and Enforce back to back; median over rounds (middle half in brackets)"
    )
    print(f"snapshot: {args.snapshot}; mode: {mode}")
    print(
        f"concurrency 1   health  p50 {median(values('h1', 'p50')):6.0f} us"
        f"   p99 {median(values('h1', 'p99')):6.0f} us"
    )
    print(
        f"                enforce p50 {median(values('e1', 'p50')):6.0f} us"
        f"   p99 {median(values('e1', 'p99')):6.0f} us"
    )
    print(
        f"                ratio   p50 {median(p50):6.2f}x [{spread(p50)}]"
        f"   p99 {median(p99):6.2f}x [{spread(p99)}]"
    )
    print(
        f"concurrency {MANY}  health  {median(values('hN', 'rps')):6.0f} calls/s"
        f"   enforce {median(values('eN', 'rps')):6.0f} calls/s"
    )
    print(f"                ratio   {median(rps):6.2f}x [{spread(rps)}]")
    for key, label in (("1", "concurrency 1  "), ("N", f"concurrency {MANY} ")):
        health, enforce = values(f"h{key}", "cpu_us"), values(f"e{key}", "cpu_us")
        extra = [e - h for e, h in zip(enforce, health, strict=True)]
        loop_h, loop_e = values(f"h{key}", "loop_cpu_us"), values(f"e{key}", "loop_cpu_us")
        loop_extra = [e - h for e, h in zip(loop_e, loop_h, strict=True)]
        print(
            f"{label} sidecar CPU per call: health {median(health):4.0f} us"
            f"   enforce {median(enforce):4.0f} us   enforce - health {median(extra):4.0f} us"
            f" [{spread(extra, 0)}]"
        )
        print(
            f"                of which the event-loop thread: health {median(loop_h):4.0f} us"
            f"   enforce {median(loop_e):4.0f} us   enforce - health {median(loop_extra):4.0f} us"
            f" [{spread(loop_extra, 0)}]"
        )


def report_modes(rounds: list[dict[str, Result]], modes: list[str]) -> None:
    """Each mode's Enforce-to-health ratio over the same round's ratio with
    everything off: the cost of the mode, drift cancelled twice."""
    print("overhead over off (median over rounds of ratio_mode / ratio_off - 1):")
    for mode in modes[1:]:

        def overhead(attr: str, enforce: str, health: str, mode: str = mode) -> list[float]:
            return [
                (getattr(r[f"{mode}:{enforce}"], attr) / getattr(r[f"{mode}:{health}"], attr))
                / (getattr(r[f"off:{enforce}"], attr) / getattr(r["off:" + health], attr))
                - 1
                for r in rounds
            ]

        p50 = overhead("p50", "e1", "h1")
        p99 = overhead("p99", "e1", "h1")
        rps = [-x for x in overhead("rps", "eN", "hN")]  # less throughput is a cost
        # Enforce's CPU per call beyond the health check's, over off's.
        cpu = [
            (r[f"{mode}:e1"].cpu_us or 0.0)
            - (r[f"{mode}:h1"].cpu_us or 0.0)
            - ((r["off:e1"].cpu_us or 0.0) - (r["off:h1"].cpu_us or 0.0))
            for r in rounds
        ]
        target = (
            "(this checkout is cheaper by what is positive)"
            if mode == "baseline"
            else "(target: each at most +10%)"
        )
        print(
            f"  {mode:12} p50 {median(p50):+6.1%} [{spread(p50)}]   p99 {median(p99):+6.1%}"
            f"   throughput cost {median(rps):+6.1%}   CPU per Enforce {median(cpu):+4.0f} us"
            f" [{spread(cpu, 0)}]   {target}"
        )


if __name__ == "__main__":
    main()
