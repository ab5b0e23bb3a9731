"""``bench/bench_embedded.py --parts`` times each stage of an embedded
Enforce with the servicer's own parts: it keeps working as they change."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import bench_embedded
from bench._common import REPO, text_of
from pdp.embedded import EmbeddedClient


async def test_every_stage_of_an_embedded_enforce_is_timed(tmp_path: Path) -> None:
    snapshot = str(REPO / "examples" / "policies.yaml")
    async with await EmbeddedClient.open(snapshot, state=str(tmp_path / "s.db")) as pdp:
        await pdp.enforce_policy(bench_embedded.AGENT, "hello", estimated_cost_usd=0.0)
        times = bench_embedded.parts(pdp, text_of(1024), runs=20)
    assert len(times) == 6
    assert all(us > 0 for us in times.values())
    build, checks, engine_and_checks, servicer, answer, whole = times.values()
    # Stages that run more work take longer by far (several microseconds).
    assert engine_and_checks > checks
    assert whole > servicer > checks
    assert whole > build
    assert whole > answer


def test_a_checkouts_figures_are_read_from_what_the_bench_printed() -> None:
    printed = (
        "machine: ...\ncommand: python bench/bench_embedded.py\n"
        "embedded Enforce, 1 KB, example snapshot: p50 28.6 us, p99 76.3 us over 20000 calls"
        " (goal: p50 <= 30 us)\n"
    )
    assert bench_embedded.read_figures(printed) == (28.6, 76.3)
    with pytest.raises(ValueError, match="no 'p50"):
        bench_embedded.read_figures("Traceback (most recent call last): ...")
