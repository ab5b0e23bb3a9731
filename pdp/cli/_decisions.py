"""``pdp decisions tail|query``: read a sidecar's decision log (its state
database, ``pdp serve --state``) while it runs, as text, JSON lines or
CloudEvents JSON lines. ``tail`` prints the last records and then follows
new ones; ``query`` prints what matches and exits."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from ._args import Subparsers, duration, positive_float, positive_int

if TYPE_CHECKING:
    from pdp.state import DecisionFilter, DecisionLogReader, DecisionRecord

__all__ = ["DECISION_NAMES", "add_parser", "decision_name", "record_json", "run", "since_argument"]

DECISION_NAMES = ("ALLOW", "ALLOW_WITH_WARNINGS", "BLOCK", "PENDING_APPROVAL", "AGENT_PAUSED")
_FORMATS = ("text", "json", "cloudevents")


def since_argument(value: str) -> datetime:
    """An RFC 3339 time, or a duration back from now (``15m``, ``2h``, ``7d``)."""
    from pdp.engine import parse_rfc3339, utc_now

    moment = parse_rfc3339(value)
    if moment is not None:
        return moment
    try:
        seconds = duration(value)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"{value!r} is neither an RFC 3339 time nor a duration (e.g. 15m, 2h, 7d)"
        ) from None
    return utc_now() - timedelta(seconds=seconds)


def decision_name(value: str) -> str:
    name = value.strip().upper()
    if name not in DECISION_NAMES:
        raise argparse.ArgumentTypeError(
            f"unknown decision {value!r} (expected one of {', '.join(DECISION_NAMES)})"
        )
    return name


def add_parser(subparsers: Subparsers) -> None:
    decisions = subparsers.add_parser(
        "decisions",
        help="read a sidecar's decision log (tail it, or query it)",
        description="Read the decision log in a sidecar's state database while it runs. "
        "Records hold ids, the decision and the policies that fired: never request text.",
    )
    commands = decisions.add_subparsers(dest="decisions_command", required=True)
    tail = commands.add_parser("tail", help="print the last decisions, then follow new ones")
    _add_common(tail)
    tail.add_argument(
        "-n", "--lines", type=positive_int, default=10, help="decisions printed first (default 10)"
    )
    tail.add_argument("--no-follow", action="store_true", help="print the last decisions and exit")
    tail.add_argument(
        "--interval",
        type=positive_float,
        default=0.2,
        help="seconds between looks for new decisions (default 0.2)",
    )
    query = commands.add_parser("query", help="print the decisions that match, oldest first")
    _add_common(query)
    query.add_argument("--until", type=since_argument, default=None, help="before this time")
    query.add_argument(
        "--limit", type=positive_int, default=1000, help="the newest N that match (default 1000)"
    )
    decisions.set_defaults(run=run)


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--state", required=True, help="the sidecar's state database (--state)")
    parser.add_argument(
        "--agent", default=None, help="only this agent (its id, or its name in the snapshot)"
    )
    parser.add_argument(
        "--decision",
        type=decision_name,
        default=None,
        help=f"only this decision ({', '.join(DECISION_NAMES)})",
    )
    parser.add_argument(
        "--since",
        type=since_argument,
        default=None,
        help="from this time: RFC 3339, or a duration back from now (15m, 2h, 7d)",
    )
    parser.add_argument("--format", choices=_FORMATS, default="text", help="default text")


def run(args: argparse.Namespace) -> int:
    """0 on success; 1 when the file is not a sidecar's state database."""
    from pdp.state import DecisionFilter, DecisionLogReader, StateError

    try:
        with DecisionLogReader(args.state) as reader:
            selection = DecisionFilter(
                agent_ids=() if args.agent is None else reader.agent_ids(args.agent),
                decision=args.decision,
                since=args.since,
                until=getattr(args, "until", None),
            )
            printer = _Printer(args.format, reader.sidecar_source())
            if args.decisions_command == "query":
                printer.print(reader.newest(selection, args.limit))
                return 0
            rows = reader.newest(selection, args.lines)
            printer.print(rows)
            if args.no_follow:
                return 0
            last = rows[-1][0] if rows else reader.last_seq()
            return _follow(reader, selection, last, args.interval, printer)
    except StateError as exc:
        print(exc, file=sys.stderr)
        return 1


def _follow(
    reader: DecisionLogReader,
    selection: DecisionFilter,
    last: int,
    interval: float,
    printer: _Printer,
) -> int:
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    try:
        while not stopping:
            rows = reader.after(last, selection)
            if rows:
                printer.print(rows)
                last = rows[-1][0]
                continue
            time.sleep(interval)
    except KeyboardInterrupt:
        pass
    return 0


def record_json(record: DecisionRecord) -> dict[str, Any]:
    from pdp.engine import format_time

    return {
        "decisionId": record.decision_id,
        "decidedAt": format_time(record.decided_at),
        "agentId": record.agent_id,
        "decision": record.decision,
        "policiesFired": list(record.policies_fired),
        "piiCounts": dict(record.pii_counts),
        "snapshotRevision": record.snapshot_revision,
        "requestId": record.request_id,
        "approvalId": record.approval_id,
    }


class _Printer:
    def __init__(self, output: str, source: str) -> None:
        self._format = output
        self._source = source

    def print(self, rows: list[tuple[int, DecisionRecord]]) -> None:
        from pdp.state import decision_cloudevent

        lines = []
        for _, record in rows:
            if self._format == "text":
                lines.append(_text(record))
                continue
            body = record_json(record)
            if self._format == "cloudevents":
                body = decision_cloudevent(
                    record.decision_id, record.decided_at, self._source, record.agent_id, body
                )
            lines.append(json.dumps(body, ensure_ascii=False, separators=(",", ":")))
        if lines:
            sys.stdout.write("\n".join(lines) + "\n")
            sys.stdout.flush()


def _text(record: DecisionRecord) -> str:
    from pdp.engine import format_time

    fired = ",".join(record.policies_fired) or "-"
    pii = ",".join(f"{k}={v}" for k, v in sorted(record.pii_counts.items()))
    extra = f" pii={pii}" if pii else ""
    if record.approval_id:
        extra += f" approval={record.approval_id}"
    return (
        f"{format_time(record.decided_at)}  {record.decision:<19} agent={record.agent_id}"
        f" policies={fired} revision={record.snapshot_revision}"
        f" decision={record.decision_id} request={record.request_id or '-'}{extra}"
    )
