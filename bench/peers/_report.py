"""What the peer bench reads and prints, kept free of processes so that
tests can run it on recorded samples: ghz's JSON report, a process's CPU
time and RSS from /proc, and the table of medians and ratios."""

from __future__ import annotations

import json
import os
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "BASELINE",
    "Load",
    "Row",
    "Sample",
    "cpu_ticks",
    "parse_ghz",
    "parse_stat_ticks",
    "parse_status_rss",
    "render_table",
    "rows_of",
    "rss_of",
]

BASELINE = "pdp unary"


@dataclass(frozen=True, slots=True)
class Load:
    """One ghz run: latency percentiles (µs, per call), calls per second, and
    the calls it sent (warm-up calls included: they cost the server CPU)."""

    p50: float
    p99: float
    rps: float
    sent: int


def parse_ghz(text: str) -> Load:
    """ghz's ``--format json`` report. Raises ValueError when a call failed:
    the figures would not measure what they say."""
    report: dict[str, Any] = json.loads(text)
    errors = report.get("errorDistribution") or {}
    if errors:
        raise ValueError(f"calls failed: {errors}")
    codes = {k: v for k, v in (report.get("statusCodeDistribution") or {}).items() if k != "OK"}
    if codes:
        raise ValueError(f"calls failed: {codes}")
    latency = {e["percentage"]: e["latency"] / 1000 for e in report["latencyDistribution"]}
    return Load(
        p50=latency[50], p99=latency[99], rps=float(report["rps"]), sent=report["options"]["total"]
    )


def parse_stat_ticks(stat: str) -> int:
    """utime + stime (clock ticks, every thread of the process) from the text
    of ``/proc/<pid>/stat``. The command name may hold spaces and
    parentheses, so fields are counted from the last ')'."""
    fields = stat.rsplit(")", 1)[1].split()
    # After ')': state is field 3 of proc(5), so utime (14) and stime (15)
    # are at 11 and 12.
    return int(fields[11]) + int(fields[12])


def parse_status_rss(status: str) -> int:
    """Resident set size in bytes, from the text of ``/proc/<pid>/status``."""
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            value, unit = line.split()[1:3]
            if unit != "kB":
                raise ValueError(f"VmRSS in unexpected unit {unit!r}")
            return int(value) * 1024
    raise ValueError("no VmRSS line (has the process exited?)")


def cpu_ticks(pid: int) -> int:
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        return parse_stat_ticks(f.read())


def rss_of(pid: int) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        return parse_status_rss(f.read())


TICK_US = 1e6 / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True, slots=True)
class Sample:
    """One target in one round: latency at concurrency 1, throughput at the
    concurrency of the load, the server's CPU time over that load, and how
    many decisions each call carries."""

    latency: Load
    load: Load
    cpu_us: float
    decisions_per_call: int = 1

    @property
    def throughput(self) -> float:
        """Decisions per second."""
        return self.load.rps * self.decisions_per_call

    @property
    def cpu_per_decision(self) -> float:
        return self.cpu_us / (self.load.sent * self.decisions_per_call)


@dataclass(frozen=True, slots=True)
class Row:
    name: str
    p50: float
    p99: float
    throughput: float
    cpu_us: float
    rss: int  # bytes
    # Medians of the per-round ratios to the baseline (drift in a round hits both).
    ratio_p50: float
    ratio_p99: float
    ratio_throughput: float
    ratio_cpu: float


def rows_of(rounds: Sequence[dict[str, Sample]], rss: dict[str, int]) -> list[Row]:
    """Medians over ``rounds`` per target (in the order of the first round's
    keys), each with its ratio to BASELINE taken round by round."""
    figures: dict[str, Callable[[Sample], float]] = {
        "p50": lambda s: s.latency.p50,
        "p99": lambda s: s.latency.p99,
        "throughput": lambda s: s.throughput,
        "cpu": lambda s: s.cpu_per_decision,
    }

    def med(name: str, figure: str) -> float:
        return float(statistics.median(figures[figure](r[name]) for r in rounds))

    def ratio(name: str, figure: str) -> float:
        of = figures[figure]
        return float(statistics.median(of(r[name]) / of(r[BASELINE]) for r in rounds))

    return [
        Row(
            name=name,
            p50=med(name, "p50"),
            p99=med(name, "p99"),
            throughput=med(name, "throughput"),
            cpu_us=med(name, "cpu"),
            rss=rss.get(name, 0),
            ratio_p50=ratio(name, "p50"),
            ratio_p99=ratio(name, "p99"),
            ratio_throughput=ratio(name, "throughput"),
            ratio_cpu=ratio(name, "cpu"),
        )
        for name in rounds[0]
    ]


def render_table(rows: Sequence[Row]) -> str:
    """A Markdown table: each figure with its ratio to pdp unary."""
    lines = [
        "| | p50 | p99 | decisions/s | CPU µs per decision | RSS |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row.name} "
            f"| {row.p50:,.0f} µs ({row.ratio_p50:.2f}x) "
            f"| {row.p99:,.0f} µs ({row.ratio_p99:.2f}x) "
            f"| {row.throughput:,.0f} ({row.ratio_throughput:.2f}x) "
            f"| {row.cpu_us:,.1f} ({row.ratio_cpu:.2f}x) "
            f"| {row.rss / 2**20:,.0f} MiB |"
        )
    return "\n".join(lines)
