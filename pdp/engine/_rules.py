"""One compiled check per policy type, built from its ruleDefinition.

A check returns None when the policy does not fire, else a Hit. Checks are
immutable and shared by every request of a snapshot."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, tzinfo
from functools import cache
from typing import Protocol

from ._cel import CelCompileError, CelProgram
from ._context import CEL_KEYS, Context
from ._fields import Problems, Reader
from ._injection import InjectionMatcher, PatternError
from ._injection_scan import SENSITIVITIES, InjectionScanner
from ._model import PolicySpec
from ._periods import day_start, load_timezone, month_start
from ._pii import PII_TYPES, PiiDetector, PiiMatch
from ._types import ContextItem, Mode, Severity

__all__ = ["Check", "Hit", "compile_rule"]

_MEMO_LIMIT = 1024  # remembered results per expression policy


@dataclass(frozen=True, slots=True)
class Hit:
    message: str
    mode: Mode | None = None  # overrides the policy's mode (budget warnings)
    severity: Severity | None = None


class Check(Protocol):
    def run(self, ctx: Context) -> Hit | None: ...


def _timezone(r: Reader) -> tzinfo:
    name = r.string("timezone", max_len=100)
    if name is None:
        return UTC
    tz = load_timezone(name)
    if tz is None:
        r.problems.add(r.at("timezone"), f"unknown time zone {name!r} (use an IANA name)")
        return UTC
    return tz


class InjectionCheck:
    __slots__ = ("scan_context", "scan_input", "scan_output", "scanner")

    def __init__(
        self, scanner: InjectionScanner, scan_input: bool, scan_output: bool, scan_context: bool
    ) -> None:
        self.scanner = scanner
        self.scan_input = scan_input
        self.scan_output = scan_output
        self.scan_context = scan_context

    def run(self, ctx: Context) -> Hit | None:
        request = ctx.request
        if self.scan_input and request.input:
            hit = self._scan(ctx, "input", request.input, "input", False)
            if hit is not None:
                return hit
        if self.scan_output and request.output:
            hit = self._scan(ctx, "output", request.output, "output", False)
            if hit is not None:
                return hit
        if self.scan_context:
            for index, item in enumerate(request.context):
                where = f"context[{index}]"
                hit = self._scan(ctx, where, item.content, f"{where} ({_origin(item)})", True)
                if hit is not None:
                    return hit
        return None

    def _scan(
        self, ctx: Context, where: str, text: str, described: str, in_context: bool
    ) -> Hit | None:
        if not text:
            return None
        finding = self.scanner.scan(ctx.scan_text(where, text), in_context)
        if finding is None:
            return None
        how = "" if finding.transformation is None else f", revealed by {finding.transformation}"
        return Hit(f"prompt injection detected in {described}{how}: matched {finding.label!r}")


def _origin(item: ContextItem) -> str:
    kind = item.kind.value.replace("_", " ")
    return f"{kind} from {item.source[:100]!r}" if item.source else kind


def _injection(r: Reader) -> Check | None:
    patterns = r.strings("patterns")
    regexes = r.strings("regex_patterns")
    use_builtin = r.boolean("use_builtin", not patterns and not regexes)
    scan_input = r.boolean("scan_input", True)
    scan_output = r.boolean("scan_output", False)
    scan_context = r.boolean("scan_context", True)
    sensitivity = r.choice("sensitivity", SENSITIVITIES) or "medium"
    r.choice("action", [m.wire_name for m in Mode])
    if not (patterns or regexes or use_builtin):
        r.problems.add(
            r.at("patterns"), "no patterns and use_builtin is false: nothing to scan for"
        )
        return None
    try:
        matcher = InjectionMatcher(patterns, regexes, use_builtin)
    except PatternError as exc:
        r.problems.add(f"{r.at(exc.field)}[{exc.index}]", exc.message)
        return None
    scanner = InjectionScanner(matcher, use_builtin, sensitivity)
    return InjectionCheck(scanner, scan_input, scan_output, scan_context)


class PiiCheck:
    __slots__ = ("detector", "log_access", "mask", "scan_input", "scan_output")

    def __init__(
        self,
        detector: PiiDetector,
        scan_input: bool,
        scan_output: bool,
        mask: frozenset[str],
        log_access: bool,
    ) -> None:
        self.detector = detector
        self.scan_input = scan_input
        self.scan_output = scan_output
        self.mask = mask
        self.log_access = log_access

    def run(self, ctx: Context) -> Hit | None:
        request = ctx.request
        found_in_input = found_in_output = ""
        if self.scan_input and request.input:
            matches = ctx.pii("input", request.input, self.detector)
            if matches:
                found_in_input = self._book(ctx, "input", matches)
        if self.scan_output and request.output:
            matches = ctx.pii("output", request.output, self.detector)
            if matches:
                found_in_output = self._book(ctx, "output", matches)
        if not (found_in_input or found_in_output):
            return None
        return Hit("; ".join(part for part in (found_in_input, found_in_output) if part))

    def _book(self, ctx: Context, side: str, matches: list[PiiMatch]) -> str:
        counts = ctx.record_pii(side, matches, side in self.mask, self.log_access)
        found = ", ".join(f"{t} x{n}" for t, n in sorted(counts.items()))
        return f"{side} contains denied PII: {found}"


def _pii(r: Reader) -> Check | None:
    types: list[str] = []
    if r.raw("denied_pii_types") == []:
        r.problems.add(r.at("denied_pii_types"), "must name at least one PII type")
    for path, item in r.items("denied_pii_types", required=True):
        if isinstance(item, str) and item in PII_TYPES:
            types.append(item)
        else:
            known = ", ".join(sorted(PII_TYPES))
            r.problems.add(path, f"unknown PII type {item!r} (expected one of {known})")
    mask = {"output"} if r.boolean("mask_output", False) else set()
    if r.boolean("mask_input", False):
        mask.add("input")
    scan_input = r.boolean("scan_input", True)
    scan_output = r.boolean("scan_output", True)
    log_access = r.boolean("log_access", True)
    if not types:
        return None
    return PiiCheck(
        _detector(frozenset(types)), scan_input, scan_output, frozenset(mask), log_access
    )


@cache
def _detector(types: frozenset[str]) -> PiiDetector:
    # Detectors are immutable: policies denying the same types share one, so
    # a request scans each side once for all of them (Context.pii).
    return PiiDetector(types)


class CostLimitCheck:
    __slots__ = ("daily_budget", "max_per_execution", "tz")

    def __init__(self, max_per_execution: float | None, daily_budget: float | None, tz: tzinfo):
        self.max_per_execution = max_per_execution
        self.daily_budget = daily_budget
        self.tz = tz

    def run(self, ctx: Context) -> Hit | None:
        if ctx.output_only:
            return None
        estimate = ctx.request.estimated_cost_usd or 0.0
        limit, budget = self.max_per_execution, self.daily_budget
        over_limit = limit is not None and estimate > limit
        spent = 0.0
        if budget is not None:
            spent = ctx.spend.spent_since(ctx.agent.id, day_start(ctx.now, self.tz))
        over_budget = budget is not None and spent + estimate > budget
        if not (over_limit or over_budget):
            return None
        parts: list[str] = []
        if over_limit:
            parts.append(
                f"estimated cost {estimate:.4f} USD exceeds the per-execution limit {limit:.2f} USD"
            )
        if over_budget:
            parts.append(
                f"spent today {spent:.2f} + estimate {estimate:.2f} USD exceeds the daily "
                f"budget {budget:.2f} USD"
            )
        return Hit("; ".join(parts))


def _cost_limit(r: Reader) -> Check | None:
    per_execution = r.number("max_cost_per_execution")
    daily = r.number("daily_budget")
    tz = _timezone(r)
    if not r.has("max_cost_per_execution") and not r.has("daily_budget"):
        r.problems.add(r.path, "needs max_cost_per_execution or daily_budget")
    if per_execution is None and daily is None:
        return None
    return CostLimitCheck(per_execution, daily, tz)


class BudgetCapCheck:
    __slots__ = ("cap", "policy_mode", "reset_day", "threshold_pct", "tz")

    def __init__(
        self, cap: float, threshold_pct: float | None, reset_day: int, tz: tzinfo, mode: Mode
    ) -> None:
        self.cap = cap
        self.threshold_pct = threshold_pct
        self.reset_day = reset_day
        self.tz = tz
        self.policy_mode = mode

    def run(self, ctx: Context) -> Hit | None:
        if ctx.output_only:
            return None
        estimate = ctx.request.estimated_cost_usd or 0.0
        spent = ctx.spend.spent_since(ctx.agent.id, month_start(ctx.now, self.reset_day, self.tz))
        total = spent + estimate
        if total > self.cap:
            return Hit(
                f"spent this period {spent:.2f} + estimate {estimate:.2f} USD exceeds the "
                f"monthly cap {self.cap:.2f} USD"
            )
        if self.threshold_pct is not None and total >= self.cap * self.threshold_pct / 100:
            pct = 100 * total / self.cap if self.cap else 100.0
            return Hit(
                f"spend this period {total:.2f} USD is {pct:.0f}% of the monthly cap "
                f"{self.cap:.2f} USD (warning threshold {self.threshold_pct:g}%)",
                mode=min(self.policy_mode, Mode.WARN),
                severity=Severity.LOW,
            )
        return None


def _budget_cap(r: Reader, mode: Mode) -> Check | None:
    cap = r.number("monthly_cap_usd", required=True)
    pct = r.number("warning_threshold_pct", minimum=0, maximum=100, exclusive_minimum=True)
    reset_day = r.integer("reset_day", default=1, minimum=1, maximum=31)
    tz = _timezone(r)
    return None if cap is None else BudgetCapCheck(cap, pct, reset_day, tz, mode)


class ExpressionCheck:
    __slots__ = ("_key_parts", "_memo", "message", "program", "skip_on_error")

    def __init__(self, program: CelProgram, message: str | None, skip_on_error: bool) -> None:
        self.program = program
        self.message = message
        self.skip_on_error = skip_on_error
        names = sorted(program.variables)
        # Results by the values of the variables, when every variable is a
        # short identifier (see CEL_KEYS); most requests then skip the runtime.
        self._key_parts: tuple[Callable[[Context], object], ...] | None = (
            tuple(CEL_KEYS[name] for name in names)
            if all(name in CEL_KEYS for name in names)
            else None
        )
        self._memo: dict[tuple[object, ...], bool | str] = {}

    def _evaluate(self, ctx: Context) -> bool | str:
        parts = self._key_parts
        if parts is None:
            return self.program.evaluate(ctx.activation(self.program.variables))
        key = tuple([part(ctx) for part in parts])
        memo = self._memo
        result = memo.get(key)
        if result is None:
            result = self.program.evaluate(ctx.activation(self.program.variables))
            if None not in key:
                if len(memo) >= _MEMO_LIMIT:
                    memo.clear()
                memo[key] = result
        return result

    def run(self, ctx: Context) -> Hit | None:
        result = self._evaluate(ctx)
        if result is True:
            return Hit(self.message or f"expression is true: {self.program.source[:200]}")
        if result is False or self.skip_on_error:
            return None
        return Hit(f"expression could not be evaluated (failing closed): {result}")


def _expression(r: Reader) -> Check | None:
    source = r.string("expression", required=True, max_len=10**6)
    message = r.string("message", max_len=1000)
    on_error = r.choice("on_error", ("fire", "skip")) or "fire"
    if source is None:
        return None
    try:
        program = CelProgram(source)
    except CelCompileError as exc:
        r.problems.add(r.at("expression"), f"invalid CEL: {exc}")
        return None
    return ExpressionCheck(program, message, on_error == "skip")


_RULE_FIELDS: dict[str, tuple[str, ...]] = {
    "injection_scan": (
        "patterns",
        "regex_patterns",
        "use_builtin",
        "scan_input",
        "scan_output",
        "scan_context",
        "sensitivity",
        "action",
    ),
    "pii_access": (
        "denied_pii_types",
        "mask_output",
        "mask_input",
        "log_access",
        "scan_input",
        "scan_output",
    ),
    "cost_limit": ("max_cost_per_execution", "daily_budget", "timezone"),
    "budget_cap": ("monthly_cap_usd", "warning_threshold_pct", "reset_day", "timezone"),
    "expression": ("expression", "message", "on_error"),
}

_BUILDERS: dict[str, Callable[[Reader, Mode], Check | None]] = {
    "injection_scan": lambda r, _: _injection(r),
    "pii_access": lambda r, _: _pii(r),
    "cost_limit": lambda r, _: _cost_limit(r),
    "budget_cap": _budget_cap,
    "expression": lambda r, _: _expression(r),
}


def compile_rule(spec: PolicySpec, problems: Problems) -> Check | None:
    """The check for ``spec``; problems in its ruleDefinition go to ``problems``."""
    reader = Reader(
        spec.rule, f"{spec.path}.ruleDefinition", problems, _RULE_FIELDS[spec.policy_type]
    )
    return _BUILDERS[spec.policy_type](reader, spec.mode)
