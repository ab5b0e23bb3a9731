"""Phone numbers.

A candidate is a whole chain of digit groups: an optional "+" or "00" and
country code, groups joined by a space, a dash, a dot or a slash, an area
code in parentheses or a "(0)" trunk, and an optional extension. The chain is
a phone or not as a whole, never in part, so the tail of a parcel tracking
number or of a coordinate is not reported. It is a phone when it reads like
one on its own (international format, an area code in parentheses, North
American numbering, a national trunk prefix "0"), or when a phone word is
next to it; it is not when its nearest context word names another kind of
number (order, ticket, tracking, SKU, coordinates, an SSN...).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from . import _pii_validators as rules
from ._pii_validators import Candidate, ScanText

__all__ = ["scan_phones"]

_GROUP = r"(?:\(\d{1,5}\)[ .\-]?)?\d++"  # digits, maybe after "(area)" or "(0)"
_JOINER = r"(?:[ ][\-./][ ]|[\-./ ])"
_PHONE = re.compile(
    rf"(?P<lead>\+[ ]?|00(?=[1-9]))?+"
    r"(?=(?:[ \-./()]{0,3}\d){7})"  # seven digits ahead: short numbers cost no Python
    rf"(?P<chain>{_GROUP}(?:(?:{_JOINER}|(?=\())?+{_GROUP}){{0,12}}+)"
    r"(?P<ext>[ ]?,?[ ]?(?:[xX]|[eE]xt\.?|[eE]xtension)[ ]?\d{1,6}+)?+",
    re.ASCII,
)
_TOKEN = re.compile(r"(?:\((?P<paren>\d{1,5})\)[ .\-]?)?(?P<digits>\d++)|(?P<join>[^\d(]+)")
_DIGIT_RUN = re.compile(r"\d+", re.ASCII)
_MAX_DIGITS = 16  # E.164 allows 15, and a "(0)" may be written among them
_MAX_GROUPS = 9  # "+33 (0)1 23 45 67 89" has 7
_MAX_CUTS = 3
_NEEDLES = (b"dsd", b"dssd", b"dsssd", b"d" * 7)  # " / ", " (0) " join groups too
_EXTENSION_ROOM = 16  # "x123", " ext. 123" run past a digit region

# Country calling codes (ITU-T E.164): "1" and "7", these two-digit codes, and
# three digits otherwise.
_TWO_DIGIT_CODES = frozenset(
    ("20", "27", "30", "31", "32", "33", "34", "36", "39", "40", "41", "43", "44", "45", "46",
     "47", "48", "49", "51", "52", "53", "54", "55", "56", "57", "58", "60", "61", "62", "63",
     "64", "65", "66", "81", "82", "84", "86", "90", "91", "92", "93", "94", "95", "98")
)  # fmt: skip
# National significant number lengths where the plan fixes them.
_NATIONAL_LENGTHS: dict[str, tuple[int, ...]] = {
    "1": (10,), "7": (10,), "27": (9,), "31": (9,), "33": (9,), "34": (9,),
    "44": (9, 10), "61": (9,), "86": (10, 11), "91": (10,),
}  # fmt: skip

_CONTEXT = re.compile(
    r"(?i)(?<![a-z])(?:"
    r"(?P<phone>(?:tele?)?phone|tel|telefon|t[ée]l[ée]phone|tel[ée]fono|tlf|mob(?:ile)?|cell"
    r"(?:phone)?|fax|call(?:ing|er)?|dial|whats-?app|sms|text\s+me|contact|reach|ring"
    r"|hotline|helpline|my\s+(?:new\s+|current\s+|direct\s+)?number|[mt]\s*:)"
    r"|(?P<other>orders?|invoices?|inv|tickets?|cases?|incident|ref(?:erence)?|tracking|track"
    r"|shipments?|parcels?|packages?|courier|waybill|awb|sku|upc|ean|gtin|isbn|imei|part|items?"
    r"|products?|serial|model|ids?|accounts?|acct|routing|iban|bic|swift|po|lot|batch"
    r"|version|build|release|zip|postal|postcode|lat|lon|lng|latitude|longitude|coordinates"
    r"|gps|geo|amount|total|price|balance|usd|eur|gbp|ssn|social\s+security|licen[cs]e"
    r"|passport|policy|claim|booking|reservation|confirmation|transaction|txn|receipt|address"
    r"|nhs|mrn|vat|tax|ein|tin)"
    r")(?![a-z])"
)
_CONTEXT_BEFORE = 32
_PHONE_WORD_AFTER = re.compile(
    r"(?i)[ \t]*[(-]?[ \t]*(?:mobile|cell|office|fax|home|work|tel|phone)\b"
)


@dataclass(frozen=True, slots=True)
class _Chain:
    """A candidate's parts: the digit groups (parenthesised area codes apart),
    the joiners between groups, and whether an area code was written in
    parentheses."""

    lead: str
    groups: tuple[str, ...]
    joiners: tuple[str, ...]
    parenthesised: bool
    trunk_zero: bool  # a "(0)" after the country code, not dialled from abroad


def scan_phones(scan: ScanText, out: list[Candidate]) -> None:
    text = scan.text
    shape = scan.shape(rules.PHONE_SHAPE)
    for low, high in rules.shape_regions(shape, _NEEDLES):
        if shape.count(b"d", low, high) < 7:
            continue
        limit = min(len(text), high + _EXTENSION_ROOM)
        position = low
        while (match := _PHONE.search(text, position, limit)) and match.start() < high:
            position = match.end()
            if _continues_chain(text, match.start()):
                continue  # the rest of a chain longer than the pattern reads
            phone = match if _is_phone(text, match) else _phone_then_more(text, match)
            if phone is not None:
                out.append((phone.start(), phone.end(), "phone"))


def _continues_chain(text: str, start: int) -> bool:
    """A digit and a joiner (" ", "-", " / "...) come right before ``start``:
    the match is the tail of a longer chain of groups, or the number after a
    phone that ``_phone_then_more`` cut off, and no phone of its own."""
    if text[start] in "+(":
        return False
    at = start - 1
    while at >= 0 and start - at <= 3 and text[at] in " -./":
        at -= 1
    return start - at > 1 and at >= 0 and text[at].isdecimal()


def _phone_then_more(text: str, match: re.Match[str]) -> re.Match[str] | None:
    """A phone written with dashes or dots, then a space and another number
    ("+1 415-555-2671 123-45-6789"): the longest run of whole groups, ending
    at a space, that is a phone. A chain joined by spaces only (a tracking
    number) is not cut."""
    chain = match.group()
    if " " not in chain or not any(joiner in chain for joiner in "-./"):
        return None
    cut, tries = len(chain), 0
    while (cut := chain.rfind(" ", 0, cut)) > 0 and tries < _MAX_CUTS:
        if not (chain[cut - 1].isdecimal() and chain[cut + 1 : cut + 2].isdecimal()):
            continue
        digits = sum(map(len, _DIGIT_RUN.findall(chain, 0, cut)))
        if digits < 7:
            return None
        if digits <= _MAX_DIGITS:
            tries += 1
            prefix = _PHONE.match(text, match.start(), match.start() + cut)
            if prefix and prefix.end() == match.start() + cut and _is_phone(text, prefix):
                return prefix
    return None


def _parse(match: re.Match[str]) -> _Chain:
    groups: list[str] = []
    joiners: list[str] = []
    parenthesised = trunk_zero = False
    joiner = ""
    for token in _TOKEN.finditer(match.group("chain")):
        if token.group("join") is not None:
            joiner = token.group("join").strip() or " "
            continue
        paren = token.group("paren")
        if paren == "0" and groups:
            trunk_zero = True  # "+44 (0)20 ...": not dialled from abroad
        elif paren is not None:
            parenthesised = True
            if groups:
                joiners.append(joiner)
            groups.append(paren)
            joiner = "()"
        if groups:
            joiners.append(joiner)
        groups.append(token.group("digits"))
        joiner = ""
    return _Chain(
        (match.group("lead") or "").strip(),
        tuple(groups),
        tuple(joiners),
        parenthesised,
        trunk_zero,
    )


def _is_phone(text: str, match: re.Match[str]) -> bool:
    start, end = match.span()
    # Cheap counts first: most chains in a long run of numbers fail them.
    runs = _DIGIT_RUN.findall(match.group("chain"))
    if not 7 <= sum(map(len, runs)) <= _MAX_DIGITS or len(runs) > _MAX_GROUPS:
        return False
    chain = _parse(match)
    digits = sum(map(len, chain.groups))
    if chain.lead == "+":
        return _international(chain) and _stands_alone(text, start, end)
    if not chain.lead and (digits > 15 or _not_a_phone_shape(chain)):
        return False
    context = _context_before(text, start)
    if context == "other":
        return False  # "Order #...", "tracking ...", "lat ..."
    if chain.lead:  # "00" and a country code
        return _international(chain) and _stands_alone(text, start, end)
    if text[start - 1 : start] == "#" and context is None:
        return False  # "#4521-8876": an order or ticket number
    if context == "mixed":  # "call our order line at ...", but "Contact ID 1234567"
        return _national_shape(chain, digits) and _stands_alone(text, start, end)
    return (
        context == "phone"
        or _national_shape(chain, digits)
        or _PHONE_WORD_AFTER.match(text, end) is not None
    ) and _stands_alone(text, start, end)


def _context_before(text: str, start: int) -> str | None:
    """The words shortly before ``start``: "phone" when the nearest is a
    phone word, "other" when only words naming other kinds of numbers come,
    "mixed" when the nearest is such a word and a phone word comes before
    it, None when there are none. Words before another number do not count."""
    low = max(0, start - _CONTEXT_BEFORE)
    for at in range(start - 1, low - 1, -1):
        if text[at].isdecimal():
            low = at + 1
            break
    kinds = [word.lastgroup for word in _CONTEXT.finditer(text, low, start)]
    if not kinds:
        return None
    if kinds[-1] == "phone":
        return "phone"
    return "mixed" if "phone" in kinds else "other"


def _stands_alone(text: str, start: int, end: int) -> bool:
    """Not glued to a word, a code or a signed or decimal number."""
    if rules.glued_after(text, end) or text[end : end + 1] in ("%", "°"):
        return False
    if start == 0:
        return True
    before = text[start - 1]
    if before.isascii() and (before.isalnum() or before == "_"):
        return False
    if start >= 2 and (
        (before in "-./" and text[start - 2].isalnum())
        or (before == ":" and text[start - 2].isdecimal())
    ):
        return False  # "PO-4410-2231", "v2.1", "12:30"
    if before == "-" and start < len(text) and text[start].isdecimal():
        return False  # a negative number, "-74.0060"
    return not _continues_code(text, start)


def _continues_code(text: str, start: int) -> bool:
    """The chain ends a code written in spaced parts, "1Z 999 AA1 01 2345
    6784": the words before it, up to a word in small letters, hold one that
    mixes letters and digits."""
    position = start
    for _ in range(6):
        if position < 2 or text[position - 1] != " ":
            return False
        word_start = position - 1
        while word_start > 0 and text[word_start - 1].isascii() and text[word_start - 1].isalnum():
            word_start -= 1
        word = text[word_start : position - 1]
        if not word or any(c.islower() for c in word):
            return False
        if any(c.isdecimal() for c in word) and any(c.isalpha() for c in word):
            return True
        position = word_start
    return False


def _international(chain: _Chain) -> bool:
    """ "+49 30 1234567", "+14155552671", "0044 20 7946 0958"."""
    groups = chain.groups
    if len(groups) == 1:  # written without spaces: the country code is not marked
        return chain.lead == "+" and 8 <= len(groups[0]) <= 15
    digits = "".join(groups)
    if len(groups[0]) <= 3:  # "+49 30 ...": the first group is the country code
        code = groups[0]
    else:  # "+447700 900 123": the code is read off the digits
        code = digits[:1] if digits[0] in "17" else digits[:2]
        code = code if len(code) == 1 or code in _TWO_DIGIT_CODES else digits[:3]
    valid_code = (
        code in ("1", "7") or code in _TWO_DIGIT_CODES
        if len(code) < 3
        else code[0] not in "17" and code[:2] not in _TWO_DIGIT_CODES
    )
    national = len(digits) - len(code)
    lengths = _NATIONAL_LENGTHS.get(code)
    return (
        valid_code
        and code[0] != "0"
        and 4 <= national <= 14
        and len(digits) <= 15
        and (lengths is None or national in lengths)
        and not _mixes_dots(chain)
    )


def _mixes_dots(chain: _Chain) -> bool:
    """Dots mixed with spaces or dashes: "40.7128 -74.0060", not a phone
    ("02/123.45.67" is one)."""
    kinds = set(chain.joiners)
    return "." in kinds and bool(kinds & {" ", "-"})


def _not_a_phone_shape(chain: _Chain) -> bool:
    """Dates, SSNs, IPv4 addresses and decimal numbers."""
    groups, joiners = chain.groups, chain.joiners
    sizes = [len(group) for group in groups]
    if chain.parenthesised:
        return False
    if sizes == [3, 2, 4]:
        return True  # the shape of an SSN, whatever the separator
    for at in range(len(groups) - 2):  # "2024-03-15 14:22", "15.03.24"
        if joiners[at] == joiners[at + 1] != " " and rules.looks_like_date(
            groups[at : at + 3], short_year=len(groups) == 3
        ):
            return True
    if "." in joiners:
        if _mixes_dots(chain) or len(groups) == 2:
            return True  # "40.7128 -74.0060", "3.14159265"
        if len(groups) == 4 and max(sizes) <= 3 and set(joiners) == {"."}:
            return True  # an IPv4 address
        if any(size >= 5 for size, joiner in zip(sizes[1:], joiners, strict=True) if joiner == "."):
            return True  # "10.0.19041.1"
    return False


def _national_shape(chain: _Chain, digits: int) -> bool:
    """Reads as a phone without a phone word: an area code in parentheses,
    North American numbering, or a national trunk prefix."""
    groups = chain.groups
    sizes = [len(group) for group in groups]
    if len(groups) < 2:
        return False
    if chain.parenthesised:
        return 7 <= digits <= 12 and all(size >= 2 for size in sizes[1:])
    kinds = set(chain.joiners)
    if kinds in ({" "}, {"-"}, {"."}, {" ", "-"}) and _north_american(groups, sizes, kinds):
        return True
    if groups[0][0] == "0" and groups[0][:2] != "00" and sizes != [5, 4]:  # not a ZIP+4
        # "020 7946 0958", "030/1234567", "06-12345678", "01 23 45 67 89"
        return 9 <= digits <= 12 and len(groups) <= 5 and all(2 <= s <= 8 for s in sizes[1:])
    # "8 912 345 67 89": the Russian trunk prefix
    return groups[0] == "8" and digits == 11 and sizes[1] == 3


def _north_american(groups: Sequence[str], sizes: list[int], joiners: set[str]) -> bool:
    """ "415-555-2671", "415 555-2671", "1 800 555 1234", "555-1234": area
    codes and exchanges start with 2-9."""
    if sizes == [1, 3, 3, 4] and groups[0] == "1":
        groups, sizes = groups[1:], sizes[1:]
    if sizes == [3, 3, 4]:
        return groups[0][0] not in "01" and groups[1][0] not in "01"
    return sizes == [3, 4] and joiners == {"-"} and groups[0][0] not in "01"
