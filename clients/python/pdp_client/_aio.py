"""The asyncio client: the same surface as ``Client``, with async methods."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Iterable, Mapping
from types import TracebackType
from typing import Any, Self, TypeVar, Unpack

import grpc
import grpc.aio

from . import _bulk, _calls
from ._bulk import BatchOutcome, EnforceOptions, EnforceRequest, enforce_call, enforce_request
from ._calls import CHANNEL_OPTIONS, DEFAULT_TIMEOUT, Call, Settings
from ._stream import AsyncEnforceStream
from ._types import (
    AgentStatusResult,
    ApprovalResult,
    AuthorizeResult,
    ContextItem,
    EnforceResult,
    TraceResult,
    UsageResult,
)
from ._v1 import policy_decision_service_pb2_grpc as pb_grpc
from ._watch import Watch, watch_async

__all__ = ["AsyncClient"]

ResultT = TypeVar("ResultT")


class AsyncClient:
    """An asyncio client of one pdp sidecar; see ``Client`` for the
    semantics (deadlines, fail closed, ``fail_open`` for ``enforce_policy``
    only), which are the same.

    The channel is opened on the first call, in the running event loop, and
    belongs to that loop: use the client from one loop only. ``await
    close()`` it, or use it with ``async with``.
    """

    def __init__(
        self,
        target: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        fail_open: bool = False,
        caller_token: str | None = None,
        tls: bool = False,
        ca_file: str | None = None,
        cert_file: str | None = None,
        key_file: str | None = None,
    ) -> None:
        self._settings = Settings.checked(
            target,
            timeout,
            fail_open,
            caller_token=caller_token,
            tls=tls,
            ca_file=ca_file,
            cert_file=cert_file,
            key_file=key_file,
        )
        self._channel: grpc.aio.Channel | None = None
        self._stub: Any = None
        self._closed = False

    @property
    def target(self) -> str:
        return self._settings.target

    @property
    def timeout(self) -> float:
        return self._settings.timeout

    @property
    def fail_open(self) -> bool:
        return self._settings.fail_open

    def __repr__(self) -> str:
        return f"AsyncClient({self.target!r}, timeout={self.timeout}, fail_open={self.fail_open})"

    async def enforce_policy(
        self,
        agent_id: str,
        input: str | None = None,
        *,
        wait_for_approval: float | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 (the gRPC deadline)
        **options: Unpack[EnforceOptions],
    ) -> EnforceResult:
        """See ``Client.enforce_policy``."""
        if wait_for_approval is None:  # sent once: no request value to keep
            return await self._send(enforce_call(agent_id, input, options), timeout)
        request = enforce_request(agent_id, input, options)
        waiting = _calls.ApprovalWait(wait_for_approval)
        result = await self._send(request.call(), timeout)
        while (seconds := waiting.next_wait(result)) is not None:
            assert result.approval_id is not None
            started = time.monotonic()
            answer = await self.await_approval(result.approval_id, wait=seconds, timeout=timeout)
            if waiting.approved(result, answer, time.monotonic() - started):
                again = request.with_approval(result.approval_id)
                result = await self._send(again.call(), timeout)
            else:
                await asyncio.sleep(waiting.pause())
        return result

    async def enforce_batch(
        self,
        requests: Iterable[EnforceRequest | Mapping[str, Any]],
        *,
        timeout: float | None = None,  # noqa: ASYNC109 (the gRPC deadline)
    ) -> list[BatchOutcome]:
        """See ``Client.enforce_batch``."""
        return await self._send(_bulk.enforce_batch(requests), timeout)

    def enforce_stream(self) -> AsyncEnforceStream:
        """See ``Client.enforce_stream``; the stream belongs to the running
        loop, like the client."""
        return AsyncEnforceStream(self._connected_stub(), self._settings)

    async def await_approval(
        self,
        approval_id: str,
        *,
        wait: float = 30.0,
        timeout: float | None = None,  # noqa: ASYNC109 (the gRPC deadline)
    ) -> ApprovalResult:
        """See ``Client.await_approval``."""
        return await self._send(_calls.await_approval(approval_id, wait), timeout)

    async def authorize(
        self,
        source_agent_id: str,
        target_agent_id: str,
        action: str,
        *,
        timeout: float | None = None,  # noqa: ASYNC109 (the gRPC deadline)
    ) -> AuthorizeResult:
        """See ``Client.authorize``."""
        call = _calls.authorize(source_agent_id, target_agent_id, action)
        return await self._send(call, timeout)

    async def agent_status(
        self,
        agent_id: str,
        *,
        timeout: float | None = None,  # noqa: ASYNC109 (the gRPC deadline)
    ) -> AgentStatusResult:
        """See ``Client.agent_status``."""
        return await self._send(_calls.agent_status(agent_id), timeout)

    def watch_agent_status(
        self,
        agent_id: str,
        *,
        timeout: float | None = None,
    ) -> AsyncGenerator[AgentStatusResult, None]:
        """See ``Client.watch_agent_status``: here an async iterator (``async
        for``). Leaving the loop, or cancelling the task running it, cancels
        the call; ``contextlib.aclosing`` cancels it at once where the
        iterator is kept in a variable."""
        if self._closed:
            raise RuntimeError("the client is closed")
        watch = Watch(_calls.watch_agent_status(agent_id), self._settings, timeout)
        return watch_async(watch, self._stream(watch.call, watch.seconds))

    async def report_usage(
        self,
        agent_id: str,
        cost_usd: float,
        request_id: str,
        *,
        timeout: float | None = None,  # noqa: ASYNC109 (the gRPC deadline)
    ) -> UsageResult:
        """See ``Client.report_usage``."""
        return await self._send(_calls.report_usage(agent_id, cost_usd, request_id), timeout)

    async def submit_trace(
        self,
        agent_id: str,
        *,
        request_id: str | None = None,
        input: str | None = None,
        output: str | None = None,
        cost_usd: float = 0.0,
        model: str | None = None,
        tool: str | None = None,
        metadata: Mapping[str, str] | None = None,
        context: Iterable[ContextItem] | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 (the gRPC deadline)
    ) -> TraceResult:
        """See ``Client.submit_trace``."""
        call = _calls.submit_trace(
            agent_id,
            request_id=request_id,
            input=input,
            output=output,
            cost_usd=cost_usd,
            model=model,
            tool=tool,
            metadata=metadata,
            context=context,
        )
        return await self._send(call, timeout)

    async def _send(self, call: Call[ResultT], override: float | None) -> ResultT:
        seconds = self._settings.deadline(override, call.holds)
        method = getattr(self._connected_stub(), call.method)
        try:
            # wait_for_ready=False: an unreachable sidecar fails the call at
            # once instead of holding it until the deadline.
            response = await method(
                call.request,
                timeout=seconds,
                metadata=self._settings.metadata,
                wait_for_ready=False,
            )
        except grpc.RpcError as error:
            return call.failed(error, self._settings, seconds)
        return call.to_result(response)

    async def _stream(self, call: Call[Any], seconds: float | None) -> AsyncGenerator[Any, None]:
        """The answers of a server-streaming call, cancelled when closed."""
        method = getattr(self._connected_stub(), call.method)
        stream = method(
            call.request, timeout=seconds, metadata=self._settings.metadata, wait_for_ready=False
        )
        try:
            async for response in stream:
                yield response
        finally:
            stream.cancel()

    def _connected_stub(self) -> Any:
        if self._closed:
            raise RuntimeError("the client is closed")
        if self._stub is None:
            credentials = self._settings.credentials
            if credentials is None:
                self._channel = grpc.aio.insecure_channel(self.target, options=CHANNEL_OPTIONS)
            else:
                self._channel = grpc.aio.secure_channel(
                    self.target, credentials, options=CHANNEL_OPTIONS
                )
            self._stub = pb_grpc.PolicyDecisionServiceStub(self._channel)
        return self._stub

    async def close(self) -> None:
        """Closes the channel; calls in flight are cancelled. Idempotent."""
        self._closed = True
        channel, self._channel, self._stub = self._channel, None, None
        if channel is not None:
            await channel.close(None)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()
