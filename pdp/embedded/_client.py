"""``EmbeddedClient``: the SDK's calls, answered in-process by a sidecar
that serves no port."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Any, Self, TypeVar

import grpc

from pdp.server import RequestError, ServeOptions, Sidecar, handler_name

try:
    from pdp_client import _bulk, _calls
    from pdp_client._bulk import BatchOutcome, EnforceRequest
    from pdp_client._calls import Call, Settings
    from pdp_client._types import (
        AgentStatusResult,
        ApprovalResult,
        AuthorizeResult,
        ContextItem,
        EnforceResult,
        UsageResult,
    )
    from pdp_client._v1 import policy_decision_service_pb2 as sdk_pb
except ImportError as exc:  # pragma: no cover - the extra is documented
    raise ImportError(
        "pdp.embedded needs the Python SDK: pip install ./clients/python (package pdp-client)"
    ) from exc

__all__ = ["EmbeddedClient"]

ResultT = TypeVar("ResultT")
_TARGET = "embedded"


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


class EmbeddedClient:
    """The SDK's ``AsyncClient`` surface, decided in this process. Open it
    with ``await EmbeddedClient.open(snapshot, state=...)``; ``await
    close()`` it or use ``async with``. ``snapshot`` is a file or a control
    plane URL, as for ``pdp serve --snapshot``; ``state`` a SQLite file or a
    ``redis://`` URL (share Redis with sidecars of the same agent to mix
    both modes under one budget). Other keyword arguments are those of
    ``ServeOptions``."""

    def __init__(self, sidecar: Sidecar, timeout: float) -> None:
        self._sidecar = sidecar
        self._settings = Settings.checked(_TARGET, timeout, False)
        self._context = _Context()
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
        output: str | None = None,
        estimated_cost_usd: float | None = None,
        model: str | None = None,
        tool: str | None = None,
        metadata: Mapping[str, str] | None = None,
        request_id: str | None = None,
        context: Iterable[ContextItem] | None = None,
        approval_id: str | None = None,
    ) -> EnforceResult:
        """As ``AsyncClient.enforce_policy`` (without waiting for approval)."""
        call = _calls.enforce(
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
        return await self._send(call)

    async def enforce_batch(
        self, requests: Iterable[EnforceRequest | Mapping[str, Any]]
    ) -> list[BatchOutcome]:
        """As ``AsyncClient.enforce_batch``."""
        return await self._send(_bulk.enforce_batch(requests))

    async def authorize(
        self, source_agent_id: str, target_agent_id: str, action: str
    ) -> AuthorizeResult:
        """As ``AsyncClient.authorize``."""
        return await self._send(_calls.authorize(source_agent_id, target_agent_id, action))

    async def agent_status(self, agent_id: str) -> AgentStatusResult:
        """As ``AsyncClient.agent_status``."""
        return await self._send(_calls.agent_status(agent_id))

    async def report_usage(self, agent_id: str, cost_usd: float, request_id: str) -> UsageResult:
        """As ``AsyncClient.report_usage``."""
        return await self._send(_calls.report_usage(agent_id, cost_usd, request_id))

    async def await_approval(self, approval_id: str, *, wait: float = 30.0) -> ApprovalResult:
        """As ``AsyncClient.await_approval``."""
        return await self._send(_calls.await_approval(approval_id, wait))

    async def _send(self, call: Call[ResultT]) -> ResultT:
        handler = self._handlers.get(call.method)
        if handler is None:
            handler = self._handlers[call.method] = getattr(
                self._sidecar.servicer, handler_name(call.method)
            )
        try:
            data = await handler(call.request.SerializeToString(), self._context)
        except RequestError as exc:
            return call.failed(_Refused(exc), self._settings, self._settings.timeout)
        response = getattr(sdk_pb, f"{call.method}Response").FromString(data)
        return call.to_result(response)

    async def close(self) -> None:
        """Stops the in-process sidecar: its sources, state and tasks."""
        await self._sidecar.stop(grace=0)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()
