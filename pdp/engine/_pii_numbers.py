"""Card numbers and US Social Security numbers.

Both are read from chains of digit groups joined by one kind of separator
(a space, a dash or a dot), and a finding is always made of whole groups: a
16-digit number that fails the Luhn check is not reported in part because
its first 12 digits would pass it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from . import _pii_validators as rules
from ._pii_iban import iban_like
from ._pii_validators import Candidate, ScanText

__all__ = ["scan_numbers"]

# Digit groups joined by one kind of single separator.
_NUMBER_CHAIN = re.compile(r"\d++(?:([ .-])\d++(?:\1\d++)*+)?+", re.ASCII)
# Every card or SSN holds "digit separator digit" or nine digits in a row.
_NUMBER_NEEDLES = (b"dsd", b"d" * 9)

_SSN_CONTEXT = re.compile(
    r"(?i)(?<![a-z])(?:ssns?|social[\s-]*security|soc\.?\s*sec|ss\s*#|ss\s*no\b)"
)
_SSN_CONTEXT_BEFORE = 32
# 12- and 13-digit card numbers (Maestro, old Visa) are rare, and as many
# product codes and parcel numbers pass their checks: only after a card word.
_CARD_CONTEXT = re.compile(
    r"(?i)(?<![a-z])(?:cards?|cc|visa|master\s*card|maestro|amex|american\s+express|discover"
    r"|diners|jcb|union\s*pay|debit|credit|pan)(?![a-z])"
)
_CARD_CONTEXT_BEFORE = 32
_SHORT_CARD = 14
_SSN_CONTEXT_AFTER = 24


def _ssn_context(text: str, start: int, end: int) -> bool:
    """An SSN word shortly before the number, or just after it ("123456789
    is my SSN"), with no other number between."""
    if rules.last_word_before(_SSN_CONTEXT, text, start, _SSN_CONTEXT_BEFORE):
        return True
    after = _SSN_CONTEXT.search(text, end, end + _SSN_CONTEXT_AFTER)
    return after is not None and not any(c.isdecimal() for c in text[end : after.start()])


def scan_numbers(scan: ScanText, out: list[Candidate], cards: bool, ssns: bool) -> None:
    text = scan.text
    for low, high in rules.shape_regions(scan.shape(rules.DIGIT_SHAPE), _NUMBER_NEEDLES):
        for match in _NUMBER_CHAIN.finditer(text, low, high):
            start, end = match.span()
            if end - start >= 9:  # shorter numbers, most of those in prose, are neither
                _check_chain(scan, match, cards, ssns, out)


def _check_chain(
    scan: ScanText, match: re.Match[str], cards: bool, ssns: bool, out: list[Candidate]
) -> None:
    text = scan.text
    separator = match.group(1) or ""
    groups = match.group().split(separator) if separator else [match.group()]
    starts = [match.start()]
    for group in groups[:-1]:
        starts.append(starts[-1] + len(group) + 1)
    # A group glued to a word or a decimal point is part of something else.
    if rules.glued_before(text, match.start()):
        del groups[0], starts[0]
    if groups and rules.glued_after(text, match.end()):
        del groups[-1], starts[-1]
    if not groups:
        return
    if ssns and _add_ssn(text, groups, starts, out):
        return
    if cards:
        for first, after in _card_spans(groups, separator):
            start, last = starts[first], after - 1
            end = starts[last] + len(groups[last])
            if iban_like(scan, start):
                continue  # the account number inside an IBAN
            if end - start - (after - first - 1) < _SHORT_CARD and not rules.last_word_before(
                _CARD_CONTEXT, text, start, _CARD_CONTEXT_BEFORE
            ):
                continue
            out.append((start, end, "credit_card"))


def _add_ssn(text: str, groups: list[str], starts: list[int], out: list[Candidate]) -> bool:
    """Adds the SSN the chain is, if it is one; True when it has SSN shape."""
    if [len(group) for group in groups] == [3, 2, 4]:
        if rules.ssn_valid(*groups):
            out.append((starts[0], starts[2] + 4, "ssn"))
        return True
    if len(groups) == 1 and len(groups[0]) == 9:
        # Nine bare digits are an SSN only next to a word that says so.
        digits, start = groups[0], starts[0]
        if rules.ssn_valid(digits[:3], digits[3:5], digits[5:]) and _ssn_context(
            text, start, start + 9
        ):
            out.append((start, start + 9, "ssn"))
            return True
    return False


def _card_spans(groups: Sequence[str], separator: str) -> list[tuple[int, int]]:
    """(first, after) group indexes of each card in a chain. A card is one
    group of 12-19 digits, 4-6-5 or 4-6-4 digits, or a run of four-digit
    groups taken whole, maybe with a short last group (4-4-4-4-3, or a
    4-4-4-4 card followed by its CVV)."""
    found: list[tuple[int, int]] = []
    index, count = 0, len(groups)
    while index < count:
        size = len(groups[index])
        if 12 <= size <= 19:
            # Alone, or after a space ("qty 2 4111..."); after a dot it is decimals.
            if (count == 1 or separator == " ") and rules.card_number_valid(groups[index]):
                found.append((index, index + 1))
            index += 1
        elif size == 4 and index + 2 < count and len(groups[index + 1]) == 6:
            after = index + 3
            if len(groups[index + 2]) in (4, 5) and rules.card_number_valid(
                "".join(groups[index:after])
            ):
                found.append((index, after))
            index = after
        elif size == 4:
            index = _four_digit_run(groups, index, found)
        else:
            index += 1
    return found


def _four_digit_run(groups: Sequence[str], first: int, found: list[tuple[int, int]]) -> int:
    """Reads the run of four-digit groups that starts at ``first``; returns
    the index after what it read."""
    end = first
    while end < len(groups) and len(groups[end]) == 4:
        end += 1
    run = "".join(groups[first:end])
    tail = groups[end] if end < len(groups) and len(groups[end]) < 4 else ""
    if len(run) in (12, 16) and tail and rules.card_number_valid(run + tail):
        # 4-4-4-1, 4-4-4-3, 4-4-4-4-3; when a 4-4-4-4 card followed by its CVV
        # reads as a 19-digit one too, masking the CVV with it does no harm.
        found.append((first, end + 1))
        return end + 1
    if len(run) in (12, 16) and rules.card_number_valid(run):
        found.append((first, end))
    elif len(run) > 16 and len(run) % 16 == 0:
        # Cards listed one after another: each block of four groups is whole.
        blocks = [(at, at + 4) for at in range(first, end, 4)]
        if all(rules.card_number_valid("".join(groups[a:b])) for a, b in blocks):
            found.extend(blocks)
    return end
