"""The control plane: the current state in memory, its compiled snapshot,
serialised writes that bump the revision in the same transaction as the
change, and the change feed that long-polling sidecars wait on."""

from __future__ import annotations

import asyncio
import fcntl
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from pdp.engine import (
    ACTIONS,
    CompiledSnapshot,
    SnapshotError,
    compile_snapshot,
    format_time,
    utc_now,
)

from ._approvals import Approvals
from ._auth import authenticate
from ._candidate import Candidate, build_candidate, candidate_document, candidate_out
from ._decisions import Decisions
from ._errors import (
    FieldProblem,
    NotFoundError,
    ServiceUnavailableError,
    StoreError,
    ValidationFailedError,
)
from ._event_types import define_uplink_types
from ._events import EventRegistry
from ._objects import Agent, Grant, Policy
from ._plans import (
    Plan,
    plan_create_agent,
    plan_create_grant,
    plan_create_policy,
    plan_delete_policy,
    plan_pause,
    plan_promote,
    plan_resume,
    plan_revoke_grant,
    plan_update_policy,
    require_agent,
    require_policy,
)
from ._plans_agents import plan_delete_agent, plan_update_agent
from ._roles import Caller
from ._schemas import (
    AgentCreate,
    AgentDetail,
    AgentPatch,
    AgentSidecar,
    AuthorizeOut,
    CandidateIn,
    CandidateOut,
    GrantCreate,
    PolicyCreate,
    PolicyList,
    PolicyPatch,
)
from ._sidecars import SidecarRegistry
from ._state import State
from ._store import Store

__all__ = ["ControlPlane"]

log = logging.getLogger("pdp.control")

ResultT = TypeVar("ResultT", Agent, Policy, Grant, PolicyList)


class ControlPlane:
    """Open with :meth:`open`; one per database file (a lock on the file
    refuses a second one, whose writes and change feed would diverge)."""

    def __init__(
        self, store: Store, lock_fd: int, state: State, candidate: Candidate | None = None
    ) -> None:
        self.store = store
        self._lock_fd: int | None = lock_fd
        # The state and its compiled snapshot change together, in one assignment.
        self._current: tuple[State, CompiledSnapshot | None] = (state, _compile_loaded(state))
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
        self.decisions = Decisions(store, self.events)

    @classmethod
    async def open(cls, path: str | os.PathLike[str]) -> ControlPlane:
        """Opens the database at ``path``, creating and migrating it if needed."""
        file_path = Path(path)
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
        return cls(store, fd, state, candidate)

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
            if not compiled.resolve_agent(ref).known:
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
        return await authenticate(self.store, presented)

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
            candidate = await asyncio.to_thread(build_candidate, state, body)
            async with self.store.side_transaction() as tx:
                await tx.put_candidate(list(candidate.policies), candidate.created_at)
            self._set_candidate(candidate)
            return candidate_out(state, candidate)

    async def drop_candidate(self) -> CandidateOut:
        async with self._write_lock:
            candidate = self._require_candidate()
            async with self.store.side_transaction() as tx:
                await tx.drop_candidate()
            self._set_candidate(None)
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
            self._set_candidate(None)
        return result

    def _set_candidate(self, candidate: Candidate | None) -> None:
        self.candidate = candidate
        self._candidate_generation += 1
        self._wake()

    def _wake(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    # Writes ----------------------------------------------------------------

    async def create_policy(self, body: PolicyCreate) -> Policy:
        return await self._commit(lambda s: plan_create_policy(s, body))

    async def update_policy(self, ref: str, body: PolicyPatch) -> Policy:
        return await self._commit(lambda s: plan_update_policy(s, ref, body))

    async def delete_policy(self, ref: str) -> Policy:
        return await self._commit(lambda s: plan_delete_policy(s, ref))

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
            state = self.state
            # Compiling (CEL included) runs off the event loop, so long polls
            # and reads keep being answered meanwhile.
            plan = await asyncio.to_thread(make, state)
            if plan.state is None or plan.write is None:
                return plan.result
            async with self.store.transaction(state.revision) as tx:
                await plan.write(tx)
            self._current = (plan.state, plan.compiled)
            self._wake()
            return plan.result

    # Lifecycle ---------------------------------------------------------------

    def begin_shutdown(self) -> None:
        """Ends every long poll now (they answer 304) and refuses new writes."""
        self._closing = True
        self._changed.set()
        self.approvals.begin_shutdown()

    async def close(self) -> None:
        """Waits for a running write, then closes the database. Idempotent."""
        self.begin_shutdown()
        await self.approvals.stop()
        await self.decisions.stop()
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


def _compile_loaded(state: State) -> CompiledSnapshot | None:
    try:
        return compile_snapshot(state.document())
    except SnapshotError as exc:
        # Only a database edited by hand (or written by another engine
        # version) gets here: every write was compiled before it was stored.
        log.error(
            "the stored snapshot (revision %d) does not compile: %s",
            state.revision,
            "; ".join(str(e) for e in exc.errors),
        )
        return None
