"""``budget_cap``: a monthly period's spend plus the estimate, with a warning
threshold."""

from __future__ import annotations

from .._context import Context
from .._fields import Reader
from .._model import PolicySpec
from .._periods import month_start
from .._policy import Budget, Check, Hit, PolicyType, read_timezone
from .._types import Mode, Severity

__all__ = ["POLICY_TYPE", "BudgetCapCheck"]


class BudgetCapCheck(Check):
    __slots__ = ("monthly", "policy_mode", "threshold_pct")

    def __init__(self, monthly: Budget, threshold_pct: float | None, mode: Mode) -> None:
        self.monthly = monthly
        self.threshold_pct = threshold_pct
        self.policy_mode = mode

    def budgets(self) -> tuple[Budget, ...]:
        return (self.monthly,)

    def run(self, ctx: Context) -> Hit | None:
        if ctx.output_only:
            return None
        estimate = ctx.request.estimated_cost_usd or 0.0
        monthly = self.monthly
        cap = monthly.limit_usd
        start = month_start(ctx.now, monthly.reset_day, monthly.tz)
        spent = ctx.usage.spent_since(ctx.agent.id, start)
        total = spent + estimate
        # Held against the cap until ReportUsage settles it (see cost_limit).
        ctx.reserve_cost(None if total > cap else (start, cap))
        if total > cap:
            return Hit(
                f"spent this period {spent:.2f} + estimate {estimate:.2f} USD exceeds the "
                f"monthly cap {cap:.2f} USD"
            )
        if self.threshold_pct is not None and total >= cap * self.threshold_pct / 100:
            pct = 100 * total / cap if cap else 100.0
            return Hit(
                f"spend this period {total:.2f} USD is {pct:.0f}% of the monthly cap "
                f"{cap:.2f} USD (warning threshold {self.threshold_pct:g}%)",
                mode=min(self.policy_mode, Mode.WARN),
                severity=Severity.LOW,
            )
        return None


def build(r: Reader, spec: PolicySpec) -> Check | None:
    cap = r.number("monthly_cap_usd", required=True)
    pct = r.number("warning_threshold_pct", minimum=0, maximum=100, exclusive_minimum=True)
    reset_day = r.integer("reset_day", default=1, minimum=1, maximum=31)
    tz = read_timezone(r)
    if cap is None:
        return None
    return BudgetCapCheck(Budget("monthly", cap, tz, reset_day), pct, spec.mode)


POLICY_TYPE = PolicyType(
    name="budget_cap",
    summary="the spend of the monthly period plus the estimate exceeds the cap; warns past "
    "a threshold",
    rule_fields=("monthly_cap_usd", "warning_threshold_pct", "reset_day", "timezone"),
    build=build,
    reads_usage=True,
    default_severity=Severity.HIGH,
)
