"""Per-request evaluation context: what several policies of one request share
(normalised text, PII scans, the CEL activation) is computed once, lazily."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from ._cel import make_activation
from ._normalize import normalize
from ._periods import day_start, month_start
from ._pii import PiiDetector, PiiMatch
from ._types import AgentInfo, EnforceInput, PiiFinding, SpendView

__all__ = ["Context"]


class Context:
    __slots__ = (
        "_activations",
        "_normalized",
        "_pii",
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
        self.output_only = request.output is not None and request.input is None
        self.findings: dict[tuple[str, str, int, int], None] = {}
        self.mask_spans: dict[str, list[PiiMatch]] = {}
        self.pii_counts: dict[str, int] = {}
        self._normalized: dict[str, str] = {}
        self._pii: dict[tuple[str, int], list[PiiMatch]] = {}
        self._activations: dict[frozenset[str], Any] = {}

    def sides(self, scan_input: bool, scan_output: bool) -> list[tuple[str, str]]:
        """The (side, text) pairs a policy with these flags scans."""
        out: list[tuple[str, str]] = []
        if scan_input and self.request.input:
            out.append(("input", self.request.input))
        if scan_output and self.request.output:
            out.append(("output", self.request.output))
        return out

    def normalized(self, side: str, text: str) -> str:
        cached = self._normalized.get(side)
        if cached is None:
            cached = self._normalized[side] = normalize(text)
        return cached

    def pii(self, side: str, text: str, detector: PiiDetector) -> list[PiiMatch]:
        key = (side, id(detector))
        cached = self._pii.get(key)
        if cached is None:
            cached = self._pii[key] = detector.find(text)
        return cached

    def spent_today(self) -> float:
        return self.spend.spent_since(self.agent.id, day_start(self.now, UTC))

    def activation(self, variables: frozenset[str]) -> Any:
        """The CEL activation binding ``variables``; built once per request
        for each distinct set (expressions usually share one)."""
        activation = self._activations.get(variables)
        if activation is None:
            activation = self._activations[variables] = make_activation(
                {name: _CEL_VALUES[name](self) for name in variables}
            )
        return activation

    def pii_findings(self) -> tuple[PiiFinding, ...]:
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
