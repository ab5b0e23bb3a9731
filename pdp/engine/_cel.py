"""The one adapter to the CEL runtime (cel-expr-python, Google's C++ CEL).

Variables (declared once, in ``_variables``) have qualified names
(``request.tool``) so that a misspelt field is a compile error, not a runtime
surprise.

The runtime cannot be interrupted and keeps the GIL while it evaluates, so
every expression's cost is bounded when it compiles (``_cel_cost``):

- refused outright when it may run more comprehension iterations than the
  runtime allows (:data:`MAX_ITERATIONS`, with the largest lists a request
  can bind), or when it costs more than :data:`COST_BUDGET` whatever the
  request (its static part);
- otherwise its cost for one request is known from the sizes of the values
  it binds, before it runs: over the budget, the evaluation is an error (the
  policy's ``on_error`` decides); over :data:`INLINE_COST`, the server
  evaluates it off the event loop (a :class:`CelJob`) under a wall-clock
  limit; at most that, it runs in place."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from cel_expr_python import cel

from ._cel_cost import CostModel, Poly, Shape, estimate
from ._variables import VARIABLES, CelType

__all__ = [
    "COST_BUDGET",
    "INLINE_COST",
    "MAX_EXPRESSION_LENGTH",
    "MAX_ITERATIONS",
    "CelCompileError",
    "CelCostError",
    "CelJob",
    "CelProgram",
    "CelResult",
    "CelVariables",
    "make_activation",
    "measure",
]

MAX_EXPRESSION_LENGTH = 4096
# The runtime's own limit on comprehension iterations in one evaluation
# (fixed in cel-expr-python): more is an evaluation error.
MAX_ITERATIONS = 9999
# The most estimated work (nanoseconds, see ``_cel_cost``) one evaluation
# may cost; fixed, so that every sidecar and the control plane agree.
COST_BUDGET = 250_000_000.0
# Evaluations estimated at most this run in place, on the caller's thread.
INLINE_COST = 1_000_000.0

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
# True or False, or why the evaluation failed.
CelResult = bool | str

# Size symbols: a string variable's length, a map's entries and ("name[]")
# its longest key or value; with the largest sizes a request can bind.
_SHAPES: dict[str, Shape] = {}
_MAX_SIZES: dict[str, float] = {}
for _v in VARIABLES:
    if _v.type is CelType.STRING:
        _SHAPES[_v.name] = Shape(Poly.symbol(_v.name))
        _MAX_SIZES[_v.name] = float(_v.max_size)
    elif _v.type is CelType.STRING_MAP:
        _SHAPES[_v.name] = Shape(Poly.symbol(_v.name), Shape(Poly.symbol(_v.name + "[]")))
        _MAX_SIZES[_v.name] = float(_v.max_size)
        _MAX_SIZES[_v.name + "[]"] = float(_v.max_item)


class CelCompileError(ValueError):
    """The expression does not parse, does not type-check or is not boolean."""


class CelCostError(CelCompileError):
    """The expression may cost more than any evaluation is allowed."""


@dataclass(frozen=True, slots=True)
class CelJob:
    """An evaluation too costly to run in place: the expression, the values
    it binds (plain Python values) and its estimated cost."""

    source: str
    variables: CelVariables
    cost: float


def measure(values: CelVariables) -> dict[str, float]:
    """The size symbols of bound values (see ``_SHAPES``)."""
    sizes: dict[str, float] = {}
    for name, value in values.items():
        if isinstance(value, str):
            sizes[name] = float(len(value))
        elif isinstance(value, Mapping):
            sizes[name] = float(len(value))
            sizes[name + "[]"] = float(
                max((max(len(str(k)), len(str(v))) for k, v in value.items()), default=0)
            )
    return sizes


def _milliseconds(cost: float) -> str:
    return f"{cost / 1e6:,.1f} ms" if cost >= 1e5 else f"{cost / 1e6:.3f} ms"


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
    references and what it can cost.

    ``inline`` is true when even the largest request keeps it under
    :data:`INLINE_COST` (most expressions): it always runs in place.
    ``sized`` names the variables its cost depends on."""

    __slots__ = ("_program", "cost", "inline", "max_cost", "sized", "source", "variables")

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
        self.cost: CostModel = estimate(program.serialize(), _SHAPES)
        iterations = self.cost.iterations.at(_MAX_SIZES)
        if iterations > MAX_ITERATIONS:
            raise CelCostError(
                f"may run {iterations:,.0f} comprehension iterations in one evaluation; "
                f"the runtime allows {MAX_ITERATIONS:,}"
            )
        static = self.cost.cost.constant
        if static > COST_BUDGET:
            raise CelCostError(
                f"costs about {_milliseconds(static)} to evaluate whatever the request; "
                f"the budget is {_milliseconds(COST_BUDGET)}"
            )
        self.max_cost = self.cost.cost.at(_MAX_SIZES)
        self.inline = self.max_cost <= INLINE_COST
        self.sized = frozenset(name for name in self.variables if name in _SHAPES) & frozenset(
            s.removesuffix("[]") for s in self.cost.symbols
        )

    def cost_of(self, values: CelVariables) -> float:
        """The estimated cost of evaluating with ``values`` (those of
        :attr:`sized` at least)."""
        return self.cost.cost.at(measure(values))

    def over_budget(self, cost: float) -> str:
        """The evaluation error of an evaluation estimated at ``cost``, over
        the budget."""
        return (
            f"estimated cost {_milliseconds(cost)} exceeds the budget of "
            f"{_milliseconds(COST_BUDGET)} for this request (the text or metadata is too large "
            "for this expression)"
        )

    def evaluate(self, activation: Any) -> CelResult:
        """True or False, or the error message when evaluation fails (a missing
        key, a non-boolean dyn result, the runtime's iteration limit...)."""
        try:
            value = self._program.eval(activation)
        except RuntimeError as exc:
            return _first_line(str(exc)).removeprefix("INTERNAL: ").removesuffix(" [INTERNAL]")
        kind = value.type()
        if kind == _T.BOOL:
            return bool(value.value())
        if kind == _T.ERROR:
            return str(value.value())
        return f"evaluated to {kind.name().lower()}, not bool"


def make_activation(variables: CelVariables) -> Any:
    """One activation per request, shared by all its expression policies."""
    return _env().Activation(dict(variables))
