"""Traces and incidents: finished calls evaluated after the fact.

A trace is posted (``POST /api/v1/traces``) or shipped by a sidecar that
evaluated it with its own snapshot (``trace.recorded``). Either way one side
transaction records it, its cost (the traces table is the agent's spend as
the control plane knows it), one incident per policy that fired, and emits
``policy.violated`` for each incident of a warn, require_approval or block
policy and ``trace.anomaly`` for each anomalous one (a block-mode policy,
or a cost above the agent's per-execution limit). A posted trace is
evaluated inside that transaction, so two traces of one agent see each
other's cost against its budgets."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from pdp.engine import (
    CompiledSnapshot,
    EnforceInput,
    TraceFindings,
    evaluate_trace,
    format_time,
    masked_excerpt,
    utc_now,
)
from pdp.state import to_micros

from ._errors import ConflictError, FieldProblem, ServiceUnavailableError, ValidationFailedError
from ._event_types import FiredPolicyData
from ._events import Event, EventRegistry
from ._state import State
from ._store import SideTransaction, Store
from ._trace_reads import INCIDENT_COLUMNS, agent_spend, list_incidents, spend_view
from ._trace_schemas import (
    AgentSpendOut,
    IncidentList,
    TraceIn,
    TraceOut,
    TraceRecordedData,
    TraceViolationOut,
    ViolationEventData,
)

__all__ = [
    "POLICY_VIOLATED",
    "TRACE_ANOMALY",
    "TRACE_RECORDED",
    "Traces",
    "define_violation_types",
]

POLICY_VIOLATED = "policy.violated"
TRACE_ANOMALY = "trace.anomaly"
TRACE_RECORDED = "trace.recorded"


def define_violation_types(registry: EventRegistry) -> None:
    """Declares ``policy.violated`` and ``trace.anomaly`` unless a feature
    that delivers them did already."""
    for event_type in (POLICY_VIOLATED, TRACE_ANOMALY):
        if event_type not in registry.types:
            registry.define(event_type, ViolationEventData)


@dataclass(frozen=True, slots=True)
class _Finding:
    policy: FiredPolicyData
    message: str


@dataclass(frozen=True, slots=True)
class _Trace:
    """A trace ready to record, whoever evaluated it."""

    trace_id: str
    agent_id: str
    request_id: str | None
    sidecar_id: str
    cost: float
    decision: str
    findings: tuple[_Finding, ...]
    anomaly_reasons: tuple[str, ...]
    per_execution_limit: float | None
    excerpt: str
    revision: int
    source: str  # "trace" (posted) or "sidecar"
    time: datetime


def _from_findings(findings: TraceFindings) -> tuple[_Finding, ...]:
    return tuple(
        _Finding(
            FiredPolicyData(
                id=v.policy_id,
                name=v.policy_name,
                type=v.policy_type,
                mode=v.mode.wire_name,  # type: ignore[arg-type]
                severity=v.severity.wire_name,  # type: ignore[arg-type]
            ),
            v.message,
        )
        for v in findings.violations
    )


class Traces:
    def __init__(
        self,
        store: Store,
        events: EventRegistry,
        current: Callable[[], tuple[State, CompiledSnapshot | None]],
        *,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._store = store
        self._events = events
        self._current = current
        self.clock = clock
        define_violation_types(events)
        events.define(TRACE_RECORDED, TraceRecordedData)
        events.on_event(TRACE_RECORDED, self._on_recorded)

    # Posting -------------------------------------------------------------------

    async def submit(self, body: TraceIn) -> TraceOut:
        """Evaluates and records a posted trace. 422 for an unknown agent,
        409 for a paused one; nothing is stored then."""
        state, compiled = self._current()
        if compiled is None:
            raise ServiceUnavailableError(
                "the stored snapshot does not compile; see the control plane's log"
            )
        agent = state.agent(body.agentId)
        if agent is None:
            raise ValidationFailedError(
                [FieldProblem("agentId", f"no agent with id or name {body.agentId!r}")]
            )
        if agent.paused:
            reason = agent.pauseReason or "no reason given"
            raise ConflictError(
                f"agent {agent.name!r} is paused ({reason}): its traces are refused",
                code="agent_paused",
            )
        request = EnforceInput(
            agent_id=agent.id,
            input=body.input,
            output=body.output,
            estimated_cost_usd=body.costUsd,
            model=body.model,
            tool=body.tool,
            metadata=body.metadata,
            request_id=body.requestId or "",
        )
        async with self._store.side_transaction() as tx:
            if body.requestId is not None:
                recorded = await self._recorded(tx, agent.id, body.requestId)
                if recorded is not None:
                    return recorded
            now = self.clock()
            usage = await spend_view(tx.fetchall, compiled, agent.id, now)
            findings = evaluate_trace(compiled, request, usage, now)
            trace = _Trace(
                trace_id=str(uuid.uuid4()),
                agent_id=agent.id,
                request_id=body.requestId,
                sidecar_id="",
                cost=body.costUsd,
                decision=findings.decision.value,
                findings=_from_findings(findings),
                anomaly_reasons=findings.anomaly_reasons,
                per_execution_limit=findings.per_execution_limit,
                excerpt=masked_excerpt(body.input),
                revision=compiled.revision,
                source="trace",
                time=now,
            )
            return await self._record(tx, trace)

    async def _recorded(
        self, tx: SideTransaction, agent_id: str, request_id: str
    ) -> TraceOut | None:
        rows = await tx.fetchall(
            "SELECT result_json FROM traces WHERE agent_id = ? AND request_id = ?",
            (agent_id, request_id),
        )
        if not rows:
            return None
        return TraceOut.model_validate({**json.loads(rows[0][0]), "duplicate": True})

    # Shipped by sidecars --------------------------------------------------------

    async def _on_recorded(self, tx: SideTransaction, event: Event) -> None:
        data = event.data
        assert isinstance(data, TraceRecordedData)
        request_id = data.requestId or None
        if request_id is not None and await self._recorded(tx, data.agentId, request_id):
            return  # posted here too, or shipped by another replica
        trace = _Trace(
            trace_id=data.traceId,
            agent_id=data.agentId,
            request_id=request_id,
            sidecar_id=event.sidecar_id,
            cost=data.costUsd,
            decision=data.decision,
            findings=tuple(_Finding(f.policy, f.message) for f in data.findings),
            anomaly_reasons=tuple(data.anomalyReasons),
            per_execution_limit=data.perExecutionLimitUsd,
            excerpt=data.maskedExcerpt,
            revision=data.snapshotRevision,
            source="sidecar",
            time=event.time,
        )
        await self._record(tx, trace)

    # Recording -------------------------------------------------------------------

    async def _record(self, tx: SideTransaction, trace: _Trace) -> TraceOut:
        """Records the trace, then its incidents and events; a trace id
        recorded before (the same trace shipped again) adds nothing."""
        at = to_micros(trace.time, "time")
        incident_ids = [str(uuid.uuid4()) for _ in trace.findings]
        out = TraceOut(
            traceId=trace.trace_id,
            agentId=trace.agent_id,
            requestId=trace.request_id,
            costUsd=trace.cost,
            decision=trace.decision,
            violations=[
                TraceViolationOut(
                    policyId=f.policy.id,
                    policyName=f.policy.name,
                    policyType=f.policy.type,
                    severity=f.policy.severity or "medium",
                    message=f.message,
                    enforcementMode=f.policy.mode,
                )
                for f in trace.findings
            ],
            incidentIds=incident_ids,
            anomaly=bool(trace.anomaly_reasons),
            anomalyReasons=list(trace.anomaly_reasons),
            snapshotRevision=trace.revision,
            recordedAt=format_time(trace.time),
            duplicate=False,
        )
        result = out.model_dump(exclude={"duplicate"})
        inserted = await tx.execute(
            "INSERT OR IGNORE INTO traces (id, agent_id, request_id, sidecar_id, cost_usd,"
            " anomaly, result_json, created_at_us) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                trace.trace_id,
                trace.agent_id,
                trace.request_id,
                trace.sidecar_id,
                trace.cost,
                int(out.anomaly),
                json.dumps(result, ensure_ascii=False, separators=(",", ":")),
                at,
            ),
        )
        if not inserted:
            return out.model_copy(update={"duplicate": True})
        for incident_id, finding in zip(incident_ids, trace.findings, strict=True):
            policy = finding.policy
            anomaly = policy.mode == "block" or (
                policy.type == "cost_limit"
                and trace.per_execution_limit is not None
                and trace.cost > trace.per_execution_limit
            )
            await tx.execute(
                f"INSERT INTO incidents ({INCIDENT_COLUMNS.removeprefix('seq, ')}) VALUES"
                " (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    incident_id,
                    trace.trace_id,
                    trace.agent_id,
                    policy.id,
                    policy.name,
                    policy.type,
                    policy.mode,
                    policy.severity or "medium",
                    finding.message,
                    trace.decision,
                    int(anomaly),
                    trace.cost,
                    trace.request_id or "",
                    trace.excerpt,
                    trace.source,
                    trace.sidecar_id,
                    at,
                ),
            )
            data = ViolationEventData(
                agentId=trace.agent_id,
                policy=policy,
                decision=trace.decision,  # type: ignore[arg-type]
                source="trace",
                incidentId=incident_id,
                requestId=trace.request_id,
                message=finding.message,
            )
            if policy.mode != "monitor":
                await self._events.emit(tx, POLICY_VIOLATED, data)
            if anomaly:
                await self._events.emit(tx, TRACE_ANOMALY, data)
        return out

    # Reads ---------------------------------------------------------------------

    async def incidents(
        self,
        *,
        agent: str | None,
        policy: str | None,
        since: str | None,
        until: str | None,
        limit: int,
        cursor: str | None,
    ) -> IncidentList:
        """Newest first; ``cursor`` continues after the previous page."""
        return await list_incidents(
            self._store.fetchall,
            self._current()[0],
            agent=agent,
            policy=policy,
            since=since,
            until=until,
            limit=limit,
            cursor=cursor,
        )

    async def spend(self, agent_id: str) -> AgentSpendOut:
        """The agent's traced spend, and against each of its budgets."""
        return await agent_spend(self._store.fetchall, self._current()[1], agent_id, self.clock())
