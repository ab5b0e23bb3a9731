"""The control plane's state in memory and the snapshot document built from
it. Pure: no I/O. Every write builds a candidate state, and the engine
compiles the candidate's document before anything is stored, so what is
published always compiles; the engine's field paths are mapped back to the
request body's fields."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel

from pdp.engine import (
    MAX_DOCUMENT_BYTES,
    CompiledSnapshot,
    FieldError,
    SnapshotError,
    compile_snapshot,
    read_pause_state,
    with_pause_state,
)

from ._errors import (
    ApiError,
    ConflictError,
    FieldProblem,
    PayloadTooLargeError,
    ValidationFailedError,
)
from ._objects import AGENT_DOCUMENT_FIELDS, GRANT_DOCUMENT_FIELDS, Agent, Grant, Policy

__all__ = [
    "PAUSE_ROOM_BYTES",
    "PUBLISH_LIMIT_BYTES",
    "Focus",
    "State",
    "compile_pause",
    "compile_state",
]

_AGENT_FIELDS = set(AGENT_DOCUMENT_FIELDS)
_GRANT_FIELDS = set(GRANT_DOCUMENT_FIELDS)
Named = TypeVar("Named", Agent, Policy)
# Sidecars read documents of at most MAX_DOCUMENT_BYTES. Writes other than
# pause and resume leave this much of it free, so that the kill switch
# always fits.
PAUSE_ROOM_BYTES = 1024 * 1024
PUBLISH_LIMIT_BYTES = MAX_DOCUMENT_BYTES - PAUSE_ROOM_BYTES
# The JSON of each published object, kept by the object's identity (objects
# are frozen and shared between states): a write renders what it changed
# and joins the rest, so a pause costs the same in a large document.
_Fragments = dict[int, tuple[BaseModel, bytes]]


class State:
    """One revision of everything the control plane publishes. A write builds
    a new State; the (frozen) objects are shared between states."""

    def __init__(
        self,
        revision: int,
        agents: Iterable[Agent] = (),
        policies: Iterable[Policy] = (),
        grants: Iterable[Grant] = (),
        *,
        fragments: _Fragments | None = None,
    ) -> None:
        self.revision = revision
        self.agents: tuple[Agent, ...] = tuple(agents)
        self.policies: tuple[Policy, ...] = tuple(policies)
        self.grants: tuple[Grant, ...] = tuple(grants)  # revoked grants are not kept
        # Ids and names share one namespace (the engine requires it), so one
        # dict resolves either.
        self._agents = _index(self.agents)
        self._policies = _index(self.policies)
        self._fragments: _Fragments = {} if fragments is None else fragments
        self._document_bytes: bytes | None = None

    def agent(self, ref: str) -> Agent | None:
        """The agent whose id or name is ``ref``."""
        return self._agents.get(ref)

    def policy(self, ref: str) -> Policy | None:
        """The policy whose id or name is ``ref``."""
        return self._policies.get(ref)

    def agent_index(self, agent_id: str) -> int:
        return next(i for i, a in enumerate(self.agents) if a.id == agent_id)

    def policy_index(self, policy_id: str) -> int:
        return next(i for i, p in enumerate(self.policies) if p.id == policy_id)

    def next(
        self,
        *,
        agents: Iterable[Agent] | None = None,
        policies: Iterable[Policy] | None = None,
        grants: Iterable[Grant] | None = None,
    ) -> State:
        """The state one revision later, with the given collections replaced."""
        return State(
            self.revision + 1,
            self.agents if agents is None else agents,
            self.policies if policies is None else policies,
            self.grants if grants is None else grants,
            fragments=self._fragments,
        )

    def document(self, policies: Sequence[Policy] | None = None) -> dict[str, Any]:
        """The snapshot document of this state, as ``pdp serve`` reads it."""
        return {
            "revision": self.revision,
            "agents": self.agents_document(),
            "policies": [p.model_dump() for p in (self.policies if policies is None else policies)],
            "grants": [g.model_dump(include=_GRANT_FIELDS) for g in self.grants],
        }

    def agents_document(self) -> list[dict[str, Any]]:
        """The ``agents`` of :meth:`document`."""
        return [a.model_dump(include=_AGENT_FIELDS) for a in self.agents]

    def document_bytes(self) -> bytes:
        """:meth:`document` as the compact UTF-8 JSON the snapshot feed
        serves; rendered once per state, from the JSON of each object."""
        if self._document_bytes is None:
            cache = self._fragments
            agents = b",".join(_fragment(cache, a, _AGENT_FIELDS) for a in self.agents)
            policies = b",".join(_fragment(cache, p, None) for p in self.policies)
            grants = b",".join(_fragment(cache, g, _GRANT_FIELDS) for g in self.grants)
            self._document_bytes = b"".join(
                (
                    b'{"revision":%d,"agents":[' % self.revision,
                    agents,
                    b'],"policies":[',
                    policies,
                    b'],"grants":[',
                    grants,
                    b"]}",
                )
            )
            live = len(self.agents) + len(self.policies) + len(self.grants)
            if len(cache) > 2 * live + 64:
                keep = {id(o) for o in (*self.agents, *self.policies, *self.grants)}
                for key in [k for k in cache if k not in keep]:
                    del cache[key]
        return self._document_bytes


def _fragment(cache: _Fragments, obj: BaseModel, fields: set[str] | None) -> bytes:
    entry = cache.get(id(obj))
    if entry is None or entry[0] is not obj:
        text = json.dumps(obj.model_dump(include=fields), ensure_ascii=False, separators=(",", ":"))
        entry = (obj, text.encode("utf-8"))
        cache[id(obj)] = entry
    return entry[1]


def check_document_size(state: State, limit: int = PUBLISH_LIMIT_BYTES) -> None:
    """Raises PayloadTooLargeError (413) when ``state``'s document would be
    larger than ``limit``, naming the sidecars' limit."""
    size = len(state.document_bytes())
    if size <= limit:
        return
    message = (
        f"the published snapshot document would be {size} bytes; sidecars read at most "
        f"MAX_DOCUMENT_BYTES = {MAX_DOCUMENT_BYTES} bytes (64 MiB)"
    )
    if limit < MAX_DOCUMENT_BYTES:
        message += (
            f", and writes other than pause and resume keep {MAX_DOCUMENT_BYTES - limit} bytes "
            "of it free for the kill switch"
        )
    raise PayloadTooLargeError(message + "; nothing was stored", code="document_too_large")


def _index(objects: Iterable[Named]) -> dict[str, Named]:
    out: dict[str, Named] = {}
    for obj in objects:
        out.setdefault(obj.id, obj)
        out.setdefault(obj.name, obj)
    return out


@dataclass(frozen=True, slots=True)
class Focus:
    """The object a write is about: ``section[index]`` of the candidate
    document. Engine errors there are the request's (422); errors elsewhere
    mean the change would break another stored object (409)."""

    section: str  # "agents", "policies" or "grants"
    index: int
    renames: Mapping[str, str] = field(default_factory=dict)  # document key -> body field


def compile_state(
    state: State, focus: Focus | None, extra: Sequence[FieldProblem] = ()
) -> CompiledSnapshot:
    """Compiles ``state``'s document; raises PayloadTooLargeError (a
    document sidecars would refuse), ValidationFailedError (problems in the
    focused object, plus ``extra``) or ConflictError (problems in others)."""
    check_document_size(state)
    try:
        compiled = compile_snapshot(state.document())
    except SnapshotError as exc:
        raise _api_error(state, focus, exc.errors, extra) from None
    if extra:
        raise ValidationFailedError(extra)
    return compiled


def compile_pause(state: State, previous: CompiledSnapshot, focus: Focus) -> CompiledSnapshot:
    """For a write that changes only the pause state of the focused agent
    (pause, resume): checks that agent and lays its pause state over
    ``previous``, the compiled snapshot of the state before, without
    compiling anything else again. Such a write may use the whole of the
    sidecars' size limit."""
    check_document_size(state, MAX_DOCUMENT_BYTES)
    agent = state.agents[focus.index].model_dump(include=_AGENT_FIELDS)
    try:
        pause = read_pause_state({"revision": state.revision, "agents": [agent]})
    except SnapshotError as exc:
        errors = [
            FieldError(f"agents[{focus.index}]" + e.path.removeprefix("agents[0]"), e.message)
            for e in exc.errors
        ]
        raise _api_error(state, focus, errors, ()) from None
    return with_pause_state(previous, pause, revision=state.revision)


def _api_error(
    state: State, focus: Focus | None, errors: Sequence[FieldError], extra: Sequence[FieldProblem]
) -> ApiError:
    policies: Sequence[Policy] = state.policies
    if focus is not None and focus.section == "policies" and focus.index != 0:
        # The engine reports a prerequisite cycle at the first policy of the
        # cycle in document order; with the written policy first, the cycle is
        # reported at the prerequisite that was just written.
        first = state.policies[focus.index]
        policies = [first, *(p for i, p in enumerate(state.policies) if i != focus.index)]
        focus = Focus("policies", 0, focus.renames)
        try:
            compile_snapshot(state.document(policies))
        except SnapshotError as exc:
            errors = exc.errors
    mine: list[FieldProblem] = list(extra)
    others: list[str] = []
    for error in errors:
        problem = _in_focus(error, focus)
        if problem is None:
            others.append(_describe_elsewhere(error, state, policies))
        elif problem not in mine:
            mine.append(problem)
    if mine:
        return ValidationFailedError(mine)
    more = f" (and {len(others) - 1} more)" if len(others) > 1 else ""
    return ConflictError(f"the change would break a stored object: {others[0]}{more}")


def _in_focus(error: FieldError, focus: Focus | None) -> FieldProblem | None:
    if focus is None:
        return None
    prefix = f"{focus.section}[{focus.index}]"
    if error.path == prefix:
        return FieldProblem(None, error.message)
    if not error.path.startswith(prefix + "."):
        return None
    path = error.path[len(prefix) + 1 :]
    head, sep, rest = path.partition(".")
    key, bracket, index = head.partition("[")
    key = focus.renames.get(key, key)
    return FieldProblem(f"{key}{bracket}{index}{sep}{rest}", error.message)


def _describe_elsewhere(error: FieldError, state: State, policies: Sequence[Policy]) -> str:
    """``policy 'Name': prerequisites[0].policy: unknown policy 'X'``."""
    section, _, rest = error.path.partition("[")
    number, _, tail = rest.partition("]")
    objects: Mapping[str, Sequence[Agent | Policy | Grant]] = {
        "agents": state.agents,
        "policies": policies,
        "grants": state.grants,
    }
    listed = objects.get(section)
    if listed is None or not number.isdigit() or int(number) >= len(listed):
        return str(error)
    obj = listed[int(number)]
    what = {"agents": "agent", "policies": "policy", "grants": "grant"}[section]
    label = obj.id if isinstance(obj, Grant) else obj.name
    where = tail.removeprefix(".")
    return f"{what} {label!r}: {where + ': ' if where else ''}{error.message}"
