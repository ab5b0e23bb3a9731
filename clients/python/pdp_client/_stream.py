"""``enforce_stream()``: one long-lived EnforceStream carrying many Enforce
calls, each matched to its answer by id, so concurrent callers share the
stream. The requests waiting to be sent when the writer runs go in one
message (the sidecar answers them in one), so a busy stream pays gRPC's
per-message cost once per pack rather than once per call. A stream that
breaks fails the calls waiting on it; the next call opens a new one."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import itertools
import queue
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from types import TracebackType
from typing import Any, Self, Unpack

import grpc
import grpc.aio

from ._bulk import EnforceOptions, enforce_request, stream_result
from ._calls import Call, Settings
from ._errors import DeadlineExceededError, SidecarUnavailableError
from ._types import EnforceResult
from ._v1 import policy_decision_service_pb2 as pb

__all__ = ["AsyncEnforceStream", "EnforceStream"]


def _unavailable(
    call: Call[EnforceResult], settings: Settings, error: SidecarUnavailableError
) -> EnforceResult:
    if settings.fail_open and call.fail_open_result is not None:
        return call.fail_open_result(error)
    raise error


# How a stream may end that is an answer rather than a broken stream: the
# sidecar does not serve streams, or refuses this caller.
_REFUSALS = frozenset(
    {
        grpc.StatusCode.UNIMPLEMENTED,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.UNAUTHENTICATED,
    }
)


def _broken(
    call: Call[EnforceResult], settings: Settings, error: grpc.RpcError, seconds: float
) -> EnforceResult:
    """A request whose stream failed: the sidecar's refusal as
    ``enforce_policy`` raises it; anything else (the sidecar went away, a
    write raced the stream's end) means no decision could be had."""
    code = error.code()
    if code in _REFUSALS:
        return call.failed(error, settings, seconds)
    broken = SidecarUnavailableError(
        f"the stream to the sidecar at {settings.target} broke: {code.name} {error.details()}",
        code=code,
        target=settings.target,
    )
    return _unavailable(call, settings, broken)


def _ended(settings: Settings) -> SidecarUnavailableError:
    return SidecarUnavailableError(
        f"sidecar at {settings.target} ended the stream",
        code=grpc.StatusCode.UNAVAILABLE,
        target=settings.target,
    )


# A pack's bounds: well under the sidecar's (that of an EnforceBatch), and
# in bytes under the slack any sidecar's message limit leaves above its
# largest request, so a pack is never refused where its requests alone
# would not be. A request over the byte bound goes alone.
MAX_PACK = 100
MAX_PACK_BYTES = 60 * 1024

Queued = pb.EnforceStreamItem | None  # None: end the stream
_NOTHING_WAITING: Any = object()


def _pack(
    first: pb.EnforceStreamItem, waiting: Callable[[], Any]
) -> tuple[list[pb.EnforceStreamItem], Any]:
    """``first`` and the requests already waiting (``waiting()`` returns the
    next, or ``_NOTHING_WAITING``), within the bounds; and what was taken
    but does not fit, to go next."""
    items = [first]
    size = first.ByteSize()
    while len(items) < MAX_PACK:
        more = waiting()
        if more is _NOTHING_WAITING:
            break
        if more is None or (size := size + more.ByteSize()) > MAX_PACK_BYTES:
            return items, more
        items.append(more)
    return items, _NOTHING_WAITING


def _message(items: list[pb.EnforceStreamItem]) -> pb.EnforceStreamRequest:
    """One stream message: a lone request as a sidecar that does not know
    packing reads it, several packed in ``items``."""
    if len(items) == 1:
        item = items[0]
        return pb.EnforceStreamRequest(id=item.id, request=item.request)
    return pb.EnforceStreamRequest(items=items)


class AsyncEnforceStream:
    """An EnforceStream of an ``AsyncClient``: ``await
    stream.enforce_policy(...)`` as on the client (same arguments, results
    and errors), from as many tasks as you like. Use it with ``async with``
    or ``await close()`` it."""

    def __init__(self, stub: Any, settings: Settings) -> None:
        self._stub = stub
        self._settings = settings
        self._ids = itertools.count()
        self._pending: dict[str, tuple[Call[EnforceResult], asyncio.Future[Any]]] = {}
        self._outgoing: asyncio.Queue[Queued] | None = None
        self._reader: asyncio.Task[None] | None = None
        self._closed = False

    async def enforce_policy(
        self,
        agent_id: str,
        input: str | None = None,
        *,
        timeout: float | None = None,  # noqa: ASYNC109 (the call's deadline)
        **options: Unpack[EnforceOptions],
    ) -> EnforceResult:
        """See ``Client.enforce_policy``."""
        call = enforce_request(agent_id, input, options).call()
        seconds = self._settings.deadline(timeout)
        item_id = str(next(self._ids))
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[item_id] = (call, future)
        try:
            outgoing = self._open()
            await outgoing.put(pb.EnforceStreamItem(id=item_id, request=call.request))
            try:
                answer = await asyncio.wait_for(future, seconds)
            except TimeoutError:
                late = DeadlineExceededError(target=self._settings.target, timeout=seconds)
                return _unavailable(call, self._settings, late)
            except grpc.RpcError as error:
                return _broken(call, self._settings, error, seconds)
            except SidecarUnavailableError as error:
                return _unavailable(call, self._settings, error)
        finally:
            self._pending.pop(item_id, None)
        return stream_result(call, answer, target=self._settings.target, timeout=seconds)

    def _open(self) -> asyncio.Queue[Queued]:
        if self._closed:
            raise RuntimeError("the stream is closed")
        if self._outgoing is None:
            outgoing: asyncio.Queue[Queued] = asyncio.Queue()
            # No deadline: the stream lives as long as the agent; each call
            # has its own.
            stream = self._stub.EnforceStream(
                _drain(outgoing), metadata=self._settings.metadata, wait_for_ready=False
            )
            self._outgoing = outgoing
            self._reader = asyncio.get_running_loop().create_task(self._read(stream, outgoing))
        return self._outgoing

    async def _read(self, stream: Any, outgoing: asyncio.Queue[Queued]) -> None:
        failure: BaseException
        try:
            async for message in stream:
                for answer in message.answers or (message,):
                    entry = self._pending.get(answer.id)
                    if entry is not None and not entry[1].done():
                        entry[1].set_result(answer)
            failure = _ended(self._settings)
        except grpc.RpcError as error:
            failure = error
        except asyncio.CancelledError:
            stream.cancel()
            raise
        finally:
            if self._outgoing is outgoing:
                self._outgoing = None
        for _, future in list(self._pending.values()):
            if not future.done():
                future.set_exception(failure)

    async def close(self) -> None:
        """Ends the stream; calls waiting on it fail. Idempotent."""
        self._closed = True
        outgoing, reader = self._outgoing, self._reader
        if outgoing is not None:
            await outgoing.put(None)
        if reader is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(reader, self._settings.timeout)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()


async def _drain(outgoing: asyncio.Queue[Queued]) -> AsyncIterator[pb.EnforceStreamRequest]:
    def waiting() -> Any:
        return _NOTHING_WAITING if outgoing.empty() else outgoing.get_nowait()

    # Whatever is already waiting goes in the same message; never wait for
    # more.
    next_item: Any = _NOTHING_WAITING
    while True:
        item = await outgoing.get() if next_item is _NOTHING_WAITING else next_item
        if item is None:
            return
        items, next_item = _pack(item, waiting)
        yield _message(items)


class EnforceStream:
    """An EnforceStream of a ``Client``: ``stream.enforce_policy(...)`` as on
    the client (same arguments, results and errors), safe to call from many
    threads at once. Use it as a context manager or ``close()`` it."""

    def __init__(self, stub: Any, settings: Settings) -> None:
        self._stub = stub
        self._settings = settings
        self._ids = itertools.count()
        self._lock = threading.Lock()
        self._pending: dict[str, concurrent.futures.Future[Any]] = {}
        self._outgoing: queue.SimpleQueue[Queued] | None = None
        self._closed = False

    def enforce_policy(
        self,
        agent_id: str,
        input: str | None = None,
        *,
        timeout: float | None = None,
        **options: Unpack[EnforceOptions],
    ) -> EnforceResult:
        """See ``Client.enforce_policy``."""
        call = enforce_request(agent_id, input, options).call()
        seconds = self._settings.deadline(timeout)
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        with self._lock:
            item_id = str(next(self._ids))
            self._pending[item_id] = future
            outgoing = self._open()
        try:
            outgoing.put(pb.EnforceStreamItem(id=item_id, request=call.request))
            try:
                answer = future.result(seconds)
            except concurrent.futures.TimeoutError:
                late = DeadlineExceededError(target=self._settings.target, timeout=seconds)
                return _unavailable(call, self._settings, late)
            except grpc.RpcError as error:
                return _broken(call, self._settings, error, seconds)
            except SidecarUnavailableError as error:
                return _unavailable(call, self._settings, error)
        finally:
            with self._lock:
                self._pending.pop(item_id, None)
        return stream_result(call, answer, target=self._settings.target, timeout=seconds)

    def _open(self) -> queue.SimpleQueue[Queued]:
        # Called with the lock held.
        if self._closed:
            raise RuntimeError("the stream is closed")
        if self._outgoing is None:
            outgoing: queue.SimpleQueue[Queued] = queue.SimpleQueue()
            stream = self._stub.EnforceStream(
                _iterate(outgoing), metadata=self._settings.metadata, wait_for_ready=False
            )
            self._outgoing = outgoing
            reader = threading.Thread(
                target=self._read, args=(stream, outgoing), name="pdp-enforce-stream", daemon=True
            )
            reader.start()
        return self._outgoing

    def _read(self, stream: Any, outgoing: queue.SimpleQueue[Queued]) -> None:
        failure: BaseException
        try:
            for message in stream:
                for answer in message.answers or (message,):
                    with self._lock:
                        future = self._pending.get(answer.id)
                    if future is not None and not future.done():
                        future.set_result(answer)
            failure = _ended(self._settings)
        except grpc.RpcError as error:
            failure = error
        with self._lock:
            if self._outgoing is outgoing:
                self._outgoing = None
            waiting = list(self._pending.values())
        for future in waiting:
            if not future.done():
                future.set_exception(failure)

    def close(self) -> None:
        """Ends the stream; calls waiting on it fail. Idempotent."""
        with self._lock:
            self._closed = True
            outgoing, self._outgoing = self._outgoing, None
        if outgoing is not None:
            outgoing.put(None)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def _iterate(outgoing: queue.SimpleQueue[Queued]) -> Iterator[pb.EnforceStreamRequest]:
    def waiting() -> Any:
        try:
            return outgoing.get_nowait()
        except queue.Empty:
            return _NOTHING_WAITING

    next_item: Any = _NOTHING_WAITING
    while True:
        item = outgoing.get() if next_item is _NOTHING_WAITING else next_item
        if item is None:
            return
        items, next_item = _pack(item, waiting)
        yield _message(items)
