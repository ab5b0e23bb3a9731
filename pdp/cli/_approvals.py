"""``pdp approvals``: list and decide the approvals of a sidecar that keeps
them itself (one serving a snapshot file), in its state database, while it
runs. The sidecar notices a decision within a tenth of a second."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import json
import sqlite3
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from ._args import Subparsers

if TYPE_CHECKING:
    from pdp.engine import Approval
    from pdp.state import Database

__all__ = ["add_parser", "run"]

_STATUSES = ("pending", "approved", "denied", "expired", "all")
MAX_COMMENT_CHARS = 2000
MAX_REVIEWER_CHARS = 200


def add_parser(subparsers: Subparsers) -> None:
    approvals = subparsers.add_parser(
        "approvals",
        help="list, approve or deny the approvals a standalone sidecar holds",
        description="Decide the calls a standalone sidecar (pdp serve --snapshot FILE) holds "
        "for approval, in its state database, while it runs. A sidecar that follows a "
        "control plane has its approvals decided there (POST /api/v1/approvals/ID/approve).",
    )
    commands = approvals.add_subparsers(dest="approvals_command", required=True)
    listing = commands.add_parser("list", help="list approvals, newest first")
    _add_state(listing)
    listing.add_argument("--status", choices=_STATUSES, default="pending", help="default pending")
    listing.add_argument("--json", action="store_true", help="one JSON document, for scripts")
    for verb in ("approve", "deny"):
        decide = commands.add_parser(verb, help=f"{verb} a pending approval")
        decide.add_argument("approval_id", help="the id Enforce answered with")
        _add_state(decide)
        decide.add_argument(
            "--reviewer", default=None, help="who decides (default: the OS user running this)"
        )
        decide.add_argument("--comment", default="", help="why; the agent sees it")
    approvals.set_defaults(run=run)


def _add_state(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--state", required=True, help="the sidecar's state database (--state)")


def run(args: argparse.Namespace) -> int:
    """0 on success; 1 when the approval is unknown or already decided, or
    the database cannot be used; 2 for bad arguments."""
    from pdp.state import StateError

    command = args.approvals_command
    if command != "list":
        reviewer = args.reviewer if args.reviewer is not None else getpass.getuser()
        problem = _check_text("--reviewer", reviewer, MAX_REVIEWER_CHARS, required=True)
        problem = problem or _check_text("--comment", args.comment, MAX_COMMENT_CHARS)
        if problem:
            print(problem, file=sys.stderr)
            return 2
        args.reviewer = reviewer
    path = Path(args.state)
    problem = _not_a_state_database(path)
    if problem:
        print(f"--state: {problem}", file=sys.stderr)
        return 1
    try:
        return asyncio.run(_run(args, path))
    except StateError as exc:
        print(exc, file=sys.stderr)
        return 1


def _not_a_state_database(path: Path) -> str:
    """Why ``path`` is not a sidecar's state database ("" when it is). Read
    only: a command must not turn another file into one."""
    if not path.is_file():
        return f"no state database at {str(path)!r}"
    try:
        with contextlib.closing(
            sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        ) as db:
            tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
    except sqlite3.Error as exc:
        return f"{str(path)!r} is not a pdp state database: {exc}"
    if not {"usage", "last_good_snapshot"} <= tables:
        return f"{str(path)!r} is not a pdp sidecar's state database (pdp serve --state)"
    return ""


def _check_text(option: str, value: str, limit: int, *, required: bool = False) -> str:
    if required and not value.strip():
        return f"{option}: must not be empty"
    if len(value) > limit:
        return f"{option}: longer than {limit} characters"
    if any(ord(c) < 32 and c not in "\t\n" for c in value):
        return f"{option}: must not hold control characters"
    return ""


async def _run(args: argparse.Namespace, path: Path) -> int:
    from pdp.state import Database, approvals_authority

    db = await Database.open(path)
    try:
        authority = await approvals_authority(db)
        if authority is not None:
            print(
                f"this sidecar follows the control plane at {authority}: its approvals are "
                f"decided there (GET {authority}approvals?status=pending, "
                f"POST {authority}approvals/ID/approve)",
                file=sys.stderr,
            )
            return 1
        if args.approvals_command == "list":
            return await _list(db, args.status, args.json)
        return await _decide(db, args)
    finally:
        await db.close()


async def _list(db: Database, status: str, as_json: bool) -> int:
    from pdp.engine import ApprovalState, approval_json, utc_now
    from pdp.state import list_approvals

    now = utc_now()
    wanted = None if status == "all" else ApprovalState(status)
    approvals = await list_approvals(db, wanted, now)
    if as_json:
        print(json.dumps({"approvals": [approval_json(a, now) for a in approvals]}, indent=2))
        return 0
    if not approvals:
        print(f"no {'' if status == 'all' else status + ' '}approvals")
        return 0
    for a in approvals:
        state = a.state_at(now).value
        when = _left(a, now) if state == "pending" else _decided(a)
        policies = ", ".join(p.name for p in a.policies if p.mode == "require_approval")
        print(f"{a.id}  {state:<8}  agent {a.agent_id}  {when}")
        print(f"    policies: {policies}")
        print(f"    input: {a.masked_excerpt!r}")
    return 0


def _left(a: Approval, now: datetime) -> str:
    return f"expires in {max(0, int((a.expires_at - now).total_seconds()))}s"


def _decided(a: Approval) -> str:
    from pdp.engine import format_time

    by = f" by {a.reviewer}" if a.reviewer else ""
    used = f", used {format_time(a.consumed_at)}" if a.consumed_at else ""
    when = format_time(a.decided_at) if a.decided_at else format_time(a.expires_at)
    return f"{when}{by}{used}"


async def _decide(db: Database, args: argparse.Namespace) -> int:
    from pdp.engine import utc_now
    from pdp.state import ApprovalDecidedError, ApprovalNotFoundError, decide_approval

    approve = args.approvals_command == "approve"
    try:
        decided = await decide_approval(
            db, args.approval_id, approve, args.reviewer, args.comment, utc_now()
        )
    except (ApprovalNotFoundError, ApprovalDecidedError) as exc:
        print(exc, file=sys.stderr)
        return 1
    print(f"{decided.state.value} {decided.id} (agent {decided.agent_id}) as {decided.reviewer}")
    return 0
