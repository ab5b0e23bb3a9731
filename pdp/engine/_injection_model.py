"""The learned tier of the built-in injection detector: a linear model over
word n-grams (and character bigrams of scripts written without spaces) of
normalised text, trained offline by ``train/train_injection_model.py`` and
loaded from ``data/injection_model.json``.

Scoring is one RE2 set pass per window of text: every key of the
vocabulary is a literal of the set, and the set answers which keys occur
(each once, however often it occurs: repeating a word does not add up), in
C, with no Python code per occurrence. A word n-gram is stored padded with
spaces (``" ignore previous "``), so it matches whole words only, and the
text is padded the same way. The score of a window of text is the model's
bias plus the weights of the distinct keys wholly inside it (the model was
trained on the same sums). Long texts are cut into windows of ``window``
characters, each reaching ``overlap`` characters back into the one before,
and the text scores as its best window, so a long benign document does not
add up to an attack and an injection hidden in one paragraph of it still
stands out.

The file also holds the calibrated thresholds of the three sensitivities.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any, cast

import re2

__all__ = ["InjectionModel", "key_set", "load_model", "model_keys", "window_keys", "windows"]

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
    """An RE2 set of the literal ``keys``; ``window_keys`` reads it. The
    memory budget is far above what a literal set's DFA can need (its states
    are at most the keys' prefixes), so a search never runs out of memory,
    which RE2 would report as no match."""
    options = re2.Options()
    options.log_errors = False
    options.max_mem = 256 << 20
    keys_set = re2.Set.SearchSet(options)
    for key in keys:
        keys_set.Add(re.escape(key))
    keys_set.Compile()
    return keys_set


def window_keys(keys_set: Any, padded_text: str, start: int, end: int) -> list[int]:
    """The indices of the distinct keys wholly inside the window."""
    hits: list[int] | None = _match(keys_set)(
        padded_text[start:end].encode("utf-8", "surrogatepass")
    )
    return hits or []


def _match(keys_set: Any) -> Callable[[bytes], list[int] | None]:
    # The binding's own method: the wrapper's adds a Python call per window.
    return cast(Callable[[bytes], "list[int] | None"], getattr(keys_set, "_set", keys_set).Match)


@dataclass(frozen=True, slots=True)
class InjectionModel:
    """A loaded model: ``score`` gives a text's best window score; compare it
    with ``thresholds[sensitivity]``. Immutable; safe to share."""

    keys: Any  # the RE2 set of the vocabulary, in ``weights`` order
    weights: tuple[float, ...]
    bias: float
    window: int
    overlap: int
    thresholds: Mapping[str, float]

    @property
    def size(self) -> int:
        return len(self.weights)

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> InjectionModel:
        features: list[list[Any]] = document["features"]
        thresholds = {str(k): float(v) for k, v in document["thresholds"].items()}
        return cls(
            key_set([str(key) for key, _ in features]),
            tuple(float(weight) for _, weight in features),
            float(document["bias"]),
            int(document["window"]),
            int(document["overlap"]),
            thresholds,
        )

    def score(self, normalized_text: str) -> float:
        """The best score of any window of the text."""
        padded = f" {normalized_text} "
        match, weight = _match(self.keys), self.weights.__getitem__
        if len(padded) * 2 < self.window * 3:  # one window (most texts)
            return self.bias + sum(
                map(weight, match(padded.encode("utf-8", "surrogatepass")) or ())
            )
        best: float = max(
            sum(map(weight, match(padded[start:end].encode("utf-8", "surrogatepass")) or ()))
            for start, end in windows(len(padded), self.window, self.overlap)
        )
        return self.bias + best


_MODEL: InjectionModel | None = None


def load_model() -> InjectionModel:
    """The committed model, built on first use (tens of ms) and shared."""
    global _MODEL
    if _MODEL is None:
        raw = resources.files("pdp.engine").joinpath(_MODEL_FILE).read_text("utf-8")
        _MODEL = InjectionModel.from_document(json.loads(raw))
    return _MODEL
