"""Per-request evaluation context: what several policies of one request share
(normalised text, PII scans, the CEL activation) is computed once, lazily.

Every request builds one, so it allocates nothing up front: the caches and
the PII bookkeeping appear only when a policy needs them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from ._cel import make_activation
from ._deobfuscate import ScanText
from ._periods import day_start, month_start
from ._pii import PiiDetector, PiiMatch
from ._types import AgentInfo, EnforceInput, PiiFinding, SpendView

__all__ = ["CEL_KEYS", "Context"]


class Context:
    __slots__ = (
        "_activations",
        "_pii",
        "_scan_texts",
        "agent",
        "findings",
        "mask_spans",
        "now",
        "output_only",
        "pii_counts",
        "request",
        "spend",
    )

    def __init__(
        self, request: EnforceInput, agent: AgentInfo, spend: SpendView, now: datetime
    ) -> None:
        self.request = request
        self.agent = agent
        self.spend = spend
        self.now = now
        # Output-only requests scan a model's answer; they gate no call.
        self.output_only = request.input is None and request.output is not None
        # PII found by firing policies, in the order found; None until one fires.
        self.findings: dict[tuple[str, str, int, int], None] | None = None
        self.mask_spans: dict[str, list[PiiMatch]] | None = None
        self.pii_counts: dict[str, int] | None = None
        self._scan_texts: dict[str, ScanText] | None = None
        self._pii: dict[tuple[str, int], list[PiiMatch]] | None = None
        self._activations: dict[frozenset[str], Any] | None = None

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

    def spent_today(self) -> float:
        return self.spend.spent_since(self.agent.id, day_start(self.now, UTC))

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

    def pii_findings(self) -> tuple[PiiFinding, ...]:
        if not self.findings:
            return ()
        return tuple(PiiFinding(*key) for key in self.findings)


def _monthly_spend(ctx: Context) -> float:
    return ctx.spend.spent_since(ctx.agent.id, month_start(ctx.now, 1, UTC))


# What each CEL variable (declared in _cel) is for one request.
_CEL_VALUES: dict[str, Callable[[Context], object]] = {
    "agent.id": lambda ctx: ctx.agent.id,
    "agent.name": lambda ctx: ctx.agent.name,
    "agent.known": lambda ctx: ctx.agent.known,
    "request.input": lambda ctx: ctx.request.input or "",
    "request.output": lambda ctx: ctx.request.output or "",
    "request.model": lambda ctx: ctx.request.model,
    "request.tool": lambda ctx: ctx.request.tool,
    "request.request_id": lambda ctx: ctx.request.request_id,
    "request.side": lambda ctx: "output" if ctx.output_only else "input",
    "request.metadata": lambda ctx: dict(ctx.request.metadata),
    "request.estimated_cost_usd": lambda ctx: float(ctx.request.estimated_cost_usd or 0.0),
    "usage.daily_spend_usd": lambda ctx: ctx.spent_today(),
    "usage.monthly_spend_usd": _monthly_spend,
    "now": lambda ctx: ctx.now,
}


_MAX_KEY_CHARS = 256
_MAX_KEY_ENTRIES = 16


def _short(value: str) -> str | None:
    return value if len(value) <= _MAX_KEY_CHARS else None


def _metadata_key(ctx: Context) -> object:
    metadata = ctx.request.metadata
    if not metadata:
        return ()
    if len(metadata) > _MAX_KEY_ENTRIES:
        return None
    try:
        items = frozenset(metadata.items())
    except TypeError:  # not str values: let the runtime judge them
        return None
    if any(len(key) + len(value) > _MAX_KEY_CHARS for key, value in items):
        return None
    return items


# For the CEL variables that hold short identifiers (not request text, money,
# spend or time): a hashable stand-in for the variable's value, or None when
# the value is too large to remember. An expression that references only
# these is a function of their values (CEL has no side effects), so its
# result can be memoised.
CEL_KEYS: dict[str, Callable[[Context], object]] = {
    "agent.id": lambda ctx: _short(ctx.agent.id),
    "agent.name": lambda ctx: _short(ctx.agent.name),
    "agent.known": lambda ctx: ctx.agent.known,
    "request.model": lambda ctx: _short(ctx.request.model),
    "request.tool": lambda ctx: _short(ctx.request.tool),
    "request.side": lambda ctx: ctx.output_only,
    "request.metadata": _metadata_key,
}
