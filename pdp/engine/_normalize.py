"""Text normalisation shared by every text-matching policy.

``normalize`` turns text into the form that patterns are matched against:

- Unicode NFKC (fullwidth and other compatibility forms become plain letters),
  then case-folded;
- removed: format characters (category Cf: zero-width space/joiners, word
  joiner, BOM, soft hyphen, bidi controls, ...), control characters that are
  not whitespace, private-use and surrogate code points, and invisible fillers
  (variation selectors, combining grapheme joiner, Hangul fillers), so that
  ``ig\\u200bnore`` reads ``ignore``;
- Unicode tag characters (U+E0020..U+E007E, invisible copies of ASCII that can
  smuggle text past a reader) are decoded to the ASCII they stand for, as a
  separate word, so hidden text is scanned rather than dropped;
- every run of anything else that is not a letter, a combining mark or a digit
  (punctuation, symbols, whitespace, line breaks) becomes ONE space;
- leading and trailing spaces are stripped.

The result is NOT padded: words are separated by exactly one space and there
is no space at either end. Matchers check word boundaries themselves.

ASCII text (the common case) takes a fast path: no NFKC or format-character
work is needed, and ``bytes.translate`` plus one regex collapse the rest. The
character classes for other text are built from this Python's Unicode
database when the module is imported (about 35 ms).
"""

from __future__ import annotations

import re
import sys
import unicodedata
from dataclasses import dataclass

__all__ = ["normalize"]


def _ascii_tables() -> tuple[bytes, bytes]:
    """A byte translation table (upper to lower case, separators to space) and
    the bytes to delete (control characters that are not whitespace)."""
    table = bytearray(range(256))
    delete = bytearray()
    for code in range(128):
        char = chr(code)
        if char.isalnum():
            table[code] = ord(char.lower())
        elif code < 32 or code == 127:
            if char.isspace():
                table[code] = 32
            else:
                delete.append(code)
        else:
            table[code] = 32
    return bytes(table), bytes(delete)


_ASCII_TABLE, _ASCII_DELETE = _ascii_tables()
# Two literal spaces first give the regex a literal prefix to search for, which
# is much faster than ``" +"`` on prose where most gaps are one space already.
_ASCII_SPACE_RUN = re.compile(rb"  (?: *)")
_SPACE_RUN = re.compile("  (?: *)")

# Invisible characters outside category Cf that render as nothing.
_INVISIBLE_FILLERS = (
    (0x034F, 0x034F),  # combining grapheme joiner
    (0x115F, 0x1160),  # Hangul choseong/jungseong fillers
    (0x17B4, 0x17B5),  # Khmer inherent vowels
    (0x180B, 0x180F),  # Mongolian free variation selectors
    (0x3164, 0x3164),  # Hangul filler
    (0xFE00, 0xFE0F),  # variation selectors
    (0xFFA0, 0xFFA0),  # halfwidth Hangul filler
)
_ASTRAL_FILLERS = ((0xE0100, 0xE01EF),)  # variation selectors supplement


def _char_class(ranges: list[tuple[int, int]]) -> str:
    def esc(code: int) -> str:
        return f"\\U{code:08x}"

    return "".join(esc(lo) if lo == hi else f"{esc(lo)}-{esc(hi)}" for lo, hi in ranges)


# What each general category becomes: 0 kept (letters, marks, digits), 1
# deleted (format, private use, surrogates, controls), 2 a separator.
_KEEP, _DELETE = 0, 1
_CATEGORY_CLASS = {
    category: _KEEP if category[0] in "LMN" else _DELETE if category[0] == "C" else 2
    for category in (
        *("Lu", "Ll", "Lt", "Lm", "Lo", "Mn", "Mc", "Me", "Nd", "Nl", "No"),
        *("Cc", "Cf", "Co", "Cs"),
        *("Pc", "Pd", "Ps", "Pe", "Pi", "Pf", "Po", "Sm", "Sc", "Sk", "So", "Zs", "Zl", "Zp"),
    )
}
_CATEGORY_CLASS["Cn"] = 2  # unassigned in this Python's Unicode version


def _class_ranges(first: int, end: int) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """Ranges of kept and of deleted code points in [first, end). Uses C-level
    map/bytes/regex so that building the tables stays in the tens of ms."""
    classes = bytes(
        map(_CATEGORY_CLASS.__getitem__, map(unicodedata.category, map(chr, range(first, end))))
    )

    def runs(value: int) -> list[tuple[int, int]]:
        pattern = re.compile(re.escape(bytes([value])) + b"+")
        return [(m.start() + first, m.end() - 1 + first) for m in pattern.finditer(classes)]

    return runs(_KEEP), runs(_DELETE)


@dataclass(frozen=True, slots=True)
class _Classes:
    """Regexes for runs of characters to delete and runs of separators."""

    drop: re.Pattern[str]
    separators: re.Pattern[str]


def _classes(keep: list[tuple[int, int]], drop: list[tuple[int, int]]) -> _Classes:
    ascii_keep = [(ord("0"), ord("9")), (ord("a"), ord("z")), (ord("A"), ord("Z"))]
    # Characters to delete are gone before separators are looked for, so the
    # kept class does not need to exclude them. A space is not a separator
    # here so that the common single space between words is not a match; runs
    # of spaces are collapsed afterwards.
    return _Classes(
        drop=re.compile(f"[\\x00-\\x08\\x0e-\\x1b\\x7f{_char_class(drop)}]+"),
        separators=re.compile(f"[^ {_char_class(ascii_keep + keep)}]+"),
    )


def _unicode_classes() -> tuple[_Classes, _Classes]:
    """Character classes for text within the BMP, and for any text.

    Built once from this Python's Unicode database. Planes 2 and 3 hold only
    ideographs (kept) and planes 15 and 16 only private use (deleted), so only
    planes 0, 1 and 14 are scanned. Python's regex engine tests BMP members of
    a class with one table lookup but walks a list for the rest, so text
    without astral characters (nearly all) gets classes without them."""
    keep, drop = _class_ranges(0x80, 0x10000)
    # U+0085 (next line) is a control character but also a line break.
    drop = [(lo, hi) for lo, hi in drop if not lo <= 0x85 <= hi] + [(0x80, 0x84), (0x86, 0x9F)]
    drop += list(_INVISIBLE_FILLERS)
    # Astral characters reach the BMP classes already classified (deleted,
    # made a space, or kept): the ones left are kept.
    bmp = _classes([*keep, (0x10000, sys.maxunicode)], drop)
    astral_keep, astral_drop = _class_ranges(0x10000, 0x20000)
    tags_keep, tags_drop = _class_ranges(0xE0000, 0xE1000)
    keep += astral_keep + tags_keep + [(0x20000, 0x3FFFF)]
    drop += astral_drop + tags_drop + list(_ASTRAL_FILLERS) + [(0xF0000, sys.maxunicode)]
    return bmp, _classes(keep, drop)


_BMP, _ANY = _unicode_classes()
_ASTRAL = re.compile("[\U00010000-\U0010ffff]")
_ASTRAL_RUN = re.compile("[\U00010000-\U0010ffff]+")


def _astral_class(char: str) -> int:
    """``_KEEP``, ``_DELETE`` or 2 (a separator) for an astral character, as
    the ``_ANY`` classes decide it."""
    if _ANY.drop.fullmatch(char) is not None:
        return _DELETE
    return 2 if _ANY.separators.fullmatch(char) is not None else _KEEP


def _classify_astral(match: re.Match[str]) -> str:
    out: list[str] = []
    for char in match.group():
        kind = _astral_class(char)
        if kind == _KEEP:
            out.append(char)
        elif kind == 2:
            out.append(" ")
    return "".join(out)


_TAG_RUN = re.compile("[\U000e0000-\U000e007f]+")


def _decode_tags(match: re.Match[str]) -> str:
    decoded = "".join(
        chr(ord(char) - 0xE0000) for char in match.group() if 0xE0020 <= ord(char) <= 0xE007E
    )
    return f" {decoded.lower()} "


# The non-ASCII characters of English text, most often all it has (curly
# quotes, dashes, an ellipsis, a no-break space, box drawing): each
# becomes separators alone and composes with no neighbour, so it is made a
# space first, and the text takes the ASCII path when nothing else is left.
_SPACED_PUNCTUATION = "\u2019\u201c\u201d\u2018\u2014\u2013\u00a0\u2026\u2500\u2550"

# Text that is mostly ASCII (English with curly quotes, a name with an
# accent, an emoji) is normalised in pieces: the ASCII between non-ASCII runs
# takes the fast path. Above this share of non-ASCII bytes the whole text
# takes the Unicode path in one go (fewer, longer calls).
_MIXED_SHARE = 1 / 16
_CHUNK = 64


def normalize(text: str) -> str:
    """Return ``text`` in matching form: NFKC, case-folded, invisible and
    control characters removed, separator runs collapsed to one space, no
    space at either end (see the module docstring)."""
    for char in _SPACED_PUNCTUATION:  # most frequent first
        if text.isascii():  # a flag of the string: free to check
            break
        if char in text:
            text = text.replace(char, " ")
    if text.isascii():
        ascii_folded = text.encode("ascii").translate(_ASCII_TABLE, _ASCII_DELETE)
        return _ASCII_SPACE_RUN.sub(b" ", ascii_folded).strip().decode("ascii")
    extra_bytes = len(text.encode("utf-8", "surrogatepass")) - len(text)
    if len(text) > 64 and extra_bytes < len(text) * _MIXED_SHARE:
        return _SPACE_RUN.sub(" ", _mixed_spaced(text)).strip()
    return _SPACE_RUN.sub(" ", _unicode_spaced(text)).strip()


def _ascii_spaced(text: str) -> str:
    """ASCII ``text`` lower-cased, controls deleted and separators made spaces
    (runs of spaces left for the caller to collapse)."""
    return text.encode("ascii").translate(_ASCII_TABLE, _ASCII_DELETE).decode("ascii")


def _mixed_spaced(text: str) -> str:
    """``_unicode_spaced`` of mostly ASCII text, piece by piece: runs of
    ASCII chunks take the fast path, runs of chunks holding other characters
    the Unicode path (``str.isascii`` on a chunk is far cheaper than a regex
    looking for the characters). Each Unicode piece starts one character
    early: NFKC composes a combining mark with the letter it follows ("e" +
    U+0301), and no step looks across characters otherwise (an ASCII
    character never composes with what follows it)."""
    parts: list[str] = []
    length = len(text)
    done = position = 0
    while position < length:
        end = position + _CHUNK
        if text[position:end].isascii():
            position = end
            continue
        while end < length and not text[end : end + _CHUNK].isascii():
            end += _CHUNK
        cut = max(done, position - 1)
        parts.append(_ascii_spaced(text[done:cut]))
        parts.append(_unicode_spaced(text[cut:end]))
        done = position = end
    parts.append(_ascii_spaced(text[done:]))
    return "".join(parts)


def _unicode_spaced(text: str) -> str:
    """Any ``text`` folded (runs of spaces left for the caller to collapse)."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    # Case folding can leave decomposed sequences; normalising again keeps
    # the result stable.
    if not unicodedata.is_normalized("NFKC", folded):
        folded = unicodedata.normalize("NFKC", folded)
    if "\u0307" in folded:
        # A dot above on i or j is invisible (they are dotted already): this
        # makes a Turkish capital "İ" read as a plain "i".
        folded = folded.replace("i\u0307", "i").replace("j\u0307", "j")
    if _ASTRAL.search(folded) is not None:
        # Tag characters have no NFKC or case mapping, so decoding them after
        # folding is the same as before it.
        folded = _TAG_RUN.sub(_decode_tags, folded)
        # Astral characters left after NFKC are few (emoji, rare scripts):
        # classify each one, so the rest of the text is matched against the
        # BMP classes, which Python's regex engine tests in one lookup.
        folded = _ASTRAL_RUN.sub(_classify_astral, folded)
    folded = _BMP.drop.sub("", folded)
    return _BMP.separators.sub(" ", folded)
