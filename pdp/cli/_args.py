"""What the subcommands share: argument types that say what is wrong, the
log level option, and running the event loop (uvloop by default)."""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, TypeAlias

# What ``add_subparsers()`` returns, to which each subcommand adds its parser
# (generic only in the type stubs).
if TYPE_CHECKING:
    Subparsers: TypeAlias = argparse._SubParsersAction[argparse.ArgumentParser]
else:
    Subparsers = argparse._SubParsersAction

__all__ = [
    "Subparsers",
    "add_allow_insecure_validators",
    "add_log_level",
    "add_metrics_listen",
    "add_outbound_allow",
    "duration",
    "event_loop_factory",
    "listen_address",
    "positive_float",
    "positive_int",
    "run_event_loop",
    "stop_requested",
]


def positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if number <= 0:
        raise argparse.ArgumentTypeError("must be greater than 0")
    return number


def positive_float(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None
    if not number > 0 or number == float("inf"):
        raise argparse.ArgumentTypeError("must be a finite number greater than 0")
    return number


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)?", re.ASCII)
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def duration(value: str) -> float:
    """Seconds from ``30d``, ``12h``, ``15m``, ``45s``, ``500ms`` or a plain
    number of seconds; greater than 0."""
    match = _DURATION.fullmatch(value.strip())
    if match is None:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a duration (e.g. 30d, 12h, 15m, 45s, 500ms)"
        )
    seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if not 0 < seconds < 10**10:
        raise argparse.ArgumentTypeError("must be greater than 0 and less than 300 years")
    return seconds


def listen_address(*, unix: bool) -> Callable[[str], str]:
    """An argument type that checks a listen address with the one parser
    and keeps it as written (the server parses it again where it binds)."""

    def check(value: str) -> str:
        from pdp.engine import parse_listen_address

        try:
            parse_listen_address(value, unix=unix)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
        return value

    return check


def add_allow_insecure_validators(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--allow-insecure-validators",
        action="store_true",
        help="let custom validators use plain http:// to a loopback address "
        "(127.0.0.1, ::1, localhost), for development; any other URL must be https://",
    )


def _outbound_entry(value: str) -> str:
    from pdp.outbound import OutboundPolicy, OutboundRuleError

    try:
        OutboundPolicy.allowing([value])
    except OutboundRuleError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("--outbound-allow ")) from None
    return value


def add_outbound_allow(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "--outbound-allow",
        action="append",
        type=_outbound_entry,
        default=None,
        metavar="ENTRY",
        help=f"where {what} may go: range names (loopback, private, public), host names, "
        "*.domain, IP addresses or CIDR ranges; repeat it or separate entries with commas. "
        "Given, it replaces the default (loopback,private,public); link-local and cloud "
        "metadata addresses are reached only when an address or range entry covers them",
    )


def add_log_level(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="DEBUG adds one line per decision (ids, decision, policy names)",
    )
    parser.add_argument(
        "--log-format",
        default="text",
        choices=["text", "json"],
        help="text (default) or json: one JSON object per line",
    )


def add_metrics_listen(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--metrics-listen",
        type=listen_address(unix=False),
        default=None,
        metavar="ADDR",
        help="host:port serving Prometheus metrics at /metrics (default: off)",
    )


def stop_requested() -> asyncio.Event:
    """An event set on SIGTERM or SIGINT. Taken before a server says where
    it listens, so a signal that follows at once still stops it gracefully."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop


def run_event_loop(main: Coroutine[Any, Any, int]) -> int:
    """Runs ``main`` to completion on uvloop, the default loop, or on the
    standard asyncio loop when ``PDP_EVENT_LOOP=asyncio`` (for debugging, or
    a platform without uvloop)."""
    with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
        return runner.run(main)


def event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The loop ``PDP_EVENT_LOOP`` names (``uvloop``, the default, or
    ``asyncio``); an unknown name is an error, not a silent fallback."""
    choice = os.environ.get("PDP_EVENT_LOOP", "uvloop").strip().lower() or "uvloop"
    if choice == "asyncio":
        return None
    if choice != "uvloop":
        raise SystemExit(f"PDP_EVENT_LOOP: expected uvloop or asyncio, got {choice!r}")
    try:
        import uvloop
    except ImportError:  # only where uvloop has no build (Windows)
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory
