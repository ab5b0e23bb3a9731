"""The benchmarks stay runnable: every module in bench/ imports, and what
each one reads from a tool or a data set is parsed from a recorded sample
(tests/bench_samples/), so a change of format fails here, not in a long run."""

from __future__ import annotations

import importlib
import json
import os
import time
from pathlib import Path

import pytest

from bench import _common, bench_pause_propagation, bench_sidecar, injection_quality, pii_quality

SAMPLES = Path(__file__).resolve().parent / "bench_samples"
MODULES = sorted(p.stem for p in (_common.REPO / "bench").glob("*.py") if p.stem != "__init__")


@pytest.mark.parametrize("name", MODULES)
def test_every_bench_module_imports(name: str) -> None:
    module = importlib.import_module(f"bench.{name}")
    assert module.__doc__, f"bench/{name}.py says what it measures in its docstring"
    if not name.startswith("_"):
        assert callable(module.main)


def test_a_ghz_report_is_read() -> None:
    result = bench_sidecar.parse_ghz_report((SAMPLES / "ghz_enforce.json").read_text())
    assert result == bench_sidecar.Result(p50=751.969, p99=2923.369, rps=500.65551104202683)


def test_a_ghz_report_with_failed_calls_is_refused() -> None:
    with pytest.raises(ValueError, match="agent_id: required"):
        bench_sidecar.parse_ghz_report((SAMPLES / "ghz_enforce_invalid.json").read_text())


def test_the_key_printed_by_create_key_is_read() -> None:
    output = (SAMPLES / "create_key.txt").read_text()
    assert bench_pause_propagation.created_key(output).startswith("pdp_REDACTED")
    with pytest.raises(ValueError, match="no API key"):
        bench_pause_propagation.created_key("cannot start: database is locked\n")


def test_presidio_records_are_read_and_scored() -> None:
    records = pii_quality.load_records(SAMPLES / "presidio_sample.json")
    # Entities of types pdp does not detect (ORGANIZATION) are left out.
    assert [len(r.spans) for r in records] == [2, 1, 0]
    assert records[1].spans[0] == ("ssn", 11, 22)
    scores = pii_quality.score(records, ("credit_card", "ssn", "email"))
    for pii_type in ("credit_card", "ssn", "email"):
        assert (scores[pii_type].support, scores[pii_type].tp, scores[pii_type].fp) == (1, 1, 0)
        assert scores[pii_type].recall == 1.0
    assert pii_quality.below_floor("presidio", scores) == []


def test_piguard_files_are_read_and_scored() -> None:
    directory = SAMPLES / "injection"
    benign = injection_quality.load_not_inject(directory)
    assert len(benign) == 4 and benign[0].startswith("Can I ignore")
    assert injection_quality.flagged(injection_quality.builtin_matcher(), benign) == []
    rows = injection_quality.load_labelled(directory)
    assert [(r.injection, r.source) for r in rows] == [
        (True, "sample-injections"),
        (False, "sample-benign"),
    ]
    scores = injection_quality.score(injection_quality.builtin_matcher(), rows)
    assert (scores.true_positives, scores.false_positives) == (1, 0)


def test_unique_enforce_inputs_differ_by_run_and_request_in_plain_numbers() -> None:
    same = json.loads(bench_sidecar.enforce_data(unique=False))
    template = bench_sidecar.enforce_data(unique=True)
    unique = json.loads(template)
    assert same["input"] == _common.text_of(1024)
    text = unique["input"]
    assert text.startswith(f"{bench_sidecar.RUN_MARK} {{{{.RequestNumber}}}} ")
    assert text.endswith(" {{.RequestNumber}}") and len(text) == 1024
    # As ghz fills it in: still about 1 KB, and numbers only (no token the
    # injection scan would decode as hex or base64).
    filled = text.replace(bench_sidecar.RUN_MARK, "12").replace("{{.RequestNumber}}", "345")
    assert 980 <= len(filled) <= 1024 and filled.split()[:2] == ["12", "345"]
    # A budget the bench never exhausts: every call is allowed and charged.
    assert 50.0 / unique["estimated_cost_usd"] >= 100_000


def test_the_cpu_time_of_a_process_is_read() -> None:
    before = _common.cpu_seconds(os.getpid())
    deadline = time.process_time() + 0.05
    while time.process_time() < deadline:
        pass
    assert _common.cpu_seconds(os.getpid()) - before >= 0.02


def test_common_helpers() -> None:
    assert len(_common.text_of(1024)) == 1024 and _common.text_of(64) == _common.text_of(64)
    assert _common.percentile([5.0, 1.0, 3.0, 2.0, 4.0], 50) == 3.0
    assert _common.percentile([1.0, 2.0], 99) == 2.0
    assert _common.median_us(lambda: None, 5, batch=10) >= 0
    assert "cores" in _common.describe_machine()
