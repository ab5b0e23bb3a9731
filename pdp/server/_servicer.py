"""The PolicyDecisionService handlers: parse, translate, ask the engine,
translate back. Requests arrive as bytes so that a malformed message is an
INVALID_ARGUMENT naming the field, not an opaque INTERNAL."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from typing import Any

import grpc

from pdp.engine import DecisionKind, utc_now
from pdp.snapshot import Active, SnapshotHolder
from pdp.state import DecisionLog, SpendLedger, UsageConflictError
from pdp.v1 import policy_decision_service_pb2 as pb

from ._errors import RequestError
from ._translate import (
    Limits,
    SnapshotView,
    action_name,
    agent_state,
    authorize_response,
    enforce_input,
    enforce_response,
    parse_request,
    require_id,
    usage_amount,
)

__all__ = ["SERVICE_NAME", "Activity", "PolicyDecisionServicer"]

SERVICE_NAME = "pdp.v1.PolicyDecisionService"
log = logging.getLogger("pdp.server")


def _new_id() -> str:
    # 128 random bits as hex: as unique as a UUID4, a sixth of its cost.
    return os.urandom(16).hex()


class Activity:
    """Unary calls in flight and when the last one started, so a shutdown can
    wait for a quiet moment: calls queued behind a busy event loop are not
    yet in flight from the server's point of view, and stopping the server
    would cancel them."""

    __slots__ = ("in_flight", "last_started")

    def __init__(self) -> None:
        self.in_flight = 0
        self.last_started = 0.0

    def quiet_for(self) -> float:
        return 0.0 if self.in_flight else time.monotonic() - self.last_started


class PolicyDecisionServicer:
    def __init__(
        self,
        holder: SnapshotHolder,
        ledger: SpendLedger,
        decisions: DecisionLog,
        limits: Limits,
        *,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._holder = holder
        self._ledger = ledger
        self._decisions = decisions
        self._limits = limits
        self._clock = clock
        self.activity = Activity()

    def _active(self) -> Active:
        holder = self._holder
        active = holder.active
        if active is None:
            raise RequestError("", "no snapshot is active yet", grpc.StatusCode.UNAVAILABLE)
        if holder.stale:
            raise RequestError(
                "",
                f"snapshot revision {active.snapshot.revision} is stale: no answer from "
                f"{active.source} since {holder.last_contact}; failing closed",
                grpc.StatusCode.UNAVAILABLE,
            )
        return active

    async def enforce(self, data: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
        request = enforce_input(parse_request(pb.EnforceRequest, data), self._limits)
        snapshot = self._active().snapshot
        now = self._clock()
        decision = snapshot.enforce(request, self._ledger, now)
        decision_id = _new_id()
        kind = decision.kind
        approval_id = _new_id() if kind is DecisionKind.PENDING_APPROVAL else ""
        violations = decision.violations
        self._decisions.append_fields(
            decision_id,
            now,
            decision.agent.id,
            kind.value,
            [v.policy_id for v in violations] if violations else (),
            decision.pii_counts,
            decision.snapshot_revision,
            request.request_id,
            approval_id,
        )
        return enforce_response(decision, decision_id, approval_id).SerializeToString()

    async def authorize(self, data: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
        msg = parse_request(pb.AuthorizeRequest, data)
        source = require_id(msg.source_agent_id, "source_agent_id")
        target = require_id(msg.target_agent_id, "target_agent_id")
        action = action_name(msg.action)
        snapshot = self._active().snapshot
        result = snapshot.authorize(source, target, action, self._clock())
        return authorize_response(result, snapshot.revision).SerializeToString()

    def _state(self, agent_ref: str) -> pb.AgentState:
        active = self._active()
        holder = self._holder
        snapshot = active.snapshot
        agent = snapshot.resolve_agent(agent_ref)
        now = self._clock()
        rejection = holder.last_rejection
        view = SnapshotView(
            revision=snapshot.revision,
            source=active.source,
            activated_at=active.activated_at,
            staleness_seconds=(
                (now - holder.last_contact).total_seconds() if holder.last_contact else None
            ),
            rejected_at=rejection.rejected_at if rejection else None,
            rejection=rejection.errors if rejection else (),
        )
        return agent_state(agent, snapshot.budgets(agent, self._ledger, now), view)

    async def agent_status(self, data: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
        msg = parse_request(pb.AgentStatusRequest, data)
        state = self._state(require_id(msg.agent_id, "agent_id"))
        return pb.AgentStatusResponse(state=state).SerializeToString()

    async def watch_agent_status(
        self, data: bytes, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[bytes]:
        msg = parse_request(pb.WatchAgentStatusRequest, data)
        agent_ref = require_id(msg.agent_id, "agent_id")
        while self._holder.active is None:
            await self._holder.wait_changed()
        last = b""
        while True:
            state = self._state(agent_ref)
            # Staleness changes every call; send when anything else changed.
            state.snapshot.ClearField("staleness")
            encoded = state.SerializeToString(deterministic=True)
            if encoded != last:
                last = encoded
                yield pb.WatchAgentStatusResponse(state=state).SerializeToString()
            await self._holder.wait_changed()

    async def report_usage(self, data: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
        msg = parse_request(pb.ReportUsageRequest, data)
        agent_ref = require_id(msg.agent_id, "agent_id")
        amount = usage_amount(msg.cost_usd)
        request_id = require_id(msg.request_id, "request_id")
        agent = self._active().snapshot.resolve_agent(agent_ref)
        try:
            record = await self._ledger.record(agent.id, amount, request_id)
        except UsageConflictError as exc:
            raise RequestError("request_id", str(exc), grpc.StatusCode.ALREADY_EXISTS) from None
        midnight = self._clock().replace(hour=0, minute=0, second=0, microsecond=0)
        return pb.ReportUsageResponse(
            duplicate=record.duplicate,
            daily_spend_usd=self._ledger.spent_since(agent.id, midnight),
        ).SerializeToString()

    async def await_approval(
        self, data: bytes, context: grpc.aio.ServicerContext[Any, Any]
    ) -> bytes:
        parse_request(pb.AwaitApprovalRequest, data)
        raise RequestError("", "approvals are not served yet", grpc.StatusCode.UNIMPLEMENTED)

    async def not_served(self, data: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
        raise RequestError("", "not served by this sidecar yet", grpc.StatusCode.UNIMPLEMENTED)

    async def not_served_stream(
        self, requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[bytes]:
        raise RequestError("", "not served by this sidecar yet", grpc.StatusCode.UNIMPLEMENTED)
        yield b""  # pragma: no cover

    def handler(self) -> grpc.GenericRpcHandler[Any, Any]:
        unary: dict[str, Callable[..., Awaitable[bytes]]] = {
            "Enforce": self.enforce,
            "EnforceBatch": self.not_served,
            "Authorize": self.authorize,
            "AgentStatus": self.agent_status,
            "ReportUsage": self.report_usage,
            "AwaitApproval": self.await_approval,
            "SubmitTrace": self.not_served,
        }
        methods = {
            name: grpc.unary_unary_rpc_method_handler(_guard_unary(fn, self.activity))
            for name, fn in unary.items()
        }
        methods["WatchAgentStatus"] = grpc.unary_stream_rpc_method_handler(
            _guard_stream(self.watch_agent_status)
        )
        methods["EnforceStream"] = grpc.stream_stream_rpc_method_handler(
            _guard_stream(self.not_served_stream)  # type: ignore[arg-type]
        )
        return grpc.method_handlers_generic_handler(SERVICE_NAME, methods)


async def _abort(context: grpc.aio.ServicerContext[Any, Any], exc: RequestError) -> None:
    await context.abort(exc.code, str(exc), exc.trailing_metadata())


def _guard_unary(
    fn: Callable[[bytes, grpc.aio.ServicerContext[Any, Any]], Awaitable[bytes]],
    activity: Activity,
) -> Callable[[bytes, grpc.aio.ServicerContext[Any, Any]], Awaitable[bytes]]:
    async def handle(data: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
        activity.in_flight += 1
        activity.last_started = time.monotonic()
        try:
            return await fn(data, context)
        except RequestError as exc:
            await _abort(context, exc)
            raise AssertionError("abort returned") from exc  # pragma: no cover
        finally:
            activity.in_flight -= 1

    return handle


def _guard_stream(
    fn: Callable[[bytes, grpc.aio.ServicerContext[Any, Any]], AsyncIterator[bytes]],
) -> Callable[[bytes, grpc.aio.ServicerContext[Any, Any]], AsyncIterator[bytes]]:
    async def handle(
        data: bytes, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[bytes]:
        try:
            async for item in fn(data, context):
                yield item
        except RequestError as exc:
            await _abort(context, exc)
        except asyncio.CancelledError:
            raise

    return handle
