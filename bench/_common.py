"""What the benchmarks share: where the repository and the labelled data
are, deterministic text, a fixed spend view, timing, percentiles, and a
description of the machine. Child processes are started with the tests'
launcher (``tests/_process.py``).

A script in bench/ runs with bench/ first on ``sys.path``; each one puts the
repository root there too before importing ``bench`` or ``tests``."""

from __future__ import annotations

import os
import platform
import random
import statistics
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path

from pdp.engine import CounterKey

__all__ = [
    "REPO",
    "WORDS",
    "FixedSpend",
    "cpu_seconds",
    "describe_machine",
    "median_us",
    "percentile",
    "shared_data_dir",
    "text_of",
]

REPO = Path(__file__).resolve().parent.parent

WORDS = [
    "the",
    "report",
    "shows",
    "quarterly",
    "revenue",
    "growth",
    "across",
    "regions",
    "while",
    "customer",
    "support",
    "tickets",
    "declined",
    "after",
    "the",
    "new",
    "onboarding",
    "flow",
    "was",
    "released",
    "to",
    "all",
    "users",
    "please",
    "summarise",
    "the",
    "main",
    "findings",
    "and",
    "suggest",
    "three",
    "follow",
    "up",
    "actions",
    "for",
    "the",
    "team",
]


def shared_data_dir() -> Path:
    """The labelled data sets: ``$PDP_SHARED/data``, else ``<repo>/../shared/data``
    (it may not exist)."""
    shared = os.environ.get("PDP_SHARED")
    return (Path(shared) if shared else REPO.parent / "shared") / "data"


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` (and its threads) so far,
    from /proc (in clock ticks, usually 10 ms)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def text_of(size: int, seed: int = 7) -> str:
    """``size`` characters of benign English-like words, the same every run."""
    rng = random.Random(seed)
    out: list[str] = []
    length = 0
    while length < size:
        word = rng.choice(WORDS)
        out.append(word)
        length += len(word) + 1
    return " ".join(out)[:size]


class FixedSpend:
    """A usage view (the engine's UsageView) that says every agent has spent
    ``amount`` whatever the window, and counts no calls."""

    def __init__(self, amount: float = 0.0) -> None:
        self.amount = amount

    def spent_since(self, agent_id: str, since: datetime) -> float:
        return self.amount

    def calls_since(self, key: CounterKey, since: int) -> int:
        return 0

    def nth_call_since(self, key: CounterKey, since: int, n: int) -> int | None:
        return None


_EVICT_BYTES = 8 << 20


def median_us(fn: Callable[[], object], runs: int, *, batch: int = 1, evict: bool = False) -> float:
    """Median microseconds per call of ``fn`` over ``runs`` samples, after a
    warm-up. A sample times ``batch`` calls (for calls too short to time
    alone); ``evict`` writes 8 MB of other memory before each sample, as a
    server's network stack and event loop do between two requests."""
    for _ in range(min(50, runs)):
        fn()
    source = bytearray(_EVICT_BYTES if evict else 0)
    target = bytearray(_EVICT_BYTES if evict else 0)
    samples = []
    for _ in range(runs):
        if evict:
            target[:] = source
        start = time.perf_counter_ns()
        for _ in range(batch):
            fn()
        samples.append((time.perf_counter_ns() - start) / batch)
    return statistics.median(samples) / 1000


def percentile(values: Sequence[float], pct: float) -> float:
    """The nearest-rank ``pct``th percentile of ``values``."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def describe_machine() -> str:
    """One line: CPU, cores, OS, Python, grpcio and the sidecar's event loop."""
    import grpc
    import uvloop

    if os.environ.get("PDP_EVENT_LOOP", "uvloop").strip().lower() == "asyncio":
        loop = "asyncio (PDP_EVENT_LOOP=asyncio)"
    else:
        loop = f"uvloop {uvloop.__version__}"  # type: ignore[attr-defined]
    return (
        f"machine: {_cpu_model()}, {os.cpu_count()} cores, {platform.system()} "
        f"{platform.release()}; Python {platform.python_version()}, grpcio {grpc.__version__}, "
        f"pdp serve's event loop: {loop}"
    )
