"""``watch_agent_status``: the agent's state once on subscription, then on
every change, as results, for both clients.

A watch has no deadline unless the call gives one (``timeout``, for the
whole watch). The first state, which the sidecar sends as soon as it
subscribes, must still come within the client's ``timeout``: a wedged
sidecar fails the watch with ``DeadlineExceededError`` instead of holding it
forever. A watch never fails open, and one the sidecar ends raises
``SidecarUnavailableError``: a watcher is never left believing nothing
changes."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncGenerator, Callable, Generator
from typing import Any, Generic, NoReturn, TypeVar

import grpc

from ._calls import Call, Settings
from ._errors import DeadlineExceededError, SidecarUnavailableError

__all__ = ["Watch", "watch_async", "watch_sync"]

ResultT = TypeVar("ResultT")


class Watch(Generic[ResultT]):
    """One watch's call and deadlines, checked when the watch is asked for
    (a bad argument raises then, not at the first state)."""

    def __init__(self, call: Call[ResultT], settings: Settings, timeout: object) -> None:
        self.call = call
        self.settings = settings
        # The gRPC deadline of the whole watch; None: it lasts until left.
        self.seconds = settings.watch_deadline(timeout)
        self._until: float | None = None
        self._first_until: float | None = None

    def start(self) -> None:
        """The stream opens now: the deadlines count from here."""
        started = time.monotonic()
        self._until = None if self.seconds is None else started + self.seconds
        self._first_until = started + self.settings.timeout

    def next_state_within(self) -> float | None:
        """Seconds the next state may take; None: no limit."""
        ends = [t for t in (self._first_until, self._until) if t is not None]
        return None if not ends else max(0.0, min(ends) - time.monotonic())

    def received(self) -> None:
        self._first_until = None

    def late(self) -> DeadlineExceededError:
        first = self._first_until is not None and (
            self._until is None or self._first_until <= self._until
        )
        waited = self.settings.timeout if first or self.seconds is None else self.seconds
        return DeadlineExceededError(target=self.settings.target, timeout=waited)

    def failed(self, error: grpc.RpcError) -> NoReturn:
        """Raises the client's error for the failed stream, as for any call."""
        self.call.failed(error, self.settings, self.seconds or self.settings.timeout)
        raise error  # only a fail-open call returns, and a watch has no fail-open result

    def ended(self) -> SidecarUnavailableError:
        return SidecarUnavailableError(
            f"sidecar at {self.settings.target} ended the {self.call.method} stream",
            code=grpc.StatusCode.UNAVAILABLE,
            target=self.settings.target,
        )


async def watch_async(
    watch: Watch[ResultT], responses: AsyncGenerator[Any, None]
) -> AsyncGenerator[ResultT, None]:
    """The results of ``responses`` (a stream's answers, opened at the first
    ``anext`` and closed when the watch is left: ``break``, an error, or the
    task's cancellation)."""
    watch.start()
    try:
        while True:
            try:
                async with asyncio.timeout(watch.next_state_within()):
                    response = await anext(responses)
            except StopAsyncIteration:
                raise watch.ended() from None
            except TimeoutError:
                raise watch.late() from None
            except grpc.RpcError as error:
                watch.failed(error)
            watch.received()
            yield watch.call.to_result(response)
    finally:
        await responses.aclose()


class _FirstState:
    """Cancels ``stream`` unless its first answer comes within ``seconds``."""

    def __init__(self, stream: Any, seconds: float) -> None:
        self._stream = stream
        self._lock = threading.Lock()
        self._received = False
        self.expired = False
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def _expire(self) -> None:
        with self._lock:
            if not self._received:
                self.expired = True
                self._stream.cancel()

    def received(self) -> None:
        with self._lock:
            self._received = True
        self._timer.cancel()

    def stop(self) -> None:
        self._timer.cancel()


def watch_sync(
    watch: Watch[ResultT], open_stream: Callable[[], Any]
) -> Generator[ResultT, None, None]:
    """The results of a blocking client's stream, opened at the first
    ``next`` and cancelled when the generator is closed (``break``,
    ``close()``, garbage collection)."""
    watch.start()
    stream = open_stream()
    first = _FirstState(stream, watch.settings.timeout)
    try:
        for response in stream:
            first.received()
            watch.received()
            yield watch.call.to_result(response)
    except grpc.RpcError as error:
        if first.expired:
            raise watch.late() from None
        watch.failed(error)
    finally:
        first.stop()
        stream.cancel()
    raise watch.ended()
