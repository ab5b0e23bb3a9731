"""The learned tier's C scorer against its Python reference: the same score,
to the unit, on every text the engine cases, the training sources and the
shared evaluation sets hold, and on generated text built to reach the edge
cases (windows, repeated keys, double spaces, unspaced scripts)."""

from __future__ import annotations

import json
import os
import random
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from pdp.engine._deobfuscate import ScanText
from pdp.engine._injection_model import InjectionModel, load_model, native_available, windows
from pdp.engine._normalize import normalize
from tests.engine._case_loader import case_strings
from train.injection_data import SOURCES, load_all, mirror

pytestmark = pytest.mark.timeout(600)

SHARED = Path(os.environ.get("PDP_SHARED", Path(__file__).parents[2].parent / "shared")) / "data"
PURE_PYTHON = os.environ.get("PDP_PURE_PYTHON") == "1"
needs_native = pytest.mark.skipif(PURE_PYTHON, reason="PDP_PURE_PYTHON=1: scored in Python")


def _document() -> dict[str, Any]:
    raw = resources.files("pdp.engine").joinpath("data/injection_model.json").read_text("utf-8")
    document: dict[str, Any] = json.loads(raw)
    return document


def _pair(document: dict[str, Any]) -> tuple[InjectionModel, InjectionModel]:
    return (
        InjectionModel.from_document(document, native=True),
        InjectionModel.from_document(document, native=False),
    )


@pytest.fixture(scope="module")
def committed() -> tuple[InjectionModel, InjectionModel]:
    if PURE_PYTHON:
        pytest.skip("PDP_PURE_PYTHON=1: scored in Python")
    return _pair(_document())


def _disagreements(
    models: tuple[InjectionModel, InjectionModel], texts: list[str]
) -> list[tuple[str, int, int]]:
    native, python = models
    found = []
    for text in texts:
        fast, reference = native.score_units(text), python.score_units(text)
        if fast != reference:
            found.append((text[:80], fast, reference))
    return found


@needs_native
def test_the_c_scorer_was_built_and_scores_the_committed_model() -> None:
    # CI builds the package from source: a missing compiler or header must
    # fail here rather than leave every other test on the Python path.
    assert native_available(), "pdp.engine._injection_native did not build"
    assert load_model().native is not None
    assert load_model().native.size == load_model().size


def test_pure_python_turns_the_c_scorer_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PDP_PURE_PYTHON", "1")
    assert not native_available()
    assert InjectionModel.from_document(_document()).native is None


def test_same_scores_on_every_text_of_the_engine_cases(
    committed: tuple[InjectionModel, InjectionModel],
) -> None:
    texts: set[str] = set()
    for string in case_strings():
        scan = ScanText(string)
        texts.add(scan.plain)
        texts.update(form for _, form in scan.variants())
    assert len(texts) > 300
    assert _disagreements(committed, sorted(texts)) == []


def test_same_scores_on_the_training_sources(
    committed: tuple[InjectionModel, InjectionModel],
) -> None:
    missing = sorted({source.repo for source in SOURCES if mirror(source.repo) is None})
    if missing:
        pytest.skip(f"mirrors of the training sources not found: {', '.join(missing)}")
    examples, _ = load_all()
    texts = [normalize(example.text) for example in examples]
    assert len(texts) > 5000
    assert _disagreements(committed, texts) == []


def test_same_scores_on_the_shared_evaluation_sets(
    committed: tuple[InjectionModel, InjectionModel],
) -> None:
    files = sorted((SHARED / "injection").glob("*.json"))
    if not files:
        pytest.skip(f"no evaluation sets under {SHARED / 'injection'}")
    texts = [
        normalize(str(row["prompt"])) for path in files for row in json.loads(path.read_text())
    ]
    assert _disagreements(committed, texts) == []


def _generated(vocabulary: list[str], seed: int) -> Iterator[str]:
    rng = random.Random(seed)
    odd = ["ü", "ß", "İ", "世界", "人工智能", "😀", "🏳️‍🌈", "ـ", "\u0301", "x", "1", "𝒜"]
    yield from ("", "a", " ", "  ", "世", "世界", "😀", "a  b", "  a  ")
    for _ in range(600):
        words = [rng.choice(vocabulary) for _ in range(rng.randint(1, 400))]
        for i in range(len(words)):
            roll = rng.random()
            if roll < 0.05:
                words[i] = rng.choice(odd)
            elif roll < 0.08:
                words[i] = ""  # a double space
            elif roll < 0.1:
                words[i] += rng.choice(odd)
        joiner = "" if rng.random() < 0.1 else " "  # unspaced: keys across words
        yield joiner.join(words)


def test_same_scores_on_generated_text(committed: tuple[InjectionModel, InjectionModel]) -> None:
    keys = [key for key, _ in _document()["features"]]
    vocabulary = sorted({word for key in keys for word in key.split()})
    texts = list(_generated(vocabulary, seed=7))
    texts.append(" ".join(vocabulary))  # thousands of words, several windows
    texts.append(normalize(" ".join(keys)))
    assert _disagreements(committed, texts) == []
    # Not a score of nothing: most texts hold keys of either sign.
    scores = [committed[0].score_units(text) for text in texts]
    assert len(set(scores)) > 100


SMALL: dict[str, Any] = {
    "bias": -1.5,
    "window": 12,
    "overlap": 3,
    "thresholds": {"low": 2.5, "medium": 1.5, "high": 0.5},
    "features": [
        [" a ", 1.0],
        [" a b ", 0.25],
        [" b c d ", 2.0],
        [" ab ", -0.5],
        ["世界", 0.125],
        ["界", 0.0625],
        ["人工智", 0.0001],
        ["ü", 3.0],
    ],
}


def test_same_scores_with_small_windows_and_every_key_shape() -> None:
    if PURE_PYTHON:
        pytest.skip("PDP_PURE_PYTHON=1: scored in Python")
    models = _pair(SMALL)
    rng = random.Random(11)
    pieces = ["a", "b", "c", "d", "ab", "世", "界", "人工智", "ü", "", "x"]
    texts = []
    for length in range(120):  # lengths around every multiple of half a window
        texts.append(" ".join(rng.choice(pieces) for _ in range(length))[:length])
    for _ in range(3000):
        texts.append(" ".join(rng.choice(pieces) for _ in range(rng.randint(0, 60))))
    assert _disagreements(models, texts) == []
    assert models[0].score_units("a b c d") == -15000 + 10000 + 2500 + 20000


def test_windows_round_half_to_even_like_python() -> None:
    # The C scorer cuts windows with integers; these lengths hit every case
    # of Python's round(length / size), including the halves.
    for size in (1, 2, 3, 12, 768):
        for length in range(8 * size + 3):
            cuts = list(windows(length, size, 0))
            assert len(cuts) == max(1, round(length / size))
    if PURE_PYTHON:
        return
    # Each window of a text of "a" words: a key counts once per window, so
    # the score is the best window's count of distinct keys; compare both.
    document = {**SMALL, "features": [[f" {w} ", 1.0] for w in "abcdefghijklmnop"]}
    models = _pair(document)
    letters = "abcdefghijklmnop"
    texts = [" ".join(letters[i % 16] for i in range(n)) for n in range(90)]
    assert _disagreements(models, texts) == []


@pytest.mark.parametrize(
    ("features", "message"),
    [
        ([[" a ", 1.0], [" a ", 2.0]], "' a ' appears twice"),
        ([[" a ", 0.12345]], "weight of ' a ' 0.12345 has more than 4 decimals"),
        ([[" a ", "1"]], "weight of ' a ' must be a finite number"),
        ([[" a ", float("inf")]], "weight of ' a ' must be a finite number"),
    ],
)
def test_a_malformed_model_is_refused_naming_the_feature(
    features: list[list[object]], message: str
) -> None:
    for native in (False, None):
        with pytest.raises(ValueError, match=message):
            InjectionModel.from_document({**SMALL, "features": features}, native=native)


@needs_native
def test_a_key_shape_the_c_scorer_does_not_know_falls_back_to_python() -> None:
    document = {**SMALL, "features": [*SMALL["features"], ["a b", 1.0], [" c", 1.0]]}
    with pytest.raises(ValueError, match=r"features\[8\]: key 'a b' is neither"):
        InjectionModel.from_document(document, native=True)
    model = InjectionModel.from_document(document)
    assert model.native is None
    assert model.score_units("xa b c") == -15000 + 10000 + 10000


@needs_native
def test_weights_whose_sum_could_overflow_are_scored_in_python() -> None:
    document = {**SMALL, "bias": 0.0, "features": [[" a ", 4e14], [" b ", 4e14]]}
    with pytest.raises(ValueError, match=r"features\[1\]: the weights add up beyond 2\*\*62"):
        InjectionModel.from_document(document, native=True)
    model = InjectionModel.from_document(document)
    assert model.native is None
    assert model.score_units("a b") == 8 * 10**18


def test_threshold_decisions_compare_exact_units() -> None:
    # 0.1 + 0.2 is not 0.3 in floats; in units it is, so the text meets a
    # threshold of exactly 0.3 whichever way the sum is taken.
    document = {
        **SMALL,
        "bias": 0.0,
        "thresholds": {"low": 0.3, "medium": 0.3, "high": 0.3},
        "features": [[" p ", 0.1], [" q ", 0.2]],
    }
    for native in (False, None):
        model = InjectionModel.from_document(document, native=native)
        assert model.score_units("p q") == model.threshold_units["medium"] == 3000
