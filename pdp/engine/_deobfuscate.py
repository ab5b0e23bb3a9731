"""De-obfuscation for ``injection_scan``: other readings of a text, each named
by the transformation that produced it, scanned after the text itself.

``ScanText`` holds one text (an input, an output, a context item). Its
``plain`` form is ``normalize(text)``. ``variants()`` are computed only when
asked (a matcher asks when the plain form matched nothing) and only where a
cheap trigger says the transformation can change something:

``confusable characters``
    Look-alike letters of other scripts read as the ASCII letter they imitate
    (Unicode TR39 confusables: Cyrillic ``о``, Greek ``ο``, ...; small
    capitals ``ᴘʀᴏᴍᴘᴛ``), and diacritics dropped (``ïgnöré``). Only for text that is not ASCII.
``leetspeak``
    Digits and symbols inside words read as letters (``1gn0r3``, ``pr3v!ous``,
    ``@ll``). Only words with at least two letters and one such character.
``joined split words``
    Separators inside words removed (``i.g.n.o.r.e``, ``ig-no-re``,
    ``in_struc*tions``; one hyphen or dot, as in ``well-known``, does not
    trigger it, though literal patterns ignore it anyway) and runs of single
    letters written apart joined (``i g n o r e``; a double space still
    separates words). ASCII letters only.
``base64``, ``hex``, ``url-encoding``
    Embedded encoded spans decoded, when what they decode to is readable text.
``rot13``
    The text rotated by 13 letters, when it holds a rotated trigger word
    (``vtaber``, ``cerivbhf``, ``vafgehpgvbaf``, ...) or names rot13.

Decoding is bounded: at most ``DECODE_BUDGET`` decoded bytes per text, spans
longer than that are not decoded, and decoded text is not decoded again, so a
crafted input cannot multiply the work.

``mentions_masked()`` is the same text with quotations and code strings that
are *about* an attack blanked out (see ``_mentions``); a matcher uses it to
tell text about an attack from an attack.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import unicodedata
from collections.abc import Mapping
from importlib import resources
from typing import Any
from urllib.parse import unquote

import re2

from ._deobfuscate_spans import (
    SEPARATORS,
    base64_spans,
    leet_words,
    spaced_letters,
    split_words,
)
from ._mentions import mask_mentions
from ._normalize import normalize

__all__ = ["DECODE_BUDGET", "ScanText"]

DECODE_BUDGET = 64 * 1024  # decoded bytes per text, all encodings together


def _confusables() -> dict[int, str]:
    raw = resources.files("pdp.engine").joinpath("data/confusables.json").read_text("utf-8")
    table: dict[str, str] = json.loads(raw)
    return {ord(char): ascii_char for char, ascii_char in table.items()}


# Letters with diacritics (Latin, Greek, Cyrillic and their extensions) and
# combining marks left on their own: what dropping the accents leaves.
_ACCENTED = ((0x00C0, 0x052F), (0x1E00, 0x1FFF))
_COMBINING = (0x0300, 0x036F)
_SMALL_CAPITALS = ((0x0250, 0x02AF), (0x1D00, 0x1D2F), (0xA730, 0xA7FF))


def _strip_accents(text: str) -> str:
    decomposed = unicodedata.normalize("NFD", text)
    bare = "".join(c for c in decomposed if not _COMBINING[0] <= ord(c) <= _COMBINING[1])
    return unicodedata.normalize("NFC", bare)


def _fold_table() -> dict[int, str]:
    """Each character to what folding reads it as: its look-alike letter
    (TR39 confusables), then without diacritics. One table, built once (a
    few ms), so folding a text is a translation of its non-ASCII runs
    rather than decomposing and recomposing all of it."""
    confusables = _confusables()
    table: dict[int, str] = {}
    codes = {c for low, high in _ACCENTED for c in range(low, high + 1)} | set(confusables)
    for code in sorted(codes):
        folded = _strip_accents(confusables.get(code, chr(code)))
        if folded != chr(code):
            table[code] = folded
    for code in range(_COMBINING[0], _COMBINING[1] + 1):
        table[code] = ""
    # Small capitals ("sʏsᴛᴇᴍ ᴘʀᴏᴍᴘᴛ"): NFKC keeps them, TR39 lists few.
    for low, high in _SMALL_CAPITALS:
        for code in range(low, high + 1):
            name = unicodedata.name(chr(code), "")
            letter = name.removeprefix("LATIN LETTER SMALL CAPITAL ")
            if letter != name and len(letter) == 1:
                table[code] = letter.lower()
    return table


_FOLD = _fold_table()
_CHUNK = 64


def _fold(text: str) -> str:
    """Look-alike letters read as the ASCII letter they imitate, and
    diacritics dropped. Every character folds on its own, so the text is
    translated in chunks, and the ASCII ones (most, in mixed text) are kept
    as they are: ``str.isascii`` is far cheaper than a dict lookup per
    character."""
    return "".join(
        chunk if chunk.isascii() else chunk.translate(_FOLD)
        for chunk in (text[i : i + _CHUNK] for i in range(0, len(text), _CHUNK))
    )


# Leetspeak: characters that stand for letters inside a word.
_LEET = str.maketrans({"0": "o", "3": "e", "4": "a", "5": "s", "7": "t", "9": "g", "@": "a",
                       "$": "s", "!": "i", "|": "l", "+": "t", "8": "b", "€": "e"})  # fmt: skip
# "1" reads "l" in these words and "i" elsewhere ("1gn0re", "ru1es").
# fmt: off
_L_WORDS = frozenset((
    "all", "rules", "role", "roles", "filter", "filters", "filtered", "unfiltered", "policy",
    "policies", "guidelines", "model", "models", "limit", "limits", "limitless", "unlimited",
    "tell", "reveal", "leak", "leaked", "unlock", "unlocked", "jailbreak", "jailbroken",
    "developer", "control", "please", "follow", "evil", "illegal", "ethical", "unethical",
    "legal", "language", "helpful", "like", "only", "full", "fully", "simulate", "simulation",
    "deliver", "always", "will", "shall", "until", "also", "below", "earlier", "file", "files",
    "url", "email", "mail", "login", "password", "lolita", "kill", "self",
))
# fmt: on

# Words split by separators and letters written apart (found by
# ``_deobfuscate_spans``): the separators or spaces inside are deleted.
_DELETE_SEPARATORS = str.maketrans("", "", SEPARATORS)
_DELETE_SPACES = str.maketrans("", "", " \t")

_HEX = re2.compile(
    r"(?:[0-9A-Fa-f]{2}){8,}|(?:\\x[0-9A-Fa-f]{2}){6,}"
    r"|(?:(?:0x)?[0-9A-Fa-f]{2}[ ,:]){5,}(?:0x)?[0-9A-Fa-f]{2}"
)
_HEX_NOISE = re.compile(r"\\x|0x|[ ,:]")
_URL_ESCAPES = re.compile(r"(?:%[0-9A-Fa-f]{2}){3,}")
_ROT13 = str.maketrans(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
    "nopqrstuvwxyzabcdefghijklmNOPQRSTUVWXYZABCDEFGHIJKLM",
)


# Cheap triggers, all searched in one RE2 pass over the raw text: a reading
# is computed only when its trigger matches. Index order = _TRIGGERS order.
_TRIGGERS = (
    "leetspeak",
    r"[a-zA-Z][0134579@$|!+€][a-zA-Z]|(?:^|[\s,.;:(\"'])[01345@$|!][a-zA-Z][a-zA-Z]"
    r"|[a-zA-Z][a-zA-Z][013457][\s,.;:)\"'!?]",
    "separators",
    r"[a-zA-Z][-.][a-zA-Z]+[-.][a-zA-Z]|[a-zA-Z][_*·•~|\\^][a-zA-Z]",
    "spaced letters",
    r"(?:^|[^a-zA-Z0-9])[a-zA-Z][ \t][a-zA-Z][ \t][a-zA-Z](?:[^a-zA-Z0-9]|$)",
    "base64",
    r"[A-Za-z0-9+/_-]{16}",
    "hex",
    r"[0-9A-Fa-f]{16}|\\x[0-9A-Fa-f]{2}|[0-9A-Fa-f]{2}[ ,:][0-9A-Fa-f]{2}[ ,:][0-9A-Fa-f]{2}",
    "url",
    r"%[0-9A-Fa-f]{2}",
    "mixed scripts",
    r"[a-zA-Z][\x{00C0}-\x{02AF}\x{0300}-\x{04FF}\x{0500}-\x{052F}\x{1D00}-\x{1DBF}\x{13A0}-\x{13FF}"
    r"\x{A730}-\x{A7FF}]|[\x{00C0}-\x{02AF}\x{0370}-\x{04FF}\x{0500}-\x{052F}\x{1D00}-\x{1DBF}"
    r"\x{13A0}-\x{13FF}\x{A730}-\x{A7FF}][a-zA-Z]",
    "rot13",
    r"(?i)(?:^|[^a-z])(?:vtaber|qvfertneq|sbetrg|cerivbhf|vafgehpgvbaf|vafgehpgvba|flfgrz"
    r"|cebzcg|erirny|birecevqr|ehyrf|wnvyoernx|cergraq|tebhaqvat)(?:[^a-z]|$)|(?i)rot.?13",
)


def _trigger_set() -> tuple[tuple[str, ...], Any]:
    options = re2.Options()
    options.log_errors = False
    trigger_set = re2.Set.SearchSet(options)
    names = _TRIGGERS[::2]
    for pattern in _TRIGGERS[1::2]:
        trigger_set.Add(pattern)
    trigger_set.Compile()
    return names, trigger_set


_TRIGGER_NAMES, _TRIGGER_SET = _trigger_set()


def _triggered(text: str) -> frozenset[str]:
    hits: list[int] | None = _TRIGGER_SET.Match(text.encode("utf-8", "surrogatepass"))
    return frozenset(_TRIGGER_NAMES[i] for i in hits) if hits else frozenset()


def _readable(data: bytes) -> str | None:
    """``data`` as text when it is UTF-8 and mostly printable words."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if not text:
        return None
    printable = sum(1 for char in text if char.isprintable() or char in "\n\r\t")
    letters = sum(1 for char in text if char.isalpha())
    if printable < 0.9 * len(text) or letters < 0.5 * len(text.replace(" ", "")):
        return None
    return text


def _leet_word(word: str) -> str:
    word = word.lower()
    if "1" in word:
        as_l = word.replace("1", "l").translate(_LEET)
        return as_l if as_l in _L_WORDS else word.replace("1", "i").translate(_LEET)
    return word.translate(_LEET)


# Edits of a respelt reading: (start, end, replacement) in the raw text.
_Edit = tuple[int, int, str]
_EXCERPT_CONTEXT = 256  # characters kept on either side of an edit


def _leet_edits(text: str) -> list[_Edit]:
    """Leetspeak words (with a leet character and two letters or more) read
    as letters."""
    return [(start, end, _leet_word(text[start:end])) for start, end in leet_words(text)]


def _delete_edits(text: str, spans: list[tuple[int, int]], table: Mapping[int, Any]) -> list[_Edit]:
    """Each span with the ``table`` characters deleted."""
    return [(start, end, text[start:end].translate(table)) for start, end in spans]


def _excerpts(text: str, edits: list[_Edit]) -> str:
    """The edited parts of ``text``, each with up to _EXCERPT_CONTEXT
    characters of context (cut at whitespace), one excerpt a line. Patterns
    and rules look at a few words around an edit; normalising and scanning
    only these keeps a respelt reading cheap on long text."""
    edits = sorted(edits)
    lines: list[str] = []
    i = 0
    while i < len(edits):
        low = max(0, edits[i][0] - _EXCERPT_CONTEXT)
        high = min(len(text), edits[i][1] + _EXCERPT_CONTEXT)
        j = i
        while j + 1 < len(edits) and edits[j + 1][0] - _EXCERPT_CONTEXT <= high:
            j += 1
            high = max(high, min(len(text), edits[j][1] + _EXCERPT_CONTEXT))
        if low > 0:
            space = text.find(" ", low, edits[i][0])
            low = space + 1 if space >= 0 else edits[i][0]
        if high < len(text):
            space = text.rfind(" ", edits[j][1], high)
            high = space if space >= 0 else edits[j][1]
        parts: list[str] = []
        last = low
        for start, end, replacement in edits[i : j + 1]:
            if start < last:  # overlaps the edit before: keep that one
                continue
            parts.append(text[last:start])
            parts.append(replacement)
            last = end
        parts.append(text[last:high])
        lines.append("".join(parts))
        i = j + 1
    return "\n".join(lines)


class _Budget:
    __slots__ = ("left",)

    def __init__(self, left: int) -> None:
        self.left = left

    def take(self, size: int) -> bool:
        if size > self.left:
            return False
        self.left -= size
        return True


def _hex_spans(data: bytes) -> list[tuple[int, int]]:
    return [match.span() for match in _HEX.finditer(data)]


def _decode_base64(span: str) -> bytes | None:
    padded = span.rstrip("=")
    padded += "=" * (-len(padded) % 4)
    try:
        if "-" in span or "_" in span:
            return base64.urlsafe_b64decode(padded)
        return base64.b64decode(padded, validate=True)
    except (binascii.Error, ValueError):
        return None


def _decode_hex(span: str) -> bytes | None:
    try:
        return bytes.fromhex(_HEX_NOISE.sub("", span))
    except ValueError:
        return None


def _decoded_spans(text: str, triggered: frozenset[str], budget: _Budget) -> list[tuple[str, str]]:
    """(encoding, decoded text) for each readable encoded span, in budget."""
    found: list[tuple[str, str]] = []
    # Encoded spans are ASCII and only their text is needed: searching the
    # bytes spares the RE2 wrapper mapping offsets back to characters.
    encoded = text.encode("utf-8", "surrogatepass")
    for name, find, decode, ratio in (
        ("base64", base64_spans, _decode_base64, 0.75),
        ("hex", _hex_spans, _decode_hex, 0.5),
    ):
        if name not in triggered:
            continue
        for start, end in find(encoded):
            span = encoded[start:end].decode("ascii")
            if not budget.take(int(len(span) * ratio) + 1):
                return found
            data = decode(span)
            decoded = _readable(data) if data else None
            if decoded is not None:
                found.append((name, decoded))
    if "url" in triggered and _URL_ESCAPES.search(text) is not None and budget.take(len(text)):
        found.append(("url-encoding", unquote(text, errors="replace")))
    return found


class ScanText:
    """One text to scan for injection, with its other readings computed once
    on demand. Not thread-safe; one belongs to one request."""

    __slots__ = ("_masked", "_plain", "_variants", "text")

    def __init__(self, text: str, plain: str | None = None) -> None:
        self.text = text
        self._plain = plain
        self._variants: tuple[tuple[str, str], ...] | None = None
        self._masked: ScanText | None = None

    @property
    def plain(self) -> str:
        """``normalize(text)``."""
        plain = self._plain
        if plain is None:
            plain = self._plain = normalize(self.text)
        return plain

    def variants(self) -> tuple[tuple[str, str], ...]:
        """(transformation, normalised text) for each reading that differs
        from ``plain``, in the order of the module docstring."""
        variants = self._variants
        if variants is None:
            variants = self._variants = tuple(self._compute_variants())
        return variants

    def mentions_masked(self) -> ScanText | None:
        """This text with quotations of an attack blanked out, or None when
        there is nothing to blank."""
        if self._masked is None:
            masked = mask_mentions(self.text)
            self._masked = self if masked is None else ScanText(masked)
        return None if self._masked is self else self._masked

    def _compute_variants(self) -> list[tuple[str, str]]:
        text, plain = self.text, self.plain
        seen = {plain}
        out: list[tuple[str, str]] = []

        def add(name: str, candidate: str, normalized: str | None = None) -> None:
            if normalized is None:
                normalized = normalize(candidate)
            if normalized and normalized not in seen:
                seen.add(normalized)
                out.append((name, normalized))

        triggered = _triggered(text)
        if "mixed scripts" in triggered:
            # The plain form is NFKC and case-folded already: folding look-alikes
            # and dropping accents changes letters, never word separation.
            add("confusable characters", "", _fold(plain))
        if "leetspeak" in triggered:
            add("leetspeak", _excerpts(text, _leet_edits(text)))
        if "separators" in triggered or "spaced letters" in triggered:
            edits: list[_Edit] = []
            if "separators" in triggered:
                edits += _delete_edits(text, split_words(text), _DELETE_SEPARATORS)
            if "spaced letters" in triggered:
                edits += _delete_edits(text, spaced_letters(text), _DELETE_SPACES)
            add("joined split words", _excerpts(text, edits))
        if triggered & {"base64", "hex", "url"}:
            decoded: dict[str, list[str]] = {}
            for name, span in _decoded_spans(text, triggered, _Budget(DECODE_BUDGET)):
                decoded.setdefault(name, []).append(span)
            for name, spans in decoded.items():
                add(name, "\n".join(spans))
        if "rot13" in triggered:
            add("rot13", text.translate(_ROT13))
        return out
