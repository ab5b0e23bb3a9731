"""Policy tests and `pdp eval` with custom validators: no call is made; a
case gives its validators' answers, a case that does not is told which one
asks, and plain http to loopback needs the same flag as the sidecar."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from pdp.policytest import TestFileError, load_test_file
from tests._process import run_pdp

SNAPSHOT = """\
agents: [{id: billing-bot}]
policies:
  - name: Refund Limits
    id: refund-limits
    policyType: custom_validator
    enforcementMode: block
    ruleDefinition: {url: "URL", secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}
"""


def write_snapshot(tmp_path: Path, url: str = "https://validator.internal/check") -> Path:
    path = tmp_path / "snapshot.yaml"
    path.write_text(SNAPSHOT.replace("URL", url), encoding="utf-8")
    return path


def write_tests(tmp_path: Path, snapshot: Path, cases: str) -> Path:
    path = tmp_path / "refunds.test.yaml"
    path.write_text(f"snapshot: {snapshot}\ntests:\n" + textwrap.dedent(cases), encoding="utf-8")
    return path


def test_cases_give_their_validators_answers(tmp_path: Path) -> None:
    tests = write_tests(
        tmp_path,
        write_snapshot(tmp_path),
        """
        - name: a denial fires the policy
          agent: billing-bot
          input: refund
          validators: {Refund Limits: {allow: false, message: needs a manager}}
          expect:
            decision: BLOCK
            violations: [{policy: Refund Limits, message_contains: needs a manager}]
        - name: an answer by policy id that allows
          agent: billing-bot
          input: refund
          validators: {refund-limits: {allow: true}}
          expect: {decision: ALLOW, violations: []}
        - name: a failure fails closed
          agent: billing-bot
          input: refund
          validators: {Refund Limits: {failure: no answer within 200 ms}}
          expect:
            decision: BLOCK
            violations: [{policy: custom_validator, message_contains: failing closed}]
        """,
    )
    result = run_pdp("test", str(tests))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 passed, 0 failed" in result.stdout


def test_a_case_without_the_answer_is_told_which_validator_asks(tmp_path: Path) -> None:
    tests = write_tests(
        tmp_path,
        write_snapshot(tmp_path),
        """
        - name: no answer given
          agent: billing-bot
          input: refund
          expect: {decision: ALLOW}
        """,
    )
    result = run_pdp("test", str(tests))
    assert result.returncode == 1
    assert "policy 'Refund Limits' asks its custom validator" in result.stdout


@pytest.mark.parametrize(
    ("answer", "complaint"),
    [
        ("{allow: true, failure: x}", "give allow (with an optional message) or failure"),
        ("{failure: x, message: y}", "a failure has no message"),
        ("{allow: yes please}", "expected true or false"),
        ("{deny: true}", "unknown key(s) ['deny']"),
    ],
)
def test_malformed_answers_name_the_place(tmp_path: Path, answer: str, complaint: str) -> None:
    tests = write_tests(
        tmp_path,
        write_snapshot(tmp_path),
        f"- {{name: c, agent: billing-bot, validators: {{V: {answer}}},"
        " expect: {decision: ALLOW}}\n",
    )
    with pytest.raises(TestFileError) as raised:
        load_test_file(tests)
    assert "validators.V" in str(raised.value)
    assert complaint in str(raised.value)


def test_loopback_http_needs_the_flag_offline_too(tmp_path: Path) -> None:
    snapshot = write_snapshot(tmp_path, "http://127.0.0.1:8080/check")
    refused = run_pdp("check", str(snapshot))
    assert refused.returncode == 1 and "--allow-insecure-validators" in refused.stderr
    assert run_pdp("check", str(snapshot), "--allow-insecure-validators").returncode == 0
    tests = write_tests(
        tmp_path,
        snapshot,
        "- {name: c, agent: billing-bot, validators: {Refund Limits: {allow: true}},"
        " expect: {decision: ALLOW}}\n",
    )
    assert run_pdp("test", str(tests)).returncode == 2
    assert run_pdp("test", str(tests), "--allow-insecure-validators").returncode == 0


def test_pdp_eval_calls_no_validator_and_says_so(tmp_path: Path) -> None:
    result = run_pdp("eval", "--snapshot", str(write_snapshot(tmp_path)), "--agent", "billing-bot")
    assert result.returncode == 0, result.stderr
    explained = json.loads(result.stdout)
    assert explained["decision"] == "BLOCK"
    (policy,) = explained["policies"]
    assert policy["result"] == "fired"
    assert "not called: an explanation makes no calls" in policy["reason"]
