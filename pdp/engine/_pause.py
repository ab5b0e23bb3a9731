"""The agents' pause state of a snapshot document, read on its own and laid
over a compiled snapshot.

The kill switch must not wait for, nor depend on, the rest of a document:

- a document whose policies do not compile still carries pauses (and
  resumes), and a sidecar applies them to the snapshot it keeps serving;
- a document that differs from the compiled one only in pause state (what
  a pause or a resume publishes) needs no compile at all: laying its pause
  state over the compiled snapshot gives what compiling it would.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

from ._agent_id import agent_keys_of
from ._errors import SnapshotError
from ._fields import Problems, Reader
from ._model import AgentSpec, _read_agent
from ._snapshot import CompiledSnapshot
from ._types import AgentInfo

__all__ = ["PauseState", "differs_only_in_pause_state", "read_pause_state", "with_pause_state"]

_PAUSE_FIELDS = frozenset({"paused", "pauseReason", "pausedAt"})
# Top-level keys that say which document this is, not what it decides.
_LABELS = frozenset({"revision", "generatedAt"})


@dataclass(frozen=True, slots=True)
class PauseState:
    """The revision of a document and its agents (pause state included)."""

    revision: int
    agents: tuple[AgentSpec, ...]


def read_pause_state(document: object) -> PauseState:
    """Reads the revision and the agents of a document, nothing else; raises
    SnapshotError naming the fields at fault there."""
    problems = Problems()
    keys = document.keys() if isinstance(document, Mapping) else ()
    top = Reader(document, "", problems, [str(k) for k in keys])
    revision = top.integer("revision", default=0, minimum=0, maximum=2**63 - 1)
    agents = [
        agent
        for path, item in top.items("agents")
        if (agent := _read_agent(path, item, problems)) is not None
    ]
    if problems.errors:
        raise SnapshotError(problems.errors)
    return PauseState(revision, tuple(agents))


def with_pause_state(
    snapshot: CompiledSnapshot,
    pause: PauseState,
    *,
    revision: int | None = None,
    document: Mapping[str, object] | None = None,
) -> CompiledSnapshot:
    """``snapshot`` with the pause state of ``pause``: each agent both know
    is paused or resumed as ``pause`` says, and an agent only ``pause``
    lists is added when it is paused (so that the pause holds). Agents only
    ``snapshot`` lists keep their state. ``revision`` and ``document``
    replace the snapshot's when given (a document that differed only in
    pause state); otherwise the result keeps them: its policies are still
    those of ``snapshot``'s document."""
    specs: dict[str, AgentSpec] = {}
    for spec in pause.agents:
        specs.setdefault(spec.id, spec)
    agents: dict[str, AgentInfo] = {}
    updated: dict[str, AgentInfo] = {}
    for key, info in snapshot.agents.items():
        given = specs.get(info.id)
        if given is not None and _state(info) != (
            given.paused,
            given.pause_reason,
            given.paused_at,
        ):
            info = updated.setdefault(
                info.id,
                dataclasses.replace(
                    info,
                    paused=given.paused,
                    pause_reason=given.pause_reason,
                    paused_since=given.paused_at,
                ),
            )
        agents[key] = info
    known = {info.id for info in snapshot.agents.values()}
    keys = snapshot.agent_keys
    for spec in specs.values():
        if spec.id not in known and spec.paused:
            info = AgentInfo(spec.id, spec.name, True, True, spec.pause_reason, spec.paused_at)
            agents.setdefault(spec.id, info)
            agents.setdefault(spec.name, info)
            # Its variants reach it too, before any agent they also resemble (a
            # paused agent wins: a variant never slips past its pause).
            keys = {**keys, **agent_keys_of([(spec.id, spec.id), (spec.name, spec.id)])}
    # Plans hold the agent they were made for: start them afresh.
    return dataclasses.replace(
        snapshot,
        agents=agents,
        agent_keys=keys,
        revision=snapshot.revision if revision is None else revision,
        document=snapshot.document if document is None else document,
        _plans={},
    )


def _state(info: AgentInfo) -> tuple[bool, str, object]:
    return (info.paused, info.pause_reason, info.paused_since)


def differs_only_in_pause_state(old: object, new: object) -> bool:
    """Whether two documents are the same but for their revision and their
    agents' pause state: compiling ``new`` then gives the snapshot of
    ``old`` with ``new``'s pause state (:func:`with_pause_state`)."""
    if not isinstance(old, Mapping) or not isinstance(new, Mapping):
        return False
    for key in (old.keys() | new.keys()) - _LABELS - {"agents"}:
        if old.get(key) != new.get(key):
            return False
    old_agents, new_agents = old.get("agents"), new.get("agents")
    if not isinstance(old_agents, list) or not isinstance(new_agents, list):
        return old_agents == new_agents
    if len(old_agents) != len(new_agents):
        return False
    return all(
        _without_pause(a) == _without_pause(b) for a, b in zip(old_agents, new_agents, strict=True)
    )


def _without_pause(agent: object) -> object:
    if not isinstance(agent, Mapping):
        return agent
    return {k: v for k, v in agent.items() if k not in _PAUSE_FIELDS}
