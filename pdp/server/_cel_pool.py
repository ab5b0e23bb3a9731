"""Costly CEL evaluations, off the event loop, under a wall-clock limit.

The CEL runtime keeps the GIL for a whole evaluation and cannot be
interrupted, so a thread would not keep the loop answering and nothing
could stop it. An evaluation the engine estimates too costly to make in
place (a ``CelJob``) goes to one of a few worker processes
(``_cel_worker``) instead; one that has not answered within the limit is
killed with its process, replaced by a fresh one, and answered with an
evaluation error (the policy's ``on_error`` decides). Workers start when a
snapshot first needs them (``warm``), not with every sidecar."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import pickle
import struct
import sys
from collections.abc import Sequence
from pathlib import Path

from pdp.engine import CelJob, CelResult

__all__ = ["DEFAULT_CEL_TIME_LIMIT", "DEFAULT_CEL_WORKERS", "CelPool"]

log = logging.getLogger("pdp.server")

DEFAULT_CEL_WORKERS = 2
DEFAULT_CEL_TIME_LIMIT = 0.5  # seconds
_HEADER = struct.Struct(">I")
_WORKER = Path(__file__).with_name("_cel_worker.py")
_START_TIMEOUT = 60.0  # seconds for a worker process to start (a busy machine)


class _Worker:
    __slots__ = ("process",)

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    async def evaluate(self, job: CelJob) -> CelResult:
        stdin, stdout = self.process.stdin, self.process.stdout
        assert stdin is not None and stdout is not None
        body = pickle.dumps((job.source, dict(job.variables)), protocol=pickle.HIGHEST_PROTOCOL)
        stdin.write(_HEADER.pack(len(body)) + body)
        await stdin.drain()
        size = _HEADER.unpack(await stdout.readexactly(_HEADER.size))[0]
        result = pickle.loads(await stdout.readexactly(size))
        if not isinstance(result, bool | str):
            raise TypeError(f"the CEL worker answered {type(result).__name__}")
        return result

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()


class CelPool:
    """Up to ``workers`` processes evaluating costly expressions; each
    evaluation answers within ``time_limit`` seconds of being asked (once a
    worker is running), or is an error."""

    def __init__(
        self, workers: int = DEFAULT_CEL_WORKERS, time_limit: float = DEFAULT_CEL_TIME_LIMIT
    ) -> None:
        if workers < 1:
            raise ValueError("the CEL pool needs at least one worker")
        if time_limit <= 0:
            raise ValueError("the CEL time limit must be positive")
        self.time_limit = time_limit
        self._size = workers
        self._idle: asyncio.Queue[_Worker] = asyncio.Queue()
        self._starting = 0
        self._running: set[_Worker] = set()
        self._closed = False
        self._tasks: set[asyncio.Task[None]] = set()
        # Counters for tests and metrics.
        self.evaluated = 0
        self.timed_out = 0

    def warm(self) -> None:
        """Starts the workers that are not running yet, in the background."""
        while not self._closed and len(self._running) + self._starting < self._size:
            self._starting += 1
            task = asyncio.get_running_loop().create_task(self._start())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _start(self) -> None:
        process: asyncio.subprocess.Process | None = None
        try:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-P",
                str(_WORKER),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
            )
            assert process.stdout is not None
            # Ready once it has loaded the runtime (seconds on a busy machine).
            await asyncio.wait_for(process.stdout.readexactly(1), _START_TIMEOUT)
        except (OSError, TimeoutError, asyncio.IncompleteReadError) as exc:
            log.error("cannot start a CEL worker: %s", exc or type(exc).__name__)
            if process is not None:
                _Worker(process).kill()
                await process.wait()
            return
        finally:
            self._starting -= 1
        worker = _Worker(process)
        if self._closed:
            worker.kill()
            await process.wait()
            return
        self._running.add(worker)
        self._idle.put_nowait(worker)

    async def evaluate(self, jobs: Sequence[CelJob]) -> dict[str, CelResult]:
        """The result of each job, by source (concurrently, one worker each)."""
        results = await asyncio.gather(*(self._evaluate(job) for job in jobs))
        return {job.source: result for job, result in zip(jobs, results, strict=True)}

    async def _evaluate(self, job: CelJob) -> CelResult:
        limit = self.time_limit
        loop = asyncio.get_running_loop()
        if self._closed:
            return "the sidecar is stopping; the expression was not evaluated"
        # Starting a worker is not the evaluation's time; waiting for a busy
        # one is.
        self.warm()
        starting = not self._running
        try:
            worker = await asyncio.wait_for(self._idle.get(), _START_TIMEOUT if starting else limit)
        except TimeoutError:
            return f"no CEL worker was free within the {limit * 1000:.0f} ms limit"
        deadline = loop.time() + limit
        try:
            result = await asyncio.wait_for(worker.evaluate(job), deadline - loop.time())
        except TimeoutError:
            self.timed_out += 1
            self._retire(worker)
            log.warning(
                "a CEL evaluation took longer than %.0f ms (estimated %.1f ms); its worker "
                "was stopped: %.200s",
                limit * 1000,
                job.cost / 1e6,
                job.source,
            )
            return f"evaluation took longer than the {limit * 1000:.0f} ms limit"
        except (
            OSError,
            EOFError,
            asyncio.IncompleteReadError,
            pickle.PickleError,
            TypeError,
        ) as exc:
            self._retire(worker)
            return f"the CEL worker failed: {exc}"
        except BaseException:
            self._retire(worker)  # cancelled mid-exchange: its pipe is out of step
            raise
        self.evaluated += 1
        self._idle.put_nowait(worker)
        return result

    def _retire(self, worker: _Worker) -> None:
        worker.kill()
        self._running.discard(worker)
        task = asyncio.get_running_loop().create_task(self._reap(worker))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        self.warm()  # its replacement

    @staticmethod
    async def _reap(worker: _Worker) -> None:
        await worker.process.wait()

    async def aclose(self) -> None:
        """Stops every worker."""
        self._closed = True
        for task in list(self._tasks):
            if not task.done():
                await asyncio.gather(task, return_exceptions=True)
        for worker in list(self._running):
            worker.kill()
            await worker.process.wait()
        self._running.clear()
