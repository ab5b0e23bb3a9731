"""What a CEL expression can cost, read from its checked syntax tree.

The runtime (cel-expr-python) offers no cost tracking and cannot be
interrupted: one evaluation holds the GIL until it ends, however long. So
the cost is bounded before anything runs. :func:`estimate` walks the
expression (the runtime's own checked AST, decoded from its protobuf form)
and gives a :class:`CostModel`: an upper bound of the work, in estimated
nanoseconds, as a polynomial in the sizes of the variables the caller
controls (the input's length, the number of metadata entries...), and the
same for the number of comprehension iterations.

The bound is deliberately coarse: nodes cost a constant, comprehensions
multiply their body by the size of what they range over, string operations
cost the length they may scan (``matches`` more per character than
``contains``), and sizes flow through concatenation, list and map literals
and macros. An over-estimate only moves an expression off the event loop
sooner or refuses it; an under-estimate is what the wall-clock limit is for.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

__all__ = ["CostModel", "Poly", "estimate"]


# -- polynomials over size symbols --------------------------------------------

Monomial = tuple[str, ...]  # sorted symbol names; () is the constant term


class Poly:
    """A polynomial with non-negative coefficients over size symbols: an
    upper bound that can be evaluated for given sizes."""

    __slots__ = ("terms",)

    def __init__(self, terms: Mapping[Monomial, float] | None = None) -> None:
        self.terms: dict[Monomial, float] = {k: v for k, v in (terms or {}).items() if v}

    @staticmethod
    def const(value: float) -> Poly:
        return Poly({(): value})

    @staticmethod
    def symbol(name: str) -> Poly:
        return Poly({(name,): 1.0})

    def __add__(self, other: Poly) -> Poly:
        terms = dict(self.terms)
        for k, v in other.terms.items():
            terms[k] = terms.get(k, 0.0) + v
        return Poly(terms)

    def __mul__(self, other: Poly | float) -> Poly:
        if not isinstance(other, Poly):
            return Poly({k: v * other for k, v in self.terms.items()})
        terms: dict[Monomial, float] = {}
        for k1, v1 in self.terms.items():
            for k2, v2 in other.terms.items():
                k = tuple(sorted(k1 + k2))
                terms[k] = terms.get(k, 0.0) + v1 * v2
        return Poly(terms)

    @property
    def constant(self) -> float:
        """The value with every size at zero: the part no caller changes."""
        return self.terms.get((), 0.0)

    @property
    def symbols(self) -> frozenset[str]:
        return frozenset(s for k in self.terms for s in k)

    def at(self, sizes: Mapping[str, float]) -> float:
        total = 0.0
        for monomial, coefficient in self.terms.items():
            for name in monomial:
                coefficient *= sizes.get(name, 0.0)
            total += coefficient
        return total


_ZERO = Poly()
_ONE = Poly.const(1.0)


# -- costs, in estimated nanoseconds ------------------------------------------

# Measured on cel-expr-python 0.1.3: `matches` compiles its pattern at every
# call, even a literal one, and `size` counts a string's code points.
_EVALUATION = 5000.0  # one evaluation's fixed cost
_NODE = 30.0  # evaluating one node: a constant, an identifier, a call's dispatch
_ITERATION = 300.0  # one step of a comprehension, besides its body
_SCAN = 0.5  # per character a string operation may read or write
_COUNT = 4.0  # per character `size` counts
_REGEX_SCAN = 7.0  # per character `matches` may read
_REGEX_CALL = 5000.0  # per `matches` call
_REGEX_COMPILE = 1500.0  # per pattern character, at every call
_CONVERTED_SIZE = 32.0  # the length of a number or a time converted to a string

# Functions whose cost is the length of every string argument (besides the node).
_SCANNING = frozenset(
    {
        "contains",
        "startsWith",
        "endsWith",
        "_==_",
        "_!=_",
        "_<_",
        "_<=_",
        "_>_",
        "_>=_",
        "_[_]",
        "@in",
        "string",
        "bytes",
        "int",
        "uint",
        "double",
        "timestamp",
        "duration",
    }
)


@dataclass(frozen=True, slots=True)
class Shape:
    """A value's size (a string's length, a list's or map's entries) as a
    polynomial, and the shape of its elements (keys and values of a map)."""

    size: Poly = field(default_factory=Poly)
    item: Shape | None = None


_SCALAR = Shape()


@dataclass(frozen=True, slots=True)
class CostModel:
    """An expression's cost and comprehension iterations as polynomials in
    the size symbols of its variables (see ``_variables.SIZE_SYMBOLS``)."""

    cost: Poly
    iterations: Poly

    @property
    def symbols(self) -> frozenset[str]:
        return self.cost.symbols | self.iterations.symbols


# -- the checked AST, decoded from the runtime's protobuf form -----------------
#
# cel.expr.CheckedExpr (wrapped in a google.protobuf.Any) and cel.expr.Expr,
# read field by field: only the parts the estimate needs.


def _varint(data: bytes, i: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        b = data[i]
        i += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, i
        shift += 7


def _fields(data: bytes) -> Iterator[tuple[int, int, bytes | int]]:
    i, end = 0, len(data)
    while i < end:
        key, i = _varint(data, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(data, i)
            yield number, wire, value
        elif wire == 2:
            length, i = _varint(data, i)
            yield number, wire, data[i : i + length]
            i += length
        elif wire == 1:
            yield number, wire, data[i : i + 8]
            i += 8
        elif wire == 5:
            yield number, wire, data[i : i + 4]
            i += 4
        else:
            raise ValueError(f"unsupported wire type {wire}")


def _messages(data: bytes) -> dict[int, list[bytes]]:
    out: dict[int, list[bytes]] = {}
    for number, wire, value in _fields(data):
        if wire == 2 and isinstance(value, bytes):
            out.setdefault(number, []).append(value)
    return out


def _expr_id(data: bytes) -> int:
    for number, wire, value in _fields(data):
        if number == 2 and wire == 0 and isinstance(value, int):
            return value
    return 0


def _text(data: bytes | None) -> str:
    return data.decode("utf-8", "replace") if data else ""


# Expr fields
_IDENT, _SELECT, _CALL, _LIST, _STRUCT, _COMPREHENSION, _CONST = 4, 5, 6, 7, 8, 9, 3


def checked_expr(serialized: bytes) -> tuple[bytes, dict[int, tuple[str, ...]]]:
    """The ``expr`` of the CheckedExpr inside the runtime's serialized Any,
    and the overloads the checker chose, by expression id."""
    any_fields = _messages(serialized)
    checked = _messages(any_fields[2][0])
    overloads: dict[int, tuple[str, ...]] = {}
    for entry in checked.get(2, []):  # reference_map: id -> Reference
        key = 0
        ids: tuple[str, ...] = ()
        for number, wire, value in _fields(entry):
            if number == 1 and wire == 0 and isinstance(value, int):
                key = value
            elif number == 2 and isinstance(value, bytes):
                ids = tuple(_text(o) for o in _messages(value).get(3, []))
        overloads[key] = ids
    return checked[4][0], overloads


# -- the walk -------------------------------------------------------------------


class _Walk:
    def __init__(
        self, variables: Mapping[str, Shape], overloads: Mapping[int, tuple[str, ...]]
    ) -> None:
        self.variables = variables
        self.overloads = overloads
        self.iterations = _ZERO

    def expr(self, data: bytes, scope: Mapping[str, Shape], times: Poly) -> tuple[Poly, Shape]:
        """(cost, shape) of one evaluation of the expression ``data``;
        ``times`` is how often it runs, for counting iterations."""
        parts = _messages(data)
        if _CONST in parts:
            return Poly.const(_NODE), self._constant(parts[_CONST][0])
        if _IDENT in parts:
            name = _text(_messages(parts[_IDENT][0]).get(1, [b""])[0])
            shape = scope.get(name) or self.variables.get(name) or _SCALAR
            return Poly.const(_NODE), shape
        if _SELECT in parts:
            select = _messages(parts[_SELECT][0])
            cost, shape = self.expr(select[1][0], scope, times) if 1 in select else (_ZERO, _SCALAR)
            return cost + Poly.const(_NODE), shape.item or _SCALAR
        if _CALL in parts:
            overloads = self.overloads.get(_expr_id(data), ())
            return self._call(_messages(parts[_CALL][0]), overloads, scope, times)
        if _LIST in parts:
            return self._collection(_messages(parts[_LIST][0]).get(1, []), scope, times)
        if _STRUCT in parts:
            entries = _messages(parts[_STRUCT][0]).get(2, [])
            # A map literal's keys and values (a message's field names are
            # not expressions; the environment declares no messages).
            values = [v for e in entries for key in (3, 4) for v in _messages(e).get(key, [])]
            return self._collection(values, scope, times, entries=len(entries))
        if _COMPREHENSION in parts:
            return self._comprehension(_messages(parts[_COMPREHENSION][0]), scope, times)
        return Poly.const(_NODE), _SCALAR

    @staticmethod
    def _constant(data: bytes) -> Shape:
        for number, _, value in _fields(data):
            if number in (6, 7) and isinstance(value, bytes):  # string, bytes
                return Shape(Poly.const(float(len(value))))
        return _SCALAR

    def _collection(
        self,
        items: list[bytes],
        scope: Mapping[str, Shape],
        times: Poly,
        entries: int | None = None,
    ) -> tuple[Poly, Shape]:
        cost = Poly.const(_NODE)
        size = _ZERO
        for item in items:
            c, s = self.expr(item, scope, times)
            cost += c + Poly.const(_NODE)
            size += s.size  # the largest element is at most their sum
        count = float(len(items) if entries is None else entries)
        return cost, Shape(Poly.const(count), Shape(size))

    def _call(
        self,
        call: dict[int, list[bytes]],
        overloads: tuple[str, ...],
        scope: Mapping[str, Shape],
        times: Poly,
    ) -> tuple[Poly, Shape]:
        function = _text(call.get(2, [b""])[0])
        operands = [*call.get(1, []), *call.get(3, [])]
        cost = Poly.const(_NODE)
        shapes: list[Shape] = []
        for operand in operands:
            c, s = self.expr(operand, scope, times)
            cost += c
            shapes.append(s)
        sizes = _ZERO
        for s in shapes:
            sizes += s.size
        if function == "matches":
            pattern = shapes[-1].size if shapes else _ZERO
            cost += sizes * _REGEX_SCAN + pattern * _REGEX_COMPILE + Poly.const(_REGEX_CALL)
            return cost, _SCALAR
        if function == "size":
            if overloads and all("string" in o or "bytes" in o for o in overloads):
                return cost + sizes * _COUNT, _SCALAR
            return cost, _SCALAR
        if function == "_+_":
            # Strings and lists concatenate (a string built so is slower to
            # read again: counted twice); numbers have no size.
            items = [s.item for s in shapes if s.item is not None]
            item = Shape(sum((i.size for i in items), _ZERO)) if items else None
            return cost + sizes * (4 * _SCAN), Shape(sizes, item)
        if function in ("_&&_", "_||_", "!_", "_?_:_", "@not_strictly_false", "_-_", "_*_"):
            if function == "_?_:_" and len(shapes) == 3:
                return cost, Shape(
                    shapes[1].size + shapes[2].size, shapes[1].item or shapes[2].item
                )
            return cost, _SCALAR
        if function == "@in" and len(shapes) == 2:
            # A list is searched element by element; a map's lookup reads the key.
            container = shapes[1]
            per_item = shapes[0].size + (container.item.size if container.item else _ZERO)
            if overloads and all("map" in o for o in overloads):
                return cost + shapes[0].size * _SCAN, _SCALAR
            return cost + (container.size * (per_item + Poly.const(_NODE))) * _SCAN, _SCALAR
        if function == "string":
            return cost + sizes * _SCAN, Shape(sizes + Poly.const(_CONVERTED_SIZE))
        if function in _SCANNING:
            result = shapes[0].item if function == "_[_]" and shapes else None
            return cost + sizes * _SCAN, result or _SCALAR
        # Anything else (time accessors, arithmetic): a node per call, and
        # its string arguments read once.
        return cost + sizes * _SCAN, _SCALAR

    def _comprehension(
        self, comp: dict[int, list[bytes]], scope: Mapping[str, Shape], times: Poly
    ) -> tuple[Poly, Shape]:
        def one(key: int) -> bytes | None:
            found = comp.get(key)
            return found[0] if found else None

        iter_var = _text(one(1))
        iter_var2 = _text(one(8))
        accu_var = _text(one(3))
        cost, range_shape = self._part(one(2), scope, times)
        count = range_shape.size
        self.iterations += times * count
        init_cost, init_shape = self._part(one(4), scope, times)
        element = range_shape.item or _SCALAR
        inner = dict(scope)
        inner[iter_var] = element
        if iter_var2:
            inner[iter_var2] = element
        inner[accu_var] = init_shape
        every = times * count
        # The step once with the initial accumulator says what one step
        # adds; the accumulator then holds up to one such per iteration.
        saved = self.iterations
        _, step_shape = self._part(one(6), inner, every)
        self.iterations = saved
        inner[accu_var] = Shape(init_shape.size + count * _ONE, step_shape.item or init_shape.item)
        condition, _ = self._part(one(5), inner, every)
        step, _ = self._part(one(6), inner, every, appending=accu_var)
        result_cost, result_shape = self._part(one(7), inner, times)
        body = condition + step + Poly.const(_ITERATION)
        total = cost + init_cost + count * body + result_cost
        return total, result_shape

    def _part(
        self,
        data: bytes | None,
        scope: Mapping[str, Shape],
        times: Poly,
        appending: str | None = None,
    ) -> tuple[Poly, Shape]:
        if data is None:
            return _ZERO, _SCALAR
        if appending is not None:
            # The runtime appends to a list accumulator in place: what a
            # step costs is what it adds, not the accumulator's length.
            parts = _messages(data)
            if _CALL in parts:
                call = _messages(parts[_CALL][0])
                args = call.get(3, [])
                if _text(call.get(2, [b""])[0]) == "_+_" and len(args) == 2:
                    head = _messages(args[0])
                    if _IDENT in head and _text(_messages(head[_IDENT][0]).get(1, [b""])[0]) == (
                        appending
                    ):
                        cost, _ = self.expr(args[1], scope, times)
                        return cost + Poly.const(_NODE), _SCALAR
        return self.expr(data, scope, times)


def estimate(serialized: bytes, variables: Mapping[str, Shape]) -> CostModel:
    """The cost model of a compiled expression (``Expression.serialize()``
    of the runtime), given its variables' shapes by name."""
    expr, overloads = checked_expr(serialized)
    walk = _Walk(variables, overloads)
    cost, _ = walk.expr(expr, {}, _ONE)
    return CostModel(cost + Poly.const(_EVALUATION), walk.iterations)
