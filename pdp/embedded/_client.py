"""``EmbeddedClient``: the SDK's calls, answered in-process by a sidecar
that serves no port."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, Iterable, Mapping
from typing import Any, TypeVar, cast

import grpc

from pdp.server import DECISION_SERVICE, RequestError, ServeOptions, Sidecar, handler_name

try:
    from pdp_client import AsyncClient, AsyncEnforceStream, ContextItem, EnforceResult, PdpError
    from pdp_client._calls import Call
    from pdp_client._calls import enforce as enforce_call
    from pdp_client._v1 import policy_decision_service_pb2 as sdk_pb
except ImportError as exc:  # pragma: no cover - the extra is documented
    raise ImportError(
        "pdp.embedded needs the Python SDK: pip install ./clients/python (package pdp-client)"
    ) from exc

from ._results import Refused, enforce_answer, refusal_error

__all__ = ["EmbeddedClient"]

ResultT = TypeVar("ResultT")
_TARGET = "embedded"
# The SDK's messages are the sidecar's, generated from the same contract: an
# Enforce then goes to the servicer as the SDK built it, with no bytes
# written or parsed, and its decision comes back as the SDK's result, with
# no response message (``_results``). Should the two copies ever differ,
# every call goes through bytes.
_SAME_CONTRACT = sdk_pb.DESCRIPTOR.serialized_pb == DECISION_SERVICE.file.serialized_pb


class _Refused(grpc.RpcError):
    """A request the handler refused, shaped as the SDK reads a failed RPC,
    so that it raises exactly what it raises for the sidecar's answer."""

    def __init__(self, error: RequestError) -> None:
        super().__init__(str(error))
        self._error = error

    def code(self) -> grpc.StatusCode:
        return self._error.code

    def details(self) -> str:
        return str(self._error)

    def trailing_metadata(self) -> Any:
        return self._error.trailing_metadata()


class _Context:
    """The little of a gRPC servicer context the handlers read."""

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return ()

    def peer(self) -> str:
        return "embedded"


class EmbeddedClient(AsyncClient):
    """An ``AsyncClient`` whose calls are decided in this process. Open it
    with ``await EmbeddedClient.open(snapshot, state=...)``; ``await
    close()`` it or use ``async with``. ``snapshot`` is a file or a control
    plane URL, as for ``pdp serve --snapshot``; ``state`` a SQLite file or a
    ``redis://`` URL (share Redis with sidecars of the same agent to mix
    both modes under one budget). Other keyword arguments are those of
    ``ServeOptions``. Every method is ``AsyncClient``'s, with the same
    results and errors (``watch_agent_status`` follows the in-process kill
    switch and snapshot); only ``enforce_stream`` has no meaning here."""

    def __init__(self, sidecar: Sidecar, timeout: float) -> None:
        super().__init__(_TARGET, timeout=timeout)
        self._sidecar = sidecar
        self._context: Any = _Context()  # what a handler takes as its gRPC context
        self._handlers: dict[str, Any] = {}

    @classmethod
    async def open(
        cls,
        snapshot: str,
        *,
        state: str = "pdp-state.db",
        timeout: float = 1.0,  # noqa: ASYNC109 (the SDK's call deadline setting)
        **options: Any,
    ) -> EmbeddedClient:
        options.setdefault("local_state", state if not state.startswith("redis") else "pdp.db")
        sidecar = Sidecar(ServeOptions(snapshot=snapshot, listen=None, state=state, **options))
        await sidecar.start()
        return cls(sidecar, timeout)

    @property
    def sidecar(self) -> Sidecar:
        """The in-process sidecar (its holder, usage and decision log)."""
        return self._sidecar

    async def enforce_policy(
        self,
        agent_id: str,
        input: str | None = None,
        *,
        wait_for_approval: float | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 (the SDK's call deadline)
        output: str | None = None,
        estimated_cost_usd: float | None = None,
        model: str | None = None,
        tool: str | None = None,
        metadata: Mapping[str, str] | None = None,
        request_id: str | None = None,
        context: Iterable[ContextItem] | None = None,
        approval_id: str | None = None,
    ) -> EnforceResult:
        """``AsyncClient.enforce_policy``, its options named (the SDK's
        ``EnforceOptions``): the same checks and call, without gathering
        the options in a dict and reading them back, which costs a tenth of
        a decision in process."""
        if wait_for_approval is not None:
            return await super().enforce_policy(
                agent_id,
                input,
                wait_for_approval=wait_for_approval,
                timeout=timeout,
                output=output,
                estimated_cost_usd=estimated_cost_usd,
                model=model,
                tool=tool,
                metadata=metadata,
                request_id=request_id,
                context=context,
                approval_id=approval_id,
            )
        call = enforce_call(
            agent_id,
            input,
            output=output,
            estimated_cost_usd=estimated_cost_usd,
            model=model,
            tool=tool,
            metadata=metadata,
            request_id=request_id,
            context=context,
            approval_id=approval_id,
        )
        return await self._send(call, timeout)

    def enforce_stream(self) -> AsyncEnforceStream:
        """A stream saves gRPC calls; in-process there are none to save:
        call ``enforce_policy`` (or ``enforce_batch``)."""
        raise PdpError("enforce_stream is for a sidecar over gRPC; call enforce_policy in-process")

    def _handler(self, method: str) -> Any:
        handler = self._handlers.get(method)
        if handler is None:
            handler = self._handlers[method] = getattr(self._sidecar.servicer, handler_name(method))
        return handler

    async def _send(self, call: Call[ResultT], override: float | None) -> ResultT:
        if call.method == "Enforce" and _SAME_CONTRACT:
            request = call.request
            try:
                answer = await self._sidecar.servicer.enforce_message(
                    request, self._context, enforce_answer
                )
            except RequestError as exc:
                return call.failed(_Refused(exc), self._settings, self._settings.timeout)
            if type(answer) is Refused:
                raise refusal_error(answer, request.agent_id)
            return cast(ResultT, answer)
        handler = self._handler(call.method)
        try:
            data = await handler(call.request.SerializeToString(), self._context)
        except RequestError as exc:
            return call.failed(_Refused(exc), self._settings, self._settings.timeout)
        response = getattr(sdk_pb, f"{call.method}Response").FromString(data)
        result: ResultT = call.to_result(response)
        return result

    async def _stream(self, call: Call[Any], seconds: float | None) -> AsyncGenerator[Any, None]:
        # The deadline (``seconds``) is kept by the SDK's watch itself.
        answers = self._handler(call.method)(call.request.SerializeToString(), self._context)
        response_type = getattr(sdk_pb, f"{call.method}Response")
        try:
            async with contextlib.aclosing(answers):
                async for data in answers:
                    yield response_type.FromString(data)
        except RequestError as exc:
            raise _Refused(exc) from None

    async def close(self) -> None:
        """Stops the in-process sidecar: its sources, state and tasks."""
        await self._sidecar.stop(grace=0)
