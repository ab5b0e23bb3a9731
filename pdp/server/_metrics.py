"""The sidecar's Prometheus metrics. Decisions are counted in plain integers
on the hot path (a dict update and a bucket increment); everything else is
read when ``/metrics`` is scraped, on the event loop (see ``pdp.observe``).

Cardinality is bounded: decisions by (decision, policy_type, mode) of the
violation that decided (5 x types x 4 modes); spend by agent and period for
the agents the active snapshot lists, at most ``max_agents`` of them."""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Callable, Iterator
from datetime import datetime

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from pdp.engine import Decision, UsageView
from pdp.snapshot import SnapshotHolder
from pdp.state import DecisionLog

from ._shadow import ShadowEvaluator
from ._validators import ValidatorCaller

__all__ = ["BUCKETS", "SidecarMetrics"]

# Seconds; a decision takes tens of microseconds, a slow one milliseconds.
BUCKETS = (0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 1.0)


class SidecarMetrics:
    """A Prometheus collector over the sidecar's state."""

    def __init__(
        self,
        holder: SnapshotHolder,
        usage: UsageView,
        decisions_log: DecisionLog,
        clock: Callable[[], datetime],
        *,
        shadow: ShadowEvaluator | None = None,
        validators: ValidatorCaller | None = None,
        max_agents: int = 1000,
    ) -> None:
        self._holder = holder
        self._usage = usage
        self._log = decisions_log
        self._clock = clock
        self._shadow = shadow
        self._validators = validators
        self._max_agents = max_agents
        self._decisions: dict[tuple[str, str, str], int] = {}
        self._buckets = [0] * (len(BUCKETS) + 1)
        self._sum = 0.0

    def observe(self, decision: Decision, seconds: float) -> None:
        """Counts one decision and its duration. On the hot path."""
        violations = decision.violations
        if violations:
            first = violations[0]
            key = (decision.kind.value, first.policy_type, first.mode.wire_name)
        else:
            key = (decision.kind.value, "none", "none")
        counts = self._decisions
        counts[key] = counts.get(key, 0) + 1
        self._buckets[bisect_left(BUCKETS, seconds)] += 1
        self._sum += seconds

    def describe(self) -> list[Metric]:
        return []  # the families are known only when collected

    def collect(self) -> Iterator[Metric]:
        decisions = CounterMetricFamily(
            "pdp_decisions",
            "Enforce decisions, by decision and by the type and mode of the violation that "
            "decided (none when nothing fired)",
            labels=("decision", "policy_type", "mode"),
        )
        for (kind, policy_type, mode), count in sorted(self._decisions.items()):
            decisions.add_metric((kind, policy_type, mode), count)
        yield decisions
        cumulative, running = [], 0
        for bound, count in zip((*BUCKETS, math.inf), self._buckets, strict=True):
            running += count
            cumulative.append(("+Inf" if bound == math.inf else repr(bound), running))
        yield HistogramMetricFamily(
            "pdp_decision_duration_seconds",
            "Time to answer an Enforce call, from its bytes to the answer's",
            buckets=cumulative,
            sum_value=self._sum,
        )
        yield from self._snapshot_metrics()
        yield from self._spend_metrics()
        yield from self._shadow_metrics()
        yield from self._validator_metrics()
        yield CounterMetricFamily(
            "pdp_decision_log_dropped",
            "Decision records dropped because the log's queue was full",
            value=self._log.dropped,
        )

    def _snapshot_metrics(self) -> Iterator[Metric]:
        holder = self._holder
        active = holder.active
        revision = GaugeMetricFamily(
            "pdp_snapshot_revision", "Revision of the active snapshot (absent before one is active)"
        )
        if active is not None:
            revision.add_metric((), active.snapshot.revision)
        yield revision
        staleness = GaugeMetricFamily(
            "pdp_snapshot_staleness_seconds",
            "Seconds since the snapshot source last answered (absent before it has)",
        )
        if holder.last_contact is not None:
            staleness.add_metric((), (self._clock() - holder.last_contact).total_seconds())
        yield staleness
        yield GaugeMetricFamily(
            "pdp_snapshot_serving",
            "1 when a snapshot is active and not stale",
            value=holder.serving,
        )
        yield CounterMetricFamily(
            "pdp_snapshot_rejections",
            "Snapshot documents rejected (they did not validate; the active one kept serving)",
            value=holder.rejections,
        )

    def _spend_metrics(self) -> Iterator[Metric]:
        spend = GaugeMetricFamily(
            "pdp_agent_spend_usd",
            "Spend of an agent the snapshot lists in the current period of its first budget "
            "of that period (daily, monthly)",
            labels=("agent", "period"),
        )
        limit = GaugeMetricFamily(
            "pdp_agent_budget_usd",
            "The smallest budget of that period that applies to the agent",
            labels=("agent", "period"),
        )
        active = self._holder.active
        if active is not None:
            now = self._clock()
            snapshot = active.snapshot
            agents = {a.id: a for a in snapshot.agents.values()}
            for agent in list(agents.values())[: self._max_agents]:
                seen: dict[str, float] = {}
                for budget in snapshot.budgets(agent, self._usage, now):
                    if budget.period not in seen:
                        spend.add_metric((agent.name, budget.period), budget.spent_usd)
                    seen[budget.period] = min(seen.get(budget.period, math.inf), budget.limit_usd)
                for period, usd in seen.items():
                    limit.add_metric((agent.name, period), usd)
        yield spend
        yield limit

    def _validator_metrics(self) -> Iterator[Metric]:
        calls = CounterMetricFamily(
            "pdp_validator_calls",
            "Custom validator questions by validator (scheme://host:port) and outcome: answered, "
            "cached (answered from the cache), failed_closed (the policy fired), failed_open "
            "(it did not)",
            labels=("validator", "outcome"),
        )
        if self._validators is not None:
            for origin, stats in self._validators.stats_by_origin().items():
                calls.add_metric((origin, "answered"), stats.answers)
                calls.add_metric((origin, "cached"), stats.cache_hits)
                calls.add_metric((origin, "failed_closed"), stats.failures - stats.failed_open)
                calls.add_metric((origin, "failed_open"), stats.failed_open)
        yield calls

    def _shadow_metrics(self) -> Iterator[Metric]:
        shadow = self._shadow
        differences = CounterMetricFamily(
            "pdp_shadow_differences",
            "Requests the candidate snapshot decided differently from the active one, "
            "by both decisions",
            labels=("active_decision", "candidate_decision"),
        )
        if shadow is None:
            yield differences
            return
        for (was, would), count in sorted(shadow.differences.items()):
            differences.add_metric((was, would), count)
        yield differences
        yield CounterMetricFamily(
            "pdp_shadow_evaluations",
            "Requests the candidate snapshot decided",
            value=shadow.evaluated,
        )
        yield CounterMetricFamily(
            "pdp_shadow_dropped",
            "Requests not shadowed because the shadow queue was full",
            value=shadow.dropped,
        )
        yield CounterMetricFamily(
            "pdp_shadow_unanswered",
            "Requests not compared because the candidate needed a custom validator's answer "
            "the active decision did not get",
            value=shadow.unanswered,
        )
        candidate = GaugeMetricFamily(
            "pdp_shadow_candidate_revision", "Revision of the candidate snapshot being shadowed"
        )
        if shadow.candidate is not None:
            candidate.add_metric((), shadow.candidate.revision)
        yield candidate
