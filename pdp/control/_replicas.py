"""Following the other control planes on one PostgreSQL database. Each
write sends a notice in its transaction (``NOTIFY pdp_control``); a notice
of a revision this control plane has not read, or of a changed candidate,
makes it read the stored state again, one read at a time (a notice during a
read asks for one more after it). After a reconnect, notices may have been
missed: everything is read again and every approval waiter woken."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Protocol

from pdp.engine import CompiledSnapshot

from ._approvals import APPROVAL_NOTICE, Approvals
from ._candidate import Candidate
from ._compiled import compile_read
from ._errors import StoreError
from ._state import State
from ._store import CANDIDATE_NOTICE, REVISION_NOTICE, Store

__all__ = ["Followed", "ReplicaFollower"]

log = logging.getLogger("pdp.control")


class Followed(Protocol):
    """The control plane as its follower sees it."""

    candidate: Candidate | None

    @property
    def revision(self) -> int: ...

    @property
    def current(self) -> tuple[State, CompiledSnapshot | None]: ...

    @property
    def closing(self) -> bool: ...

    @property
    def closed(self) -> bool: ...

    def adopt(self, state: State, compiled: CompiledSnapshot | None) -> None:
        """Serves ``state`` (read from the database) from now on."""

    def set_candidate(self, candidate: Candidate | None) -> None: ...


class ReplicaFollower:
    """Reads what other control planes wrote, when their notices say so.
    ``write_lock`` is the control plane's: a read never runs alongside one
    of its writes."""

    def __init__(
        self, control: Followed, store: Store, approvals: Approvals, write_lock: asyncio.Lock
    ) -> None:
        self._control = control
        self._store = store
        self._approvals = approvals
        self._write_lock = write_lock
        self._refreshing: asyncio.Task[None] | None = None
        self._refresh_again = False
        self._candidate_stale = False  # another control plane changed the candidate

    def on_notice(self, payload: str) -> None:
        kind, _, value = payload.partition(" ")
        if kind == REVISION_NOTICE:
            if value.isdigit() and int(value) <= self._control.revision:
                return  # this control plane's own write, or one it has read
            self._schedule_refresh()
        elif kind == CANDIDATE_NOTICE:
            self._candidate_stale = True
            self._schedule_refresh()
        elif kind == APPROVAL_NOTICE:
            self._approvals.wake(value)

    def on_reconnect(self) -> None:
        self._candidate_stale = True
        self._approvals.wake_all()
        self._schedule_refresh()

    def _schedule_refresh(self) -> None:
        if self._control.closing:
            return
        if self._refreshing is not None and not self._refreshing.done():
            self._refresh_again = True  # read once more after the running read
            return
        self._refreshing = asyncio.create_task(self._refresh_loop(), name="control-refresh")

    async def _refresh_loop(self) -> None:
        while True:
            self._refresh_again = False
            try:
                async with self._write_lock:
                    await self.refresh()
            except StoreError as exc:
                log.warning("cannot read what another control plane wrote: %s", exc)
            if not self._refresh_again or self._control.closing:
                return

    async def refresh(self) -> None:
        """Reads the stored state when another control plane changed it
        (called under the write lock)."""
        control = self._control
        if control.closed:
            return
        state = await self._store.load_state()
        if state.revision > control.revision:
            # One hop off the event loop: compiled, and rendered for the feed.
            compiled = await asyncio.to_thread(_compile_and_render, state, control.current)
            control.adopt(state, compiled)
        if not self._candidate_stale:
            return
        self._candidate_stale = False
        stored = await self._store.load_candidate()
        candidate = None if stored is None else Candidate(tuple(stored[0]), stored[1])
        current = control.candidate
        if (candidate is None) != (current is None) or (
            candidate is not None
            and current is not None
            and (candidate.created_at, candidate.policies) != (current.created_at, current.policies)
        ):
            control.set_candidate(candidate)

    async def stop(self) -> None:
        """Cancels a running read. Idempotent."""
        refreshing, self._refreshing = self._refreshing, None
        if refreshing is not None:
            refreshing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await refreshing


def _compile_and_render(
    state: State, current: tuple[State, CompiledSnapshot | None]
) -> CompiledSnapshot | None:
    state.document_bytes()
    return compile_read(state, current)
