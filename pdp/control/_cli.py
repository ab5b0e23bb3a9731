"""``pdp control``: serve the control plane, or manage its API keys."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from ._auth import create_api_key, revoke_api_keys
from ._errors import StoreError
from ._server import ControlOptions, ControlServer
from ._store import Store
from ._time import parse_rfc3339, utc_now

__all__ = ["parse_listen", "run_control"]

log = logging.getLogger("pdp.control")


def parse_listen(value: str) -> tuple[str, int]:
    """``host:port`` or ``[v6]:port`` to (host, port); ValueError otherwise."""
    host, sep, port = value.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"{value!r} is not host:port")
    return host, int(port)


def run_control(args: argparse.Namespace) -> int:
    """Runs the ``pdp control`` command parsed into ``args``."""
    logging.basicConfig(
        level=getattr(args, "log_level", "INFO"),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    command = getattr(args, "control_command", None)
    try:
        if command == "create-key":
            return asyncio.run(_create_key(args))
        if command == "revoke-key":
            return asyncio.run(_revoke_key(args))
        return _serve(args)
    except (StoreError, OSError) as exc:
        log.error("cannot start: %s", exc)
        return 1


async def _create_key(args: argparse.Namespace) -> int:
    expires_at = None
    if args.expires_at is not None:
        expires_at = parse_rfc3339(args.expires_at)
        if expires_at is None:
            print(f"--expires-at: {args.expires_at!r} is not RFC 3339", file=sys.stderr)
            return 2
        if expires_at <= utc_now():
            print("--expires-at: the moment has already passed", file=sys.stderr)
            return 2
    store = await Store.open(args.db)
    try:
        key = await create_api_key(store, args.name, expires_at)
    finally:
        await store.close()
    print(
        f"created API key {key.name!r} (id {key.id}, expires {key.expires_at or 'never'}); "
        "it is shown only now:"
    )
    print(key.secret)
    return 0


async def _revoke_key(args: argparse.Namespace) -> int:
    store = await Store.open(args.db)
    try:
        count = await revoke_api_keys(store, key_id=args.id, name=args.name)
    finally:
        await store.close()
    if count == 0:
        print("no live API key matches", file=sys.stderr)
        return 1
    print(f"revoked {count} API key{'s' if count != 1 else ''}")
    return 0


def _serve(args: argparse.Namespace) -> int:
    try:
        host, port = parse_listen(args.listen)
    except ValueError as exc:
        print(f"--listen: {exc}", file=sys.stderr)
        return 2
    options = ControlOptions(db=args.db, host=host, port=port)
    try:
        import uvloop
    except ImportError:
        loop_factory = None
    else:
        loop_factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        return runner.run(_serve_until_signalled(options))


async def _serve_until_signalled(options: ControlOptions) -> int:
    server = ControlServer(options)
    await server.start()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    waiting = asyncio.ensure_future(stop.wait())
    serving = asyncio.ensure_future(server.wait())
    await asyncio.wait((waiting, serving), return_when=asyncio.FIRST_COMPLETED)
    waiting.cancel()
    log.info("control plane shutting down")
    await server.stop()
    return 0
