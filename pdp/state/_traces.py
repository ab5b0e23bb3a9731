"""Traces a sidecar evaluated: the answer of each (so the same request id
again gets the same answer and adds nothing), the incidents of a
standalone sidecar, and the outbox event that ships a trace to a control
plane, written in one transaction."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pdp.engine import format_time
from pdp.state._database import Database, from_micros, to_micros
from pdp.state._outbox import Outbox, OutboxEvent

__all__ = ["IncidentRecord", "TraceLog"]

_INCIDENT_COLUMNS = (
    "trace_id, agent_id, policy_id, policy_name, policy_type, mode, severity, message,"
    " anomaly, cost_usd, request_id, masked_excerpt, created_at_us"
)


@dataclass(frozen=True, slots=True)
class IncidentRecord:
    """A policy that fired on a trace."""

    trace_id: str
    agent_id: str
    policy_id: str
    policy_name: str
    policy_type: str
    mode: str
    severity: str
    message: str
    anomaly: bool
    cost_usd: float
    request_id: str
    masked_excerpt: str
    created_at: datetime

    def as_json(self) -> dict[str, Any]:
        return {
            "traceId": self.trace_id,
            "agentId": self.agent_id,
            "policy": {
                "id": self.policy_id,
                "name": self.policy_name,
                "type": self.policy_type,
                "mode": self.mode,
                "severity": self.severity,
            },
            "message": self.message,
            "anomaly": self.anomaly,
            "costUsd": self.cost_usd,
            "requestId": self.request_id,
            "maskedExcerpt": self.masked_excerpt,
            "createdAt": format_time(self.created_at),
        }


class TraceLog:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def answered(self, trace_id: str) -> Mapping[str, Any] | None:
        """The answer recorded for ``trace_id``; None when it is new."""
        async with self._db.connection.execute(
            "SELECT result_json FROM traces WHERE trace_id = ?", (trace_id,)
        ) as cursor:
            row = await cursor.fetchone()
        return None if row is None else dict(json.loads(row[0]))

    async def record(
        self,
        trace_id: str,
        agent_id: str,
        request_id: str,
        result: Mapping[str, Any],
        at: datetime,
        incidents: Sequence[IncidentRecord] = (),
        events: Sequence[OutboxEvent] = (),
    ) -> bool:
        """Records the trace's answer with its incidents and outbox events,
        all or none; False (and nothing written) when it was recorded before."""
        result_json = json.dumps(dict(result), ensure_ascii=False, separators=(",", ":"))
        async with self._db.transaction() as connection:
            cursor = await connection.execute(
                "INSERT OR IGNORE INTO traces"
                " (trace_id, agent_id, request_id, result_json, recorded_at_us)"
                " VALUES (?, ?, ?, ?, ?)",
                (trace_id, agent_id, request_id, result_json, to_micros(at, "at")),
            )
            if cursor.rowcount == 0:
                return False
            await connection.executemany(
                f"INSERT INTO incidents ({_INCIDENT_COLUMNS})"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        i.trace_id,
                        i.agent_id,
                        i.policy_id,
                        i.policy_name,
                        i.policy_type,
                        i.mode,
                        i.severity,
                        i.message,
                        int(i.anomaly),
                        i.cost_usd,
                        i.request_id,
                        i.masked_excerpt,
                        to_micros(i.created_at, "created_at"),
                    )
                    for i in incidents
                ],
            )
            await Outbox.add_within(connection, events)
        return True

    async def incidents(
        self, *, agent_id: str | None = None, limit: int = 100
    ) -> list[IncidentRecord]:
        """Newest first."""
        where, parameters = ("WHERE agent_id = ?", (agent_id,)) if agent_id else ("", ())
        async with self._db.connection.execute(
            f"SELECT {_INCIDENT_COLUMNS} FROM incidents {where} ORDER BY seq DESC LIMIT ?",
            (*parameters, limit),
        ) as cursor:
            rows = await cursor.fetchall()
        return [
            IncidentRecord(
                trace_id=str(r[0]),
                agent_id=str(r[1]),
                policy_id=str(r[2]),
                policy_name=str(r[3]),
                policy_type=str(r[4]),
                mode=str(r[5]),
                severity=str(r[6]),
                message=str(r[7]),
                anomaly=bool(r[8]),
                cost_usd=float(r[9]),
                request_id=str(r[10]),
                masked_excerpt=str(r[11]),
                created_at=from_micros(int(r[12])),
            )
            for r in rows
        ]
