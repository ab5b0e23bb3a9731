"""``injection_scan``: prompt injection in the input or the output."""

from __future__ import annotations

from .._context import Context
from .._fields import Reader
from .._injection import (
    MAX_PATTERN_LENGTH,
    MAX_PATTERNS,
    MAX_PATTERNS_CHARS,
    InjectionMatcher,
    PatternError,
)
from .._model import PolicySpec
from .._policy import Check, Hit, PolicyType
from .._types import Mode, Severity

__all__ = ["POLICY_TYPE", "InjectionCheck"]


class InjectionCheck(Check):
    __slots__ = ("matcher", "scan_input", "scan_output")

    def __init__(self, matcher: InjectionMatcher, scan_input: bool, scan_output: bool) -> None:
        self.matcher = matcher
        self.scan_input = scan_input
        self.scan_output = scan_output

    def run(self, ctx: Context) -> Hit | None:
        request = ctx.request
        if self.scan_input and request.input:
            label = self.matcher.find(ctx.normalized_input(request.input))
            if label is not None:
                return Hit(f"prompt injection detected in input: matched {label!r}")
        if self.scan_output and request.output:
            label = self.matcher.find(ctx.normalized_output(request.output))
            if label is not None:
                return Hit(f"prompt injection detected in output: matched {label!r}")
        return None


def build(r: Reader, spec: PolicySpec) -> Check | None:
    patterns = _pattern_list(r, "patterns")
    regexes = _pattern_list(r, "regex_patterns")
    use_builtin = r.boolean("use_builtin", not patterns and not regexes)
    scan_input = r.boolean("scan_input", True)
    scan_output = r.boolean("scan_output", False)
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
    return InjectionCheck(matcher, scan_input, scan_output)


def _pattern_list(r: Reader, key: str) -> list[str]:
    """A list of patterns within the count, length and total size caps."""
    patterns = r.strings(key, max_len=MAX_PATTERN_LENGTH, max_items=MAX_PATTERNS)
    total = sum(map(len, patterns))
    if total > MAX_PATTERNS_CHARS:
        r.problems.add(
            r.at(key),
            f"the patterns hold {total} characters in all; at most {MAX_PATTERNS_CHARS} "
            "are allowed (split them over several policies)",
        )
        return []
    return patterns


POLICY_TYPE = PolicyType(
    name="injection_scan",
    summary="the input or the output holds a prompt injection: literal phrases "
    "(normalised), RE2 regexes or the built-in detector",
    rule_fields=(
        "patterns",
        "regex_patterns",
        "use_builtin",
        "scan_input",
        "scan_output",
        "action",
    ),
    build=build,
    default_severity=Severity.HIGH,
)
