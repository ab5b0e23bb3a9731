"""``pdp serve``: run the sidecar."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import TYPE_CHECKING, Any

from ._args import (
    Subparsers,
    add_allow_insecure_validators,
    add_log_level,
    add_metrics_listen,
    add_outbound_allow,
    duration,
    listen_address,
    positive_float,
    positive_int,
    run_event_loop,
    stop_requested,
)
from ._logs import setup_logging

if TYPE_CHECKING:  # the server loads only when it runs
    from pdp.server import ServeOptions

__all__ = ["add_parser", "run"]

log = logging.getLogger("pdp.server")


def add_parser(subparsers: Subparsers) -> None:
    serve = subparsers.add_parser("serve", help="run the sidecar")
    serve.add_argument(
        "--snapshot",
        required=True,
        help="snapshot file (YAML or JSON, watched) or a control plane's "
        "http(s)://.../api/v1/snapshot URL (long-polled); several URLs, comma-separated, "
        "for control plane replicas on one PostgreSQL: the sidecar fails over between them",
    )
    key = serve.add_mutually_exclusive_group()
    key.add_argument(
        "--api-key-file",
        default=None,
        help="file holding the API key for an http(s) snapshot source, read again when the "
        "control plane refuses the key (default: $PDP_API_KEY)",
    )
    key.add_argument(
        "--api-key",
        default=None,
        help="the API key itself: visible to every local user in ps; prefer --api-key-file "
        "or $PDP_API_KEY",
    )
    serve.add_argument(
        "--ca-file",
        default=None,
        help="PEM file of the CAs that verify an https control plane (default: the system's)",
    )
    serve.add_argument(
        "--name",
        default=None,
        help="how this sidecar names itself to the control plane, which shows per agent the "
        "revision each sidecar has applied (default HOSTNAME/PID)",
    )
    serve.add_argument(
        "--max-staleness",
        type=positive_float,
        default=None,
        help="seconds without an answer from the snapshot source after which the sidecar "
        "fails closed and reports NOT_SERVING (default: never)",
    )
    serve.add_argument(
        "--listen",
        type=listen_address(unix=True),
        default="127.0.0.1:50051",
        help="host:port, [v6]:port or unix:/path "
        "(default 127.0.0.1:50051; port 0 picks a free one)",
    )
    callers = serve.add_argument_group("callers: who may ask, and as which agent")
    callers.add_argument(
        "--require-caller-token",
        action="store_true",
        help="every call must carry its agent's caller token (x-pdp-caller-token metadata; "
        "the snapshot lists each agent's token hashes) and may act only as that agent",
    )
    callers.add_argument(
        "--tls-cert", default=None, help="PEM certificate: serve TLS on a TCP --listen"
    )
    callers.add_argument("--tls-key", default=None, help="PEM private key of --tls-cert")
    callers.add_argument(
        "--client-ca",
        default=None,
        help="PEM CA certificate(s): clients must present a certificate they signed (mTLS)",
    )
    callers.add_argument(
        "--socket-mode",
        type=_octal_mode,
        default=None,
        help="permission bits of a unix: --listen socket, in octal (0600: only this user "
        "may connect; 0660: its group too). Default: as the umask leaves them",
    )
    callers.add_argument(
        "--socket-group",
        default=None,
        help="group (name or id) a unix: --listen socket belongs to, so that its members may "
        "connect (with --socket-mode 0660, the default then)",
    )
    state = serve.add_argument_group("state: spend, reservations, call counts, decision log")
    state.add_argument(
        "--state",
        default="pdp-state.db",
        help="a SQLite file (default pdp-state.db), or redis://HOST:PORT/DB (rediss:// for "
        "TLS) to share budgets and rate limits with every sidecar on that Redis",
    )
    state.add_argument(
        "--state-password-file",
        default=None,
        help="file holding the Redis password (default: $PDP_REDIS_PASSWORD; never in the URL)",
    )
    state.add_argument(
        "--state-ca-file", default=None, help="CA certificate(s) that sign a rediss:// server's"
    )
    state.add_argument(
        "--local-state",
        default=None,
        help="with Redis state: the SQLite file of the decision log and the last good "
        "snapshot (default pdp-state.db)",
    )
    state.add_argument(
        "--reservation-ttl",
        type=duration,
        default=600.0,
        help="how long an unreported call's estimated cost is held before it is settled "
        "at the estimate (default 10m)",
    )
    state.add_argument(
        "--retention",
        type=duration,
        default=35 * 86400.0,
        help="how long usage records are kept (default 35d; at least 32d are kept for "
        "monthly budgets)",
    )
    state.add_argument(
        "--decision-log-retention",
        type=duration,
        default=7 * 86400.0,
        help="how long decision log records are kept (default 7d)",
    )
    state.add_argument(
        "--decision-log-max-rows",
        type=positive_int,
        default=1_000_000,
        help="the most decision log records kept; older ones go first (default 1000000)",
    )
    serve.add_argument(
        "--max-input-bytes",
        type=positive_int,
        default=1024 * 1024,
        help="largest input or output text accepted, in UTF-8 bytes (default 1 MiB)",
    )
    serve.add_argument(
        "--cel-time-limit",
        type=positive_float,
        default=0.5,
        help="seconds one costly CEL evaluation may take before it is stopped and counts "
        "as an evaluation error (default 0.5)",
    )
    serve.add_argument(
        "--cel-workers",
        type=positive_int,
        default=2,
        help="processes that evaluate costly CEL expressions off the event loop (default 2)",
    )
    serve.add_argument(
        "--poll-interval",
        type=positive_float,
        default=0.2,
        help="seconds between checks of the snapshot file (default 0.2)",
    )
    serve.add_argument(
        "--workers",
        type=positive_int,
        default=1,
        help="processes serving one port (SO_REUSEPORT); more than 1 needs Redis state (default 1)",
    )
    serve.add_argument(
        "--shutdown-grace",
        type=positive_float,
        default=10.0,
        help="seconds in-flight calls get to finish on SIGTERM (default 10)",
    )
    serve.add_argument(
        "--shadow-snapshot",
        default=None,
        metavar="PATH|URL",
        help="a candidate snapshot decided beside the active one on live traffic, after each "
        "answer; differences are counted and logged (default: the control plane's candidate "
        "when --snapshot is its URL; 'off' for none)",
    )
    serve.add_argument(
        "--shadow-queue",
        type=positive_int,
        default=10_000,
        help="requests waiting for shadow evaluation; beyond, they are dropped and counted "
        "(default 10000)",
    )
    add_metrics_listen(serve)
    serve.add_argument(
        "--otel-traces",
        action="store_true",
        help="an OpenTelemetry span per decision (GenAI guardrail attributes), exported over "
        "OTLP/HTTP as OTEL_EXPORTER_OTLP_* say; needs pip install 'pdp[otel]'",
    )
    add_allow_insecure_validators(serve)
    add_outbound_allow(serve, "custom validator calls")
    add_log_level(serve)
    serve.set_defaults(run=run)


def _octal_mode(value: str) -> int:
    try:
        mode = int(value, 8)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not an octal mode such as 0600") from None
    if not 0 <= mode <= 0o777:
        raise argparse.ArgumentTypeError(f"{value!r} is not a permission mode (0000 to 0777)")
    return mode


class _UsageError(Exception):
    """Arguments that do not go together, or a --state that does not parse."""


def run(args: argparse.Namespace) -> int:
    """Serves until SIGTERM or SIGINT; 1 when the sidecar cannot start, 2
    when the arguments are wrong."""
    from pdp.observe import ObserveError
    from pdp.outbound import OutboundPolicy
    from pdp.server import ServeOptions, TracingUnavailableError
    from pdp.snapshot import SourceError
    from pdp.state import StateError

    try:
        state_options = _state_options(args)
    except _UsageError as exc:
        sys.stderr.write(f"pdp serve: error: {exc}\n")
        return 2
    setup_logging(args.log_level, args.log_format)
    if args.api_key is not None:
        log.warning(
            "--api-key puts the key in the process list, where every local user can read it; "
            "use --api-key-file or the PDP_API_KEY environment variable"
        )
    options = ServeOptions(
        snapshot=args.snapshot,
        listen=args.listen,
        max_input_bytes=args.max_input_bytes,
        cel_time_limit=args.cel_time_limit,
        cel_workers=args.cel_workers,
        poll_interval=args.poll_interval,
        shutdown_grace=args.shutdown_grace,
        api_key=None if args.api_key_file else args.api_key or os.environ.get("PDP_API_KEY"),
        api_key_file=args.api_key_file,
        ca_file=args.ca_file,
        sidecar_name=args.name,
        max_staleness=args.max_staleness,
        allow_insecure_validators=args.allow_insecure_validators,
        outbound=OutboundPolicy.allowing(args.outbound_allow),
        metrics_listen=args.metrics_listen,
        shadow_snapshot=args.shadow_snapshot,
        shadow_queue=args.shadow_queue,
        otel_traces=args.otel_traces,
        require_caller_token=args.require_caller_token,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        client_ca=args.client_ca,
        socket_mode=args.socket_mode,
        socket_group=args.socket_group,
        reservation_ttl=args.reservation_ttl,
        retention=args.retention,
        decision_log_retention=args.decision_log_retention,
        decision_log_max_rows=args.decision_log_max_rows,
        **state_options,
    )
    try:
        if args.workers > 1:
            from ._workers import serve_workers

            return serve_workers(options, args.workers, args.log_level, args.log_format)
        return run_event_loop(_serve_until_signalled(options))
    except (OSError, StateError, SourceError, ObserveError, TracingUnavailableError) as exc:
        logging.getLogger("pdp").error("cannot start: %s", exc)
        return 1


def _state_options(args: argparse.Namespace) -> dict[str, Any]:
    """The ServeOptions of --state and the options that go with it."""
    from pdp.engine import parse_listen_address
    from pdp.state import REDIS_PASSWORD_ENV, RedisLocation, parse_state_location, read_password

    try:
        location = parse_state_location(args.state)
    except ValueError as exc:
        raise _UsageError(f"argument --state: {exc}") from None
    redis = isinstance(location, RedisLocation)
    if not redis:
        for flag in ("state_password_file", "state_ca_file", "local_state"):
            if getattr(args, flag) is not None:
                option = "--" + flag.replace("_", "-")
                raise _UsageError(f"{option} applies only with a redis:// or rediss:// --state")
    if args.state_ca_file is not None and not (
        isinstance(location, RedisLocation) and location.tls
    ):
        raise _UsageError("--state-ca-file applies only with a rediss:// --state (TLS)")
    if args.state_ca_file is not None:
        import ssl

        try:  # read now: the sidecar serves while Redis is away, so a bad file would hide
            ssl.create_default_context(cafile=args.state_ca_file)
        except (OSError, ssl.SSLError) as exc:
            reason = getattr(exc, "strerror", None) or str(exc)
            raise _UsageError(
                f"argument --state-ca-file: cannot read {args.state_ca_file!r}: {reason}"
            ) from None
    unix = parse_listen_address(args.listen).is_unix
    for flag in ("socket_mode", "socket_group"):
        if getattr(args, flag) is not None and not unix:
            option = "--" + flag.replace("_", "-")
            raise _UsageError(f"{option} applies only with a unix:/path --listen")
    if (args.tls_cert is None) != (args.tls_key is None):
        raise _UsageError("--tls-cert and --tls-key go together")
    if args.client_ca is not None and args.tls_cert is None:
        raise _UsageError("--client-ca needs --tls-cert and --tls-key (mutual TLS)")
    if args.workers > 1:
        if not redis:
            raise _UsageError(
                f"--workers {args.workers} needs --state redis://HOST:PORT/DB: with a SQLite "
                "file, budgets and rate limits are exact only within one process"
            )
        if parse_listen_address(args.listen).is_unix:
            raise _UsageError("--workers above 1 needs a TCP --listen (host:port)")
        if args.metrics_listen is not None:
            raise _UsageError(
                "--metrics-listen is for one process: with --workers above 1 each worker "
                "would count only its own calls"
            )
    password = None
    if redis:
        try:
            password = read_password(
                REDIS_PASSWORD_ENV, args.state_password_file, "--state-password-file"
            )
        except ValueError as exc:
            raise _UsageError(str(exc)) from None
    return {
        "state": args.state,
        "local_state": args.local_state or "pdp-state.db",
        "state_password": password,
        "state_ca_file": args.state_ca_file,
    }


async def _serve_until_signalled(options: ServeOptions) -> int:
    from pdp.server import Sidecar

    stop = stop_requested()
    sidecar = Sidecar(options)
    await sidecar.start()
    await stop.wait()
    log.info("shutting down: finishing in-flight calls (grace %.1fs)", options.shutdown_grace)
    await sidecar.stop()
    return 0
