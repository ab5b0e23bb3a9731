"""``cost_limit``: the estimated cost of one call, and the day's spend plus
the estimate."""

from __future__ import annotations

from .._context import Context
from .._fields import Reader
from .._model import PolicySpec
from .._periods import day_start
from .._policy import Budget, Check, Hit, PolicyType, read_timezone

__all__ = ["POLICY_TYPE", "CostLimitCheck"]


class CostLimitCheck(Check):
    __slots__ = ("daily", "max_per_execution")

    def __init__(self, max_per_execution: float | None, daily: Budget | None) -> None:
        self.max_per_execution = max_per_execution
        self.daily = daily

    def budgets(self) -> tuple[Budget, ...]:
        return () if self.daily is None else (self.daily,)

    def run(self, ctx: Context) -> Hit | None:
        if ctx.output_only:
            return None
        estimate = ctx.request.estimated_cost_usd or 0.0
        limit, daily = self.max_per_execution, self.daily
        over_limit = limit is not None and estimate > limit
        spent = 0.0
        over_budget = False
        if daily is not None:
            since = day_start(ctx.now, daily.tz)
            spent = ctx.usage.spent_since(ctx.agent.id, since)
            over_budget = spent + estimate > daily.limit_usd
            # Held against the budget from now until ReportUsage settles it;
            # a call let through over the budget (monitor, warn) counts too.
            ctx.reserve_cost(None if over_budget else (since, daily.limit_usd))
        if not (over_limit or over_budget):
            return None
        parts: list[str] = []
        if over_limit:
            parts.append(
                f"estimated cost {estimate:.4f} USD exceeds the per-execution limit {limit:.2f} USD"
            )
        if over_budget:
            assert daily is not None
            parts.append(
                f"spent today {spent:.2f} + estimate {estimate:.2f} USD exceeds the daily "
                f"budget {daily.limit_usd:.2f} USD"
            )
        return Hit("; ".join(parts))


def build(r: Reader, spec: PolicySpec) -> Check | None:
    per_execution = r.number("max_cost_per_execution")
    daily = r.number("daily_budget")
    tz = read_timezone(r)
    if not r.has("max_cost_per_execution") and not r.has("daily_budget"):
        r.problems.add(r.path, "needs max_cost_per_execution or daily_budget")
    if per_execution is None and daily is None:
        return None
    return CostLimitCheck(per_execution, None if daily is None else Budget("daily", daily, tz))


POLICY_TYPE = PolicyType(
    name="cost_limit",
    summary="the estimated cost of a call exceeds a limit, or the day's spend plus the "
    "estimate exceeds a budget",
    rule_fields=("max_cost_per_execution", "daily_budget", "timezone"),
    build=build,
    reads_usage=True,
)
