"""Helpers for the PII detector tests: findings as (type, text) pairs, masked
text, checksummed values, and the scripts of ``bench/`` loaded as modules."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

from bench import _pii_values
from pdp.engine._pii import PII_TYPES, PiiDetector, mask_text

__all__ = [
    "ALL", "ALNUM", "found", "iban", "masked", "token", "with_check_digit",
]  # fmt: skip

REPO = Path(__file__).resolve().parents[2]
ALL = PiiDetector(PII_TYPES - {"api_key"})
ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
_RANDOM = random.Random(7)


def found(text: str, detector: PiiDetector = ALL) -> list[tuple[str, str]]:
    """(type, matched text) for each finding."""
    return [(m.pii_type, text[m.start : m.end]) for m in detector.find(text)]


def masked(text: str, detector: PiiDetector = ALL) -> str:
    return mask_text(text, detector.find(text))


def iban(country: str, bban: str) -> str:
    """A compact IBAN with correct ISO 7064 check digits."""
    numeric = "".join(str(int(char, 36)) for char in bban + country + "00")
    return f"{country}{98 - int(numeric) % 97:02d}{bban}"


def token(length: int, alphabet: str = ALNUM) -> str:
    return "".join(_RANDOM.choice(alphabet) for _ in range(length))


# Card numbers are made the way the generated records make them.
with_check_digit: Callable[[str], str] = _pii_values.with_check_digit
