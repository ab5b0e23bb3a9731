"""Reading what traces recorded: the agent's spend (the costs of its traces,
as a usage view for an evaluation and as the agent's ``spend``) and the
incidents, filtered and paged."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from pdp.engine import CompiledSnapshot, CounterKey, format_time, parse_rfc3339
from pdp.state import from_micros, to_micros

from ._errors import FieldProblem, ValidationFailedError
from ._state import State
from ._trace_schemas import (
    AgentBudgetOut,
    AgentSpendOut,
    IncidentList,
    IncidentOut,
    IncidentPolicyOut,
)

__all__ = ["INCIDENT_COLUMNS", "SpendView", "agent_spend", "list_incidents", "spend_view"]

INCIDENT_COLUMNS = (
    "seq, id, trace_id, agent_id, policy_id, policy_name, policy_type, mode, severity, message,"
    " decision, anomaly, cost_usd, request_id, masked_excerpt, source, sidecar_id, created_at_us"
)
_SPENT = "SELECT COALESCE(SUM(cost_usd), 0) FROM traces WHERE agent_id = ? AND created_at_us >= ?"

# A read of the store or of a transaction: (sql, parameters) -> rows.
Fetch = Callable[[str, Sequence[Any]], Awaitable[list[tuple[Any, ...]]]]


class SpendView:
    """The usage view of one trace's evaluation: the agent's spend from each
    budget's start, read before the evaluation (the engine reads usage from
    memory). Calls are not counted for traces: rate limits see none."""

    def __init__(self, sums: dict[datetime, float]) -> None:
        self._sums = sums

    def spent_since(self, agent_id: str, since: datetime) -> float:
        # Every start a check asks for was read: the budgets' own starts.
        return self._sums.get(since, 0.0)

    def calls_since(self, key: CounterKey, since: int) -> int:
        return 0

    def nth_call_since(self, key: CounterKey, since: int, n: int) -> int | None:
        return None


async def _spent(fetch: Fetch, agent_id: str, since: datetime) -> float:
    rows = await fetch(_SPENT, (agent_id, to_micros(since, "since")))
    return float(rows[0][0])


async def spend_view(
    fetch: Fetch, compiled: CompiledSnapshot, agent_id: str, now: datetime
) -> SpendView:
    """The agent's spend from the start of each of its budgets."""
    agent = compiled.resolve_agent(agent_id)
    starts = {b.period_start for b in compiled.budgets(agent, SpendView({}), now)}
    return SpendView({start: await _spent(fetch, agent_id, start) for start in starts})


async def agent_spend(
    fetch: Fetch, compiled: CompiledSnapshot | None, agent_id: str, now: datetime
) -> AgentSpendOut:
    """The agent's traced spend, and against each of its budgets."""
    day = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    month = day.replace(day=1)
    rows = await fetch(
        "SELECT COALESCE(SUM(cost_usd), 0), COUNT(*),"
        " COALESCE(SUM(CASE WHEN created_at_us >= ? THEN cost_usd END), 0),"
        " COALESCE(SUM(CASE WHEN created_at_us >= ? THEN cost_usd END), 0)"
        " FROM traces WHERE agent_id = ?",
        (to_micros(day, "day"), to_micros(month, "month"), agent_id),
    )
    total, count, today, this_month = rows[0]
    budgets: list[AgentBudgetOut] = []
    if compiled is not None:
        agent = compiled.resolve_agent(agent_id)
        for b in compiled.budgets(agent, SpendView({}), now):
            budgets.append(
                AgentBudgetOut(
                    policyId=b.policy_id,
                    policyName=b.policy_name,
                    period=b.period,
                    limitUsd=b.limit_usd,
                    spentUsd=await _spent(fetch, agent_id, b.period_start),
                    since=format_time(b.period_start),
                )
            )
    return AgentSpendOut(
        todayUsd=float(today),
        monthUsd=float(this_month),
        totalUsd=float(total),
        traces=int(count),
        budgets=budgets,
    )


async def list_incidents(
    fetch: Fetch,
    state: State,
    *,
    agent: str | None,
    policy: str | None,
    since: str | None,
    until: str | None,
    limit: int,
    cursor: str | None,
) -> IncidentList:
    """Newest first; ``cursor`` continues after the previous page. An agent
    or a policy is named by id or name (a deleted policy by its id)."""
    where: list[str] = []
    parameters: list[object] = []
    if agent is not None:
        known = state.agent(agent)
        where.append("agent_id = ?")
        parameters.append(agent if known is None else known.id)
    if policy is not None:
        known_policy = state.policy(policy)
        where.append("policy_id = ?")
        parameters.append(policy if known_policy is None else known_policy.id)
    for field, value, op in (("since", since, ">="), ("until", until, "<")):
        if value is None:
            continue
        moment = parse_rfc3339(value)
        if moment is None:
            raise ValidationFailedError(
                [FieldProblem(field, "must be an RFC 3339 timestamp with a time zone")]
            )
        where.append(f"created_at_us {op} ?")
        parameters.append(to_micros(moment, field))
    if cursor is not None:
        if not cursor.isdigit() or len(cursor) > 19:
            raise ValidationFailedError(
                [FieldProblem("cursor", "must be a nextCursor this route answered")]
            )
        where.append("seq < ?")
        parameters.append(int(cursor))
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    rows = await fetch(
        f"SELECT {INCIDENT_COLUMNS} FROM incidents{clause} ORDER BY seq DESC LIMIT ?",
        (*parameters, limit + 1),
    )
    page = [_incident(state, row) for row in rows[:limit]]
    next_cursor = str(rows[limit - 1][0]) if len(rows) > limit else None
    return IncidentList(incidents=page, nextCursor=next_cursor)


def _incident(state: State, row: tuple[Any, ...]) -> IncidentOut:
    (_, iid, trace_id, agent_id, pid, pname, ptype, mode, severity, message) = row[:10]
    (decision, anomaly, cost, request_id, excerpt, source, sidecar, at) = row[10:]
    agent = state.agent(str(agent_id))
    return IncidentOut(
        id=str(iid),
        traceId=str(trace_id),
        agentId=str(agent_id),
        agentName=None if agent is None else agent.name,
        policy=IncidentPolicyOut(
            id=str(pid),
            name=str(pname),
            type=str(ptype),
            mode=str(mode),
            severity=str(severity),
        ),
        message=str(message),
        decision=str(decision),
        anomaly=bool(anomaly),
        costUsd=float(cost),
        requestId=str(request_id),
        maskedExcerpt=str(excerpt),
        source=str(source),
        sidecarId=str(sidecar),
        createdAt=format_time(from_micros(int(at))),
    )
