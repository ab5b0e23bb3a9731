"""SubmitTrace: a finished call, evaluated after the fact with the active
snapshot, in monitor fashion (nothing is held or blocked: the call ran).

The sidecar evaluates the trace itself, since it holds the snapshot and the
agent's spend, adds the cost to usage (as ReportUsage would, by request
id), and records the trace's answer in its state database in one
transaction with:

- following a control plane: a ``trace.recorded`` outbox event (the
  findings, the cost and a masked excerpt, never the request text), which
  the uplink ships in the background; the control plane records the
  incidents and emits its events;
- standalone (a snapshot file): the incidents, in the state database
  (``pdp incidents --state PATH``).

The same request id again answers the recorded trace and adds nothing."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import grpc

from pdp.engine import (
    CompiledSnapshot,
    EnforceInput,
    Mode,
    Severity,
    StateUnavailableError,
    SteadyClock,
    TraceFindings,
    UsagePort,
    UsageReport,
    Violation,
    evaluate_trace,
    masked_excerpt,
)
from pdp.state import IncidentRecord, OutboxEvent, TraceLog, UsageConflictError

from ._errors import RequestError
from ._uplink import fired_policies

__all__ = ["TRACE_RECORDED", "TraceAnswer", "TraceDesk"]

log = logging.getLogger("pdp.server")

TRACE_RECORDED = "trace.recorded"
# Trace ids are derived from the agent and the request id, so a trace sent
# twice (to one sidecar or, through the control plane, to two) is one trace.
_TRACE_IDS = uuid.UUID("1f0e3c52-5a57-4c1e-9d33-5c1b0b8f7a11")


@dataclass(frozen=True, slots=True)
class TraceAnswer:
    trace_id: str
    violations: tuple[Violation, ...]
    anomaly: bool


def _violation_json(v: Violation) -> dict[str, Any]:
    return {
        "policyId": v.policy_id,
        "policyName": v.policy_name,
        "policyType": v.policy_type,
        "severity": v.severity.wire_name,
        "mode": v.mode.wire_name,
        "message": v.message,
    }


def _answer_of(result: Mapping[str, Any]) -> TraceAnswer:
    return TraceAnswer(
        trace_id=str(result["traceId"]),
        violations=tuple(
            Violation(
                policy_id=v["policyId"],
                policy_name=v["policyName"],
                policy_type=v["policyType"],
                severity=Severity[v["severity"].upper()],
                message=v["message"],
                mode=Mode[v["mode"].upper()],
            )
            for v in result["violations"]
        ),
        anomaly=bool(result["anomaly"]),
    )


class TraceDesk:
    """``ships`` is true when a control plane takes the traces (they go to
    the outbox; ``on_written`` wakes the uplink); else incidents are kept
    in the state database."""

    def __init__(
        self,
        usage: UsagePort,
        traces: TraceLog,
        clock: SteadyClock,
        *,
        ships: bool,
        on_written: Callable[[], None] | None = None,
    ) -> None:
        self._usage = usage
        self._traces = traces
        self._clock = clock
        self._ships = ships
        self._on_written = on_written

    async def submit(self, snapshot: CompiledSnapshot, trace: EnforceInput) -> TraceAnswer:
        agent = snapshot.resolve_agent(trace.agent_id)
        if not agent.known:
            raise RequestError(
                "agent_id",
                f"no agent {trace.agent_id!r} in snapshot revision {snapshot.revision}",
            )
        if agent.paused:
            reason = agent.pause_reason or "no reason given"
            raise RequestError(
                "agent_id",
                f"agent {agent.name!r} is paused: {reason}; its traces are refused",
                grpc.StatusCode.FAILED_PRECONDITION,
            )
        trace_id = str(uuid.uuid5(_TRACE_IDS, f"{agent.id}\n{trace.request_id}"))
        answered = await self._traces.answered(trace_id)
        if answered is not None:
            return _answer_of(answered)
        now = self._clock()
        findings = evaluate_trace(snapshot, trace, self._usage, now)
        cost = trace.estimated_cost_usd or 0.0
        try:
            await self._usage.record(UsageReport(agent.id, cost, trace.request_id))
        except UsageConflictError as exc:
            # ReportUsage recorded another amount for the call: that stands.
            log.info("trace %s: its cost was not recorded: %s", trace_id, exc)
        except StateUnavailableError as exc:
            message = f"the trace was not recorded: {exc}; retry with the same request_id"
            raise RequestError("", message, grpc.StatusCode.UNAVAILABLE) from None
        result = {
            "traceId": trace_id,
            "violations": [_violation_json(v) for v in findings.violations],
            "anomaly": findings.anomaly,
        }
        excerpt = masked_excerpt(trace.input)
        incidents: list[IncidentRecord] = []
        events: list[OutboxEvent] = []
        if self._ships:
            events.append(self._event(trace_id, trace, findings, excerpt, snapshot.revision, now))
        else:
            incidents = self._incidents(trace_id, trace, findings, excerpt, now)
        written = await self._traces.record(
            trace_id, agent.id, trace.request_id, result, now, incidents, events
        )
        if written and events and self._on_written is not None:
            self._on_written()
        return _answer_of(result)

    @staticmethod
    def _event(
        trace_id: str,
        trace: EnforceInput,
        findings: TraceFindings,
        excerpt: str,
        revision: int,
        now: datetime,
    ) -> OutboxEvent:
        policies = fired_policies(findings.violations)
        return OutboxEvent(
            event_id=str(uuid.uuid5(_TRACE_IDS, trace_id)),
            type=TRACE_RECORDED,
            time=now,
            data={
                "traceId": trace_id,
                "agentId": findings.agent.id,
                "requestId": trace.request_id,
                "costUsd": trace.estimated_cost_usd or 0.0,
                "decision": findings.decision.value,
                "findings": [
                    {"policy": p, "message": v.message[:2000]}
                    for p, v in zip(policies, findings.violations, strict=True)
                ],
                "anomalyReasons": list(findings.anomaly_reasons),
                "perExecutionLimitUsd": findings.per_execution_limit,
                "maskedExcerpt": excerpt,
                "snapshotRevision": revision,
            },
        )

    @staticmethod
    def _incidents(
        trace_id: str, trace: EnforceInput, findings: TraceFindings, excerpt: str, now: datetime
    ) -> list[IncidentRecord]:
        cost = trace.estimated_cost_usd or 0.0
        return [
            IncidentRecord(
                trace_id=trace_id,
                agent_id=findings.agent.id,
                policy_id=v.policy_id,
                policy_name=v.policy_name,
                policy_type=v.policy_type,
                mode=v.mode.wire_name,
                severity=v.severity.wire_name,
                message=v.message,
                anomaly=findings.anomalous(v),
                cost_usd=cost,
                request_id=trace.request_id,
                masked_excerpt=excerpt,
                created_at=now,
            )
            for v in findings.violations
        ]
