"""The peer bench (bench/peers/) stays runnable without building a peer:
what it reads from ghz and /proc is parsed from recorded samples
(tests/bench_samples/peers/), its table is rendered from known samples, and
the requests it sends each peer say the same thing."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pytest

from bench.peers import _report, _servers, _tools
from bench.peers._report import BASELINE, Load, Sample

SAMPLES = Path(__file__).resolve().parent / "bench_samples" / "peers"


@pytest.mark.parametrize("name", ["run", "_embedded", "_report", "_servers", "_tools"])
def test_every_peer_bench_module_imports(name: str) -> None:
    module = importlib.import_module(f"bench.peers.{name}")
    assert module.__doc__


def test_a_ghz_report_from_a_reflected_peer_is_read() -> None:
    load = _report.parse_ghz((SAMPLES / "ghz_opa_check.json").read_text())
    assert load == Load(p50=587.751, p99=27773.738, rps=500.4495427031093, sent=20)


def test_a_ghz_report_with_failed_calls_is_refused() -> None:
    with pytest.raises(ValueError, match="looking for beginning of object key"):
        _report.parse_ghz((SAMPLES / "ghz_opa_invalid.json").read_text())


def test_a_ghz_report_with_a_non_ok_status_is_refused() -> None:
    report = json.loads((SAMPLES / "ghz_opa_check.json").read_text())
    report["statusCodeDistribution"] = {"OK": 10, "PermissionDenied": 8}
    with pytest.raises(ValueError, match="PermissionDenied"):
        _report.parse_ghz(json.dumps(report))


def test_cpu_time_and_rss_are_read_from_proc() -> None:
    assert _report.parse_stat_ticks((SAMPLES / "proc_stat.txt").read_text()) == 3
    # A command name with spaces and a parenthesis does not shift the fields.
    stat = "42 (a) b (c) S 1 1 1 0 -1 0 0 0 0 0 250 17 0 0 20 0 1 0 5 0 0\n"
    assert _report.parse_stat_ticks(stat) == 267
    assert _report.parse_status_rss((SAMPLES / "proc_status.txt").read_text()) == 28888 * 1024
    with pytest.raises(ValueError, match="VmRSS"):
        _report.parse_status_rss("Name:\tzombie\nState:\tZ (zombie)\n")


def test_this_process_is_read_live() -> None:
    import os

    assert _report.cpu_ticks(os.getpid()) > 0
    assert _report.rss_of(os.getpid()) > 10 * 2**20


def _sample(p50: float, rps: float, cpu_us: float, per_call: int = 1) -> Sample:
    return Sample(
        latency=Load(p50=p50, p99=p50 * 4, rps=0.0, sent=100),
        load=Load(p50=0.0, p99=0.0, rps=rps, sent=1000),
        cpu_us=cpu_us,
        decisions_per_call=per_call,
    )


def test_rows_are_medians_with_per_round_ratios_to_pdp_unary() -> None:
    rounds = [
        {BASELINE: _sample(500, 2000, 300_000), "batch": _sample(1000, 500, 200_000, 20)},
        {BASELINE: _sample(1000, 1000, 300_000), "batch": _sample(1500, 300, 180_000, 20)},
        {BASELINE: _sample(600, 1800, 330_000), "batch": _sample(900, 450, 210_000, 20)},
    ]
    unary, batch = _report.rows_of(rounds, {BASELINE: 80 * 2**20})
    assert (unary.name, unary.p50, unary.throughput, unary.cpu_us) == (BASELINE, 600, 1800, 300)
    assert (unary.ratio_p50, unary.ratio_throughput, unary.ratio_cpu) == (1.0, 1.0, 1.0)
    # Decisions, not calls: 20 per batch call.
    assert batch.throughput == 9000 and batch.cpu_us == 10.0
    # Ratios are per round, then the median: 2.0, 1.5, 1.5 for p50.
    assert batch.ratio_p50 == 1.5
    assert batch.ratio_throughput == pytest.approx(5.0)  # 5.0, 6.0, 5.0
    assert batch.ratio_cpu == pytest.approx(10.5 / 330)  # per round: 10/300, 9/300, 10.5/330
    table = _report.render_table([unary, batch])
    assert table.splitlines()[0].startswith("| | p50 | p99 | decisions/s")
    assert "| pdp unary | 600 µs (1.00x) | 2,400 µs (1.00x) | 1,800 (1.00x)" in table
    assert "| 80 MiB |" in table and "| batch | 1,000 µs (1.50x)" in table


def test_every_peer_is_sent_the_same_call() -> None:
    for _, call, _ in _servers.CASES:
        assert json.loads(_servers.opa_message(call)["attributes"]["request"]["http"]["body"]) == (
            call
        )
        resource = _servers.cerbos_message(call)["resources"][0]["resource"]
        assert {"agent_id": call["agent_id"], **resource["attr"]} == call
        assert _servers.pdp_batch_message(call)["requests"] == [call] * _servers.BATCH


def test_the_pinned_versions_are_read_from_go_mod() -> None:
    opa = (_tools.PEERS_DIR / "opa" / "go.mod").read_text()
    assert _tools.pinned_version(opa, "github.com/open-policy-agent/opa").startswith("v1.22.")
    cerbos = (_tools.PEERS_DIR / "cerbos" / "go.mod").read_text()
    assert _tools.pinned_version(cerbos, "github.com/cerbos/cerbos") == "v0.55.0"
    with pytest.raises(ValueError, match=r"requires no example\.com/x"):
        _tools.pinned_version(opa, "example.com/x")


def test_a_peer_that_cannot_be_built_is_reported_not_raised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_tools, "TOOLS", tmp_path / "tools")
    monkeypatch.setenv("PATH", str(tmp_path))  # no go here
    built = _tools.build("cerbos")
    assert built.binary is None and built.error == "no `go` on PATH"
    assert (built.module, built.version) == ("github.com/cerbos/cerbos", "v0.55.0")
