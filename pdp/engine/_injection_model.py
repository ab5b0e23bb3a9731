"""The learned tier of the built-in injection detector: a linear model over
word n-grams (and character bigrams of scripts written without spaces) of
normalised text, trained offline by ``train/train_injection_model.py`` and
loaded from ``data/injection_model.json``.

The score of a window is the sum of the weights of the distinct keys in it
(each key counts once, however often it occurs: repeating a word does not
add up). It is computed in C (``_native/injection_scorer.c``, a hash table
of the keys, see there) when that extension was built, else here, as the
reference: one Aho-Corasick automaton pass per window, every key of the
vocabulary in the automaton with its index, the distinct indices found made
a set, all in C calls with no Python code per occurrence. (An RE2 set of
the keys would answer the same question, but its DFA states each hold every
key's start: building them on varied text costs several times more, and a
set whose DFA runs out of memory reports no match.) A word n-gram is stored
padded with spaces (``" ignore previous "``), so it matches whole words
only, and the text is padded the same way. The score of a window of text is
the model's bias plus the weights of the distinct keys wholly inside it (the
model was trained on the same sums). Long texts are cut into equal windows
of about ``window`` characters, each reaching ``overlap`` characters back
into the one before, and the text scores as its best window, so a long
benign document does not add up to an attack and an injection hidden in one
paragraph of it still stands out.

The file also holds the calibrated thresholds of the three sensitivities.

Weights, bias and thresholds are numbers with at most 4 decimals; they are
loaded as integers in units of 1e-4 (``UNIT``), so a score is an exact sum
that does not depend on the order its keys were found in, and the C and
Python paths give the same score to the unit. ``PDP_PURE_PYTHON=1`` selects
the Python path.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from operator import itemgetter
from typing import Any

import ahocorasick

try:
    from . import _injection_native
except ImportError:  # built without a C compiler: the Python path scores
    _injection_native = None  # type: ignore[assignment]

__all__ = [
    "UNIT",
    "InjectionModel",
    "key_set",
    "load_model",
    "model_keys",
    "native_available",
    "window_keys",
    "windows",
]

# Weights, bias and thresholds in integer units of 1e-4.
UNIT = 10_000

_MODEL_FILE = "data/injection_model.json"

# Scripts written without spaces between words: their features are
# character bigrams, matched anywhere (not just at word edges).
_UNSPACED = (
    (0x0E00, 0x0EFF),  # Thai, Lao
    (0x1000, 0x109F),  # Myanmar
    (0x1780, 0x17FF),  # Khmer
    (0x3040, 0x30FF),  # Hiragana, Katakana
    (0x3400, 0x4DBF),  # CJK extension A
    (0x4E00, 0x9FFF),  # CJK unified ideographs
    (0xAC00, 0xD7AF),  # Hangul syllables (Korean uses spaces, but agglutinates)
    (0xF900, 0xFAFF),  # CJK compatibility ideographs
)


def _unspaced(char: str) -> bool:
    code = ord(char)
    return any(low <= code <= high for low, high in _UNSPACED)


def model_keys(normalized_text: str, max_n: int = 3) -> Iterable[str]:
    """Every feature key of a normalised text, with repeats: word 1..max_n
    grams padded with spaces, and bigrams of unspaced-script characters.
    The training script selects its vocabulary from these."""
    words = normalized_text.split(" ")
    for n in range(1, max_n + 1):
        for i in range(len(words) - n + 1):
            yield " " + " ".join(words[i : i + n]) + " "
    if not normalized_text.isascii():
        for word in words:
            for i in range(len(word) - 1):
                pair = word[i : i + 2]
                if _unspaced(pair[0]) and _unspaced(pair[1]):
                    yield pair


def windows(length: int, size: int, overlap: int) -> Iterator[tuple[int, int]]:
    """(start, end) of the windows of a padded text of ``length``: the text
    cut in equal chunks of about ``size`` characters (from 2/3 to 3/2 of it:
    a text just over ``size`` is one window, not a full one and a sliver),
    each reaching ``overlap`` characters back into the one before, so an
    n-gram across a chunk edge is still whole in one."""
    count = max(1, round(length / size))
    for i in range(count):
        yield max(0, length * i // count - overlap), length * (i + 1) // count


def key_set(keys: Sequence[str]) -> Any:
    """An automaton of ``keys``, each with its index; ``window_keys`` reads it."""
    automaton = ahocorasick.Automaton(ahocorasick.STORE_ANY, ahocorasick.KEY_STRING)
    for index, key in enumerate(keys):
        automaton.add_word(key, index)
    automaton.make_automaton()
    return automaton


def window_keys(keys: Any, padded_text: str, start: int, end: int) -> set[int]:
    """The indices of the distinct keys wholly inside the window."""
    # Slice: the automaton's own start/end would read the whole text per call.
    return set(map(_VALUE, keys.iter(padded_text[start:end])))


_VALUE = itemgetter(1)


def native_available() -> bool:
    """Whether the C scorer was built and is not turned off (``PDP_PURE_PYTHON=1``)."""
    return _injection_native is not None and os.environ.get("PDP_PURE_PYTHON") != "1"


def _units(value: Any, name: str) -> int:
    """``value`` (a number with at most 4 decimals) in units of 1e-4."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"injection model: {name} must be a finite number, not {value!r}")
    units = round(value * UNIT)
    if units / UNIT != value:
        raise ValueError(f"injection model: {name} {value!r} has more than 4 decimals")
    return units


@dataclass(frozen=True, slots=True)
class InjectionModel:
    """A loaded model: ``score_units`` gives a text's best window score;
    compare it with ``threshold_units[sensitivity]``. Immutable; safe to share."""

    keys: Any  # the automaton of the vocabulary, values: indices into ``weight_units``
    weight_units: tuple[int, ...]
    bias_units: int
    window: int
    overlap: int
    threshold_units: Mapping[str, int]
    # The C scorer of the same keys and weights; None: scored in Python.
    native: Any = None

    @property
    def size(self) -> int:
        return len(self.weight_units)

    # As numbers, for reports and training; scoring uses the units.
    @property
    def weights(self) -> tuple[float, ...]:
        return tuple(units / UNIT for units in self.weight_units)

    @property
    def bias(self) -> float:
        return self.bias_units / UNIT

    @property
    def thresholds(self) -> dict[str, float]:
        return {name: units / UNIT for name, units in self.threshold_units.items()}

    @classmethod
    def from_document(
        cls, document: Mapping[str, Any], native: bool | None = None
    ) -> InjectionModel:
        """``native``: score in C (True: fail if it cannot), in Python
        (False), or in C when it is available (None)."""
        features: list[list[Any]] = document["features"]
        keys = tuple(str(key) for key, _ in features)
        if len(set(keys)) != len(keys):
            twice = next(key for i, key in enumerate(keys) if key in keys[:i])
            raise ValueError(f"injection model: feature {twice!r} appears twice")
        weights = tuple(_units(weight, f"weight of {key!r}") for key, weight in features)
        bias = _units(document["bias"], "bias")
        window, overlap = int(document["window"]), int(document["overlap"])
        if window < 1 or overlap < 0:
            raise ValueError("injection model: window must be >= 1 and overlap >= 0")
        thresholds = {
            str(k): _units(v, f"threshold {k!r}") for k, v in document["thresholds"].items()
        }
        scorer = None
        if native or (native is None and native_available()):
            if _injection_native is None:
                raise RuntimeError("the C injection scorer was not built")
            try:
                scorer = _injection_native.InjectionScorer(keys, weights, bias, window, overlap)
            except (ValueError, OverflowError):
                if native:
                    raise
                # A key shape (or weights) the C scorer does not take: the
                # automaton scores it.
        return cls(key_set(keys), weights, bias, window, overlap, thresholds, scorer)

    def score_units(self, normalized_text: str) -> int:
        """The best score of any window of the text, in units of 1e-4."""
        if self.native is not None:
            score: int = self.native.score(normalized_text)
            return score
        padded = f" {normalized_text} "
        keys, weight = self.keys, self.weight_units.__getitem__
        best = max(
            sum(map(weight, window_keys(keys, padded, start, end)))
            for start, end in windows(len(padded), self.window, self.overlap)
        )
        return self.bias_units + best

    def score(self, normalized_text: str) -> float:
        """``score_units`` as a number (for reports; decisions compare units)."""
        return self.score_units(normalized_text) / UNIT


_MODEL: InjectionModel | None = None


def load_model() -> InjectionModel:
    """The committed model, built on first use (tens of ms) and shared."""
    global _MODEL
    if _MODEL is None:
        raw = resources.files("pdp.engine").joinpath(_MODEL_FILE).read_text("utf-8")
        _MODEL = InjectionModel.from_document(json.loads(raw))
    return _MODEL
