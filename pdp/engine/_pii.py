"""PII detection and format-preserving masking.

Each type has a pattern that proposes candidates and a validator that
decides: Luhn and issuer ranges for cards, SSA rules for SSNs, mod-97 for
IBANs, octet ranges for IPv4, shape rules for phones. Patterns only run where
a byte-level prefilter found what they need (a run of digits, an "@"), and are
written so that no input makes them backtrack more than a constant amount per
character: separators between digit groups are mandatory and repeats are
possessive or bounded. Digits are ASCII or fullwidth; typographic dashes and
no-break spaces count as separators.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from . import _pii_validators as rules
from ._pii_validators import Candidate, ScanText

__all__ = ["PII_TYPES", "PiiDetector", "PiiMatch", "mask_text"]

PII_TYPES: frozenset[str] = frozenset(
    {"ssn", "credit_card", "email", "phone", "iban", "ip_address", "api_key"}
)

# Where candidates of different types overlap, the more specific type wins.
_PRIORITY = {
    name: rank
    for rank, name in enumerate(
        ("api_key", "iban", "credit_card", "ssn", "email", "ip_address", "phone")
    )
}


@dataclass(frozen=True, slots=True)
class PiiMatch:
    """A span of ``pii_type`` in a text: code-point offsets, end exclusive."""

    pii_type: str
    start: int
    end: int


_Scanner = Callable[[ScanText, list[Candidate]], None]

_DIGIT_ANCHORED = frozenset({"ssn", "credit_card", "phone", "iban", "ip_address"})
_ASCII_DIGITS = b"0123456789"

# ---------------------------------------------------------------- cards, SSNs

# Digit groups joined by one kind of single separator.
_NUMBER_CHAIN = re.compile(r"\d++(?:([ -])\d++(?:\1\d++)*+)?+", re.ASCII)
# Every card or SSN holds "digit separator digit" or nine digits in a row.
_NUMBER_NEEDLES = (b"dsd", b"d" * 9)
_SSN_CONTEXT = re.compile(
    r"(?i)(?<![a-z])(?:ssns?|social[\s-]*security|soc\.?\s*sec|ss\s*#|ss\s*no\b)"
)
_SSN_CONTEXT_WINDOW = 32


def _ssn_context_before(text: str, start: int) -> bool:
    """An SSN word shortly before ``start``, with no other number between."""
    words = _SSN_CONTEXT.findall(text, max(0, start - _SSN_CONTEXT_WINDOW), start)
    if not words:
        return False
    last_end = text.rindex(words[-1], 0, start) + len(words[-1])
    return not any(char.isdecimal() for char in text[last_end:start])


def _card_window_end(groups: Sequence[str], first: int) -> int:
    """Index after the last group of the longest valid card that starts at
    group ``first``, or 0. Grouped cards read 4-4-4-4(-3), 4-6-5 or 4-6-4."""
    head = groups[first]
    if 12 <= len(head) <= 19:
        return first + 1 if rules.card_number_valid(head) else 0
    if len(head) != 4:
        return 0
    best = 0
    if (  # 4-6-5 or 4-6-4
        first + 2 < len(groups)
        and len(groups[first + 1]) == 6
        and len(groups[first + 2]) in (4, 5)
        and rules.card_number_valid(head + groups[first + 1] + groups[first + 2])
    ):
        best = first + 3
    digits, index = head, first + 1
    while index < len(groups):
        size = len(groups[index])
        if size > 4 or len(digits) + size > 19:
            break
        digits += groups[index]
        index += 1
        if len(digits) >= 12 and index > best and rules.card_number_valid(digits):
            best = index
        if size < 4:
            break
    return best


def _scan_numbers(scan: ScanText, out: list[Candidate], cards: bool, ssns: bool) -> None:
    text = scan.text
    for low, high in rules.shape_regions(scan.shape(rules.DIGIT_SHAPE), _NUMBER_NEEDLES):
        for match in _NUMBER_CHAIN.finditer(text, low, high):
            start, end = match.span()
            if end - start >= 9:  # shorter numbers, most of those in prose, are neither
                _check_number_chain(text, match, cards, ssns, out)


def _check_number_chain(
    text: str, match: re.Match[str], cards: bool, ssns: bool, out: list[Candidate]
) -> None:
    separator = match.group(1)
    groups = match.group().split(separator) if separator else [match.group()]
    starts = [match.start()]
    for group in groups[:-1]:
        starts.append(starts[-1] + len(group) + 1)
    # A group glued to a word or a decimal point is part of something else.
    if rules.glued_before(text, match.start()):
        del groups[0], starts[0]
    if groups and rules.glued_after(text, match.end()):
        del groups[-1], starts[-1]
    if ssns and len(groups) == 3 and [len(group) for group in groups] == [3, 2, 4]:
        if rules.ssn_valid(*groups):
            out.append((starts[0], starts[2] + 4, "ssn"))
        return
    if ssns and len(groups) == 1 and len(groups[0]) == 9:
        # Nine bare digits are an SSN only right after a word that says so.
        digits = groups[0]
        if rules.ssn_valid(digits[:3], digits[3:5], digits[5:]) and _ssn_context_before(
            text, starts[0]
        ):
            out.append((starts[0], starts[0] + 9, "ssn"))
        return
    index = 0
    while cards and index < len(groups):
        after = _card_window_end(groups, index)
        if after:
            out.append((starts[index], starts[after - 1] + len(groups[after - 1]), "credit_card"))
            index = after
        else:
            index += 1


# ---------------------------------------------------------------------- phones

_PHONE = re.compile(
    r"(?<![\w+])"
    r"(?:(?:\+[ ]?|00)(?P<country>[1-9]\d{0,2})[ .\-]?)?+"
    r"(?:\((?P<area>\d{1,5})\)[ .\-]?)?+"
    r"(?P<body>\d{7,15}+(?![ .\-]?\d)"
    r"|\d{1,6}+(?:(?P<sep>[ .\-])\d{1,6}+(?:(?P=sep)\d{1,6}+){0,6}+)?+)"
    r"(?:[ ]?(?:[xX]|[eE]xt\.?|\#)[ ]?\d{1,6}+)?+",
    re.ASCII,
)
_PHONE_NEEDLES = (b"dsd", b"d" * 7)
_PHONE_EXTENSION_ROOM = 12  # "x123", " ext. 123" run past a digit region
_PHONE_GROUP = re.compile(r"[ .\-]")
_PHONE_CONTEXT = re.compile(
    r"(?i)\b(?:phone|telephone|tel|telefon|tlf|mobile|mob|cell|fax|call|dial"
    r"|whatsapp|sms|contact|reach)\b"
)
# A phone word before the number ("Phone: ...") or just after it ("... (mobile)").
_PHONE_CONTEXT_BEFORE = 32
_PHONE_CONTEXT_AFTER = 16


def _scan_phones(scan: ScanText, out: list[Candidate]) -> None:
    text = scan.text
    shape = scan.shape(rules.PHONE_SHAPE)
    for low, high in rules.shape_regions(shape, _PHONE_NEEDLES):
        if shape.count(b"d", low, high) < 7:
            continue
        limit = min(len(text), high + _PHONE_EXTENSION_ROOM)
        position = low
        while (match := _PHONE.search(text, position, limit)) and match.start() < high:
            end, separator = match.end(), match.group("sep")
            if separator and text.startswith(separator, end) and text[end + 1 : end + 2].isdigit():
                position = end  # more groups than a phone has: a list of numbers
            elif _phone_valid(text, match):
                out.append((match.start(), end, "phone"))
                position = end
            else:  # a rejected run may still end in a phone: retry one group on
                position = match.start() + 1


def _phone_valid(text: str, match: re.Match[str]) -> bool:
    start, end = match.span()
    if rules.glued_after(text, end) or (
        start >= 2 and text[start - 1] in ".-/:" and text[start - 2].isdecimal()
    ):
        return False
    verdict = rules.phone_shape(
        country=match.group("country") or "",
        area=match.group("area"),
        groups=_PHONE_GROUP.split(match.group("body")),
        separator=match.group("sep") or "",
    )
    if verdict is not None:
        return verdict
    return bool(
        _PHONE_CONTEXT.search(text, max(0, start - _PHONE_CONTEXT_BEFORE), start)
        or _PHONE_CONTEXT.search(text, end, end + _PHONE_CONTEXT_AFTER)
    )


# ------------------------------------------------------------ IBANs and IPv4

_IBAN = re.compile(
    r"(?<!\w)[A-Za-z]{2}\d{2}(?:[ ]?[A-Za-z0-9]{4}){2,7}+(?:[ ]?[A-Za-z0-9]{1,4})?+", re.ASCII
)


def _scan_ibans(scan: ScanText, out: list[Candidate]) -> None:
    text, shape = scan.text, scan.shape(rules.WORD_SHAPE)
    index = shape.find(b"aadd")
    while index >= 0:
        match = _IBAN.match(text, index)
        if match is not None:
            _check_iban(text, match, out)
        index = shape.find(b"aadd", match.end() if match else index + 1)


def _check_iban(text: str, match: re.Match[str], out: list[Candidate]) -> None:
    raw = match.group()
    parts = raw.split(" ")
    if len(parts) > 1 and any(len(part) != 4 for part in parts[:-1]):
        return  # spaces come every four characters or not at all
    expected = rules.IBAN_LENGTHS.get(raw[:2].upper())
    if len(parts) > 1 and expected is not None:
        # A spaced IBAN may have taken in the next short word: cut at its length.
        kept, count = [], 0
        for part in parts:
            if count >= expected:
                break
            kept.append(part)
            count += len(part)
        if count != expected:
            return
        raw = " ".join(kept)
    elif rules.glued_after(text, match.end()):
        return
    if rules.iban_valid(raw.replace(" ", "")):
        out.append((match.start(), match.start() + len(raw), "iban"))


_IPV4 = re.compile(r"(?<![\w.])(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})(?!\.\d)", re.ASCII)
_VERSION_BEFORE = re.compile(r"(?i)(?:\bversion|\bver\.?|\bv)\s*$")


def _scan_ips(scan: ScanText, out: list[Candidate]) -> None:
    text = scan.text
    shape = scan.shape(rules.PHONE_SHAPE)
    for low, high in rules.shape_regions(shape, (b"dsd",)):
        for match in _IPV4.finditer(text, low, high):
            start = match.start()
            octets = match.groups()  # 0-255, without leading zeros
            if (
                all((int(octet) <= 255 and octet[0] != "0") or octet == "0" for octet in octets)
                and not rules.glued_after(text, match.end())
                and not _VERSION_BEFORE.search(text, max(0, start - 10), start)
            ):
                out.append((start, match.end(), "ip_address"))
    if ":" in text:
        rules.scan_ipv6(scan, out)


# ------------------------------------------------------------------- detector


def _resolve(candidates: list[Candidate]) -> list[PiiMatch]:
    """Keep non-overlapping candidates, the higher priority first, then the
    earlier, then the longer; return them in text order."""
    candidates.sort(key=lambda c: (_PRIORITY[c[2]], c[0], c[0] - c[1]))
    starts: list[int] = []
    kept: list[PiiMatch] = []
    for start, end, pii_type in candidates:
        index = bisect.bisect_right(starts, start)
        if (index and kept[index - 1].end > start) or (index < len(starts) and starts[index] < end):
            continue
        starts.insert(index, start)
        kept.insert(index, PiiMatch(pii_type, start, end))
    return kept


class PiiDetector:
    """Finds PII of the configured types. Build one per policy and reuse it:
    patterns are compiled once, at import."""

    __slots__ = ("_digit_anchored", "_ipv6", "_scanners", "types")

    def __init__(self, types: Iterable[str]) -> None:
        if isinstance(types, str):
            raise TypeError("types must be a collection of PII type names, not a string")
        wanted = frozenset(types)
        unknown = sorted(wanted - PII_TYPES)
        if unknown:
            names = ", ".join(repr(name) for name in unknown)
            raise ValueError(f"unknown PII type {names}; known: {', '.join(sorted(PII_TYPES))}")
        self.types: frozenset[str] = wanted
        scanners: list[_Scanner] = []
        if wanted & {"credit_card", "ssn"}:
            cards, ssns = "credit_card" in wanted, "ssn" in wanted
            scanners.append(lambda scan, out: _scan_numbers(scan, out, cards, ssns))
        by_type: dict[str, _Scanner] = {
            "api_key": rules.scan_secrets,
            "iban": _scan_ibans,
            "email": rules.scan_emails,
            "ip_address": _scan_ips,
            "phone": _scan_phones,
        }
        scanners.extend(scan for name, scan in by_type.items() if name in wanted)
        self._scanners: tuple[_Scanner, ...] = tuple(scanners)
        # Every candidate of these types holds a decimal digit, so text
        # without one (most prose) needs no scanner at all.
        self._digit_anchored = wanted <= _DIGIT_ANCHORED
        self._ipv6 = "ip_address" in wanted  # may be written with hex letters only

    def find(self, text: str) -> list[PiiMatch]:
        """Findings of the configured types: non-overlapping, sorted by start."""
        if (
            self._digit_anchored
            and text.isascii()
            # No ASCII digit: deleting them all changes nothing. (One C pass,
            # no per-character Python; non-ASCII text may hold fullwidth
            # digits and takes the general path.)
            and len(text.encode().translate(None, _ASCII_DIGITS)) == len(text)
            and not (self._ipv6 and ":" in text)
        ):
            return []
        scan = ScanText(text)
        candidates: list[Candidate] = []
        for scanner in self._scanners:
            scanner(scan, candidates)
        return _resolve(candidates) if candidates else []


# -------------------------------------------------------------------- masking


def _mask_all_but_last(value: str, keep: int, counts: Callable[[str], bool]) -> str:
    """Replace each character that ``counts`` by "*", except the last ``keep``."""
    counted = [index for index, char in enumerate(value) if counts(char)]
    hidden = set(counted[: max(0, len(counted) - keep)])
    return "".join("*" if index in hidden else char for index, char in enumerate(value))


def _mask_alnum(value: str) -> str:
    return "".join("*" if char.isalnum() else char for char in value)


def _mask_non_space(value: str) -> str:
    return "".join(char if char.isspace() else "*" for char in value)


_KEY_PREFIX = re.compile(
    r"sk-(?:proj-|svcacct-|admin-|ant-(?:api|admin)\d\d-)?|(?:sk|rk)_(?:live|test)_"
    r"|AKIA|ASIA|gh[pousr]_|github_pat_|xox[abpr]-|AIza|eyJ"
)


def _mask_secret(value: str) -> str:
    if value.startswith("-----BEGIN"):  # keep the armour lines, mask the key
        header_end = value.find("-----", 10) + 5
        footer = value.rfind("-----END")
        footer = footer if footer >= header_end else len(value)
        return value[:header_end] + _mask_non_space(value[header_end:footer]) + value[footer:]
    prefix = _KEY_PREFIX.match(value)
    keep = prefix.end() if prefix else 0
    return value[:keep] + _mask_non_space(value[keep:])


def _mask_one(pii_type: str, value: str) -> str:
    if pii_type in ("ssn", "credit_card"):
        return _mask_all_but_last(value, 4, str.isdecimal)
    if pii_type == "phone":
        return _mask_all_but_last(value, 2, str.isdecimal)
    if pii_type == "iban":
        return value[:2] + _mask_all_but_last(value[2:], 4, str.isalnum)
    if pii_type == "email" and value.find("@") > 0:
        return value[0] + "***" + value[value.rindex("@") :]
    if pii_type == "api_key":
        return _mask_secret(value)
    return _mask_alnum(value)


def mask_text(text: str, matches: Sequence[PiiMatch]) -> str:
    """``text`` with each span masked, keeping only format hints: separators,
    the last 4 digits of a card or SSN, the last 2 of a phone, the country and
    last 4 characters of an IBAN, the first character and the domain of an
    email, the known prefix of a key. Overlapping spans are masked together,
    without hints. Raises ValueError for a span outside the text."""
    for match in matches:
        if not 0 <= match.start <= match.end <= len(text):
            raise ValueError(f"span {match.start}..{match.end} is outside the text")
    ordered = sorted(matches, key=lambda m: (m.start, m.end))
    pieces: list[str] = []
    cursor = index = 0
    while index < len(ordered):
        first = ordered[index]
        end, alone = first.end, True
        index += 1
        while index < len(ordered) and ordered[index].start < end:
            end, alone = max(end, ordered[index].end), False
            index += 1
        value = text[first.start : end]
        pieces += (
            text[cursor : first.start],
            _mask_one(first.pii_type, value) if alone else _mask_alnum(value),
        )
        cursor = end
    pieces.append(text[cursor:])
    return "".join(pieces)
