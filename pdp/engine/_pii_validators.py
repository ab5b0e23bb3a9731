"""Per-type PII rules: the checks that confirm a candidate (checksums, issuer
ranges, numbering and shape rules), the one-byte-per-character views of a
text that let scanners skip text that cannot hold PII, and the scanners for
the types anchored on a character or a prefix (email, IPv6, secrets).
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections import Counter
from collections.abc import Iterator, Sequence

__all__ = [
    "DIGIT_SHAPE", "IBAN_LENGTHS", "PHONE_SHAPE", "WORD_SHAPE", "Candidate", "ScanText",
    "card_number_valid", "glued_after", "glued_before", "iban_valid", "luhn_valid",
    "phone_shape", "scan_emails", "scan_ipv6", "scan_secrets", "shape_regions", "ssn_valid",
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


def _shape_table(classes: dict[bytes, bytes]) -> bytes:
    table = bytearray(b"x" * 256)
    for members, shape in classes.items():
        for byte in members:
            table[byte] = shape[0]
    return bytes(table)


_DIGITS = b"0123456789"
_LETTERS = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
DIGIT_SHAPE = _shape_table({_DIGITS: b"d", b" -": b"s"})
PHONE_SHAPE = _shape_table({_DIGITS: b"d", b" -.()+": b"s"})
WORD_SHAPE = _shape_table({_DIGITS: b"d", _LETTERS: b"a"})


class ScanText:
    """A text being scanned, with its byte shapes built on first use. A shape
    maps each code point to one byte ("d" digit, "s" separator, "x" other),
    so ``bytes.find`` can look for the few places worth a pattern."""

    __slots__ = ("_encoded", "_shapes", "text")

    def __init__(self, text: str) -> None:
        if not text.isascii() and any(char in text for char in _FOLD):
            text = text.translate(_FOLD_TABLE)
        self.text = text
        self._encoded: bytes | None = None
        self._shapes: dict[int, bytes] = {}

    def shape(self, table: bytes) -> bytes:
        shaped = self._shapes.get(id(table))
        if shaped is None:
            if self._encoded is None:
                self._encoded = self.text.encode("ascii", "replace")
            shaped = self._shapes[id(table)] = self._encoded.translate(table)
        return shaped


def shape_regions(shape: bytes, needles: Sequence[bytes]) -> Iterator[tuple[int, int]]:
    """Maximal runs of non-"x" bytes of ``shape`` that contain a needle."""
    position = 0
    hits = [shape.find(needle) for needle in needles]
    while True:
        live = [hit for hit in hits if hit >= 0]
        if not live:
            return
        hit = min(live)
        start = shape.rfind(b"x", position, hit) + 1 or position
        end = shape.find(b"x", hit)
        end = len(shape) if end < 0 else end
        yield start, end
        hits = [
            hit if hit < 0 or hit >= end else shape.find(needle, end)
            for hit, needle in zip(hits, needles, strict=True)
        ]
        position = end


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
    if end >= len(text):
        return False
    char = text[end]
    if char.isascii() and (char.isalnum() or char == "_"):
        return True
    return char in ".-" and end + 1 < len(text) and text[end + 1].isdecimal()


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


# ISO 13616 registry: IBAN length per country.
_IBAN_REGISTRY = (
    "AD24 AE23 AL28 AT20 AZ28 BA20 BE16 BG22 BH22 BI27 BR29 BY28 CH21 CR22 CY28 CZ24 DE22 "
    "DJ27 DK18 DO28 EE20 EG29 ES24 FI18 FK18 FO18 FR27 GB22 GE22 GI23 GL18 GR27 GT28 HN28 "
    "HR21 HU28 IE22 IL23 IQ23 IS26 IT27 JO30 KW30 KZ20 LB28 LC32 LI21 LT20 LU20 LV21 LY25 "
    "MC27 MD24 ME22 MK19 MN20 MR27 MT31 MU30 NI28 NL18 NO15 OM23 PK24 PL28 PS29 PT25 QA29 "
    "RO24 RS22 RU33 SA24 SC31 SD18 SE24 SI19 SK24 SM27 SO23 ST25 SV28 TL23 TN24 TR26 UA29 "
    "VA22 VG24 XK20 YE30"
)
IBAN_LENGTHS: dict[str, int] = {entry[:2]: int(entry[2:]) for entry in _IBAN_REGISTRY.split()}


def iban_valid(compact: str) -> bool:
    """An IBAN without spaces: one letter case throughout, the registered
    length for its country (15-34 and capitals for a country not in the
    registry), and ISO 7064 mod-97 == 1."""
    if not (compact.isascii() and compact.isalnum() and compact[2:4].isdecimal()) or not (
        compact.isupper() or compact.islower()
    ):
        return False
    expected = IBAN_LENGTHS.get(compact[:2].upper())
    if expected is None:
        if not (compact.isupper() and 15 <= len(compact) <= 34):
            return False
    elif len(compact) != expected:
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(char, 36)) for char in rearranged)) % 97 == 1


def _looks_like_date(groups: Sequence[str]) -> bool:
    """Three groups reading as year-month-day or day-month-year."""
    if len(groups) != 3:
        return False
    first, middle, last = (int(group) for group in groups)
    if len(groups[0]) == 4:
        return 1900 <= first <= 2099 and 1 <= middle <= 12 and 1 <= last <= 31
    if len(groups[2]) == 4 and len(groups[0]) <= 2 and len(groups[1]) <= 2:
        return 1900 <= last <= 2099 and 1 <= first <= 31 and 1 <= middle <= 31
    return False


def phone_shape(
    *, country: str, area: str | None, groups: Sequence[str], separator: str
) -> bool | None:
    """Whether digit groups read as a phone number: True, False, or None for
    "only next to a phone word". ``country`` follows "+" or "00" ("" if
    none), ``area`` is written in parentheses ("(602)"), ``separator`` is
    the one separator between ``groups`` ("" for a single group)."""
    sizes = [len(group) for group in groups]
    national = sum(sizes) + len(area or "")
    if not 7 <= national + len(country) <= 15:
        return False
    if separator == "." and len(groups) == 4 and max(sizes) <= 3:
        return False  # an IPv4 address
    if _looks_like_date(groups) or (sizes == [3, 2, 4] and separator in ("-", " ")):
        return False  # a date, or the shape of an SSN
    grouped = all(2 <= size <= 5 for size in sizes) and national <= 12
    if country:
        return True
    if area is not None:
        return True if grouped and len(groups) >= 2 else None  # "(602) 272-9781"
    if len(groups) == 1:
        return None  # a bare run of digits
    if sizes in ([3, 3, 4], [1, 3, 3, 4]) and (sizes[0] != 1 or groups[0] == "1"):
        return True  # NANP: "555-123-4567", "1 800 555 1234"
    if sizes == [3, 4]:
        # "555-1234"; with a space it is as often "Apt 370, 3911 Main St".
        return True if separator != " " else None
    grouped = grouped and 3 <= len(groups) <= 5
    if separator == " ":
        # Space-separated groups are a phone when they start with a trunk
        # prefix ("0490 75 40 81", "07700 900123"), else as likely a list.
        trunk_pair = len(groups) == 2 and 10 <= national <= 11 and min(sizes) >= 3
        return True if (grouped or trunk_pair) and groups[0][0] == "0" else None
    return True if grouped else None  # "60-56-85-91", "03.93.92.16.85"


# ------------------------------------------------------- anchored scanners

_EMAIL = re.compile(
    r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9%+-](?:[A-Za-z0-9._%+-]{0,62}[A-Za-z0-9%+-])?@"
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.){1,8}([A-Za-z]{2,24})"
    r"(?![\w-]|\.[A-Za-z0-9])"
)
# File types that follow "@" in asset names ("icon@2x.png") and are not TLDs.
_NOT_TLDS = frozenset(
    ("png", "jpg", "jpeg", "gif", "svg", "webp", "bmp", "ico", "tif", "tiff", "heic", "css",
     "scss", "js", "mjs", "cjs", "jsx", "tsx", "json", "yaml", "yml", "xml", "txt", "log",
     "lock", "ini", "cfg", "toml", "html", "htm", "md", "rst", "pdf", "csv")
)  # fmt: skip


def scan_emails(scan: ScanText, out: list[Candidate]) -> None:
    """Emails around each "@": windows of a local part before and a domain
    after, merged so that no character is scanned twice."""
    text = scan.text
    windows: list[tuple[int, int]] = []
    at = text.find("@")
    while at >= 0:
        low, high = max(0, at - 65), min(len(text), at + 256)
        if windows and low <= windows[-1][1]:
            windows[-1] = (windows[-1][0], high)
        else:
            windows.append((low, high))
        at = text.find("@", at + 1)
    for low, high in windows:
        for match in _EMAIL.finditer(text, low, high):
            local = match.group()[: match.group().index("@")]
            if ".." not in local and match.group(1).lower() not in _NOT_TLDS:
                out.append((match.start(), match.end(), "email"))


_IPV6_CHARS = frozenset("0123456789abcdefABCDEF:.")
_IPV6 = re.compile(r"(?<![\w:.])[0-9A-Fa-f.]*+:[0-9A-Fa-f:.]*+(?![\w:])")


def scan_ipv6(scan: ScanText, out: list[Candidate]) -> None:
    text = scan.text
    colon = text.find(":")
    while colon >= 0:
        start = colon
        while start > 0 and colon - start < 45 and text[start - 1] in _IPV6_CHARS:
            start -= 1
        match = _IPV6.match(text, start)
        resume = colon + 1
        if match is not None:
            resume = max(resume, match.end())
            candidate = match.group().rstrip(".")
            if _ipv6_valid(candidate):
                out.append((start, start + len(candidate), "ip_address"))
        colon = text.find(":", resume)


def _ipv6_valid(candidate: str) -> bool:
    """A full or compressed IPv6 address with two non-empty groups and three
    hex digits or more, so that ``a::b`` in code is not taken for one."""
    groups = [group for group in candidate.split(":") if group]
    if len(candidate) > 45 or len(groups) < 2 or sum(map(len, groups)) < 3:
        return False
    try:
        ipaddress.IPv6Address(candidate)
    except ValueError:
        return False
    return True


_KNOWN_KEY = re.compile(
    r"(?<![\w-])(?:"
    r"sk-(?:proj-|svcacct-|admin-|ant-(?:api|admin)\d\d-)?[A-Za-z0-9_\-]{20,}+"
    r"|(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}+"
    r"|(?:AKIA|ASIA)[A-Z0-9]{16}"
    r"|gh[pousr]_[A-Za-z0-9]{36,}+"
    r"|github_pat_[A-Za-z0-9_]{40,}+"
    r"|xox[abpr]-[A-Za-z0-9\-]{15,}+"
    r"|AIza[A-Za-z0-9_\-]{35}"
    r"|eyJ[A-Za-z0-9_\-]{17,}+\.eyJ[A-Za-z0-9_\-]{8,}+\.[A-Za-z0-9_\-]{8,}+"
    r")(?![\w-])",
    re.ASCII,
)
# Every known key starts a run of 20 or more token characters.
_TOKEN_SHAPE = _shape_table({_DIGITS + _LETTERS + b"_-": b"t"})
_LONG_TOKEN = (b"t" * 20,)
# A name whose value is a secret, ending where ":" or "=" follows it.
_SECRET_NAME = re.compile(
    r"(?i)(?:api[_ -]?key|access[_ -]?key|private[_ -]?key|secret|token|passw(?:or)?d)"
    r"[\"']?[ \t]*\Z"
)
_SECRET_NAME_ROOM = 24
_VALUE_LEAD = re.compile(r">?[ \t]*[\"']?")
_SECRET_VALUE = re.compile(r"[A-Za-z0-9_\-./+=~]{16,256}+")
_PEM_BEGIN = re.compile(r"-----BEGIN [A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----")
_PEM_BODY = re.compile(r"[A-Za-z0-9+/=\s]*+")


def scan_secrets(scan: ScanText, out: list[Candidate]) -> None:
    """Known key formats, values given to a secret's name ("api_key=...",
    "token: ...", "Bearer ..."), and PEM private keys."""
    text = scan.text
    for low, _ in shape_regions(scan.shape(_TOKEN_SHAPE), _LONG_TOKEN):
        if match := _KNOWN_KEY.match(text, low):
            out.append((low, match.end(), "api_key"))
    for assign in ":=":
        at, scanned_to = text.find(assign), 0
        while at >= 0:
            before = text[at - 1 : at]  # a name ends in a letter, maybe quoted or spaced
            if (
                at >= scanned_to  # not inside a value already read
                and (before.isalpha() or before in "\"' \t")
                and _SECRET_NAME.search(text, max(0, at - _SECRET_NAME_ROOM), at)
            ):
                lead = _VALUE_LEAD.match(text, at + 1)
                scanned_to = _add_secret_value(text, lead.end() if lead else at + 1, out)
            at = text.find(assign, at + 1)
    for bearer in ("Bearer ", "bearer ", "BEARER "):
        at = text.find(bearer)
        while at >= 0:
            _add_secret_value(text, at + len(bearer), out)
            at = text.find(bearer, at + 1)
    if "-----BEGIN" in text:
        _scan_private_keys(text, out)


def _add_secret_value(text: str, at: int, out: list[Candidate]) -> int:
    """Add the value at ``at`` if it looks machine-made: 16+ characters,
    letters and digits, and the entropy of random text rather than of a word
    or a repeat. Returns where the value ends."""
    value = _SECRET_VALUE.match(text, at)
    secret = value.group().rstrip(".,") if value else ""
    if (
        len(secret) >= 16
        and any(c.isdigit() for c in secret)
        and any(c.isalpha() for c in secret)
        and _entropy(secret) >= 3.0
    ):
        out.append((at, at + len(secret), "api_key"))
    return value.end() if value else at


def _entropy(value: str) -> float:
    """Shannon entropy in bits per character."""
    return -sum(n / len(value) * math.log2(n / len(value)) for n in Counter(value).values())


def _scan_private_keys(text: str, out: list[Candidate]) -> None:
    end_marker = text.find("-----END")
    for match in _PEM_BEGIN.finditer(text):
        if 0 <= end_marker < match.end():  # once none is found, none is after
            end_marker = text.find("-----END", match.end())
        if end_marker >= 0:
            close = text.find("-----", end_marker + 8)
            stop = close + 5 if close >= 0 else len(text)
        else:  # a truncated key: the base64 body that follows the header
            body = _PEM_BODY.match(text, match.end())
            stop = len(text[: body.end() if body else match.end()].rstrip())
        out.append((match.start(), stop, "api_key"))
