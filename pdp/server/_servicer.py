"""The PolicyDecisionService handlers: parse, translate, ask the engine,
translate back. Requests arrive as bytes so that a malformed message is an
INVALID_ARGUMENT naming the field, not an opaque INTERNAL."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping
from datetime import datetime
from typing import Any, TypeVar

import grpc

from pdp.engine import (
    NO_ANSWERS,
    NO_CEL_RESULTS,
    AgentIdError,
    AgentInfo,
    Answer,
    Approval,
    CelResult,
    CompiledSnapshot,
    Consultation,
    Decision,
    DecisionKind,
    EnforceInput,
    StateUnavailableError,
    SteadyClock,
    UsagePort,
    UsageReport,
)
from pdp.snapshot import Active, SnapshotHolder
from pdp.state import (
    SQLITE_STATUS,
    DecisionLog,
    DecisionRecord,
    StateStatus,
    UsageConflictError,
)
from pdp.v1 import policy_decision_service_pb2 as pb

from ._approvals import ApprovalDesk, Held
from ._bulk import batch_items, stream_answer, stream_answers, stream_error, stream_items
from ._callers import CallerCheck
from ._cel_pool import CelPool
from ._errors import RequestError
from ._ids import new_id
from ._observers import AfterDecision
from ._rpc_table import Activity, handler_name, service_handler
from ._traces import TraceDesk
from ._translate import (
    Limits,
    SnapshotView,
    action_name,
    agent_ref,
    agent_state,
    approval_id_of,
    authorize_response,
    await_approval_response,
    enforce_input,
    enforce_response,
    parse_request,
    require_id,
    trace_input,
    trace_response,
    usage_amount,
    wait_seconds,
)
from ._uplink import Uplink
from ._validators import ValidatorCaller

__all__ = [
    "SERVICE",
    "SERVICE_NAME",
    "Activity",
    "AnswerBuilder",
    "PolicyDecisionServicer",
    "handler_name",
]

SERVICE = pb.DESCRIPTOR.services_by_name["PolicyDecisionService"]
SERVICE_NAME = SERVICE.full_name
log = logging.getLogger("pdp.server")
# Decisions tried for one call whose charges a shared usage backend keeps
# refusing (other replicas keep taking the last places in its windows).
_CHARGE_ATTEMPTS = 3

AnswerT = TypeVar("AnswerT")
# What an Enforce decision is answered with, built from the decision, its
# id, its approval's id ("" for none), the request id and, for a new
# approval, when it expires: the wire message (``enforce_response``), or
# for an in-process caller whatever it reads.
AnswerBuilder = Callable[[Decision, str, str, str, datetime | None], AnswerT]


# Both unique and growing (see _ids): a request id the sidecar makes up
# keys the call's reservation.
_new_decision_id = _new_request_id = new_id


def _resolve(snapshot: CompiledSnapshot, ref: str, field: str) -> AgentInfo:
    try:
        return snapshot.resolve_agent(ref)
    except AgentIdError as exc:
        raise RequestError(field, exc.reason) from None


class PolicyDecisionServicer:
    def __init__(
        self,
        holder: SnapshotHolder,
        usage: UsagePort,
        decisions: DecisionLog,
        limits: Limits,
        validators: ValidatorCaller,
        *,
        clock: SteadyClock | None = None,
        state_status: Callable[[], StateStatus] = lambda: SQLITE_STATUS,
        after: AfterDecision | None = None,
        uplink: Uplink | None = None,
        approvals: ApprovalDesk | None = None,
        traces: TraceDesk | None = None,
        cel: CelPool | None = None,
        callers: CallerCheck | None = None,
    ) -> None:
        self._holder = holder
        # Costly CEL evaluations run there; without one, in place.
        self._cel = cel
        self._callers = callers if callers is not None and callers.required else None
        self._after = after if after is not None and after.active else None
        self._uplink = uplink
        self._approvals = approvals
        self._traces = traces
        self._usage = usage
        self._decisions = decisions
        self._limits = limits
        self._validators = validators
        self._clock = clock or SteadyClock()
        self._state_status = state_status
        self.activity = Activity()
        # Open EnforceStreams: True while one waits for its next request.
        self._streams: dict[asyncio.Task[Any], bool] = {}
        self._closing = False

    def _active(self) -> Active:
        holder = self._holder
        active = holder.active
        if active is None:
            raise RequestError("", "no snapshot is active yet", grpc.StatusCode.UNAVAILABLE)
        if holder.stale:
            raise RequestError(
                "",
                f"snapshot revision {active.snapshot.revision} is stale ({holder.why_stale()}); "
                "failing closed",
                grpc.StatusCode.UNAVAILABLE,
            )
        return active

    async def enforce(self, data: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
        start = time.perf_counter()
        msg = parse_request(pb.EnforceRequest, data)
        request = enforce_input(msg, self._limits)
        answer = await self.decide(msg, request, context, start, enforce_response)
        return answer.SerializeToString()

    def enforce_message(
        self,
        msg: pb.EnforceRequest,
        context: grpc.aio.ServicerContext[Any, Any],
        answer: AnswerBuilder[AnswerT],
    ) -> Coroutine[Any, Any, AnswerT]:
        """``enforce`` for an in-process caller: a request already in memory
        as a message, answered with what ``answer`` builds (no bytes to
        parse, no response message to build and read back). A bad request
        raises ``RequestError`` here; the decision is the coroutine's."""
        start = time.perf_counter()
        return self.decide(msg, enforce_input(msg, self._limits), context, start, answer)

    async def decide(
        self,
        msg: pb.EnforceRequest,
        request: EnforceInput,
        context: grpc.aio.ServicerContext[Any, Any],
        start: float,
        answer_with: AnswerBuilder[AnswerT],
    ) -> AnswerT:
        """One Enforce decision (also each item of a batch or a stream):
        decided, charged, logged, shipped and observed; ``start`` is when its
        call began, ``answer_with`` builds what it returns."""
        if not request.request_id:
            request.request_id = _new_request_id()
        snapshot = self._active().snapshot
        if self._callers is not None:
            agent_id = _resolve(snapshot, request.agent_id, "agent_id").id
            self._callers.check(context, snapshot, agent_id)
        clock = self._clock
        now = clock()
        steady = clock.steady()
        cel = NO_CEL_RESULTS
        try:
            if snapshot.offloads and self._cel is not None:
                jobs = snapshot.cel_jobs(request, self._usage, now, steady)
                if jobs:
                    cel = await self._cel.evaluate(jobs)
            decision = snapshot.enforce(request, self._usage, now, steady=steady, cel_results=cel)
        except AgentIdError as exc:  # a variant that looks like two agents
            raise RequestError("agent_id", exc.reason) from None
        answers: dict[str, Answer] | None = None
        if not isinstance(decision, Decision):
            answers = {}
            decision = await self._consult(decision, request, answers)
        approval: Approval | None = None
        if decision.kind is DecisionKind.PENDING_APPROVAL:
            held = await self._hold(snapshot, request, msg, decision, now, steady, answers, cel)
            decision, approval = held.decision, held.approval
        elif decision.charges:
            decision = await self._charge(snapshot, request, decision, now, steady, answers, cel)
        decision_id = _new_decision_id()
        kind = decision.kind
        approval_id = "" if approval is None else approval.id
        violations = decision.violations
        self._decisions.append(
            DecisionRecord(
                decision_id=decision_id,
                decided_at=now,
                agent_id=decision.agent.id,
                decision=kind.value,
                policies_fired=tuple([v.policy_id for v in violations]) if violations else (),
                pii_counts=decision.pii_counts,
                snapshot_revision=decision.snapshot_revision,
                request_id=request.request_id,
                approval_id=approval_id,
            )
        )
        if violations and self._uplink is not None:
            self._uplink.decision(
                decision_id,
                now,
                decision.agent.id,
                kind.value,
                violations,
                decision.snapshot_revision,
                request.request_id,
                approval_id,
            )
        expires = (
            approval.expires_at if kind is DecisionKind.PENDING_APPROVAL and approval else None
        )
        answer = answer_with(decision, decision_id, approval_id, request.request_id, expires)
        after = self._after
        if after is not None:
            after(
                request,
                decision,
                decision_id,
                now,
                time.perf_counter() - start,
                context,
                answers or NO_ANSWERS,
            )
        return answer

    async def _hold(
        self,
        snapshot: CompiledSnapshot,
        request: EnforceInput,
        msg: pb.EnforceRequest,
        decision: Decision,
        now: datetime,
        steady: float,
        answers: dict[str, Answer] | None,
        cel: Mapping[str, CelResult],
    ) -> Held:
        """A request a require_approval policy holds: a new approval, or what
        the approval it names allows."""
        if self._approvals is None:
            raise RequestError(
                "", "this server keeps no approvals", grpc.StatusCode.FAILED_PRECONDITION
            )

        async def decide(approved: frozenset[str]) -> Decision:
            # Again, as if the approved policies did not hold the call; the
            # validators' answers are reused, and what proceeds is charged.
            found = answers if answers is not None else {}
            outcome = snapshot.enforce(
                request, self._usage, now, found, steady=steady, approved=approved, cel_results=cel
            )
            if not isinstance(outcome, Decision):
                outcome = await self._consult(outcome, request, found)
            if outcome.charges:
                outcome = await self._charge(
                    snapshot, request, outcome, now, steady, found, cel, approved
                )
            return outcome

        return await self._approvals.hold(request, decision, approval_id_of(msg), now, decide)

    async def _consult(
        self, outcome: Decision | Consultation, request: EnforceInput, answers: dict[str, Answer]
    ) -> Decision:
        """Makes the validator calls the evaluation asks for (concurrently,
        on the event loop) until it decides; ``answers`` collects them."""
        while not isinstance(outcome, Decision):
            got = await self._validators.answer(outcome.calls, request.request_id)
            answers.update(got)
            outcome = outcome.resume(got)
        return outcome

    async def _charge(
        self,
        snapshot: CompiledSnapshot,
        request: EnforceInput,
        decision: Decision,
        now: datetime,
        steady: float,
        answers: dict[str, Answer] | None,
        cel: Mapping[str, CelResult] = NO_CEL_RESULTS,
        approved: frozenset[str] = frozenset(),
    ) -> Decision:
        """Applies what an allowed call charges to usage. When the backend
        refuses (another call, here or in another replica, took the last
        place in a window or the last dollars of a budget), the call is
        decided again on the backend's numbers, with the validators' answers
        already given; when the backend cannot be reached, again with usage
        unreadable (each policy that reads it fails closed or open)."""
        for _ in range(_CHARGE_ATTEMPTS):
            try:
                if not await self._usage.charge(decision.charges):
                    return decision
            except StateUnavailableError:
                pass
            outcome = snapshot.enforce(
                request,
                self._usage,
                now,
                answers or NO_ANSWERS,
                steady=steady,
                approved=approved,
                cel_results=cel,
            )
            if isinstance(outcome, Decision):
                decision = outcome
            else:
                decision = await self._consult(outcome, request, answers := answers or {})
            if not decision.charges:
                return decision
        raise RequestError(
            "",
            f"the call could not be counted after {_CHARGE_ATTEMPTS} attempts "
            "(its rate-limit windows are contended); retry",
            grpc.StatusCode.ABORTED,
        )

    async def authorize(self, data: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
        msg = parse_request(pb.AuthorizeRequest, data)
        source = agent_ref(msg.source_agent_id, "source_agent_id")
        target = agent_ref(msg.target_agent_id, "target_agent_id")
        action = action_name(msg.action)
        snapshot = self._active().snapshot
        # Resolved here to name the field of an id that looks like two agents.
        source = _resolve(snapshot, source, "source_agent_id").id
        target = _resolve(snapshot, target, "target_agent_id").id
        if self._callers is not None:
            self._callers.check(context, snapshot, source, "source_agent_id")
        result = snapshot.authorize(source, target, action, self._clock())
        return authorize_response(result, snapshot.revision).SerializeToString()

    def _state(self, agent_ref: str, context: grpc.aio.ServicerContext[Any, Any]) -> pb.AgentState:
        active = self._active()
        holder = self._holder
        snapshot = active.snapshot
        agent = _resolve(snapshot, agent_ref, "agent_id")
        if self._callers is not None:
            self._callers.check(context, snapshot, agent.id)
        now = self._clock()
        rejection = holder.last_rejection
        view = SnapshotView(
            revision=snapshot.revision,
            source=active.source,
            activated_at=active.activated_at,
            staleness_seconds=holder.silence(),
            rejected_at=rejection.rejected_at if rejection else None,
            rejection=rejection.errors if rejection else (),
            rejected_revision=rejection.revision if rejection else None,
            rejected_source=rejection.source if rejection else "",
        )
        try:
            budgets = snapshot.budgets(agent, self._usage, now)
        except StateUnavailableError:
            budgets = []  # the state backend's status says why
        return agent_state(agent, budgets, view, self._state_status())

    async def agent_status(self, data: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
        msg = parse_request(pb.AgentStatusRequest, data)
        state = self._state(agent_ref(msg.agent_id, "agent_id"), context)
        return pb.AgentStatusResponse(state=state).SerializeToString()

    async def watch_agent_status(
        self, data: bytes, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[bytes]:
        msg = parse_request(pb.WatchAgentStatusRequest, data)
        ref = agent_ref(msg.agent_id, "agent_id")
        while self._holder.active is None:
            await self._holder.wait_changed()
        last = b""
        while True:
            state = self._state(ref, context)
            # Staleness changes every call; send when anything else changed.
            state.snapshot.ClearField("staleness")
            encoded = state.SerializeToString(deterministic=True)
            if encoded != last:
                last = encoded
                yield pb.WatchAgentStatusResponse(state=state).SerializeToString()
            await self._holder.wait_changed()

    async def report_usage(self, data: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
        msg = parse_request(pb.ReportUsageRequest, data)
        ref = agent_ref(msg.agent_id, "agent_id")
        amount = usage_amount(msg.cost_usd)
        request_id = require_id(msg.request_id, "request_id")
        snapshot = self._active().snapshot
        agent = _resolve(snapshot, ref, "agent_id")
        if self._callers is not None:
            self._callers.check(context, snapshot, agent.id)
        try:
            record = await self._usage.record(UsageReport(agent.id, amount, request_id))
            midnight = self._clock().replace(hour=0, minute=0, second=0, microsecond=0)
            daily = self._usage.spent_since(agent.id, midnight)
        except UsageConflictError as exc:
            raise RequestError("request_id", str(exc), grpc.StatusCode.ALREADY_EXISTS) from None
        except StateUnavailableError as exc:
            message = f"the usage was not recorded: {exc}; retry with the same request_id"
            raise RequestError("", message, grpc.StatusCode.UNAVAILABLE) from None
        return pb.ReportUsageResponse(
            duplicate=record.duplicate, daily_spend_usd=daily
        ).SerializeToString()

    async def await_approval(
        self, data: bytes, context: grpc.aio.ServicerContext[Any, Any]
    ) -> bytes:
        msg = parse_request(pb.AwaitApprovalRequest, data)
        approval_id = require_id(msg.approval_id, "approval_id")
        seconds = wait_seconds(msg)
        if self._approvals is None:
            raise RequestError("approval_id", f"no approval with id {approval_id!r}")
        if self._callers is not None:
            held = await self._approvals.find(approval_id)
            if held is None:
                raise RequestError("approval_id", f"no approval with id {approval_id!r}")
            self._callers.check(context, self._active().snapshot, held.agent_id)
        approval = await self._approvals.await_decision(approval_id, seconds)
        if approval is None:
            raise RequestError("approval_id", f"no approval with id {approval_id!r}")
        return await_approval_response(approval, self._clock()).SerializeToString()

    async def enforce_batch(
        self, data: bytes, context: grpc.aio.ServicerContext[Any, Any]
    ) -> bytes:
        start = time.perf_counter()
        items = batch_items(data, self._limits)
        # No snapshot, a stale one, or a caller acting for another agent
        # fails the batch before any decision.
        snapshot = self._active().snapshot
        if self._callers is not None:
            for _, request in items:
                agent_id = _resolve(snapshot, request.agent_id, "agent_id").id
                self._callers.check(context, snapshot, agent_id)
        responses = [
            await self.decide(msg, request, context, start, enforce_response)
            for msg, request in items
        ]
        return pb.EnforceBatchResponse(responses=responses).SerializeToString()

    async def enforce_stream(
        self, requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[bytes]:
        task = asyncio.current_task()
        assert task is not None
        streams = self._streams
        iterator = aiter(requests)
        try:
            while not self._closing:
                streams[task] = True  # idle: waiting for the next request
                try:
                    data = await anext(iterator)
                except StopAsyncIteration:
                    return
                except asyncio.CancelledError:
                    if not self._closing:
                        raise
                    task.uncancel()  # end_streams(): end the stream normally
                    return
                streams[task] = False
                yield await self._stream_answer(data, context)
        finally:
            streams.pop(task, None)

    def end_streams(self) -> None:
        """Ends every EnforceStream, at once where it waits for a request,
        else after the decision it is making: a server shutting down must
        not wait its whole grace period for agents to hang up."""
        self._closing = True
        for task, idle in self._streams.items():
            if idle:
                task.cancel()

    async def _stream_answer(
        self, data: bytes, context: grpc.aio.ServicerContext[Any, Any]
    ) -> bytes:
        """The answer to one stream message: its decision or its error; for
        a packed message, every item's, in one message."""
        start = time.perf_counter()
        packed, items = stream_items(data, self._limits)
        if not packed:
            item_id, parsed = items[0]
            answer = await self._stream_decide(parsed, context, start)
            if isinstance(answer, RequestError):
                return stream_error(item_id, answer)
            return stream_answer(item_id, answer)
        return stream_answers(
            [
                (item_id, await self._stream_decide(parsed, context, start))
                for item_id, parsed in items
            ]
        )

    async def _stream_decide(
        self,
        parsed: tuple[pb.EnforceRequest, EnforceInput] | RequestError,
        context: grpc.aio.ServicerContext[Any, Any],
        start: float,
    ) -> pb.EnforceResponse | RequestError:
        if isinstance(parsed, RequestError):
            return parsed
        try:
            return await self.decide(*parsed, context, start, enforce_response)
        except RequestError as exc:
            return exc

    async def submit_trace(self, data: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
        msg = parse_request(pb.SubmitTraceRequest, data)
        trace = trace_input(msg, self._limits)
        if self._traces is None:
            raise _not_served("SubmitTrace")
        snapshot = self._active().snapshot
        if self._callers is not None:
            self._callers.check(context, snapshot, snapshot.resolve_agent(trace.agent_id).id)
        answer = await self._traces.submit(snapshot, trace)
        return trace_response(
            answer.trace_id, answer.violations, answer.anomaly
        ).SerializeToString()

    def handler(self) -> grpc.GenericRpcHandler[Any, Any]:
        """The service's method table (see ``_rpc_table``)."""
        return service_handler(SERVICE, self, self.activity)


def _not_served(rpc: str, advice: str = "") -> RequestError:
    message = f"{rpc} is not served by this sidecar version yet{advice}"
    return RequestError("", message, grpc.StatusCode.UNIMPLEMENTED)
