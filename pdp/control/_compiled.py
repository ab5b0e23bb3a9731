"""The compiled snapshot of a state read from the database: at start, and
when another control plane on the same database wrote it."""

from __future__ import annotations

import logging

from pdp.engine import (
    CompiledSnapshot,
    SnapshotError,
    compile_snapshot,
    read_pause_state,
    with_pause_state,
)

from ._state import State

__all__ = ["compile_loaded", "compile_read"]

log = logging.getLogger("pdp.control")

# What a pause or resume changes in an agent.
_PAUSE_FIELDS = {"paused", "pauseReason", "pausedAt", "updatedAt", "revision"}


def compile_read(
    state: State, current: tuple[State, CompiledSnapshot | None]
) -> CompiledSnapshot | None:
    """The compiled snapshot of ``state``, read after another control plane
    wrote it. When only agents' pause state changed (a pause on another
    replica), it is laid over the current compiled snapshot: nothing is
    compiled again, so a pause reaches this replica's sidecars as fast as the
    writer's."""
    before, compiled = current
    if (
        compiled is not None
        and state.policies == before.policies
        and state.grants == before.grants
        and len(state.agents) == len(before.agents)
        and all(
            a.model_dump(exclude=_PAUSE_FIELDS) == b.model_dump(exclude=_PAUSE_FIELDS)
            for a, b in zip(state.agents, before.agents, strict=True)
        )
    ):
        try:
            pause = read_pause_state(
                {"revision": state.revision, "agents": state.agents_document()}
            )
        except SnapshotError:
            return compile_loaded(state)
        return with_pause_state(compiled, pause, revision=state.revision)
    return compile_loaded(state)


def compile_loaded(state: State) -> CompiledSnapshot | None:
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
