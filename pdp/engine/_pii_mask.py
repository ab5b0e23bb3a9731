"""Format-preserving masks for PII findings."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

__all__ = ["mask_text"]


class _Span(Protocol):
    @property
    def pii_type(self) -> str: ...
    @property
    def start(self) -> int: ...
    @property
    def end(self) -> int: ...


_SECRET_TYPES = frozenset({"secret", "api_key"})


def _mask_all_but_last(value: str, keep: int, counts: Callable[[str], bool]) -> str:
    """Replace each character that ``counts`` by "*", except the last ``keep``."""
    counted = [index for index, char in enumerate(value) if counts(char)]
    hidden = set(counted[: max(0, len(counted) - keep)])
    return "".join("*" if index in hidden else char for index, char in enumerate(value))


def _mask_alnum(value: str) -> str:
    return "".join("*" if char.isalnum() else char for char in value)


def _mask_non_space(value: str) -> str:
    return "".join(char if char.isspace() else "*" for char in value)


def _mask_one(pii_type: str, value: str) -> str:
    if pii_type in ("ssn", "credit_card"):
        return _mask_all_but_last(value, 4, str.isdecimal)
    if pii_type == "phone":
        return _mask_all_but_last(value, 2, str.isdecimal)
    if pii_type == "iban":
        return value[:2] + _mask_all_but_last(value[2:], 4, str.isalnum)
    if pii_type == "email" and value.find("@") > 0:
        return value[0] + "***" + value[value.rindex("@") :]
    if pii_type in _SECRET_TYPES:
        return _mask_non_space(value)  # whole: no character of a secret is a hint
    return _mask_alnum(value)


def mask_text(text: str, matches: Sequence[_Span]) -> str:
    """``text`` with each span masked, keeping only format hints: separators,
    the last 4 digits of a card or SSN, the last 2 of a phone (and the "x" or
    "ext." of its extension), the country and last 4 characters of an IBAN,
    the first character and the domain of an email. A secret is masked whole,
    all but its whitespace. Overlapping spans are masked together, without
    hints (the same span found twice is masked once). Raises ValueError for a
    span outside the text."""
    for match in matches:
        if not 0 <= match.start <= match.end <= len(text):
            raise ValueError(f"span {match.start}..{match.end} is outside the text")
    ordered = sorted(matches, key=lambda m: (m.start, m.end))
    pieces: list[str] = []
    cursor = index = 0
    while index < len(ordered):
        first = ordered[index]
        end, alone, secret = first.end, True, first.pii_type in _SECRET_TYPES
        index += 1
        while index < len(ordered) and ordered[index].start < end:
            other = ordered[index]
            # The same finding from two policies is still one finding.
            same = (other.start, other.end, other.pii_type) == (first.start, end, first.pii_type)
            end, alone = max(end, other.end), alone and same
            secret = secret or other.pii_type in _SECRET_TYPES
            index += 1
        value = text[first.start : end]
        if alone:
            value = _mask_one(first.pii_type, value)
        else:
            value = _mask_non_space(value) if secret else _mask_alnum(value)
        pieces += (text[cursor : first.start], value)
        cursor = end
    pieces.append(text[cursor:])
    return "".join(pieces)
