"""The learned tier of the built-in injection detector: a linear model over
word n-grams (and character bigrams of scripts written without spaces) of
normalised text, trained offline by ``train/train_injection_model.py`` and
loaded from ``data/injection_model.json``.

Scoring is one pass of an Aho-Corasick automaton over the text. Every key of
the vocabulary is stored with its weight; a word n-gram is stored padded with
spaces (``" ignore previous "``), so it matches whole words only, and the text
is padded the same way. The score of a window of text is the model's bias
plus the weights of the keys that end in it, each key once per block of
``stride`` characters (the model was trained on the same sums). Long texts are cut into windows of
``window`` characters that start every ``stride`` characters, and the text
scores as its best window, so a long benign document does not add up to an
attack and an injection hidden in one paragraph of it still stands out.

The file also holds the calibrated thresholds of the three sensitivities.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

import ahocorasick

__all__ = ["InjectionModel", "load_model", "model_keys", "window_sums"]

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


def window_sums(automaton: Any, padded_text: str, stride: int) -> list[float]:
    """Per block of ``stride`` characters, the sum of the weights of the keys
    that end in it, each key counted once per block (so repeating a word
    does not add up). Automaton values are ``(key index, weight)``."""
    blocks = [0.0] * (len(padded_text) // stride + 1)
    block = -1
    seen: set[int] = set()
    for end, (index, weight) in automaton.iter(padded_text):
        if end // stride != block:
            block = end // stride
            seen = set()
        if index not in seen:
            seen.add(index)
            blocks[block] += weight
    return blocks


@dataclass(frozen=True, slots=True)
class InjectionModel:
    """A loaded model: ``score`` gives a text's best window score; compare it
    with ``thresholds[sensitivity]``. Immutable; safe to share."""

    automaton: Any
    bias: float
    stride: int
    thresholds: Mapping[str, float]
    size: int

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> InjectionModel:
        automaton = ahocorasick.Automaton(ahocorasick.STORE_ANY, ahocorasick.KEY_STRING)
        features: list[list[Any]] = document["features"]
        for index, (key, weight) in enumerate(features):
            automaton.add_word(str(key), (index, float(weight)))
        automaton.make_automaton()
        thresholds = {str(k): float(v) for k, v in document["thresholds"].items()}
        return cls(
            automaton, float(document["bias"]), int(document["stride"]), thresholds, len(features)
        )

    def score(self, normalized_text: str) -> float:
        """The best score of any window (two consecutive blocks) of the text."""
        if not normalized_text:
            return self.bias
        blocks = window_sums(self.automaton, f" {normalized_text} ", self.stride)
        if len(blocks) == 1:
            return self.bias + blocks[0]
        return self.bias + max(a + b for a, b in itertools.pairwise(blocks))


_MODEL: InjectionModel | None = None


def load_model() -> InjectionModel:
    """The committed model, built on first use (tens of ms) and shared."""
    global _MODEL
    if _MODEL is None:
        raw = resources.files("pdp.engine").joinpath(_MODEL_FILE).read_text("utf-8")
        _MODEL = InjectionModel.from_document(json.loads(raw))
    return _MODEL
