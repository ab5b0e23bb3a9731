"""``pii_access``: denied PII types found by validated detectors, masked on
request."""

from __future__ import annotations

from functools import cache

from .._context import Context
from .._fields import Reader
from .._model import PolicySpec
from .._pii import PII_TYPES, PiiDetector, PiiMatch
from .._policy import Check, Hit, PolicyType
from .._types import Severity

__all__ = ["POLICY_TYPE", "PiiCheck"]


class PiiCheck(Check):
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


def build(r: Reader, spec: PolicySpec) -> Check | None:
    types: list[str] = []
    if r.raw("denied_pii_types") == []:
        r.problems.add(r.at("denied_pii_types"), "must name at least one PII type")
    for path, item in r.items("denied_pii_types", required=True, max_items=len(PII_TYPES)):
        if isinstance(item, str) and item in PII_TYPES:
            if item in types:
                r.problems.add(path, f"{item!r} is listed twice")
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


POLICY_TYPE = PolicyType(
    name="pii_access",
    summary="the input or the output holds a denied PII type (validating detectors); "
    "masks it on request",
    rule_fields=(
        "denied_pii_types",
        "mask_output",
        "mask_input",
        "log_access",
        "scan_input",
        "scan_output",
    ),
    build=build,
    default_severity=Severity.HIGH,
)
