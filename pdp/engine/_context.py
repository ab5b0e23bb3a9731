"""Per-request evaluation context: what several policies of one request share
(normalised text, PII scans, the CEL activation) is computed once, lazily.
It carries the usage port's view, and collects what the request will charge
if it proceeds: the calls it counts and the cost it reserves.

Every request builds one, so it allocates nothing up front: the caches and
the PII bookkeeping appear only when a policy needs them."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from ._cel import CelResult, make_activation
from ._deobfuscate import ScanText
from ._pii import PiiDetector, PiiMatch
from ._types import AgentInfo, EnforceInput, PiiFinding
from ._usage import CallCharge, Charge, CostCharge, CounterKey, UsageView
from ._variables import VARIABLES

__all__ = ["NO_CEL_RESULTS", "Context"]

# Results of expressions evaluated off the event loop, by source: none.
NO_CEL_RESULTS: Mapping[str, CelResult] = {}

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_SECOND = timedelta(seconds=1)


class Context:
    __slots__ = (
        "_activations",
        "_calls",
        "_pii",
        "_reserve",
        "_scan_texts",
        "_second",
        "agent",
        "cel_results",
        "findings",
        "mask_spans",
        "now",
        "output_only",
        "pii_counts",
        "request",
        "steady",
        "usage",
    )

    def __init__(
        self,
        request: EnforceInput,
        agent: AgentInfo,
        usage: UsageView,
        now: datetime,
        steady: float | None = None,
        cel_results: Mapping[str, CelResult] = NO_CEL_RESULTS,
    ) -> None:
        self.request: EnforceInput = request
        # Costly expressions already evaluated for this request, by source.
        self.cel_results = cel_results
        self.agent: AgentInfo = agent
        self.usage: UsageView = usage
        self.now: datetime = now
        # Seconds on the steady (monotonic) timeline, for windows of calls;
        # the wall clock's when none is given.
        self.steady: float | None = steady
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
        # Budgets the estimated cost is reserved under: (since, limit_usd);
        # None until a budget check ran.
        self._reserve: list[tuple[datetime, float]] | None = None
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
            activation = cache[variables] = make_activation(self.cel_values(variables))
        return activation

    def cel_values(self, variables: frozenset[str]) -> dict[str, object]:
        """The values of the CEL ``variables`` for this request."""
        return {name: _CEL_VALUES[name](self) for name in variables}

    @property
    def second(self) -> int:
        """The steady time (else ``now``) as whole seconds of Unix time:
        calls are counted per second, on the steady timeline."""
        second = self._second
        if second is None:
            steady = self.steady
            whole = int(steady // 1) if steady is not None else None
            second = self._second = (
                whole if whole is not None else (self.now - _EPOCH) // _ONE_SECOND
            )
        return second

    @property
    def timestamp(self) -> float:
        """The steady time (else ``now``) in seconds of Unix time."""
        steady = self.steady
        return self.now.timestamp() if steady is None else steady

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

    def reserve_cost(self, limit: tuple[datetime, float] | None) -> None:
        """Reserves the request's estimated cost if it proceeds, on the
        condition ``limit`` = ``(since, limit_usd)`` (see CostCharge), if
        given. Budgets of one request share one reservation."""
        limits = self._reserve
        if limits is None:
            limits = self._reserve = []
        if limit is not None:
            limits.append(limit)

    def charges(self) -> tuple[Charge, ...]:
        """What the request charges to usage if it proceeds."""
        calls, limits = self._calls, self._reserve
        out: list[Charge] = []
        if calls:
            second = self.second
            out.extend(CallCharge(key, second, tuple(lim)) for key, lim in calls.items())
        if limits is not None:
            request = self.request
            estimate = request.estimated_cost_usd
            if estimate and request.request_id:
                out.append(CostCharge(self.agent.id, request.request_id, estimate, tuple(limits)))
        return tuple(out)

    def pii_findings(self) -> tuple[PiiFinding, ...]:
        if not self.findings:
            return ()
        return tuple(PiiFinding(*key) for key in self.findings)


# What each CEL variable is for one request, from its one declaration.
_CEL_VALUES: dict[str, Callable[[Context], object]] = {v.name: v.read for v in VARIABLES}
