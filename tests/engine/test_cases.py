"""The data-driven engine cases: every case in ``cases/*.yaml`` is one test,
with id ``<file>::<case name>``, read by ``_case_loader``.

A case file holds a snapshot, a clock, recorded spend and a list of cases; each
case is one Enforce request, one Authorize question or one snapshot that must
be rejected, with what the engine must answer::

    name: pii_access               # optional; must equal the file name
    description: ...               # optional
    snapshot: {...}                # the document given to compile_snapshot
    now: "2026-03-15T12:00:00Z"    # the clock of enforce and authorize
    spend:                         # canonical agent id -> usage records
      agent-1: [{at: "2026-03-15T08:00:00Z", usd: 40}]
    history:                       # Enforce calls made before each case's request,
                                   # their charges applied as the server does
      - {at: "2026-03-15T11:59:00Z", request: {agent_id: agent-1}, repeat: 3, every: 1.5}
    cases:
      - name: ...                  # unique in the file; test id "pii_access::<name>"
        note: ...                  # optional: why the case expects what it does
        snapshot / policies / now / spend / history: ...   # optional overrides;
                                   # `policies` replaces only the snapshot's policies
        unknown_agents: allow      # optional: the snapshot's unknownAgents setting
        request: {agent_id, input, output, estimated_cost_usd, model, tool,
                  metadata, request_id, context: [{content, kind, source}]}
        answers:                   # custom validators' answers by policy name, given
          Entitlements: {allow: false, message: ...}   # when the engine asks
          Freeze Window: {failure: no answer within 200 ms}
        expect:
          decision: BLOCK
          violations:              # exact list in order; absent means none
            - {policy: <name>, policy_id, type, mode, severity, retry_after_ms,
               message_contains, message_excludes}
          masked_input: ...        # exact when given (null included)
          masked_output: ...
          pii: [{field, type, start, end}]   # exact, ordered by field and start
          agent: {id, name, known, paused, pause_reason, paused_since}
          revision: 7
          asked: [[Entitlements], [After Entitlements]]   # exact when given: the
                                   # validators asked, one list per consultation
      - name: ...
        authorize: {source, target, action}
        expect: {allowed: false, denial: no_grant, reason_contains, grant_expires_at}
      - name: ...
        expect_error:              # each must be among SnapshotError.errors
          - {path: "policies[0].policyType", message_contains: ...}
          - {path_prefix: "policies[", message_contains: cycle}

Message checks are case-insensitive substring checks.

Beyond what each case states, every Enforce case also checks that no PII value
the engine found appears in a violation message.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pdp.engine import (
    POLICY_TYPES,
    Answer,
    CompiledSnapshot,
    ContextItem,
    ContextKind,
    Decision,
    EnforceInput,
    FieldError,
    SnapshotError,
    ValidatorAnswer,
    ValidatorFailure,
    compile_snapshot,
)
from tests.engine._case_loader import (
    ABSENT,
    CASES_DIR,
    AuthorizeCheck,
    Case,
    CaseFileError,
    EnforceCheck,
    ErrorCheck,
    ExpectedError,
    ScriptedAnswer,
    load_all_cases,
    load_case_file,
)
from tests.engine._memory_usage import MemoryUsage

CASES = load_all_cases()

# Besides one file per policy type, named after it.
AREAS = {
    "chaining",
    "grants",
    "kill_switch",
    "modes",
    "reference_policies",
    "scoping",
    "snapshot_errors",
}


# -- running a case ---------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_engine_case(case: Case) -> None:
    if isinstance(case.check, ErrorCheck):
        _check_rejected(case, case.check)
        return
    snapshot = _compile(case)
    if isinstance(case.check, EnforceCheck):
        _check_enforce(case, snapshot, case.check)
    else:
        _check_authorize(case, snapshot, case.check)


def _compile(case: Case) -> CompiledSnapshot:
    try:
        return compile_snapshot(case.snapshot)
    except SnapshotError as exc:
        listed = "\n".join(f"  {error}" for error in exc.errors)
        pytest.fail(f"the snapshot was rejected:\n{listed}")


def _check_rejected(case: Case, check: ErrorCheck) -> None:
    with pytest.raises(SnapshotError) as raised:
        compile_snapshot(case.snapshot)
    got = raised.value.errors
    missing = [want for want in check.errors if not any(_matches(e, want) for e in got)]
    listed = "\n".join(f"  {error.path!r}: {error.message}" for error in got)
    assert not missing, f"expected errors not reported: {missing}\nreported:\n{listed}"


def _matches(error: FieldError, want: ExpectedError) -> bool:
    if want.path is not None and error.path != want.path:
        return False
    if want.path_prefix is not None and not error.path.startswith(want.path_prefix):
        return False
    return all(text.casefold() in error.message.casefold() for text in want.message_contains)


def _usage_after_history(case: Case, snapshot: CompiledSnapshot) -> MemoryUsage:
    usage = MemoryUsage(case.spend)
    for entry in case.history:
        for at in entry.times():
            decision = snapshot.enforce(EnforceInput(**entry.request), usage, at)
            assert isinstance(decision, Decision), "history requests consult no validator"
            assert not usage.apply(decision.charges)  # memory is the one authority
    return usage


def _check_enforce(case: Case, snapshot: CompiledSnapshot, check: EnforceCheck) -> None:
    assert case.now is not None
    request = dict(check.request)
    if "context" in request:
        request["context"] = tuple(
            ContextItem(
                item["content"],
                ContextKind(item.get("kind", "unspecified")),
                item.get("source", ""),
            )
            for item in request["context"]
        )
    usage = _usage_after_history(case, snapshot)
    outcome = snapshot.enforce(EnforceInput(**request), usage, case.now)
    asked: list[tuple[str, ...]] = []
    while not isinstance(outcome, Decision):
        names = tuple(call.policy_name for call in outcome.calls)
        asked.append(names)
        unscripted = [name for name in names if name not in check.answers]
        assert not unscripted, f"the engine asked the validators of {unscripted}: add answers"
        outcome = outcome.resume(
            {call.policy_id: _answer(check.answers[call.policy_name]) for call in outcome.calls}
        )
    decision = outcome
    problems: list[str] = []
    if check.asked is not None and tuple(asked) != check.asked:
        problems.append(f"validators asked {asked}, expected {list(check.asked)}")
    if decision.kind.name != check.decision:
        problems.append(f"decision {decision.kind.name}, expected {check.decision}")
    problems += _violation_problems(decision, check)
    for side, want in (("input", check.masked_input), ("output", check.masked_output)):
        got = decision.masked_input if side == "input" else decision.masked_output
        if want is not ABSENT and got != want:
            problems.append(f"masked_{side} {got!r}, expected {want!r}")
    if check.pii is not None:
        found = sorted(decision.pii_findings, key=lambda f: (f.field, f.start, f.end))
        got_pii = [(f.field, f.pii_type, f.start, f.end) for f in found]
        # A finding expected without a span matches any span.
        seen = [
            g if w[2] is not None else (*g[:2], None, None)
            for g, w in zip(got_pii, check.pii, strict=False)
        ]
        if len(got_pii) != len(check.pii) or seen != list(check.pii):
            problems.append(f"pii findings {got_pii}, expected {list(check.pii)}")
    for attribute, want_value in (check.agent or {}).items():
        got_value = getattr(decision.agent, attribute)
        if got_value != want_value:
            problems.append(f"agent.{attribute} {got_value!r}, expected {want_value!r}")
    if check.revision is not None and decision.snapshot_revision != check.revision:
        problems.append(f"revision {decision.snapshot_revision}, expected {check.revision}")
    problems += _leaked_pii(decision, check)
    assert not problems, "\n".join(problems) + "\n\nthe engine answered:\n" + _describe(decision)


def _answer(scripted: ScriptedAnswer) -> Answer:
    if scripted.failure is not None:
        return ValidatorFailure(scripted.failure)
    assert scripted.allow is not None
    return ValidatorAnswer(scripted.allow, scripted.message)


def _violation_problems(decision: Decision, check: EnforceCheck) -> list[str]:
    got, want = decision.violations, check.violations
    if [v.policy_name for v in got] != [w.policy for w in want]:
        return [
            f"violations from {[v.policy_name for v in got]}, expected {[w.policy for w in want]}"
        ]
    problems = []
    for v, w in zip(got, want, strict=True):
        pairs = (
            ("policy_id", v.policy_id, w.policy_id),
            ("type", v.policy_type, w.type),
            ("mode", v.mode.wire_name, w.mode),
            ("severity", v.severity.wire_name, w.severity),
            ("retry_after_ms", v.retry_after_ms, w.retry_after_ms),
        )
        problems += [
            f"{v.policy_name!r}: {key} {actual!r}, expected {expected!r}"
            for key, actual, expected in pairs
            if expected is not None and actual != expected
        ]
        message = v.message.casefold()
        problems += [
            f"{v.policy_name!r}: message {v.message!r} lacks {text!r}"
            for text in w.message_contains
            if text.casefold() not in message
        ]
        problems += [
            f"{v.policy_name!r}: message {v.message!r} contains {text!r}"
            for text in w.message_excludes
            if text.casefold() in message
        ]
    return problems


def _leaked_pii(decision: Decision, check: EnforceCheck) -> list[str]:
    """No PII value found by the engine may be repeated in a violation message."""
    problems = []
    for finding in decision.pii_findings:
        text = check.request.get(finding.field) or ""
        value = text[finding.start : finding.end]
        problems += [
            f"{v.policy_name!r}: message repeats the {finding.pii_type} value"
            for v in decision.violations
            if value and value in v.message
        ]
    return problems


def _describe(decision: Decision) -> str:
    lines = [f"  decision: {decision.kind.name}"]
    lines += [
        f"  violation: {v.policy_name!r} id={v.policy_id!r} type={v.policy_type}"
        f" mode={v.mode.wire_name} severity={v.severity.wire_name}"
        f" retry_after_ms={v.retry_after_ms}: {v.message}"
        for v in decision.violations
    ]
    lines.append(f"  masked_input: {decision.masked_input!r}")
    lines.append(f"  masked_output: {decision.masked_output!r}")
    lines += [f"  pii: {f.field} {f.pii_type} [{f.start}:{f.end}]" for f in decision.pii_findings]
    lines.append(f"  agent: {decision.agent}")
    return "\n".join(lines)


def _check_authorize(case: Case, snapshot: CompiledSnapshot, check: AuthorizeCheck) -> None:
    assert case.now is not None
    result = snapshot.authorize(check.source, check.target, check.action, case.now)
    got = (result.allowed, None if result.denial is None else result.denial.value)
    problems = []
    if got != (check.allowed, check.denial):
        problems.append(f"(allowed, denial) {got}, expected {(check.allowed, check.denial)}")
    problems += [
        f"reason {result.reason!r} lacks {text!r}"
        for text in check.reason_contains
        if text.casefold() not in result.reason.casefold()
    ]
    if check.grant_expires_at is not ABSENT and result.grant_expires_at != check.grant_expires_at:
        problems.append(
            f"grant_expires_at {result.grant_expires_at}, expected {check.grant_expires_at}"
        )
    assert not problems, "\n".join(problems) + f"\n\nthe engine answered: {result}"


# -- the case files themselves -------------------------------------------------


def test_case_files_cover_every_area_with_unique_ids() -> None:
    ids = [case.id for case in CASES]
    assert len(ids) == len(set(ids))
    assert {case.file for case in CASES} >= AREAS
    assert len(CASES) >= 100


@pytest.mark.parametrize("policy_type", POLICY_TYPES)
def test_every_policy_type_has_its_case_file(policy_type: str) -> None:
    path = CASES_DIR / f"{policy_type}.yaml"
    assert path.is_file(), f"the policy type {policy_type!r} has no case file {path}"
    cases = load_case_file(path)
    enforced = [
        case
        for case in cases
        if isinstance(case.check, EnforceCheck) and policy_type in _types_written(case)
    ]
    fired = [
        case for case in enforced if isinstance(case.check, EnforceCheck) and case.check.violations
    ]
    assert enforced, f"{path.name} enforces no request against a {policy_type} policy"
    assert fired, f"{path.name} has no case where a {policy_type} policy fires"
    rejected = [
        case
        for case in CASES
        if isinstance(case.check, ErrorCheck) and policy_type in _types_written(case)
    ]
    assert rejected, f"no case rejects an invalid {policy_type} policy"


def _types_written(case: Case) -> set[object]:
    policies = case.snapshot.get("policies")
    if not isinstance(policies, list):
        return set()
    return {policy.get("policyType") for policy in policies if isinstance(policy, dict)}


MALFORMED = {
    "misspelt expectation key": (
        "cases:\n- name: a\n  snapshot: {}\n  now: '2026-01-01T00:00:00Z'\n"
        "  request: {agent_id: x}\n  expect: {decision: ALLOW, violatons: []}\n",
        "violatons",
    ),
    "misspelt case key": (
        "snapshot: {}\ncases:\n- name: a\n  expcet_error: [{path: x}]\n",
        "expcet_error",
    ),
    "key given twice": (
        "snapshot: {}\ncases:\n- name: a\n  expect_error: [{path: x}]\n"
        "  expect_error: [{path: y}]\n",
        "duplicate key",
    ),
    "case name used twice": (
        "snapshot: {}\ncases:\n- {name: a, expect_error: [{path: x}]}\n"
        "- {name: a, expect_error: [{path: y}]}\n",
        "used twice",
    ),
    "unknown decision": (
        "snapshot: {}\nnow: '2026-01-01T00:00:00Z'\ncases:\n"
        "- {name: a, request: {agent_id: x}, expect: {decision: DENY}}\n",
        "DENY",
    ),
    "request without expectation": (
        "snapshot: {}\nnow: '2026-01-01T00:00:00Z'\ncases:\n- {name: a, request: {agent_id: x}}\n",
        "need expect",
    ),
    "history after now": (
        "snapshot: {}\nnow: '2026-01-01T00:00:00Z'\ncases:\n"
        "- {name: a, request: {agent_id: x}, expect: {decision: ALLOW},\n"
        "   history: [{at: '2026-01-01T00:00:00Z', request: {agent_id: x},\n"
        "              repeat: 2, every: 1}]}\n",
        "after `now`",
    ),
    "history request without an agent": (
        "snapshot: {}\nnow: '2026-01-01T00:00:00Z'\ncases:\n"
        "- {name: a, request: {agent_id: x}, expect: {decision: ALLOW},\n"
        "   history: [{at: '2025-12-31T00:00:00Z', request: {tool: t}}]}\n",
        "agent_id",
    ),
    "time without offset": (
        "snapshot: {}\nnow: '2026-01-01T00:00:00'\ncases:\n"
        "- {name: a, request: {agent_id: x}, expect: {decision: ALLOW}}\n",
        "offset",
    ),
    "denied authorization without a reason": (
        "snapshot: {}\nnow: '2026-01-01T00:00:00Z'\ncases:\n"
        "- {name: a, authorize: {source: a, target: b, action: read}, expect: {allowed: false}}\n",
        "denial",
    ),
}


@pytest.mark.parametrize(("text", "complaint"), list(MALFORMED.values()), ids=list(MALFORMED))
def test_loader_rejects_a_malformed_case_file(tmp_path: Path, text: str, complaint: str) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(CaseFileError, match=complaint):
        load_case_file(path)


def test_merge_keys_may_override_merged_values(tmp_path: Path) -> None:
    path = tmp_path / "merged.yaml"
    path.write_text(
        "snapshot: {}\nnow: '2026-01-01T00:00:00Z'\ncases:\n"
        "- {name: a, request: &base {agent_id: x, input: hi}, expect: {decision: ALLOW}}\n"
        "- {name: b, request: {<<: *base, input: bye}, expect: {decision: ALLOW}}\n",
        encoding="utf-8",
    )
    _, merged = load_case_file(path)
    assert isinstance(merged.check, EnforceCheck)
    assert dict(merged.check.request) == {"agent_id": "x", "input": "bye"}
