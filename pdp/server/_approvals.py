"""The approval desk: holds calls that a require_approval policy stops,
answers waiting agents, and lets an approved call through once.

A sidecar on a snapshot file keeps and decides approvals itself (``pdp
approvals`` writes its state database; the desk notices within a tenth of a
second). A sidecar that follows a control plane reports each approval to it
through the outbox, asks it for decisions and consumes approvals there, so
that one approval lets one call through across every replica of an agent."""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import grpc

from pdp.engine import (
    Approval,
    ApprovalState,
    Decision,
    DecisionKind,
    EnforceInput,
    UsageView,
    approval_refusal,
    fired_policies,
    format_time,
    masked_excerpt,
    request_digest,
    utc_now,
)
from pdp.state import ApprovalStore, OutboxEvent

from ._approvals_remote import RemoteApprovals, RemoteUnavailableError
from ._errors import RequestError

__all__ = ["MAX_AWAIT_SECONDS", "ApprovalDesk", "Held"]

log = logging.getLogger("pdp.server.approvals")

MAX_AWAIT_SECONDS = 60.0  # one AwaitApproval; call again to keep waiting
_WATCH_BUSY = 0.1  # seconds between looks for decisions while approvals are pending
_WATCH_IDLE = 1.0
_UNSHIPPED_RETRY = 0.1  # an approval the control plane has not received yet
_SWEEP_EVERY = 1.0  # seconds between records of expiries
_FORGET_EVERY = 60.0  # seconds between clearings of old approvals from memory

# Decides a request again as if the approved policies did not hold it, and
# charges what proceeds.
Decide = Callable[[frozenset[str]], Awaitable[Decision]]


@dataclass(frozen=True, slots=True)
class Held:
    """The decision for a request that a require_approval policy stopped,
    and the approval to name in the answer (None: none)."""

    decision: Decision
    approval: Approval | None


def _new_id() -> str:
    # 128 bits from the OS as hex: unguessable (an approval id lets a call through).
    return os.urandom(16).hex()


class ApprovalDesk:
    def __init__(
        self,
        store: ApprovalStore,
        usage: UsageView,
        *,
        remote: RemoteApprovals | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.store = store
        self._usage = usage
        self._remote = remote
        self._clock = clock

    # Holding a call -----------------------------------------------------------

    def open(
        self, decision: Decision, request: EnforceInput, digest: str, now: datetime
    ) -> Approval:
        """A new approval for a request ``decision`` holds; recorded in memory
        at once, stored (and reported to a control plane) right after."""
        text = request.input if request.input is not None else request.output
        approval = Approval(
            id=_new_id(),
            agent_id=decision.agent.id,
            digest=digest,
            policies=fired_policies(decision.violations),
            masked_excerpt=masked_excerpt(text),
            request_id=request.request_id,
            created_at=now,
            expires_at=now + timedelta(seconds=decision.approval_timeout_s),
        )
        events: list[OutboxEvent] = []
        if self._remote is not None:
            events.append(_requested_event(approval, now))
        self.store.create(approval, events)
        return approval

    async def hold(
        self,
        request: EnforceInput,
        decision: Decision,
        approval_id: str,
        now: datetime,
        decide: Decide,
    ) -> Held:
        """The answer for a request whose ``decision`` holds it for approval:
        a new approval, or (with ``approval_id``) what that approval allows.
        ``decide(approved)`` decides the request again without the approved
        policies holding it, and charges what proceeds."""
        digest = request_digest(decision.agent.id, request)
        if not approval_id:
            return Held(decision, self.open(decision, request, digest, now))
        approval = await self._find(approval_id)
        if approval is None:
            raise RequestError("approval_id", f"no approval with id {approval_id!r}")
        if approval.digest != digest or approval.agent_id != decision.agent.id:
            return Held(approval_refusal(decision, _other_request(approval_id)), None)
        state = approval.state_at(now)
        if state is ApprovalState.PENDING:
            return Held(decision, approval)
        if state is not ApprovalState.APPROVED:
            return Held(approval_refusal(decision, _not_approved(approval, state)), None)
        if approval.consumed_at is not None:
            return Held(approval_refusal(decision, _used(approval)), None)
        allowed = await decide(approval.approved_policies)
        if allowed.kind is DecisionKind.PENDING_APPROVAL:
            # A policy the approval does not cover holds it too: ask again.
            return Held(allowed, self.open(allowed, request, digest, now))
        if allowed.kind not in (DecisionKind.ALLOW, DecisionKind.ALLOW_WITH_WARNINGS):
            return Held(allowed, None)  # blocked for another reason: the approval keeps
        used = await self._consume(approval, digest)
        if used is None:
            current = await self._find(approval_id) or approval
            return Held(approval_refusal(decision, _used(current)), None)
        return Held(allowed, used)

    async def find(self, approval_id: str) -> Approval | None:
        """The approval with this id, or None."""
        return await self._find(approval_id)

    async def _find(self, approval_id: str) -> Approval | None:
        """The approval: the store's; with a control plane, its answer unless
        it has already decided (what the store holds beyond pending came
        from it), or the store's when it cannot be reached."""
        local = await self.store.lookup(approval_id, fresh=self._remote is None)
        if self._remote is None or (local is not None and local.state is not ApprovalState.PENDING):
            return local
        try:
            remote = await self._remote.get(approval_id)
        except RemoteUnavailableError as exc:
            if local is None:
                raise _unreachable(approval_id, exc) from None
            return local  # pending, or expired by its time: no decision needed
        if remote is None:
            return local  # ours, not yet received by the control plane
        await self.store.adopt(remote)
        return remote

    async def _consume(self, approval: Approval, digest: str) -> Approval | None:
        if self._remote is None:
            return await self.store.consume(approval.id)
        try:
            used = await self._remote.consume(approval.id, digest)
        except RemoteUnavailableError as exc:
            raise _unreachable(approval.id, exc) from None
        if used is not None:
            await self.store.adopt(used)
        return used

    # Waiting for a decision ---------------------------------------------------

    async def await_decision(self, approval_id: str, seconds: float) -> Approval | None:
        """The approval once decided (or expired), or as it stands after
        ``seconds``; None when no approval has this id."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + min(max(seconds, 0.0), MAX_AWAIT_SECONDS)
        if self._remote is not None:
            return await self._await_remote(approval_id, deadline)
        approval = await self.store.lookup(approval_id, fresh=True)
        while approval is not None and not approval.decided(self._clock()):
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            await self.store.wait(approval_id, remaining)
            approval = self.store.get(approval_id) or await self.store.lookup(approval_id)
        return approval

    async def _await_remote(self, approval_id: str, deadline: float) -> Approval | None:
        assert self._remote is not None
        loop = asyncio.get_running_loop()
        approval = await self.store.lookup(approval_id)
        while approval is None or approval.state is ApprovalState.PENDING:
            try:
                remote = await self._remote.get(approval_id, wait=deadline - loop.time())
            except RemoteUnavailableError as exc:
                if approval is None:
                    raise _unreachable(approval_id, exc) from None
                remote, pause = None, 1.0  # the control plane is away: look again soon
            else:
                pause = _UNSHIPPED_RETRY
            if remote is not None:
                await self.store.adopt(remote)
                approval = remote
            elif approval is None:
                return None  # unknown here and there
            if approval.decided(self._clock()) or loop.time() >= deadline:
                break
            if remote is None:  # not received yet, or no answer: wait a little
                await asyncio.sleep(min(pause, max(deadline - loop.time(), 0.0)))
        return approval

    # Upkeep -------------------------------------------------------------------

    async def run(self) -> None:
        """Until cancelled: notices decisions another process wrote (a
        sidecar without a control plane), records expiries, forgets old
        approvals from memory."""
        loop = asyncio.get_running_loop()
        last_sweep = last_forget = loop.time()
        while True:
            busy = self.store.pending > 0
            await asyncio.sleep(_WATCH_BUSY if busy else _WATCH_IDLE)
            now = loop.time()
            try:
                if self._remote is None:
                    # Decisions come from `pdp approvals` (another process)
                    # and expiry is recorded here. With a control plane,
                    # both are its: what the store holds past pending came
                    # from it, and a pending approval past its time reads
                    # as expired anyway.
                    await self.store.watch()
                    if now - last_sweep >= _SWEEP_EVERY:
                        last_sweep = now
                        await self.store.expire_due()
                if now - last_forget >= _FORGET_EVERY:
                    last_forget = now
                    self.store.forget_old()
            except Exception:
                log.exception("approval upkeep failed; trying again")


def _requested_event(approval: Approval, now: datetime) -> OutboxEvent:
    return OutboxEvent(
        str(uuid.uuid4()),
        "approval.requested",
        now,
        {
            "approvalId": approval.id,
            "agentId": approval.agent_id,
            "digest": approval.digest,
            "policies": [p.as_json() for p in approval.policies],
            "maskedExcerpt": approval.masked_excerpt,
            "expiresAt": format_time(approval.expires_at),
            "requestId": approval.request_id,
        },
    )


def _other_request(approval_id: str) -> str:
    return (
        f"approval {approval_id} was given for another request: the agent, input, output, "
        "tool, model, metadata, cost or context differ. Send this request without "
        "approval_id to ask for its own approval"
    )


def _not_approved(approval: Approval, state: ApprovalState) -> str:
    if state is ApprovalState.EXPIRED:
        return (
            f"approval {approval.id} expired at {format_time(approval.expires_at)} without a "
            "decision. Send the request without approval_id to ask again"
        )
    by = f" by {approval.reviewer}" if approval.reviewer else ""
    why = f": {approval.comment}" if approval.comment else ""
    return f"approval {approval.id} was denied{by}{why}"


def _used(approval: Approval) -> str:
    when = f" at {format_time(approval.consumed_at)}" if approval.consumed_at else ""
    return f"approval {approval.id} was already used{when}: an approval lets one call through"


def _unreachable(approval_id: str, exc: Exception) -> RequestError:
    return RequestError(
        "",
        f"cannot reach the control plane for approval {approval_id} ({exc}); retry",
        grpc.StatusCode.UNAVAILABLE,
    )
