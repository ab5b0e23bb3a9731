"""Reading the decision log of a sidecar's state database from another
process (``pdp decisions``), read only, while the sidecar writes it, and
the decision's JSON and CloudEvents forms shared with the control plane.

The log is read by ``seq`` (its rowid, growing with every record), so a
follower asks for what came after the last ``seq`` it printed: pruning
deletes from the front only, so it never skips a record still there."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from pdp.engine import SnapshotError, format_time, parse_document
from pdp.state._database import from_micros, to_micros
from pdp.state._decision_log import DecisionRecord
from pdp.state._errors import StateError

__all__ = [
    "CLOUDEVENT_DECISION_TYPE",
    "DecisionFilter",
    "DecisionLogReader",
    "decision_cloudevent",
]

CLOUDEVENT_DECISION_TYPE = "dev.pdp.decision.v1"

_COLUMNS = (
    "seq, decision_id, decided_at_us, agent_id, decision, policies_fired_json,"
    " pii_counts_json, snapshot_revision, request_id, approval_id"
)


@dataclass(frozen=True, slots=True)
class DecisionFilter:
    """What to read: all of it when every field is empty. ``agent_ids``
    matches any of them."""

    agent_ids: tuple[str, ...] = ()
    decision: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def where(self) -> tuple[str, list[object]]:
        clauses: list[str] = []
        parameters: list[object] = []
        if self.agent_ids:
            clauses.append(f"agent_id IN ({', '.join('?' * len(self.agent_ids))})")
            parameters.extend(self.agent_ids)
        if self.decision is not None:
            clauses.append("decision = ?")
            parameters.append(self.decision)
        if self.since is not None:
            clauses.append("decided_at_us >= ?")
            parameters.append(to_micros(self.since, "since"))
        if self.until is not None:
            clauses.append("decided_at_us < ?")
            parameters.append(to_micros(self.until, "until"))
        return " AND ".join(clauses), parameters


class DecisionLogReader:
    """A read-only connection to the decision log at ``path``. Raises
    :class:`StateError` when the file is not a sidecar's state database."""

    def __init__(self, path: str | Path) -> None:
        file = Path(path)
        if not file.is_file():
            raise StateError(f"no state database at {str(file)!r}")
        try:
            self._db = sqlite3.connect(f"{file.resolve().as_uri()}?mode=ro", uri=True)
            tables = {row[0] for row in self._db.execute("SELECT name FROM sqlite_master")}
        except sqlite3.Error as exc:
            raise StateError(f"{str(file)!r} is not a pdp state database: {exc}") from exc
        if "decision_log" not in tables:
            self._db.close()
            raise StateError(
                f"{str(file)!r} is not a pdp sidecar's state database (no decision log)"
            )
        self.path = file

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> DecisionLogReader:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def newest(self, selection: DecisionFilter, limit: int) -> list[tuple[int, DecisionRecord]]:
        """The last ``limit`` records that match, oldest first, with their seq."""
        where, parameters = selection.where()
        sql = f"SELECT {_COLUMNS} FROM decision_log"
        if where:
            sql += f" WHERE {where}"
        rows = self._fetch(f"{sql} ORDER BY seq DESC LIMIT ?", [*parameters, limit])
        rows.reverse()
        return rows

    def after(
        self, seq: int, selection: DecisionFilter, limit: int = 1000
    ) -> list[tuple[int, DecisionRecord]]:
        """The records after ``seq`` that match, oldest first, at most ``limit``."""
        where, parameters = selection.where()
        sql = f"SELECT {_COLUMNS} FROM decision_log WHERE seq > ?"
        if where:
            sql += f" AND {where}"
        return self._fetch(f"{sql} ORDER BY seq LIMIT ?", [seq, *parameters, limit])

    def sidecar_source(self) -> str:
        """The CloudEvents ``source`` of this sidecar's decisions: its id
        (kept in the state database once it has followed a control plane)."""
        tables = {row[0] for row in self._query("SELECT name FROM sqlite_master", [])}
        if "sidecar_meta" in tables:
            rows = self._query("SELECT value FROM sidecar_meta WHERE key = 'sidecar_id'", [])
            if rows:
                return f"urn:pdp:sidecar:{rows[0][0]}"
        return f"urn:pdp:sidecar:{self.path.resolve().as_posix()}"

    def agent_ids(self, ref: str) -> tuple[str, ...]:
        """``ref`` and, when the last good snapshot names an agent ``ref``,
        that agent's id: decisions carry the id."""
        rows = self._query("SELECT document FROM last_good_snapshot WHERE id = 1", [])
        if not rows:
            return (ref,)
        try:
            document = parse_document(rows[0][0])
        except (ValueError, SnapshotError):
            return (ref,)
        agents = document.get("agents")
        found = [ref]
        if isinstance(agents, list):
            for agent in agents:
                if isinstance(agent, Mapping) and agent.get("name") == ref:
                    found.append(str(agent.get("id", ref)))
        return tuple(dict.fromkeys(found))

    def last_seq(self) -> int:
        rows = self._query("SELECT max(seq) FROM decision_log", [])
        return int(rows[0][0] or 0)

    def _fetch(self, sql: str, parameters: Sequence[object]) -> list[tuple[int, DecisionRecord]]:
        return [(int(row[0]), _record(row[1:])) for row in self._query(sql, parameters)]

    def _query(self, sql: str, parameters: Sequence[object]) -> list[tuple[Any, ...]]:
        try:
            with contextlib.closing(self._db.execute(sql, parameters)) as cursor:
                return [tuple(row) for row in cursor.fetchall()]
        except sqlite3.Error as exc:
            raise StateError(f"cannot read the decision log of {str(self.path)!r}: {exc}") from exc


def _record(row: Sequence[Any]) -> DecisionRecord:
    (decision_id, decided_at_us, agent_id, decision, fired, pii, revision, request, approval) = row
    return DecisionRecord(
        decision_id=decision_id,
        decided_at=from_micros(decided_at_us),
        agent_id=agent_id,
        decision=decision,
        policies_fired=tuple(json.loads(fired)),
        pii_counts=dict(json.loads(pii)),
        snapshot_revision=revision,
        request_id=request,
        approval_id=approval,
    )


def decision_cloudevent(
    decision_id: str,
    time: datetime,
    source: str,
    agent_id: str,
    data: Mapping[str, Any],
) -> dict[str, Any]:
    """One decision as a CloudEvents 1.0 event in its JSON format: ``data``
    is the decision's JSON form, ``subject`` the agent."""
    return {
        "specversion": "1.0",
        "id": decision_id,
        "source": source,
        "type": CLOUDEVENT_DECISION_TYPE,
        "time": format_time(time),
        "subject": agent_id,
        "datacontenttype": "application/json",
        "data": dict(data),
    }
