"""``pdp serve --workers N``: N sidecar processes on one port.

Each worker is a whole sidecar (its own snapshot source, event loop and
gRPC server) bound with SO_REUSEPORT, so the kernel spreads connections
over them; they share the state in Redis (budgets and rate limits stay
exact across them) and the local SQLite file of the decision log. The
supervisor (this process) picks the port, starts the workers, says where
they listen once all do, restarts a worker that dies, and on SIGTERM or
SIGINT stops them all gracefully.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import multiprocessing
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pdp.server import ServeOptions

__all__ = ["serve_workers"]

log = logging.getLogger("pdp.server")

_START_TIMEOUT = 60.0
_RESTART_PAUSE = 1.0


def _worker(options: ServeOptions, log_level: str, log_format: str, ready: Connection) -> None:
    """A worker process: one sidecar until SIGTERM or SIGINT."""
    from ._args import run_event_loop, stop_requested
    from ._logs import setup_logging

    setup_logging(log_level, log_format)

    async def serve() -> int:
        from pdp.server import Sidecar

        stop = stop_requested()
        sidecar = Sidecar(options)
        try:
            await sidecar.start()
        except BaseException as exc:
            ready.send(f"error: {exc}")
            raise
        ready.send(f"ok: {sidecar.address}")
        await stop.wait()
        await sidecar.stop()
        return 0

    try:
        code = run_event_loop(serve())
    except Exception as exc:  # reported to the supervisor already
        logging.getLogger("pdp").error("worker cannot start: %s", exc)
        code = 1
    raise SystemExit(code)


def _reserve_port(host: str, port: int) -> socket.socket:
    """A socket bound with SO_REUSEPORT to ``port`` (a free one for 0) that
    the workers bind too; not listening, so no connection goes to it."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    holder = socket.socket(family, socket.SOCK_STREAM)
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        holder.bind((host, port))
    except OSError as exc:
        holder.close()
        raise OSError(f"cannot listen on {host}:{port}: {exc}") from None
    return holder


def serve_workers(options: ServeOptions, workers: int, log_level: str, log_format: str) -> int:
    """Runs ``workers`` sidecars on one port until SIGTERM or SIGINT."""
    from pdp.engine import parse_listen_address

    assert options.listen is not None, "workers listen on a port"
    listen = parse_listen_address(options.listen)
    holder = _reserve_port(listen.host, listen.port)
    port = holder.getsockname()[1]
    address = str(listen.with_port(port))
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    context = multiprocessing.get_context("spawn")
    processes: list[multiprocessing.process.BaseProcess | None] = [None] * workers

    def start(index: int) -> str:
        worker_options = dataclasses.replace(
            options, listen=address, reuse_port=True, prune=index == 0
        )
        receive, send = context.Pipe(duplex=False)
        process = context.Process(
            target=_worker,
            args=(worker_options, log_level, log_format, send),
            name=f"pdp-worker-{index}",
            daemon=False,
        )
        process.start()
        send.close()
        processes[index] = process
        if not receive.poll(_START_TIMEOUT):
            return f"worker {index} did not start within {_START_TIMEOUT:g}s"
        try:
            answer: str = receive.recv()
        except EOFError:
            return f"worker {index} exited with {process.exitcode} before it listened"
        return "" if answer.startswith("ok:") else answer.removeprefix("error: ")

    try:
        for index in range(workers):
            problem = start(index)
            if problem:
                raise OSError(problem)
        log.info("listening on %s (%d workers)", address, workers)
        _supervise(processes, start, stop)
    finally:
        holder.close()
        _stop_all(processes, options.shutdown_grace)
    return 0


def _supervise(
    processes: list[multiprocessing.process.BaseProcess | None],
    start: Callable[[int], str],
    stop: threading.Event,
) -> None:
    """Restarts a worker that died, until ``stop`` is set."""
    while not stop.wait(0.2):
        for index, process in enumerate(processes):
            if process is not None and not process.is_alive():
                log.error("worker %d exited with %s; starting it again", index, process.exitcode)
                time.sleep(_RESTART_PAUSE)
                problem = start(index)
                if problem:
                    log.error("worker %d could not start again: %s", index, problem)


def _stop_all(processes: list[multiprocessing.process.BaseProcess | None], grace: float) -> None:
    running = [p for p in processes if p is not None and p.is_alive()]
    log.info("shutting down %d workers (grace %.1fs)", len(running), grace)
    for process in running:
        if process.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace + 5
    for process in running:
        process.join(max(0.0, deadline - time.monotonic()))
        if process.is_alive():
            process.kill()
            process.join()
