"""``pdp control``: serve the control plane, or manage its API keys."""

from __future__ import annotations

import argparse
import asyncio
import logging
import resource
import sys
from typing import TYPE_CHECKING

from ._args import (
    Subparsers,
    add_log_level,
    add_metrics_listen,
    add_outbound_allow,
    duration,
    listen_address,
    positive_int,
    run_event_loop,
    stop_requested,
)
from ._logs import setup_logging

if TYPE_CHECKING:  # the control plane (FastAPI) loads only when it runs
    from pdp.control import ControlOptions, DbLocation

__all__ = ["add_parser", "run"]

log = logging.getLogger("pdp.control")


def add_parser(subparsers: Subparsers) -> None:
    control = subparsers.add_parser(
        "control",
        help="run the control plane (REST API and snapshot feed), or manage its API keys",
    )
    control.add_argument(
        "--listen",
        type=listen_address(unix=False),
        default="127.0.0.1:8080",
        help="host:port or [v6]:port (default 127.0.0.1:8080; port 0 picks a free one)",
    )
    _add_db(control, default="pdp-control.db")
    control.add_argument(
        "--tls-cert",
        default=None,
        help="PEM certificate (chain) to serve https with; needs --tls-key",
    )
    control.add_argument("--tls-key", default=None, help="PEM private key of --tls-cert")
    control.add_argument(
        "--docs",
        choices=["open", "key", "off"],
        default="open",
        help="who may read /docs and /openapi.json: anyone (open, the default), callers with "
        "an API key (key), or nobody (off)",
    )
    control.add_argument(
        "--max-connections",
        type=positive_int,
        default=1000,
        help="open connections at most; past it, the one waiting longest for a request is "
        "closed (default 1000)",
    )
    _add_webhook_options(control)
    add_outbound_allow(control, "webhook deliveries and the URLs written through the API")
    control.add_argument(
        "--decision-log-retention",
        type=duration,
        default=7 * 86400.0,
        help="how long the decisions sidecars ship are kept (default 7d)",
    )
    control.add_argument(
        "--decision-log-max-rows",
        type=positive_int,
        default=1_000_000,
        help="the most decisions kept; older ones go first (default 1000000)",
    )
    add_metrics_listen(control)
    add_log_level(control)
    control.set_defaults(run=run)
    keys = control.add_subparsers(dest="control_command")
    create_key = keys.add_parser("create-key", help="create an API key; prints it on the last line")
    _add_db(create_key)
    create_key.add_argument("--name", required=True, help="who or what the key is for")
    create_key.add_argument("--expires-at", default=None, help="RFC 3339 time (default: never)")
    create_key.add_argument(
        "--role",
        choices=("admin", "reviewer", "sidecar"),
        default="admin",
        help="admin: everything; reviewer: read, decide approvals; sidecar: read the "
        "snapshot, post events, wait for and consume approvals (default admin)",
    )
    revoke_key = keys.add_parser("revoke-key", help="revoke API keys by id or name")
    _add_db(revoke_key)
    which = revoke_key.add_mutually_exclusive_group(required=True)
    which.add_argument("--id", default=None, help="the key's id")
    which.add_argument("--name", default=None, help="every live key with this name")


def _retry_schedule(value: str) -> tuple[float, ...]:
    """``5s,5m,30m`` -> (5.0, 300.0, 1800.0); ``none``: no retries."""
    if value.strip().lower() == "none":
        return ()
    return tuple(duration(part) for part in value.split(","))


def _add_webhook_options(control: argparse.ArgumentParser) -> None:
    control.add_argument(
        "--webhook-retry-schedule",
        type=_retry_schedule,
        default=None,
        metavar="DELAYS",
        help="delays before each retry of a failed webhook delivery, comma-separated "
        "(default 5s,5m,30m,2h,5h,10h,10h; 'none': one attempt); each is drawn within "
        "+-20%%, and a delivery is marked failed after the last",
    )
    control.add_argument(
        "--webhook-timeout",
        type=duration,
        default=10.0,
        help="how long one webhook delivery attempt may take (default 10s)",
    )
    control.add_argument(
        "--webhook-concurrency",
        type=positive_int,
        default=16,
        help="webhook deliveries attempted at once (default 16)",
    )
    control.add_argument(
        "--webhook-lease",
        type=duration,
        default=15.0,
        help="with several control planes on one PostgreSQL database: how long one holds "
        "a webhook delivery it attempts before another may take it over, renewed every "
        "third of it while the attempt lasts (default 15s; at least 1s)",
    )
    control.add_argument(
        "--webhook-ca-file",
        default=None,
        help="PEM CA certificates trusted for https webhook URLs, besides the system's",
    )


def _add_db(parser: argparse.ArgumentParser, default: str | None = None) -> None:
    parser.add_argument(
        "--db",
        default=default,
        required=default is None,
        help="a SQLite file, created on first start"
        + (f" (default {default})" if default else "")
        + ", or postgresql://USER@HOST:PORT/DATABASE (several control planes may share it; "
        "?sslmode=require for TLS)",
    )
    parser.add_argument(
        "--db-password-file",
        default=None,
        help="file holding the PostgreSQL password (default: $PDP_DB_PASSWORD; never in the URL)",
    )
    parser.add_argument(
        "--db-ca-file",
        default=None,
        metavar="PATH",
        help="PEM CA certificate(s) the PostgreSQL server's certificate must chain to "
        "(instead of the system's); TLS is then required and the host name checked",
    )


class _UsageError(Exception):
    pass


def _db_location(args: argparse.Namespace) -> DbLocation:
    """--db, --db-password-file and --db-ca-file, read; _UsageError naming
    the option."""
    import dataclasses
    import ssl

    from pdp.control import DB_PASSWORD_ENV, PostgresLocation, parse_db_location
    from pdp.state import read_password

    try:
        location = parse_db_location(args.db)
    except ValueError as exc:
        raise _UsageError(f"argument --db: {exc}") from None
    if not isinstance(location, PostgresLocation):
        for option in ("--db-password-file", "--db-ca-file"):
            if getattr(args, option[2:].replace("-", "_")) is not None:
                raise _UsageError(f"{option} applies only with a postgresql:// --db")
        return location
    try:
        password = read_password(DB_PASSWORD_ENV, args.db_password_file, "--db-password-file")
    except ValueError as exc:
        raise _UsageError(str(exc)) from None
    ca_file = args.db_ca_file
    if ca_file is not None:
        if location.sslmode == "disable":
            raise _UsageError("--db-ca-file needs TLS: drop sslmode=disable from --db")
        try:  # read now, so a wrong path is an error at start, not at the first connect
            ssl.create_default_context(cafile=ca_file)
        except (OSError, ssl.SSLError) as exc:
            reason = getattr(exc, "strerror", None) or str(exc)
            raise _UsageError(f"argument --db-ca-file: cannot read {ca_file!r}: {reason}") from None
    return dataclasses.replace(location, password=password, ca_file=ca_file)


def run(args: argparse.Namespace) -> int:
    """Runs ``pdp control`` or one of its key commands."""
    from pdp.control import StoreError
    from pdp.observe import ObserveError

    setup_logging(getattr(args, "log_level", "INFO"), getattr(args, "log_format", "text"))
    command = getattr(args, "control_command", None)
    try:
        location = _db_location(args)
    except _UsageError as exc:
        log.error("cannot start: %s", exc)
        return 2
    try:
        if command == "create-key":
            return asyncio.run(_create_key(args, location))
        if command == "revoke-key":
            return asyncio.run(_revoke_key(args, location))
        return _serve(args, location)
    except StoreError as exc:
        text = str(exc)
        # A database that cannot be opened is --db's problem: say so.
        log.error("cannot start: %s", text if text.startswith("--db") else f"--db: {text}")
        return 1
    except (OSError, ObserveError) as exc:
        log.error("cannot start: %s", exc)
        return 1


async def _create_key(args: argparse.Namespace, location: DbLocation) -> int:
    from pdp.control import Role, Store, create_api_key
    from pdp.engine import parse_rfc3339, utc_now

    expires_at = None
    if args.expires_at is not None:
        expires_at = parse_rfc3339(args.expires_at)
        if expires_at is None:
            print(f"--expires-at: {args.expires_at!r} is not RFC 3339", file=sys.stderr)
            return 2
        if expires_at <= utc_now():
            print("--expires-at: the moment has already passed", file=sys.stderr)
            return 2
    store = await Store.open(location)
    try:
        key = await create_api_key(store, args.name, expires_at, role=Role(args.role))
    finally:
        await store.close()
    print(
        f"created API key {key.name!r} (id {key.id}, role {key.role.value}, "
        f"expires {key.expires_at or 'never'}); it is shown only now:"
    )
    print(key.secret)
    return 0


async def _revoke_key(args: argparse.Namespace, location: DbLocation) -> int:
    from pdp.control import Store, revoke_api_keys

    store = await Store.open(location)
    try:
        count = await revoke_api_keys(store, key_id=args.id, name=args.name)
    finally:
        await store.close()
    if count == 0:
        print("no live API key matches", file=sys.stderr)
        return 1
    print(f"revoked {count} API key{'s' if count != 1 else ''}")
    return 0


def _serve(args: argparse.Namespace, location: DbLocation) -> int:
    from pdp.control import ConnectionLimits, ControlOptions, DeliveryOptions
    from pdp.engine import parse_listen_address
    from pdp.outbound import OutboundPolicy

    if (args.tls_cert is None) != (args.tls_key is None):
        log.error("cannot start: --tls-cert and --tls-key go together")
        return 2
    try:
        webhooks = DeliveryOptions(
            timeout=args.webhook_timeout,
            concurrency=args.webhook_concurrency,
            ca_file=args.webhook_ca_file,
            lease=args.webhook_lease,
            **(
                {}
                if args.webhook_retry_schedule is None
                else {"schedule": args.webhook_retry_schedule}
            ),
        )
    except ValueError as exc:
        # The flags' own parsers take only positive durations and counts:
        # what is left to refuse is a lease under its minimum.
        log.error("cannot start: --webhook-lease (%gs): %s", args.webhook_lease, exc)
        return 2
    listen = parse_listen_address(args.listen, unix=False)
    options = ControlOptions(
        db=location,
        host=listen.host,
        port=listen.port,
        metrics_listen=args.metrics_listen,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        docs=args.docs,
        limits=ConnectionLimits(max_connections=args.max_connections),
        webhooks=webhooks,
        outbound=OutboundPolicy.allowing(args.outbound_allow),
        decision_log_retention=args.decision_log_retention,
        decision_log_max_rows=args.decision_log_max_rows,
    )
    _raise_file_limit(args.max_connections + 256)
    return run_event_loop(_serve_until_signalled(options))


def _raise_file_limit(wanted: int) -> None:
    """Raises the soft limit on open files towards ``wanted`` (as far as
    the hard limit allows): each connection takes a descriptor."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    if target < wanted:
        log.warning(
            "open files are limited to %d: fewer than the %d connections allowed need",
            target,
            wanted,
        )


async def _serve_until_signalled(options: ControlOptions) -> int:
    from pdp.control import ControlServer

    stop = stop_requested()
    server = ControlServer(options)
    await server.start()
    waiting = asyncio.ensure_future(stop.wait())
    serving = asyncio.ensure_future(server.wait())
    await asyncio.wait((waiting, serving), return_when=asyncio.FIRST_COMPLETED)
    waiting.cancel()
    log.info("control plane shutting down")
    await server.stop()
    return 0
