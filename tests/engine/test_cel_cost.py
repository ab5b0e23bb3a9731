"""The cost model of CEL expressions: iterations counted as the runtime
counts them, costs that grow with what the caller controls, and bounds that
hold against the runtime itself."""

from __future__ import annotations

import pytest

from pdp.engine._cel import INLINE_COST, MAX_ITERATIONS, CelCostError, CelProgram, make_activation

RANGE = "[" + ", ".join(str(i) for i in range(99)) + "]"


def iterations(source: str, **sizes: float) -> float:
    return CelProgram(source).cost.iterations.at(sizes)


def test_iterations_are_counted_as_the_runtime_counts_them() -> None:
    nested = f"{RANGE}.all(a, {RANGE}.all(b, a + b >= 0))"
    assert iterations(nested) == 99 + 99 * 99
    # The runtime itself accepts exactly that many and refuses one more level.
    program = CelProgram(nested)
    assert program.evaluate(make_activation({})) is True
    wider = "[" + ", ".join("0" for _ in range(101)) + "]"
    with pytest.raises(CelCostError, match="comprehension iterations"):
        CelProgram(f"{wider}.all(a, {wider}.all(b, true))")
    assert 99 + 99 * 99 <= MAX_ITERATIONS < 101 + 101 * 101


def test_metadata_iterations_are_bounded_with_the_most_entries() -> None:
    pairs = "request.metadata.all(a, request.metadata.all(b, a != b || a == b))"
    assert iterations(pairs, **{"request.metadata": 64}) == 64 + 64 * 64
    with pytest.raises(CelCostError, match="comprehension iterations"):
        CelProgram(
            "request.metadata.all(a, request.metadata.all(b, request.metadata.all(c, true)))"
        )


def test_cost_grows_with_the_input_and_the_nesting() -> None:
    once = CelProgram("request.input.matches('z{2}')")
    nested = CelProgram(f"{RANGE}.exists(a, request.input.matches('z{{2}}'))")
    small, large = {"request.input": "a" * 100}, {"request.input": "a" * 100_000}
    assert once.cost_of(large) > 10 * once.cost_of(small)
    assert nested.cost_of(large) > 90 * once.cost_of(large)
    assert once.cost_of(small) < INLINE_COST < nested.cost_of(large)


def test_common_expressions_always_run_in_place() -> None:
    for source in (
        'request.tool == "shell" && request.metadata["env"] == "prod"',
        '"env" in request.metadata && request.metadata["env"].startsWith("prod")',
        "request.estimated_cost_usd > 5 && usage.daily_spend_usd < 100",
        'agent.name == "chatbot" && now.getHours() < 18',
        'has(request.metadata.env) && request.model in ["gpt-4o", "gpt-4o-mini"]',
    ):
        assert CelProgram(source).inline, source


def test_a_map_lookup_is_cheaper_than_searching_a_list() -> None:
    lookup = CelProgram('"env" in request.metadata')
    search = CelProgram('request.tool in ["a", "b", "c", "d", "e", "f", "g", "h"]')
    worst = {"request.metadata": {f"k{i}": "v" * 4096 for i in range(64)}}
    assert lookup.cost_of(worst) < 1000 + lookup.cost_of({"request.metadata": {}})
    assert search.cost_of({"request.tool": "x" * 256}) > search.cost_of({"request.tool": ""})


@pytest.mark.parametrize(
    "source",
    [
        f"{RANGE}.exists(a, {RANGE}.exists(b, request.input.matches('z{{2}}')))",
        f"{RANGE}.exists(a, request.input.size() == 7)",
        "request.metadata.exists(k, request.metadata[k].matches('a+b'))",
    ],
)
def test_runtime_errors_are_results_not_exceptions(source: str) -> None:
    program = CelProgram(source)
    result = program.evaluate(make_activation({}))  # variables unbound
    assert isinstance(result, str) and result
