"""What the PII scanners share: the one-byte-per-character views of a text
that let them skip text that cannot hold PII, the rules that tell a number
standing alone from a piece of a longer token, context words, and the
checksums and numbering rules that confirm a candidate.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence

__all__ = [
    "DIGITS", "DIGIT_SHAPE", "LETTERS", "PHONE_SHAPE", "WORD_SHAPE", "Candidate", "ScanText",
    "card_number_valid",
    "glued_after", "glued_before", "last_word_before", "looks_like_date", "luhn_valid",
    "shape_regions", "shape_table", "ssn_valid",
]  # fmt: skip

Candidate = tuple[int, int, str]  # (start, end, pii_type)

# ------------------------------------------------------------- text views

# Fullwidth digits (common in CJK text), typographic dashes and no-break or
# thin spaces read as their ASCII forms; one code point each, so offsets hold.
_FOLD = {chr(0xFF10 + digit): str(digit) for digit in range(10)} | {
    "\uff0d": "-", "\uff0e": ".", "\uff0b": "+", "\uff08": "(", "\uff09": ")",
    "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2212": "-",
    "\u00a0": " ", "\u2009": " ", "\u202f": " ", "\u3000": " ",
}  # fmt: skip
_FOLD_TABLE = str.maketrans(_FOLD)


def shape_table(classes: dict[bytes, bytes]) -> bytes:
    """A ``bytes.translate`` table: each byte of a key maps to its value's
    byte, every other byte to "x"."""
    table = bytearray(b"x" * 256)
    for members, shape in classes.items():
        for byte in members:
            table[byte] = shape[0]
    return bytes(table)


DIGITS = b"0123456789"
LETTERS = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
DIGIT_SHAPE = shape_table({DIGITS: b"d", b" -.": b"s"})
PHONE_SHAPE = shape_table({DIGITS: b"d", b" -.()+/": b"s"})
WORD_SHAPE = shape_table({DIGITS: b"d", LETTERS: b"a"})


class ScanText:
    """A text being scanned, with its byte shapes built on first use. A shape
    maps each code point to one byte ("d" digit, "s" separator, "x" other),
    so ``bytes.find`` can look for the few places worth a pattern."""

    __slots__ = ("_encoded", "_shapes", "iban_like", "text")

    def __init__(self, text: str) -> None:
        if not text.isascii() and any(char in text for char in _FOLD):
            text = text.translate(_FOLD_TABLE)
        self.text = text
        self._encoded: bytes | None = None
        self._shapes: dict[int, bytes] = {}
        # Spans written like an IBAN, valid or not (``_pii_iban.iban_like``).
        self.iban_like: list[tuple[int, int]] | None = None

    def shape(self, table: bytes) -> bytes:
        shaped = self._shapes.get(id(table))
        if shaped is None:
            if self._encoded is None:
                self._encoded = self.text.encode("ascii", "replace")
            shaped = self._shapes[id(table)] = self._encoded.translate(table)
        return shaped


_NEEDLE_PATTERNS: dict[tuple[bytes, ...], re.Pattern[bytes]] = {}


def shape_regions(shape: bytes, needles: Sequence[bytes]) -> Iterator[tuple[int, int]]:
    """Maximal runs of non-"x" bytes of ``shape`` that contain a needle."""
    key = tuple(needles)
    pattern = _NEEDLE_PATTERNS.get(key)
    if pattern is None:
        pattern = _NEEDLE_PATTERNS[key] = re.compile(b"|".join(map(re.escape, needles)))
    position = 0
    while (hit := pattern.search(shape, position)) is not None:
        start = shape.rfind(b"x", position, hit.start()) + 1 or position
        end = shape.find(b"x", hit.start())
        end = len(shape) if end < 0 else end
        yield start, end
        position = end


# ------------------------------------------------------ token boundaries


def glued_before(text: str, start: int) -> bool:
    """The character before ``start`` makes a number part of a longer token
    (a word, "+44...", or the decimals of "3.14...")."""
    if start == 0:
        return False
    char = text[start - 1]
    if char.isascii() and (char.isalnum() or char in "_+"):
        return True
    return char == "." and start >= 2 and text[start - 2].isdecimal()


def glued_after(text: str, end: int) -> bool:
    """The character at ``end`` continues the token: a letter, a digit, or a
    decimal point or dash followed by a digit."""
    if end >= len(text):
        return False
    char = text[end]
    if char.isascii() and (char.isalnum() or char == "_"):
        return True
    return char in ".-" and end + 1 < len(text) and text[end + 1].isdecimal()


def last_word_before(
    pattern: re.Pattern[str], text: str, start: int, window: int
) -> re.Match[str] | None:
    """The last match of ``pattern`` that ends at most ``window`` characters
    before ``start`` with no digit between it and ``start`` (a word about
    another number does not describe this one)."""
    last = None
    for last in pattern.finditer(text, max(0, start - window), start):  # noqa: B007
        pass
    if last is None:
        return None
    between = text[last.end() : start]
    return None if any(char.isdecimal() for char in between) else last


def looks_like_date(groups: Sequence[str], short_year: bool = True) -> bool:
    """Three digit groups reading as year-month-day or day-month-year (or
    month-day-year); the year has four digits, or two if ``short_year``."""
    if len(groups) != 3 or not all(group.isdecimal() for group in groups):
        return False
    first, middle, last = (int(group) for group in groups)
    if len(groups[0]) == 4:
        return 1900 <= first <= 2099 and 1 <= middle <= 12 and 1 <= last <= 31
    if len(groups[2]) in (2, 4) and len(groups[0]) <= 2 and len(groups[1]) <= 2:
        year_ok = 1900 <= last <= 2099 if len(groups[2]) == 4 else short_year
        return year_ok and 1 <= first <= 31 and 1 <= middle <= 31
    return False


# ---------------------------------------------------------- number checks


def luhn_valid(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if position % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


_LONG = range(16, 20)
# (first prefix, last prefix, lengths), prefixes of 1-4 digits, from the
# networks' published IIN ranges.
_CARD_RANGES: tuple[tuple[str, str, range | tuple[int, ...]], ...] = (
    ("4", "4", (13, 16, 19)),  # Visa
    ("51", "55", (16,)),  # Mastercard
    ("2221", "2720", (16,)),  # Mastercard 2-series
    ("2200", "2204", _LONG),  # Mir
    ("34", "34", (15,)),  # American Express
    ("37", "37", (15,)),  # American Express
    ("6011", "6011", _LONG),  # Discover
    ("644", "649", _LONG),  # Discover
    ("65", "65", _LONG),  # Discover
    ("300", "305", range(14, 20)),  # Diners Club Carte Blanche
    ("3095", "3095", range(14, 20)),  # Diners Club International
    ("36", "36", range(14, 20)),  # Diners Club International
    ("38", "39", range(14, 20)),  # Diners Club International
    # JCB is assigned 3528-3589; the whole 35 block is accepted, as common
    # validators do: nothing else issues Luhn-valid 16-19 digit numbers there.
    ("35", "35", _LONG),  # JCB
    ("1800", "1800", (15,)),  # JCB, legacy 15-digit
    ("2131", "2131", (15,)),  # JCB, legacy 15-digit
    ("62", "62", _LONG),  # UnionPay
    ("50", "50", range(12, 20)),  # Maestro
    ("56", "69", range(12, 20)),  # Maestro
    ("0604", "0604", range(12, 20)),  # Maestro, legacy
)
# Per length: (prefix width, first, last) to compare as fixed-width strings.
_CARD_PREFIXES: dict[int, tuple[tuple[int, str, str], ...]] = {
    length: tuple(
        (len(first), first, last) for first, last, lengths in _CARD_RANGES if length in lengths
    )
    for length in range(12, 20)
}


def card_number_valid(digits: str) -> bool:
    """A known issuer range for the number's length, and Luhn valid."""
    for width, first, last in _CARD_PREFIXES.get(len(digits), ()):
        if first <= digits[:width] <= last:
            return luhn_valid(digits)
    return False


def ssn_valid(area: str, group: str, serial: str) -> bool:
    """SSA rules: area not 000, 666 or 900-999; group not 00; serial not 0000."""
    return area not in ("000", "666") and area[0] != "9" and group != "00" and serial != "0000"
