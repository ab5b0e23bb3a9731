"""The candidate snapshot: a policy set published beside the snapshot, for
sidecars to shadow on live traffic before it is promoted. Pure: what a
candidate body makes, its document, and how it differs from the published
policies. The candidate holds policies only; agents and grants are always
the published ones, so a pause reaches the candidate too."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pdp.engine import CompiledSnapshot, SnapshotError, compile_snapshot, format_time, utc_now

from ._errors import FieldProblem, ValidationFailedError
from ._objects import Policy
from ._plans import policy_from_body
from ._schemas import CandidateDiff, CandidateIn, CandidateOut, PolicyCreate
from ._state import State

__all__ = ["Candidate", "build_candidate", "candidate_document", "candidate_out"]


@dataclass(frozen=True, slots=True)
class Candidate:
    policies: tuple[Policy, ...]
    created_at: str


def build_candidate(state: State, body: CandidateIn) -> Candidate:
    """The candidate a request body describes, compiled with the published
    agents and grants; ValidationFailedError names the body's field."""
    if (body.policies is None) == (body.changes is None):
        raise ValidationFailedError([FieldProblem(None, "give either policies or changes")])
    now = format_time(utc_now())
    # Each candidate policy with the body path it came from (None: published, untouched).
    built: list[tuple[Policy, str | None]] = []
    if body.policies is not None:
        built = [
            (policy_from_body(state, given, now), f"policies[{i}]")
            for i, given in enumerate(body.policies)
        ]
        _unique([p for p, _ in built], [path for _, path in built])
    else:
        built = [(p, None) for p in state.policies]
        for i, change in enumerate(body.changes or ()):
            built = _apply(state, built, change.op, change.policy, change.name, i, now)
    policies = tuple(p for p, _ in built)
    _compile(state, policies, [path for _, path in built])
    return Candidate(policies, now)


def _apply(
    state: State,
    built: list[tuple[Policy, str | None]],
    op: str,
    policy: PolicyCreate | None,
    name: str | None,
    index: int,
    now: str,
) -> list[tuple[Policy, str | None]]:
    where = f"changes[{index}]"
    if op == "put":
        if policy is None or name is not None:
            raise ValidationFailedError([FieldProblem(f"{where}.policy", "put takes a policy")])
        new = policy_from_body(state, policy, now)
        kept = [(p, path) for p, path in built if p.name != new.name]
        at = next((i for i, (p, _) in enumerate(built) if p.name == new.name), len(kept))
        return [*kept[:at], (new, f"{where}.policy"), *kept[at:]]
    if op == "delete":
        if name is None or policy is not None:
            raise ValidationFailedError([FieldProblem(f"{where}.name", "delete takes a name")])
        kept = [(p, path) for p, path in built if name not in (p.id, p.name)]
        if len(kept) == len(built):
            problem = FieldProblem(f"{where}.name", f"no policy with id or name {name!r}")
            raise ValidationFailedError([problem])
        return kept
    raise ValidationFailedError([FieldProblem(f"{where}.op", f"{op!r} is not put or delete")])


def _unique(policies: Sequence[Policy], paths: Sequence[str | None]) -> None:
    seen: dict[str, str | None] = {}
    problems = []
    for policy, path in zip(policies, paths, strict=True):
        if policy.name in seen:
            problems.append(FieldProblem(f"{path}.name", f"duplicate policy name {policy.name!r}"))
        seen[policy.name] = path
    if problems:
        raise ValidationFailedError(problems)


def _compile(
    state: State, policies: tuple[Policy, ...], paths: Sequence[str | None]
) -> CompiledSnapshot:
    try:
        return compile_snapshot(candidate_document(state, policies))
    except SnapshotError as exc:
        raise ValidationFailedError(
            [_problem(error.path, error.message, policies, paths) for error in exc.errors]
        ) from None


def _problem(
    path: str, message: str, policies: Sequence[Policy], paths: Sequence[str | None]
) -> FieldProblem:
    """The engine's ``policies[3].x`` as the body's field that wrote policy 3."""
    head, _, rest = path.partition("]")
    if head.startswith("policies[") and head[9:].isdigit() and int(head[9:]) < len(paths):
        index = int(head[9:])
        origin = paths[index]
        if origin is not None:
            return FieldProblem(origin + rest, message)
        return FieldProblem(None, f"published policy {policies[index].name!r}{rest}: {message}")
    return FieldProblem(path or None, message)


def candidate_document(state: State, policies: Sequence[Policy]) -> dict[str, Any]:
    """The candidate's snapshot document: the published agents and grants
    with the candidate's policies, at the revision promotion would give."""
    document = state.document(policies=policies)
    document["revision"] = state.revision + 1
    return document


def candidate_out(state: State, candidate: Candidate) -> CandidateOut:
    published = {p.name: p for p in state.policies}
    proposed = {p.name: p for p in candidate.policies}
    diff = CandidateDiff(
        added=[name for name in proposed if name not in published],
        removed=[name for name in published if name not in proposed],
        changed=[
            name
            for name, policy in proposed.items()
            if name in published and _content(policy) != _content(published[name])
        ],
    )
    return CandidateOut(
        basedOnRevision=state.revision,
        createdAt=candidate.created_at,
        policies=list(candidate.policies),
        diff=diff,
    )


def _content(policy: Policy) -> dict[str, Any]:
    return policy.model_dump(exclude={"id", "createdAt", "updatedAt"})
