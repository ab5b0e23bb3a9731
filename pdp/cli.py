"""The ``pdp`` command: ``pdp serve`` runs the sidecar, ``pdp check`` validates
a snapshot file offline."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = ["build_parser", "main"]


def _listen_address(value: str) -> str:
    if value.startswith("unix:"):
        if len(value) <= len("unix:"):
            raise argparse.ArgumentTypeError("unix: needs a socket path")
        return value
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise argparse.ArgumentTypeError(f"{value!r} is not host:port or unix:/path")
    return value


def _positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if number <= 0:
        raise argparse.ArgumentTypeError("must be greater than 0")
    return number


def _positive_float(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None
    if not number > 0 or number == float("inf"):
        raise argparse.ArgumentTypeError("must be a finite number greater than 0")
    return number


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pdp", description="Policy decision point for AI agents.")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the sidecar")
    serve.add_argument(
        "--snapshot",
        required=True,
        help="snapshot file (YAML or JSON, watched) or a control plane's "
        "http(s)://.../api/v1/snapshot URL (long-polled)",
    )
    serve.add_argument(
        "--api-key",
        default=None,
        help="API key for an http(s) snapshot source (default: $PDP_API_KEY)",
    )
    serve.add_argument(
        "--max-staleness",
        type=_positive_float,
        default=None,
        help="seconds without an answer from the snapshot source after which the sidecar "
        "fails closed and reports NOT_SERVING (default: never)",
    )
    serve.add_argument(
        "--listen",
        type=_listen_address,
        default="127.0.0.1:50051",
        help="host:port or unix:/path (default 127.0.0.1:50051; port 0 picks a free one)",
    )
    serve.add_argument(
        "--state", default="pdp-state.db", help="SQLite state file (default pdp-state.db)"
    )
    serve.add_argument(
        "--max-input-bytes",
        type=_positive_int,
        default=1024 * 1024,
        help="largest input or output text accepted, in UTF-8 bytes (default 1 MiB)",
    )
    serve.add_argument(
        "--poll-interval",
        type=_positive_float,
        default=0.2,
        help="seconds between checks of the snapshot file (default 0.2)",
    )
    serve.add_argument(
        "--shutdown-grace",
        type=_positive_float,
        default=10.0,
        help="seconds in-flight calls get to finish on SIGTERM (default 10)",
    )
    serve.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])

    check = sub.add_parser("check", help="validate a snapshot file offline")
    check.add_argument("path", type=Path)

    control = sub.add_parser(
        "control",
        help="run the control plane (REST API and snapshot feed), or manage its API keys",
    )
    control.add_argument(
        "--listen",
        default="127.0.0.1:8080",
        help="host:port (default 127.0.0.1:8080; port 0 picks a free one)",
    )
    control.add_argument(
        "--db",
        default="pdp-control.db",
        help="SQLite database, created on first start (default pdp-control.db)",
    )
    control.add_argument(
        "--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"]
    )
    keys = control.add_subparsers(dest="control_command")
    create_key = keys.add_parser("create-key", help="create an API key; prints it on the last line")
    create_key.add_argument("--db", required=True, help="the control plane's database")
    create_key.add_argument("--name", required=True, help="who or what the key is for")
    create_key.add_argument("--expires-at", default=None, help="RFC 3339 time (default: never)")
    revoke_key = keys.add_parser("revoke-key", help="revoke API keys by id or name")
    revoke_key.add_argument("--db", required=True, help="the control plane's database")
    which = revoke_key.add_mutually_exclusive_group(required=True)
    which.add_argument("--id", default=None, help="the key's id")
    which.add_argument("--name", default=None, help="every live key with this name")
    return parser


def _check(path: Path) -> int:
    from pdp.engine import SnapshotError, compile_snapshot, parse_document

    try:
        compile_snapshot(parse_document(path.read_bytes()))
    except OSError as exc:
        print(f"{path}: cannot read: {exc.strerror}", file=sys.stderr)
        return 2
    except SnapshotError as exc:
        for error in exc.errors:
            print(f"{path}: {error}", file=sys.stderr)
        return 1
    print(f"{path}: ok")
    return 0


def _serve(args: argparse.Namespace) -> int:
    from pdp.server import ServeOptions, run
    from pdp.state import StateError

    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    options = ServeOptions(
        snapshot=args.snapshot,
        listen=args.listen,
        state=args.state,
        max_input_bytes=args.max_input_bytes,
        poll_interval=args.poll_interval,
        shutdown_grace=args.shutdown_grace,
        api_key=args.api_key or os.environ.get("PDP_API_KEY"),
        max_staleness=args.max_staleness,
    )
    try:
        import uvloop
    except ImportError:
        loop_factory = None
    else:
        loop_factory = uvloop.new_event_loop
    try:
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            return runner.run(run(options))
    except (OSError, StateError) as exc:
        logging.getLogger("pdp").error("cannot start: %s", exc)
        return 1


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "control":
        from pdp.control._cli import run_control

        return run_control(args)
    if args.command == "check":
        return _check(args.path)
    return _serve(args)


if __name__ == "__main__":
    sys.exit(main())
