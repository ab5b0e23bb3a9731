"""``injection_scan``: prompt injection in the input, the output or the
request's context items."""

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
from .._injection_scan import SENSITIVITIES, InjectionScanner
from .._model import PolicySpec
from .._policy import Check, Hit, PolicyType
from .._types import ContextItem, Mode, Severity

__all__ = ["POLICY_TYPE", "InjectionCheck"]


class InjectionCheck(Check):
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


def build(r: Reader, spec: PolicySpec) -> Check | None:
    patterns = _pattern_list(r, "patterns")
    regexes = _pattern_list(r, "regex_patterns")
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
    summary="the input, the output or a context item holds a prompt injection: literal "
    "phrases (normalised and de-obfuscated), RE2 regexes or the built-in detector",
    rule_fields=(
        "patterns",
        "regex_patterns",
        "use_builtin",
        "scan_input",
        "scan_output",
        "scan_context",
        "sensitivity",
        "action",
    ),
    build=build,
    default_severity=Severity.HIGH,
)
