"""``pdp eval``: one decision against a snapshot file, printed as JSON with
every policy's result and why; no sidecar needed."""

from __future__ import annotations

import argparse
import json
import math
import sys
from datetime import datetime
from pathlib import Path

from ._args import Subparsers, add_allow_insecure_validators
from ._files import SnapshotFileError, compile_file

__all__ = ["add_parser", "metadata_pair", "rfc3339_time", "run", "usd_amount"]


def metadata_pair(value: str) -> tuple[str, str]:
    key, sep, item = value.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"{value!r} is not KEY=VALUE")
    return key, item


def usd_amount(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None
    if not math.isfinite(number) or number < 0:
        raise argparse.ArgumentTypeError(f"{value!r}: must be a finite amount of at least 0")
    return number


def rfc3339_time(value: str) -> datetime:
    from pdp.engine import parse_rfc3339

    moment = parse_rfc3339(value)
    if moment is None:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not an RFC 3339 time with a zone (such as 2026-03-15T12:00:00Z)"
        )
    return moment


def add_parser(subparsers: Subparsers) -> None:
    ev = subparsers.add_parser(
        "eval",
        help="decide one request against a snapshot file and explain every policy's result",
    )
    ev.add_argument("--snapshot", type=Path, required=True, help="snapshot file (YAML or JSON)")
    ev.add_argument("--agent", required=True, help="agent id or name")
    ev.add_argument("--input", default=None, help="the input text (the call's prompt)")
    ev.add_argument("--output", default=None, help="the output text (the model's answer)")
    ev.add_argument("--cost", type=usd_amount, default=None, help="estimated cost in USD")
    ev.add_argument("--tool", default="", help="the tool the call uses")
    ev.add_argument("--model", default="", help="the model the call uses")
    ev.add_argument(
        "--metadata",
        type=metadata_pair,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="request metadata; repeat for more",
    )
    ev.add_argument("--request-id", default="", help="the caller's id for the call")
    ev.add_argument(
        "--now", type=rfc3339_time, default=None, help="the time of the decision (default: now)"
    )
    add_allow_insecure_validators(ev)
    ev.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Prints the explained decision; 0 when it was decided (whatever the
    decision), 1 for an invalid snapshot, 2 for one that cannot be read or an
    --agent that is refused (white space at an end, a control character)."""
    from pdp.engine import NO_USAGE, AgentIdError, EnforceInput, utc_now

    try:
        snapshot = compile_file(
            args.snapshot, allow_insecure_validators=args.allow_insecure_validators
        )
    except SnapshotFileError as exc:
        for line in exc.lines:
            print(line, file=sys.stderr)
        return exc.exit_code
    request = EnforceInput(
        agent_id=args.agent,
        input=args.input,
        output=args.output,
        estimated_cost_usd=args.cost,
        model=args.model,
        tool=args.tool,
        metadata=dict(args.metadata),
        request_id=args.request_id,
    )
    try:
        explanation = snapshot.explain(request, NO_USAGE, args.now or utc_now())
    except AgentIdError as exc:
        print(f"pdp eval: --agent: {exc.reason}", file=sys.stderr)
        return 2
    json.dump(explanation.as_dict(), sys.stdout, indent=2, ensure_ascii=False)
    print()
    return 0
