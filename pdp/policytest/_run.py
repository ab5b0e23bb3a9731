"""Running policy tests: each case is decided by the engine against the
compiled snapshot, on its own usage (the spend it states, the calls it
replays) and clock, and compared with what it expects."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from pdp.engine import (
    AgentIdError,
    Answer,
    CompiledSnapshot,
    Decision,
    EnforceInput,
    UsageView,
    Violation,
    utc_now,
)

from ._format import ABSENT, AuthorizeExpect, EnforceExpect, ExpectedViolation, PolicyTest
from ._usage import MemoryUsage

__all__ = ["CaseResult", "run_cases"]


@dataclass(frozen=True, slots=True)
class CaseResult:
    case: PolicyTest
    problems: tuple[str, ...]  # empty: passed
    got: str = ""  # what the engine answered, in one line (for a failure's report)

    @property
    def passed(self) -> bool:
        return not self.problems


def run_cases(snapshot: CompiledSnapshot, cases: Iterable[PolicyTest]) -> list[CaseResult]:
    """Every case's result, in order. Cases without a clock run at one
    moment taken now."""
    now = utc_now()
    return [_run(snapshot, case, case.now or now) for case in cases]


def _run(snapshot: CompiledSnapshot, case: PolicyTest, now: datetime) -> CaseResult:
    if case.authorize is not None:
        assert isinstance(case.expect, AuthorizeExpect)
        return _run_authorize(snapshot, case, case.expect, now)
    assert case.request is not None and isinstance(case.expect, EnforceExpect)
    request = EnforceInput(**case.request)
    try:
        spend = {snapshot.resolve_agent(ref).id: items for ref, items in case.spend.items()}
    except AgentIdError as exc:
        return CaseResult(case, (f"spend: agent id refused: {exc.reason}",))
    usage = MemoryUsage(spend)
    try:
        for entry in case.calls:
            for at in entry.times():
                usage.apply(_decide(snapshot, request, usage, at, case.validators).charges)
        decision = _decide(snapshot, request, usage, now, case.validators)
    except _Unanswered as exc:
        return CaseResult(case, (str(exc),))
    except AgentIdError as exc:  # a variant of the agent id that the engine refuses
        return CaseResult(case, (f"agent: refused: {exc.reason}",))
    return CaseResult(case, tuple(_enforce_problems(decision, case.expect)), _describe(decision))


class _Unanswered(Exception):
    """The case's request asks a custom validator the case gives no answer for."""


def _decide(
    snapshot: CompiledSnapshot,
    request: EnforceInput,
    usage: UsageView,
    now: datetime,
    answers: Mapping[str, Answer],
) -> Decision:
    """The engine's decision, custom validators answered from ``answers``
    (by policy name or id): a policy test makes no call."""
    outcome = snapshot.enforce(request, usage, now)
    while not isinstance(outcome, Decision):
        given: dict[str, Answer] = {}
        for call in outcome.calls:
            answer = answers.get(call.policy_name, answers.get(call.policy_id))
            if answer is None:
                raise _Unanswered(
                    f"policy {call.policy_name!r} asks its custom validator: give the answer "
                    f"under validators ({call.policy_name}: {{allow: true}}, or {{allow: false, "
                    "message: ...}}, or {failure: ...})"
                )
            given[call.policy_id] = answer
        outcome = outcome.resume(given)
    return outcome


def _enforce_problems(decision: Decision, expect: EnforceExpect) -> list[str]:
    problems = []
    if decision.kind.value != expect.decision:
        problems.append(f"decision: expected {expect.decision}, got {decision.kind.value}")
    if expect.violations is not None:
        problems += _violation_problems(decision.violations, expect.violations)
    for side, want in (("input", expect.masked_input), ("output", expect.masked_output)):
        got = decision.masked_input if side == "input" else decision.masked_output
        if want is not ABSENT and got != want:
            problems.append(f"masked_{side}: expected {want!r}, got {got!r}")
    if expect.pii is not None:
        found = sorted(f.pii_type for f in decision.pii_findings)
        if found != sorted(expect.pii):
            problems.append(f"pii: expected {sorted(expect.pii)}, got {found}")
    return problems


def _matches(v: Violation, want: ExpectedViolation) -> bool:
    if want.policy not in (v.policy_type, v.policy_name, v.policy_id):
        return False
    if want.mode is not None and v.mode.wire_name != want.mode:
        return False
    if want.severity is not None and v.severity.wire_name != want.severity:
        return False
    message = v.message.casefold()
    return all(text.casefold() in message for text in want.message_contains)


def _violation_problems(
    got: Sequence[Violation], expected: Sequence[ExpectedViolation]
) -> list[str]:
    left = list(got)
    missing: list[ExpectedViolation] = []
    for want in expected:
        found = next((v for v in left if _matches(v, want)), None)
        if found is None:
            missing.append(want)
        else:
            left.remove(found)
    problems = [f"violations: expected {_show_expected(w)}, which did not fire" for w in missing]
    problems += [f"violations: unexpected {_show(v)}" for v in left]
    return problems


def _show_expected(want: ExpectedViolation) -> str:
    details = [f"mode {want.mode}"] if want.mode else []
    details += [f"severity {want.severity}"] if want.severity else []
    details += [f"message containing {text!r}" for text in want.message_contains]
    return repr(want.policy) + (f" ({', '.join(details)})" if details else "")


def _show(v: Violation) -> str:
    return (
        f"{v.policy_name!r} ({v.policy_type}, mode {v.mode.wire_name}, "
        f"severity {v.severity.wire_name}): {v.message}"
    )


def _describe(decision: Decision) -> str:
    fired = "; ".join(_show(v) for v in decision.violations)
    return decision.kind.value + (f" by {fired}" if fired else "")


def _run_authorize(
    snapshot: CompiledSnapshot, case: PolicyTest, expect: AuthorizeExpect, now: datetime
) -> CaseResult:
    assert case.authorize is not None
    try:
        result = snapshot.authorize(*case.authorize, now)
    except AgentIdError as exc:
        return CaseResult(case, (f"authorize: agent id refused: {exc.reason}",))
    denial = None if result.denial is None else result.denial.value
    problems = []
    if result.allowed != expect.allowed:
        problems.append(f"allowed: expected {expect.allowed}, got {result.allowed}")
    if denial != expect.denial:
        problems.append(f"denial: expected {expect.denial}, got {denial}")
    got = ("allowed" if result.allowed else "denied") + f": {result.reason}"
    return CaseResult(case, tuple(problems), got)
