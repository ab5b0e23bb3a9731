"""Errors raised by the engine.

Exception tree::

    EngineError
    ├── AgentIdError           an agent id is not acceptable (white space at an end,
    │                          a control or format character, ...); ``.reason`` says why
    ├── SnapshotError          a snapshot document failed validation or compilation;
    │                          ``.errors`` lists every FieldError found
    └── StateUnavailableError  usage (spend, call counts) cannot be read or
                               written: the state backend is unreachable
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["AgentIdError", "EngineError", "FieldError", "SnapshotError", "StateUnavailableError"]


@dataclass(frozen=True, slots=True)
class FieldError:
    """One problem in a snapshot document, at a field path such as
    ``policies[2].ruleDefinition.expression``."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class EngineError(Exception):
    """Base of every error the engine raises."""


class AgentIdError(EngineError, ValueError):
    """An agent id was refused; ``reason`` says why, without the field name
    (each caller names its own field: ``agent_id``, ``name``, ...)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class SnapshotError(EngineError):
    """A snapshot was rejected. ``errors`` has one entry per problem."""

    def __init__(self, errors: list[FieldError]) -> None:
        self.errors: tuple[FieldError, ...] = tuple(errors)
        first = str(errors[0]) if errors else "invalid snapshot"
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        super().__init__(first + more)


class StateUnavailableError(EngineError):
    """The usage port cannot answer: its backend is unreachable or failing.
    Raised by a backend's reads and writes; a policy that reads usage then
    fails closed or open, per its ``on_state_error``."""
