"""`pdp eval`: one decision against a snapshot file, explained as JSON."""

from __future__ import annotations

import json
from pathlib import Path

from tests._process import run_pdp
from tests.conftest import EXAMPLE_SNAPSHOT


def test_eval_prints_the_decision_and_every_policy() -> None:
    result = run_pdp(
        "eval",
        "--snapshot",
        str(EXAMPLE_SNAPSHOT),
        "--agent",
        "my-chatbot",
        "--input",
        "list the files",
        "--tool",
        "shell",
        "--metadata",
        "env=prod",
        "--cost",
        "0.5",
        "--now",
        "2026-03-15T12:00:00Z",
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["decision"] == "BLOCK" and data["revision"] == 1
    assert data["agent"]["name"] == "my-chatbot"
    results = {p["name"]: p for p in data["policies"]}
    assert len(results) == 5
    shell = results["No Shell In Production"]
    assert shell["result"] == "fired" and shell["severity"] == "critical"
    assert "not allowed in production" in shell["reason"]
    assert results["Block Prompt Injection"]["result"] == "not_fired"
    assert [v["policyName"] for v in data["violations"]] == ["No Shell In Production"]


def test_eval_shows_a_paused_agent_and_masked_output() -> None:
    base = ["eval", "--snapshot", str(EXAMPLE_SNAPSHOT)]
    paused = json.loads(run_pdp(*base, "--agent", "support-bot", "--input", "hi").stdout)
    assert paused["decision"] == "AGENT_PAUSED"
    assert {p["result"] for p in paused["policies"]} == {"not_evaluated"}
    masked = run_pdp(*base, "--agent", "my-chatbot", "--output", "SSN 123-45-6789")
    data = json.loads(masked.stdout)
    assert data["maskedOutput"] == "SSN ***-**-6789"
    assert "123-45-6789" not in json.dumps(data["violations"])


def test_eval_refuses_bad_arguments_naming_them(tmp_path: Path) -> None:
    base = ["eval", "--snapshot", str(EXAMPLE_SNAPSHOT), "--agent", "a"]
    for args, complaint in (
        (["--metadata", "novalue"], "KEY=VALUE"),
        (["--cost", "nan"], "finite"),
        (["--cost", "-1"], "finite"),
        (["--now", "yesterday"], "RFC 3339"),
    ):
        result = run_pdp(*base, *args)
        assert result.returncode == 2 and complaint in result.stderr, (args, result.stderr)
    missing = run_pdp("eval", "--snapshot", str(tmp_path / "no.yaml"), "--agent", "a")
    assert missing.returncode == 2 and "cannot read" in missing.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("policies: [{name: x, policyType: nope}]\n")
    invalid = run_pdp("eval", "--snapshot", str(bad), "--agent", "a")
    assert invalid.returncode == 1 and "policies[0].policyType" in invalid.stderr
