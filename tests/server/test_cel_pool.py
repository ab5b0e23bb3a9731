"""The CEL worker pool: real worker processes answer, a worker that dies
or overruns is replaced, and closing the pool stops them all."""

from __future__ import annotations

import os
import signal

from pdp.engine import CelJob
from pdp.server._cel_pool import CelPool

MATCHES = "request.input.matches('z{2}')"


def job(text: str, source: str = MATCHES) -> CelJob:
    return CelJob(source, {"request.input": text}, cost=0.0)


async def test_workers_answer_and_are_stopped_on_close() -> None:
    pool = CelPool(workers=2, time_limit=30.0)
    try:
        results = await pool.evaluate([job("buzz"), job("fizz", "request.input == 'fizz'")])
        assert results == {MATCHES: True, "request.input == 'fizz'": True}
        assert (await pool.evaluate([job("none")]))[MATCHES] is False
        missing = await pool.evaluate([job("x", "request.metadata['k'] == 'v'")])
        assert "request.metadata" in str(missing["request.metadata['k'] == 'v'"])
        processes = [w.process for w in pool._running]
        assert processes
    finally:
        await pool.aclose()
    assert all(p.returncode is not None for p in processes)
    stopped = await pool.evaluate([job("buzz")])
    assert "stopping" in str(stopped[MATCHES])


async def test_a_dead_worker_is_an_error_and_is_replaced() -> None:
    pool = CelPool(workers=1, time_limit=30.0)
    try:
        assert (await pool.evaluate([job("buzz")]))[MATCHES] is True
        [worker] = pool._running
        os.kill(worker.process.pid, signal.SIGKILL)
        await worker.process.wait()
        failed = (await pool.evaluate([job("buzz")]))[MATCHES]
        assert isinstance(failed, str) and "CEL worker failed" in failed
        assert (await pool.evaluate([job("buzz")]))[MATCHES] is True
    finally:
        await pool.aclose()


async def test_an_overrun_is_stopped_with_its_worker() -> None:
    pool = CelPool(workers=1, time_limit=30.0)
    costly = "[" + ", ".join(str(i) for i in range(99)) + "].exists(a, " + MATCHES + ")"
    try:
        assert (await pool.evaluate([job("a")]))[MATCHES] is False  # started
        [worker] = pool._running
        pool.time_limit = 0.001
        result = (await pool.evaluate([job("a" * 500_000, costly)]))[costly]
        assert result == "evaluation took longer than the 1 ms limit"
        assert await worker.process.wait() == -signal.SIGKILL
        assert pool.timed_out == 1
        pool.time_limit = 30.0
        assert (await pool.evaluate([job("zz", costly)]))[costly] is True
    finally:
        await pool.aclose()
