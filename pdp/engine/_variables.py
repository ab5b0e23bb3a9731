"""The variables a CEL expression may use, each declared once: its name, its
CEL type, how its value is read from a request's context, and whether an
expression's result may be remembered by its value.

The CEL adapter (``_cel``) declares them to the runtime, the context
(``_context``) binds their values, and the expression check memoises by the
``memo_key`` of those that have one."""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC
from typing import TYPE_CHECKING

from ._periods import day_start, month_start

if TYPE_CHECKING:
    from ._context import Context

__all__ = [
    "MAX_ID_CHARS",
    "MAX_METADATA_ENTRIES",
    "MAX_METADATA_VALUE_CHARS",
    "MAX_TEXT_CHARS",
    "MEMO_KEYS",
    "VARIABLES",
    "CelType",
    "Variable",
]

# The largest values a request can bind, as the sidecar admits them (its
# translator refuses more): what the cost of an expression is bounded with.
MAX_TEXT_CHARS = 1024 * 1024  # input and output: at most 1 MiB of UTF-8 by default
MAX_ID_CHARS = 256
MAX_METADATA_ENTRIES = 64
MAX_METADATA_VALUE_CHARS = 4096


class CelType(enum.Enum):
    """The CEL types variables are declared with (``_cel`` maps them to the
    runtime's). Numbers are ``DYN`` so that ``cost > 5`` compares a double
    with an int, as users write it."""

    STRING = "string"
    BOOL = "bool"
    DYN = "number"
    TIMESTAMP = "timestamp"
    STRING_MAP = "map(string, string)"


@dataclass(frozen=True, slots=True)
class Variable:
    """One CEL variable. ``read`` gives its value for a request; ``memo_key``,
    for a variable that holds a short identifier (not request text, money,
    spend or time), gives a hashable stand-in for that value, or None when
    the value is too large to remember. An expression that uses only
    variables with a ``memo_key`` is a function of their values (CEL has no
    side effects), so its result can be remembered.

    ``max_size`` is the longest string, or the most map entries, a request
    can bind (0 for numbers, booleans and times); ``max_item`` a map's
    longest key or value. Expression costs are bounded with them."""

    name: str
    type: CelType
    doc: str
    read: Callable[[Context], object]
    memo_key: Callable[[Context], object] | None = None
    max_size: int = 0
    max_item: int = 0


_MAX_KEY_CHARS = 256
_MAX_KEY_ENTRIES = 16


def _short(value: str) -> str | None:
    return value if len(value) <= _MAX_KEY_CHARS else None


def _metadata_key(ctx: Context) -> object:
    metadata = ctx.request.metadata
    if not metadata:
        return ()
    if len(metadata) > _MAX_KEY_ENTRIES:
        return None
    try:
        items = frozenset(metadata.items())
    except TypeError:  # not str values: let the runtime judge them
        return None
    if any(len(key) + len(value) > _MAX_KEY_CHARS for key, value in items):
        return None
    return items


def _daily_spend(ctx: Context) -> float:
    return ctx.usage.spent_since(ctx.agent.id, day_start(ctx.now, UTC))


def _monthly_spend(ctx: Context) -> float:
    return ctx.usage.spent_since(ctx.agent.id, month_start(ctx.now, 1, UTC))


def _metadata(ctx: Context) -> Mapping[str, str]:
    return dict(ctx.request.metadata)


_S, _B, _N = CelType.STRING, CelType.BOOL, CelType.DYN

VARIABLES: tuple[Variable, ...] = (
    Variable(
        "agent.id",
        _S,
        "the agent's id",
        lambda ctx: ctx.agent.id,
        lambda ctx: _short(ctx.agent.id),
        max_size=MAX_ID_CHARS,
    ),
    Variable(
        "agent.name",
        _S,
        "the agent's name",
        lambda ctx: ctx.agent.name,
        lambda ctx: _short(ctx.agent.name),
        max_size=MAX_ID_CHARS,
    ),
    Variable(
        "agent.known",
        _B,
        "false when the snapshot does not list the agent",
        lambda ctx: ctx.agent.known,
        lambda ctx: ctx.agent.known,
    ),
    Variable(
        "request.input",
        _S,
        'the input text ("" when absent)',
        lambda ctx: ctx.request.input or "",
        max_size=MAX_TEXT_CHARS,
    ),
    Variable(
        "request.output",
        _S,
        'the output text ("" when absent)',
        lambda ctx: ctx.request.output or "",
        max_size=MAX_TEXT_CHARS,
    ),
    Variable(
        "request.model",
        _S,
        "the model named by the request",
        lambda ctx: ctx.request.model,
        lambda ctx: _short(ctx.request.model),
        max_size=MAX_ID_CHARS,
    ),
    Variable(
        "request.tool",
        _S,
        "the tool named by the request",
        lambda ctx: ctx.request.tool,
        lambda ctx: _short(ctx.request.tool),
        max_size=MAX_ID_CHARS,
    ),
    Variable(
        "request.request_id",
        _S,
        "the caller's id for the call",
        lambda ctx: ctx.request.request_id,
        max_size=MAX_ID_CHARS,
    ),
    Variable(
        "request.side",
        _S,
        '`"input"`, or `"output"` for an output-only request',
        lambda ctx: "output" if ctx.output_only else "input",
        lambda ctx: ctx.output_only,
        max_size=6,
    ),
    Variable(
        "request.metadata",
        CelType.STRING_MAP,
        "the request's metadata",
        _metadata,
        _metadata_key,
        max_size=MAX_METADATA_ENTRIES,
        max_item=MAX_METADATA_VALUE_CHARS,
    ),
    Variable(
        "request.estimated_cost_usd",
        _N,
        "the estimated cost (0 when absent)",
        lambda ctx: float(ctx.request.estimated_cost_usd or 0.0),
    ),
    Variable(
        "usage.daily_spend_usd",
        _N,
        "spent today (UTC) by this agent",
        _daily_spend,
    ),
    Variable(
        "usage.monthly_spend_usd",
        _N,
        "spent this calendar month (UTC) by this agent",
        _monthly_spend,
    ),
    Variable("now", CelType.TIMESTAMP, "the time of the decision", lambda ctx: ctx.now),
)

# The variables an expression's result may be remembered by, with their keys.
MEMO_KEYS: Mapping[str, Callable[[Context], object]] = {
    v.name: v.memo_key for v in VARIABLES if v.memo_key is not None
}
