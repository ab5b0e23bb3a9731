"""``pdp incidents``: the incidents a standalone sidecar (one serving a
snapshot file) recorded from the traces it was sent (SubmitTrace), read
from its state database while it runs. A sidecar that follows a control
plane ships its traces there (GET /api/v1/incidents)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

from ._approvals import _not_a_state_database
from ._args import Subparsers

__all__ = ["add_parser", "run"]

MAX_LIMIT = 10_000


def add_parser(subparsers: Subparsers) -> None:
    incidents = subparsers.add_parser(
        "incidents",
        help="list the incidents a standalone sidecar recorded from traces",
        description="The policies that fired on traces (SubmitTrace) a standalone sidecar "
        "(pdp serve --snapshot FILE) evaluated, newest first, from its state database. A "
        "sidecar that follows a control plane ships its traces there: GET /api/v1/incidents.",
    )
    incidents.add_argument("--state", required=True, help="the sidecar's state database (--state)")
    incidents.add_argument("--agent", default=None, help="only this agent's (its id)")
    incidents.add_argument("--limit", type=int, default=100, help="at most this many (default 100)")
    incidents.add_argument("--json", action="store_true", help="one JSON document, for scripts")
    incidents.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """0 on success; 1 when the database cannot be read; 2 for bad arguments."""
    from pdp.state import StateError

    if not 1 <= args.limit <= MAX_LIMIT:
        print(f"--limit: must be between 1 and {MAX_LIMIT}", file=sys.stderr)
        return 2
    path = Path(args.state)
    problem = _not_a_state_database(path)
    if problem:
        print(f"--state: {problem}", file=sys.stderr)
        return 1
    try:
        return asyncio.run(_list(path, args.agent, args.limit, args.json))
    except StateError as exc:
        print(exc, file=sys.stderr)
        return 1


async def _list(path: Path, agent: str | None, limit: int, as_json: bool) -> int:
    from pdp.state import Database, TraceLog

    db = await Database.open(path)
    try:
        found = await TraceLog(db).incidents(agent_id=agent, limit=limit)
    finally:
        await db.close()
    if as_json:
        print(json.dumps({"incidents": [i.as_json() for i in found]}, indent=2))
        return 0
    if not found:
        print("no incidents")
        return 0
    for i in found:
        anomaly = "  ANOMALY" if i.anomaly else ""
        print(
            f"{i.as_json()['createdAt']}  agent {i.agent_id}  {i.policy_name} ({i.mode}){anomaly}"
        )
        print(f"    {i.message}")
        print(f"    trace {i.trace_id}  request {i.request_id}  cost {i.cost_usd:.4f} USD")
        if i.masked_excerpt:
            print(f"    input: {i.masked_excerpt!r}")
    return 0
