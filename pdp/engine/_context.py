"""Per-request evaluation context: what several policies of one request share
(normalised text, PII scans, the CEL activation) is computed once, lazily.
It carries the usage port's view, and collects the calls the request will
count if it proceeds.

Every request builds one, so it allocates nothing up front: the caches and
the PII bookkeeping appear only when a policy needs them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from ._cel import make_activation
from ._deobfuscate import ScanText
from ._pii import PiiDetector, PiiMatch
from ._types import AgentInfo, EnforceInput, PiiFinding
from ._usage import CallCharge, CounterKey, UsageView
from ._variables import VARIABLES

__all__ = ["Context"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_SECOND = timedelta(seconds=1)


class Context:
    __slots__ = (
        "_activations",
        "_calls",
        "_pii",
        "_scan_texts",
        "_second",
        "agent",
        "findings",
        "mask_spans",
        "now",
        "output_only",
        "pii_counts",
        "request",
        "usage",
    )

    def __init__(
        self, request: EnforceInput, agent: AgentInfo, usage: UsageView, now: datetime
    ) -> None:
        self.request: EnforceInput = request
        self.agent: AgentInfo = agent
        self.usage: UsageView = usage
        self.now: datetime = now
        # Output-only requests scan a model's answer; they gate no call.
        self.output_only: bool = request.input is None and request.output is not None
        # PII found by firing policies, in the order found; None until one fires.
        self.findings: dict[tuple[str, str, int, int], None] | None = None
        self.mask_spans: dict[str, list[PiiMatch]] | None = None
        self.pii_counts: dict[str, int] | None = None
        self._scan_texts: dict[str, ScanText] | None = None
        self._pii: dict[tuple[str, int], list[PiiMatch]] | None = None
        self._activations: dict[frozenset[str], Any] | None = None
        # Calls to count if the request proceeds: key -> (since, most) limits.
        self._calls: dict[CounterKey, list[tuple[int, int]]] | None = None
        self._second: int | None = None

    def scan_text(self, where: str, text: str) -> ScanText:
        """The injection-scan form of ``text`` found at ``where`` ("input",
        "output", "context[0]", ...): normalised and de-obfuscated once for
        every policy of the request."""
        cache = self._scan_texts
        if cache is None:
            cache = self._scan_texts = {}
        cached = cache.get(where)
        if cached is None:
            cached = cache[where] = ScanText(text)
        return cached

    def pii(self, side: str, text: str, detector: PiiDetector) -> list[PiiMatch]:
        """PII of ``detector``'s types in ``text``; policies that share a
        detector (same denied types) scan a side once."""
        cache = self._pii
        if cache is None:
            cache = self._pii = {}
        key = (side, id(detector))
        cached = cache.get(key)
        if cached is None:
            cached = cache[key] = detector.find(text)
        return cached

    def record_pii(
        self, side: str, matches: Sequence[PiiMatch], mask: bool, log_access: bool
    ) -> dict[str, int]:
        """Books the PII a firing policy found on ``side``; returns counts by type."""
        findings = self.findings
        if findings is None:
            findings = self.findings = {}
        counts: dict[str, int] = {}
        for m in matches:
            counts[m.pii_type] = counts.get(m.pii_type, 0) + 1
            findings[(side, m.pii_type, m.start, m.end)] = None
        if mask:
            if self.mask_spans is None:
                self.mask_spans = {}
            self.mask_spans.setdefault(side, []).extend(matches)
        if log_access:
            logged = self.pii_counts
            if logged is None:
                logged = self.pii_counts = {}
            for pii_type, n in counts.items():
                logged[pii_type] = logged.get(pii_type, 0) + n
        return counts

    def activation(self, variables: frozenset[str]) -> Any:
        """The CEL activation binding ``variables``; built once per request
        for each distinct set (expressions usually share one)."""
        cache = self._activations
        if cache is None:
            cache = self._activations = {}
        activation = cache.get(variables)
        if activation is None:
            activation = cache[variables] = make_activation(
                {name: _CEL_VALUES[name](self) for name in variables}
            )
        return activation

    @property
    def second(self) -> int:
        """``now`` as whole seconds of Unix time (calls are counted per second)."""
        second = self._second
        if second is None:
            second = self._second = (self.now - _EPOCH) // _ONE_SECOND
        return second

    def count_call(self, key: CounterKey, limit: tuple[int, int] | None) -> None:
        """Counts this call under ``key`` if the request proceeds, on the
        condition ``limit`` = ``(since, most)`` (see CallCharge), if given.
        Policies counting under one key count the call once."""
        calls = self._calls
        if calls is None:
            calls = self._calls = {}
        limits = calls.setdefault(key, [])
        if limit is not None:
            limits.append(limit)

    def charges(self) -> tuple[CallCharge, ...]:
        """What the request charges to usage if it proceeds."""
        if not self._calls:
            return ()
        second = self.second
        return tuple(CallCharge(key, second, tuple(limits)) for key, limits in self._calls.items())

    def pii_findings(self) -> tuple[PiiFinding, ...]:
        if not self.findings:
            return ()
        return tuple(PiiFinding(*key) for key in self.findings)


# What each CEL variable is for one request, from its one declaration.
_CEL_VALUES: dict[str, Callable[[Context], object]] = {v.name: v.read for v in VARIABLES}
