"""Where the de-obfuscation readings (``_deobfuscate``) edit or decode a
text: words split by separators, single letters written apart, words with a
leet character (and two letters), runs of a base64 alphabet (in both cases).

The patterns below are the definition, searched with RE2. Code and
documentation hold hundreds of identifiers and hyphenated words per KB,
each a match, and the RE2 wrapper builds a Python match object for each: the
C module ``_deobfuscate_native`` (``_native/deobfuscate_spans.c``, built by
``setup.py`` where a compiler is present) finds the same spans in one pass
without them. ``PDP_PURE_PYTHON=1`` (read at import) selects the patterns.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from typing import Any

import re2

try:
    from . import _deobfuscate_native
except ImportError:  # built without a C compiler: the patterns find the spans
    _deobfuscate_native = None  # type: ignore[assignment]

__all__ = [
    "SEPARATORS",
    "base64_spans",
    "leet_words",
    "native_available",
    "python_base64_spans",
    "python_leet_words",
    "python_spaced_letters",
    "python_split_words",
    "spaced_letters",
    "split_words",
]

Spans = list[tuple[int, int]]

# A word of letters, digits and leet symbols holding a leet character next
# to a letter ("pr3v!ous", "1gn0re", "@ll").
_LEET_CANDIDATE = re2.compile(
    r"[\w@$|!+€]*(?:[a-zA-Z][0134579@$|+€8!]|[0134579@$|+€8!][a-zA-Z])[\w@$|!+€]*"
)
# Words split by separators ("i.g.n.o.r.e", "ig-no-re", "in_struc*tions": two
# of them, or one that words do not hold, so "well-known" is left alone), and
# runs of three or more single letters written apart ("i g n o r e"; group 1).
SEPARATORS = "-._*·•~|\\^"
_SPLIT_WORD = re2.compile(
    rf"[a-zA-Z]+(?:[{re.escape(SEPARATORS)}]+[a-zA-Z]+){{2,}}"
    r"|[a-zA-Z]+(?:[*·•~|\\^]+[a-zA-Z]+)+"
)
_SPACED_LETTERS = re2.compile(
    r"(?:^|[^a-zA-Z0-9])((?:[a-zA-Z][ \t]){2,}[a-zA-Z])(?:[^a-zA-Z0-9]|$)"
)
_BASE64 = re2.compile(r"[A-Za-z0-9+/]{16,}={0,2}|[A-Za-z0-9_-]{16,}={0,2}")


_SURROGATE = re.compile("[\ud800-\udfff]")


def _spans(pattern: Any, text: str, group: int = 0) -> Spans:
    """(start, end) of ``group`` in each match of the RE2 ``pattern``. ASCII
    text is searched as bytes, whose offsets are the characters': the RE2
    wrapper then skips mapping byte offsets back to characters. RE2 reads
    UTF-8 only: a lone surrogate (which no pattern holds) is searched as
    U+FFFD (which none holds either), one character for one."""
    if text.isascii():
        subject: str | bytes = text.encode("ascii")
    else:
        subject = _SURROGATE.sub("\ufffd", text) if _SURROGATE.search(text) else text
    return [match.span(group) for match in pattern.finditer(subject)]


def python_split_words(text: str) -> Spans:
    return _spans(_SPLIT_WORD, text)


def python_spaced_letters(text: str) -> Spans:
    return _spans(_SPACED_LETTERS, text, 1)


def _ascii_letters(word: str) -> int:
    return sum(1 for char in word if "a" <= char <= "z" or "A" <= char <= "Z")


def python_leet_words(text: str) -> Spans:
    """The words with a leet character and at least two letters ("v3" is
    not a word to respell)."""
    return [(s, e) for s, e in _spans(_LEET_CANDIDATE, text) if _ascii_letters(text[s:e]) >= 2]


def python_base64_spans(data: bytes) -> Spans:
    """Runs of a base64 alphabet, but for those in one case only: plain
    words, slugs and identifiers match the alphabet too, while base64 of
    text has both cases (a run of digits and symbols is kept)."""
    spans: Spans = []
    for match in _BASE64.finditer(data):
        run = match.group()
        if not (run.islower() or run.isupper()):
            spans.append(match.span())
    return spans


def native_available() -> bool:
    """Whether the C search was built and is not turned off (``PDP_PURE_PYTHON=1``)."""
    return _deobfuscate_native is not None and os.environ.get("PDP_PURE_PYTHON") != "1"


split_words: Callable[[str], Spans] = python_split_words
spaced_letters: Callable[[str], Spans] = python_spaced_letters
leet_words: Callable[[str], Spans] = python_leet_words
base64_spans: Callable[[bytes], Spans] = python_base64_spans
if native_available():
    split_words = _deobfuscate_native.split_words
    spaced_letters = _deobfuscate_native.spaced_letters
    leet_words = _deobfuscate_native.leet_words
    base64_spans = _deobfuscate_native.base64_spans
