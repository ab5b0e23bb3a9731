"""The control plane: the current state in memory, its compiled snapshot,
serialised writes that bump the revision in the same transaction as the
change, and the change feed that long-polling sidecars wait on."""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import json
import logging
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from pdp.engine import (
    ACTIONS,
    AgentIdError,
    CompiledSnapshot,
    format_time,
    new_caller_token,
    utc_now,
)
from pdp.outbound import OutboundPolicy

from ._approvals import Approvals
from ._auth import authenticate
from ._candidate import Candidate, build_candidate, candidate_document, candidate_out
from ._compiled import compile_loaded
from ._decisions import Decisions
from ._errors import (
    DatabaseUnavailableError,
    FieldProblem,
    NotFoundError,
    ServiceUnavailableError,
    StaleRevisionError,
    StoreError,
    ValidationFailedError,
)
from ._event_types import define_uplink_types
from ._events import EventRegistry
from ._location import DbLocation, SqliteLocation, parse_db_location
from ._objects import Agent, Grant, Policy, Settings
from ._outbound_urls import check_candidate_urls, check_policy_url, stored_url_refusals
from ._plans import (
    Plan,
    plan_create_agent,
    plan_create_grant,
    plan_create_policy,
    plan_delete_policy,
    plan_issue_caller_token,
    plan_pause,
    plan_promote,
    plan_resume,
    plan_revoke_caller_token,
    plan_revoke_grant,
    plan_update_policy,
    plan_update_settings,
    require_agent,
    require_policy,
)
from ._plans_agents import plan_delete_agent, plan_update_agent
from ._replicas import ReplicaFollower
from ._roles import Caller
from ._schemas import (
    AgentCreate,
    AgentDetail,
    AgentPatch,
    AgentSidecar,
    AuthorizeOut,
    CallerTokenOut,
    CandidateIn,
    CandidateOut,
    GrantCreate,
    PolicyCreate,
    PolicyList,
    PolicyPatch,
    SettingsPatch,
)
from ._sidecars import SidecarRegistry
from ._state import State
from ._store import Store
from ._traces import Traces
from ._webhook_events import define_webhook_types
from ._webhook_sender import DeliveryOptions, WebhookSender
from ._webhooks import Webhooks

__all__ = ["ControlPlane"]

log = logging.getLogger("pdp.control")

# A write planned on a state another control plane had already replaced is
# planned again on the stored one; this many times at most.
_STALE_RETRIES = 20
# Keys remembered for when the database does not answer (the most recent).
_KNOWN_KEYS = 1024


def _key_digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


ResultT = TypeVar("ResultT", Agent, Policy, Grant, PolicyList, Settings)


class ControlPlane:
    """Open with :meth:`open`. One per SQLite file (a lock on the file
    refuses a second one, whose writes and change feed would diverge); any
    number on one PostgreSQL database, where each follows the others'
    writes through the database's notices."""

    def __init__(
        self, store: Store, lock_fd: int | None, state: State, candidate: Candidate | None = None
    ) -> None:
        self.store = store
        self._lock_fd: int | None = lock_fd
        # The state and its compiled snapshot change together, in one assignment.
        self._current: tuple[State, CompiledSnapshot | None] = (state, compile_loaded(state))
        self._write_lock = asyncio.Lock()
        self._changed = asyncio.Event()
        self._closing = False
        self._closed = False
        self._writes: set[asyncio.Future[Any]] = set()
        self.sidecars = SidecarRegistry()
        self.candidate = candidate
        self._candidate_generation = 0
        self._candidate_body: tuple[str, bytes] | None = None
        self.long_polls_waiting = 0
        self.events = EventRegistry()
        define_uplink_types(self.events)
        self.approvals = Approvals(store, self.events)
        define_webhook_types(self.events)
        self.webhooks = Webhooks(store, self.events, lambda ref: self.state.policy(ref))
        self.webhook_sender: WebhookSender | None = None
        # After the webhooks: they declare the violation types traces emit.
        self.traces = Traces(store, self.events, lambda: self._current)
        self.decisions = Decisions(store, self.events)
        self._known_keys: dict[str, Caller] = {}  # SHA-256 of a key -> its caller
        self._follower = ReplicaFollower(self, store, self.approvals, self._write_lock)

    @classmethod
    async def open(cls, where: str | os.PathLike[str] | DbLocation) -> ControlPlane:
        """Opens the database ``where`` (a SQLite path, a ``postgresql://``
        URL or a parsed location), creating and migrating it if needed."""
        if isinstance(where, str):
            try:
                where = parse_db_location(where)
            except ValueError as exc:
                raise StoreError(f"--db: {exc}") from None
        if not isinstance(where, SqliteLocation) and not isinstance(where, os.PathLike):
            return await cls._open_shared(where)
        file_path = Path(where.path if isinstance(where, SqliteLocation) else where)
        try:
            fd = os.open(file_path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise StoreError(f"cannot open {str(file_path)!r}: {exc.strerror}") from exc
        try:
            # The database file itself carries the lock (flock and SQLite's
            # fcntl locks do not interact); the descriptor stays open until
            # SQLite has closed the file.
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise StoreError(f"another control plane is already using {str(file_path)!r}") from None
        try:
            store = await Store.open(file_path)
        except BaseException:
            os.close(fd)
            raise
        try:
            state = await store.load_state()
            stored = await store.load_candidate()
            # Rendered now, off the event loop, rather than by the first poll.
            await asyncio.to_thread(state.document_bytes)
        except BaseException:
            await store.close()
            os.close(fd)
            raise
        candidate = None if stored is None else Candidate(tuple(stored[0]), stored[1])
        control = cls(store, fd, state, candidate)
        try:
            await control.webhooks.load()
        except BaseException:
            await control.close()
            raise
        return control

    @classmethod
    async def _open_shared(cls, location: DbLocation) -> ControlPlane:
        store = await Store.open(location)
        try:
            state = await store.load_state()
            stored = await store.load_candidate()
            await asyncio.to_thread(state.document_bytes)
            candidate = None if stored is None else Candidate(tuple(stored[0]), stored[1])
            control = cls(store, None, state, candidate)
            await store.backend.listen(control._follower.on_notice, control._follower.on_reconnect)
        except BaseException:
            await store.close()
            raise
        return control

    # Other control planes on the database ------------------------------------

    def status(self) -> str | None:
        """None while the database answers; else what is wrong."""
        return self.store.backend.status()

    @property
    def current(self) -> tuple[State, CompiledSnapshot | None]:
        return self._current

    @property
    def closing(self) -> bool:
        return self._closing

    @property
    def closed(self) -> bool:
        return self._closed

    def adopt(self, state: State, compiled: CompiledSnapshot | None) -> None:
        """Serves ``state``, read from the database after another control
        plane wrote it, and wakes the long polls."""
        self._current = (state, compiled)
        self._wake()

    @property
    def state(self) -> State:
        return self._current[0]

    @property
    def revision(self) -> int:
        return self._current[0].revision

    # Reads -----------------------------------------------------------------

    def snapshot_body(self) -> tuple[int, bytes]:
        """The current snapshot document as JSON bytes, with its revision
        (rendered by the write that made it, off the event loop)."""
        state = self.state
        return state.revision, state.document_bytes()

    def get_policy(self, ref: str) -> Policy:
        return require_policy(self.state, ref)

    def get_agent(self, ref: str) -> Agent:
        return require_agent(self.state, ref)

    def agent_detail(self, ref: str) -> AgentDetail:
        """The agent and the sidecars following the feed, with whether each
        holds the agent's current state."""
        state = self.state
        agent = require_agent(state, ref)
        # An agent stored before revisions were kept counts as changed now.
        needed = agent.revision or state.revision
        sidecars = [
            AgentSidecar(
                sidecar=r.name,
                revision=r.pause_revision,
                snapshotRevision=r.revision,
                applied=r.pause_revision >= needed,
                seenAt=format_time(r.seen_at),
            )
            for r in self.sidecars.connected()
        ]
        return AgentDetail(**dict(agent), sidecars=sidecars)

    def agent_grants(self, ref: str) -> list[Grant]:
        """The agent's live grants as source agent."""
        state = self.state
        agent = require_agent(state, ref)
        return [g for g in state.grants if g.sourceAgentId == agent.id]

    def authorize(self, source: str, target: str, action: str) -> AuthorizeOut:
        """The sidecar's Authorize answer, from the same compiled snapshot."""
        _, compiled = self._current
        if compiled is None:
            raise ServiceUnavailableError(
                "the stored snapshot does not compile; see the control plane's log"
            )
        for field, ref in (("sourceAgentId", source), ("targetAgentId", target)):
            try:
                listed = compiled.resolve_agent(ref).known
            except AgentIdError as exc:
                raise ValidationFailedError([FieldProblem(field, exc.reason)]) from None
            if not listed:
                raise NotFoundError(f"no agent with id or name {ref!r}", field=field)
        name = action.lower()
        if name not in ACTIONS:
            known = ", ".join(sorted(ACTIONS))
            raise ValidationFailedError(
                [FieldProblem("action", f"unknown action {action!r} (expected one of {known})")]
            )
        result = compiled.authorize(source, target, name, utc_now())
        expires = result.grant_expires_at
        return AuthorizeOut(
            allowed=result.allowed,
            reason=result.reason,
            denial=None if result.denial is None else result.denial.value,
            grantExpiresAt=None if expires is None else format_time(expires),
            revision=compiled.revision,
        )

    async def authenticate(self, presented: str | None) -> Caller:
        """The caller whose key is ``presented``. While the database does not
        answer, a key that was accepted before is still accepted (sidecars
        keep long-polling what this control plane holds); others get 503."""
        try:
            caller = await authenticate(self.store, presented)
        except DatabaseUnavailableError as exc:
            known = self._known_keys.get(_key_digest(presented or ""))
            if known is None:
                raise ServiceUnavailableError(str(exc), code="database_unavailable") from None
            return known
        if self.store.shared:
            if len(self._known_keys) >= _KNOWN_KEYS:
                self._known_keys.pop(next(iter(self._known_keys)))
            self._known_keys[_key_digest(presented or "")] = caller
        return caller

    async def wait_for_change(self, revision: int, seconds: float) -> None:
        """Returns once the revision is no longer ``revision``, after
        ``seconds``, or when the control plane shuts down."""
        await self._wait_while(lambda: self.revision == revision, seconds)

    async def wait_for_candidate_change(self, tag: str, seconds: float) -> None:
        """Returns once :attr:`candidate_tag` is no longer ``tag``, after
        ``seconds``, or when the control plane shuts down."""
        await self._wait_while(lambda: self.candidate_tag == tag, seconds)

    async def _wait_while(self, unchanged: Callable[[], bool], seconds: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        self.long_polls_waiting += 1
        try:
            while unchanged() and not self._closing:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return
                changed = self._changed
                try:
                    async with asyncio.timeout(remaining):
                        await changed.wait()
                except TimeoutError:
                    return
        finally:
            self.long_polls_waiting -= 1

    # The candidate snapshot ---------------------------------------------------

    @property
    def candidate_tag(self) -> str:
        """The candidate feed's ETag: it changes with the published revision
        (the candidate carries the published agents) and with the candidate."""
        return f'"{self.revision}.{self._candidate_generation}"'

    def candidate_body(self) -> tuple[str, bytes | None]:
        """The candidate's snapshot document as JSON bytes (None when there
        is no candidate), with its ETag."""
        tag = self.candidate_tag
        candidate = self.candidate
        if candidate is None:
            return tag, None
        cached = self._candidate_body
        if cached is None or cached[0] != tag:
            document = candidate_document(self.state, candidate.policies)
            text = json.dumps(document, ensure_ascii=False, separators=(",", ":"))
            cached = self._candidate_body = (tag, text.encode("utf-8"))
        return cached

    def candidate_summary(self) -> CandidateOut:
        candidate = self._require_candidate()
        return candidate_out(self.state, candidate)

    def _require_candidate(self) -> Candidate:
        if self.candidate is None:
            raise NotFoundError("no candidate snapshot is published")
        return self.candidate

    async def publish_candidate(self, body: CandidateIn) -> CandidateOut:
        """Validates the candidate against the published agents and grants,
        stores it (the published revision stays) and wakes its long polls."""
        async with self._write_lock:
            if self._closing:
                raise ServiceUnavailableError("the control plane is shutting down")
            state = self.state
            check_candidate_urls(self.outbound, body)
            candidate = await asyncio.to_thread(build_candidate, state, body)
            async with self.store.side_transaction() as tx:
                await tx.put_candidate(list(candidate.policies), candidate.created_at)
            self.set_candidate(candidate)
            return candidate_out(state, candidate)

    async def drop_candidate(self) -> CandidateOut:
        async with self._write_lock:
            candidate = self._require_candidate()
            async with self.store.side_transaction() as tx:
                await tx.drop_candidate()
            self.set_candidate(None)
            return candidate_out(self.state, candidate)

    async def promote_candidate(self) -> PolicyList:
        """The candidate's policies become the snapshot's, in one write."""
        promoted: list[Candidate] = []

        def plan(state: State) -> Plan[PolicyList]:
            candidate = self._require_candidate()  # read under the write lock
            promoted.append(candidate)
            return plan_promote(state, candidate.policies)

        result = await self._commit(plan)
        if promoted and self.candidate is promoted[0]:
            self.set_candidate(None)
        return result

    def set_candidate(self, candidate: Candidate | None) -> None:
        """Serves ``candidate`` (None: none) from now on; wakes its long polls."""
        self.candidate = candidate
        self._candidate_generation += 1
        self._wake()

    def _wake(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    # Writes ----------------------------------------------------------------

    @property
    def outbound(self) -> OutboundPolicy:
        """Where the URLs written through the API may point (webhooks,
        custom validators) and where webhooks are delivered."""
        return self.webhooks.outbound

    @outbound.setter
    def outbound(self, policy: OutboundPolicy) -> None:
        self.webhooks.outbound = policy

    async def create_policy(self, body: PolicyCreate) -> Policy:
        check_policy_url(self.outbound, body.policyType, body.ruleDefinition)
        return await self._commit(lambda s: plan_create_policy(s, body))

    async def update_policy(self, ref: str, body: PolicyPatch) -> Policy:
        def plan(state: State) -> Plan[Policy]:
            planned = plan_update_policy(state, ref, body)
            if planned.state is not None:
                policy = planned.result
                check_policy_url(self.outbound, policy.policyType, policy.ruleDefinition)
            return planned

        return await self._commit(plan)

    async def delete_policy(self, ref: str) -> Policy:
        return await self._commit(lambda s: plan_delete_policy(s, ref))

    async def update_settings(self, body: SettingsPatch) -> Settings:
        return await self._commit(lambda s: plan_update_settings(s, body))

    async def create_agent(self, body: AgentCreate) -> Agent:
        return await self._commit(lambda s: plan_create_agent(s, body))

    async def update_agent(self, ref: str, body: AgentPatch) -> Agent:
        return await self._commit(lambda s: plan_update_agent(s, ref, body))

    async def delete_agent(self, ref: str) -> Agent:
        return await self._commit(lambda s: plan_delete_agent(s, ref))

    async def pause_agent(self, ref: str, reason: str) -> Agent:
        return await self._commit(lambda s: plan_pause(s, ref, reason, self._compiled_of(s)))

    async def resume_agent(self, ref: str) -> Agent:
        return await self._commit(lambda s: plan_resume(s, ref, self._compiled_of(s)))

    def _compiled_of(self, state: State) -> CompiledSnapshot | None:
        """The compiled snapshot of ``state`` when it is the current one."""
        current, compiled = self._current
        return compiled if current is state else None

    async def issue_caller_token(self, ref: str, *, revoke_others: bool) -> CallerTokenOut:
        """A new caller token for the agent: published by its hash, answered
        once."""
        token, sha256 = new_caller_token()
        token_id = str(uuid.uuid4())
        agent = await self._commit(
            lambda s: plan_issue_caller_token(s, ref, token_id, sha256, revoke_others=revoke_others)
        )
        issued = next(t for t in agent.callerTokens if t.id == token_id)
        return CallerTokenOut(
            agentId=agent.id,
            id=token_id,
            token=token,
            sha256=sha256,
            createdAt=issued.createdAt,
            revision=agent.revision,
        )

    async def revoke_caller_token(self, ref: str, token_id: str) -> Agent:
        return await self._commit(lambda s: plan_revoke_caller_token(s, ref, token_id))

    async def create_grant(self, source: str, body: GrantCreate) -> Grant:
        return await self._commit(lambda s: plan_create_grant(s, source, body))

    async def revoke_grant(self, source: str, grant_id: str) -> Grant:
        try:
            return await self._commit(lambda s: _revoke_or_raise(s, source, grant_id))
        except _AlreadyRevoked:
            pass
        revoked = await self.store.revoked_grant(grant_id)
        agent = require_agent(self.state, source)
        if revoked is None or revoked.sourceAgentId != agent.id:
            raise NotFoundError(f"agent {agent.name!r} has no grant {grant_id!r}")
        # Revoking twice changes nothing and answers like the first time.
        return revoked

    async def _commit(self, make: Callable[[State], Plan[ResultT]]) -> ResultT:
        # The write runs in its own task: a client that disconnects cancels
        # its request, never a half-applied write.
        task = asyncio.ensure_future(self._commit_serialised(make))
        self._writes.add(task)
        task.add_done_callback(_settle)
        task.add_done_callback(self._writes.discard)
        return await asyncio.shield(task)

    async def _commit_serialised(self, make: Callable[[State], Plan[ResultT]]) -> ResultT:
        async with self._write_lock:
            if self._closing:
                raise ServiceUnavailableError("the control plane is shutting down")
            for _ in range(_STALE_RETRIES):
                state = self.state
                # Compiling (CEL included) runs off the event loop, so long
                # polls and reads keep being answered meanwhile.
                plan = await asyncio.to_thread(make, state)
                if plan.state is None or plan.write is None:
                    return plan.result
                try:
                    async with self.store.transaction(state.revision) as tx:
                        await plan.write(tx)
                        for event_type, data in plan.events:
                            await self.events.emit(tx.side, event_type, data)
                except StaleRevisionError:
                    if not self.store.shared:
                        raise
                    # Another control plane wrote first: plan again on its state.
                    await self._follower.refresh()
                    continue
                self._current = (plan.state, plan.compiled)
                self._wake()
                return plan.result
            raise ServiceUnavailableError(
                "other control planes kept writing first; try again", code="write_contention"
            )

    # Lifecycle ---------------------------------------------------------------

    async def warn_of_refused_urls(self) -> None:
        """Logs one warning naming each stored URL that :attr:`outbound`
        refuses (stored under a broader ``--outbound-allow``): calls to it
        fail until it or the list changes. Starting does not depend on it."""
        try:
            await self.webhooks.refresh()  # on a shared database, not read yet
        except StoreError as exc:
            log.warning("cannot check the stored webhook URLs against --outbound-allow: %s", exc)
        refused = stored_url_refusals(
            self.outbound, self.webhooks.registered(), self.state.policies
        )
        if refused:
            log.warning(
                "--outbound-allow refuses %d stored URL(s); calls to them fail: %s",
                len(refused),
                "; ".join(refused),
            )

    def start_webhook_delivery(self, options: DeliveryOptions | None = None) -> None:
        """Starts delivering the webhook outbox in the background."""
        if self.webhook_sender is None:
            sender = WebhookSender(
                self.store,
                self.webhooks.target,
                options,
                refresh=self.webhooks.refresh,
                outbound=self.outbound,
            )
            self.webhooks.on_queued = sender.wake
            self.webhook_sender = sender
            sender.start()

    def begin_shutdown(self) -> None:
        """Ends every long poll now (they answer 304) and refuses new writes."""
        self._closing = True
        self._changed.set()
        self.approvals.begin_shutdown()

    async def close(self) -> None:
        """Waits for a running write, then closes the database. Idempotent."""
        self.begin_shutdown()
        await self.approvals.stop()
        sender, self.webhook_sender = self.webhook_sender, None
        if sender is not None:
            await sender.stop()
        await self.decisions.stop()
        await self._follower.stop()
        async with self._write_lock:
            if self._closed:
                return
            self._closed = True
            await self.store.close()
            fd, self._lock_fd = self._lock_fd, None
            if fd is not None:
                os.close(fd)


class _AlreadyRevoked(Exception):
    pass


def _revoke_or_raise(state: State, source: str, grant_id: str) -> Plan[Grant]:
    plan = plan_revoke_grant(state, source, grant_id)
    if plan is None:
        raise _AlreadyRevoked
    return plan


def _settle(task: asyncio.Future[ResultT]) -> None:
    # A write whose client went away still finishes; its outcome is read
    # here so that an error is not reported as never retrieved.
    if not task.cancelled():
        task.exception()
