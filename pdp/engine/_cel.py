"""The one adapter to the CEL runtime (cel-expr-python, Google's C++ CEL).

Variables (declared once, in ``_variables``) have qualified names
(``request.tool``) so that a misspelt field is a compile error, not a runtime
surprise."""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any

from cel_expr_python import cel

from ._variables import VARIABLES, CelType

__all__ = [
    "MAX_EXPRESSION_LENGTH",
    "CelCompileError",
    "CelProgram",
    "CelVariables",
    "make_activation",
]

MAX_EXPRESSION_LENGTH = 4096

_T = cel.Type
_RUNTIME_TYPES: dict[CelType, Any] = {
    CelType.STRING: _T.STRING,
    CelType.BOOL: _T.BOOL,
    CelType.DYN: _T.DYN,
    CelType.TIMESTAMP: _T.TIMESTAMP,
    CelType.STRING_MAP: _T.Map(_T.STRING, _T.STRING),
}
_VARIABLES: dict[str, Any] = {v.name: _RUNTIME_TYPES[v.type] for v in VARIABLES}

# The values an expression sees, by variable name.
CelVariables = Mapping[str, object]


class CelCompileError(ValueError):
    """The expression does not parse, does not type-check or is not boolean."""


@cache
def _env() -> Any:
    return cel.NewEnv(variables=_VARIABLES)


def _first_line(message: str) -> str:
    # The runtime's messages start with a status prefix and end with a caret
    # diagram; the useful part is the first "ERROR: ..." line.
    for line in message.splitlines():
        line = line.strip()
        if line.startswith(("INVALID_ARGUMENT: ERROR:", "ERROR:")):
            return line.split("ERROR:", 1)[1].strip().removeprefix("<input>:")
    return message.strip().splitlines()[0] if message.strip() else "invalid expression"


def _referenced(source: str) -> frozenset[str]:
    # A declared name can only be used by writing it out (CEL allows spaces
    # around the dot, hence the squeeze). Naming one more than needed is
    # harmless; the activation then carries only these.
    squeezed = "".join(source.split())
    return frozenset(name for name in _VARIABLES if name in squeezed)


class CelProgram:
    """A compiled, type-checked boolean expression, with the variables it
    references."""

    __slots__ = ("_program", "source", "variables")

    def __init__(self, source: str) -> None:
        if len(source) > MAX_EXPRESSION_LENGTH:
            raise CelCompileError(f"longer than {MAX_EXPRESSION_LENGTH} characters")
        try:
            program = _env().compile(source)
        except RuntimeError as exc:
            raise CelCompileError(_first_line(str(exc))) from None
        result_type = program.return_type()
        if result_type not in (_T.BOOL, _T.DYN):
            raise CelCompileError(f"must evaluate to a bool, not {result_type.name().lower()}")
        self.source = source
        self.variables = _referenced(source)
        self._program = program

    def evaluate(self, activation: Any) -> bool | str:
        """True or False, or the error message when evaluation fails (a missing
        key, a non-boolean dyn result...)."""
        value = self._program.eval(activation)
        kind = value.type()
        if kind == _T.BOOL:
            return bool(value.value())
        if kind == _T.ERROR:
            return str(value.value())
        return f"evaluated to {kind.name().lower()}, not bool"


def make_activation(variables: CelVariables) -> Any:
    """One activation per request, shared by all its expression policies."""
    return _env().Activation(dict(variables))
