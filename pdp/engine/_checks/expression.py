"""``expression``: a CEL expression over the agent, the request, its usage and
the time."""

from __future__ import annotations

from collections.abc import Callable

from .._cel import (
    COST_BUDGET,
    INLINE_COST,
    CelCompileError,
    CelCostError,
    CelJob,
    CelProgram,
    CelResult,
)
from .._context import Context
from .._fields import Reader
from .._model import PolicySpec
from .._policy import Check, Hit, PolicyType
from .._variables import MEMO_KEYS

__all__ = ["POLICY_TYPE", "ExpressionCheck"]

_MEMO_LIMIT = 1024  # remembered results per expression policy


class ExpressionCheck(Check):
    __slots__ = ("_key_parts", "_memo", "message", "program", "skip_on_error")

    def __init__(self, program: CelProgram, message: str | None, skip_on_error: bool) -> None:
        self.program = program
        self.message = message
        self.skip_on_error = skip_on_error
        names = sorted(program.variables)
        # Results by the values of the variables, when every variable is a
        # short identifier (see MEMO_KEYS); most requests then skip the runtime.
        self._key_parts: tuple[Callable[[Context], object], ...] | None = (
            tuple(MEMO_KEYS[name] for name in names)
            if all(name in MEMO_KEYS for name in names)
            else None
        )
        self._memo: dict[tuple[object, ...], CelResult] = {}

    def _evaluate(self, ctx: Context) -> CelResult:
        parts = self._key_parts
        if parts is None:
            return self._compute(ctx)
        key = tuple([part(ctx) for part in parts])
        memo = self._memo
        result = memo.get(key)
        if result is None:
            result = self._compute(ctx)
            # A costly expression's error may be the worker's time limit:
            # not a property of these values.
            if None not in key and (self.program.inline or isinstance(result, bool)):
                if len(memo) >= _MEMO_LIMIT:
                    memo.clear()
                memo[key] = result
        return result

    def _compute(self, ctx: Context) -> CelResult:
        program = self.program
        if program.inline:
            return program.evaluate(ctx.activation(program.variables))
        cost = program.cost_of(ctx.cel_values(program.sized))
        if cost > COST_BUDGET:
            return program.over_budget(cost)
        if cost > INLINE_COST:
            # Evaluated off the event loop beforehand, when the caller can.
            done = ctx.cel_results.get(program.source)
            if done is not None:
                return done
        return program.evaluate(ctx.activation(program.variables))

    def job(self, ctx: Context) -> CelJob | None:
        """The evaluation to make off the event loop for ``ctx``, when its
        estimated cost is over INLINE_COST and within the budget."""
        program = self.program
        if program.inline:
            return None
        cost = program.cost_of(ctx.cel_values(program.sized))
        if not INLINE_COST < cost <= COST_BUDGET:
            return None
        return CelJob(program.source, ctx.cel_values(program.variables), cost)

    def run(self, ctx: Context) -> Hit | None:
        result = self._evaluate(ctx)
        if result is True:
            return Hit(self.message or f"expression is true: {self.program.source[:200]}")
        if result is False or self.skip_on_error:
            return None
        return Hit(f"expression could not be evaluated (failing closed): {result}")


def build(r: Reader, spec: PolicySpec) -> Check | None:
    source = r.string("expression", required=True, max_len=10**6)
    message = r.string("message", max_len=1000)
    on_error = r.choice("on_error", ("fire", "skip")) or "fire"
    if source is None:
        return None
    try:
        program = CelProgram(source)
    except CelCostError as exc:
        r.problems.add(r.at("expression"), f"policy {spec.name!r}: expression too costly: {exc}")
        return None
    except CelCompileError as exc:
        r.problems.add(r.at("expression"), f"invalid CEL: {exc}")
        return None
    return ExpressionCheck(program, message, on_error == "skip")


POLICY_TYPE = PolicyType(
    name="expression",
    summary="a CEL expression over the agent, the request, its usage and the time is true",
    rule_fields=("expression", "message", "on_error"),
    build=build,
    reads_usage=True,
)
