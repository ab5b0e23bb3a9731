"""The control plane's state in memory and the snapshot document built from
it. Pure: no I/O. Every write builds a candidate state, and the engine
compiles the candidate's document before anything is stored, so what is
published always compiles; the engine's field paths are mapped back to the
request body's fields."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pdp.engine import CompiledSnapshot, FieldError, SnapshotError, compile_snapshot

from ._errors import ApiError, ConflictError, FieldProblem, ValidationFailedError

__all__ = ["AGENT_DOCUMENT_KEYS", "GRANT_DOCUMENT_KEYS", "Focus", "State", "compile_state"]

Obj = Mapping[str, Any]

# The keys of stored objects that the snapshot document carries; the engine
# rejects unknown keys, so nothing else is published.
AGENT_DOCUMENT_KEYS = ("id", "name", "paused", "pauseReason", "pausedAt")
GRANT_DOCUMENT_KEYS = (
    "id",
    "sourceAgentId",
    "targetAgentId",
    "allowedActions",
    "expiresAt",
    "createdAt",
)


class State:
    """One revision of everything the control plane publishes. Immutable by
    convention: a write builds a new State; objects are shared between states
    and never mutated."""

    def __init__(
        self,
        revision: int,
        agents: Iterable[Obj] = (),
        policies: Iterable[Obj] = (),
        grants: Iterable[Obj] = (),
    ) -> None:
        self.revision = revision
        self.agents: tuple[Obj, ...] = tuple(agents)
        self.policies: tuple[Obj, ...] = tuple(policies)
        self.grants: tuple[Obj, ...] = tuple(grants)  # revoked grants are not kept
        # Ids and names share one namespace (the engine requires it), so one
        # dict resolves either.
        self._agents = _index(self.agents)
        self._policies = _index(self.policies)

    def agent(self, ref: str) -> Obj | None:
        """The agent whose id or name is ``ref``."""
        return self._agents.get(ref)

    def policy(self, ref: str) -> Obj | None:
        """The policy whose id or name is ``ref``."""
        return self._policies.get(ref)

    def agent_index(self, agent_id: str) -> int:
        return next(i for i, a in enumerate(self.agents) if a["id"] == agent_id)

    def policy_index(self, policy_id: str) -> int:
        return next(i for i, p in enumerate(self.policies) if p["id"] == policy_id)

    def next(
        self,
        *,
        agents: Iterable[Obj] | None = None,
        policies: Iterable[Obj] | None = None,
        grants: Iterable[Obj] | None = None,
    ) -> State:
        """The state one revision later, with the given collections replaced."""
        return State(
            self.revision + 1,
            self.agents if agents is None else agents,
            self.policies if policies is None else policies,
            self.grants if grants is None else grants,
        )

    def document(self, policies: Sequence[Obj] | None = None) -> dict[str, Any]:
        """The snapshot document of this state, as ``pdp serve`` reads it."""
        return {
            "revision": self.revision,
            "agents": [{k: a[k] for k in AGENT_DOCUMENT_KEYS} for a in self.agents],
            "policies": [dict(p) for p in (self.policies if policies is None else policies)],
            "grants": [{k: g[k] for k in GRANT_DOCUMENT_KEYS} for g in self.grants],
        }


def _index(objects: Iterable[Obj]) -> dict[str, Obj]:
    out: dict[str, Obj] = {}
    for obj in objects:
        out.setdefault(obj["id"], obj)
        out.setdefault(obj["name"], obj)
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
    """Compiles ``state``'s document; raises ValidationFailedError (problems
    in the focused object, plus ``extra``) or ConflictError (problems in
    others)."""
    try:
        compiled = compile_snapshot(state.document())
    except SnapshotError as exc:
        raise _api_error(state, focus, exc.errors, extra) from None
    if extra:
        raise ValidationFailedError(extra)
    return compiled


def _api_error(
    state: State, focus: Focus | None, errors: Sequence[FieldError], extra: Sequence[FieldProblem]
) -> ApiError:
    policies: Sequence[Obj] = state.policies
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


def _describe_elsewhere(error: FieldError, state: State, policies: Sequence[Obj]) -> str:
    """``policy 'Name': prerequisites[0].policy: unknown policy 'X'``."""
    section, _, rest = error.path.partition("[")
    number, _, tail = rest.partition("]")
    objects: Mapping[str, Sequence[Obj]] = {
        "agents": state.agents,
        "policies": policies,
        "grants": state.grants,
    }
    listed = objects.get(section)
    if listed is None or not number.isdigit() or int(number) >= len(listed):
        return str(error)
    obj = listed[int(number)]
    what = {"agents": "agent", "policies": "policy", "grants": "grant"}[section]
    label = obj.get("name", obj["id"])
    where = tail.removeprefix(".")
    return f"{what} {label!r}: {where + ': ' if where else ''}{error.message}"
