"""IBANs: every country of the SWIFT IBAN registry (ISO 13616), with its
length and BBAN structure, written compact ("DE89370400440532013000") or in
groups of four ("DE89 3704 0044 0532 0130 00"), checked with ISO 7064
mod-97.
"""

from __future__ import annotations

import bisect
import re

from . import _pii_validators as rules
from ._pii_validators import Candidate, ScanText

__all__ = ["IBAN_FORMATS", "iban_like", "iban_valid", "scan_ibans"]

# Country and BBAN structure, from the registry: n digits, a capital letters,
# c letters or digits, each preceded by its count.
_REGISTRY = """
AD 4n4n12c   AE 3n16n      AL 8n16c      AT 5n11n      AZ 4a20c      BA 3n3n8n2n
BE 3n7n2n    BG 4a4n2n8c   BH 4a14c      BI 5n5n11n2n  BR 8n5n10n1a1c BY 4c4n16c
CH 5n12c     CR 4n14n      CY 3n5n16c    CZ 4n6n10n    DE 8n10n      DJ 5n5n11n2n
DK 4n9n1n    DO 4c20n      EE 2n14n      EG 4n4n17n    ES 4n4n1n1n10n FI 3n11n
FK 2a12n     FO 4n9n1n     FR 5n5n11c2n  GB 4a6n8n     GE 2a16n      GI 4a15c
GL 4n9n1n    GR 3n4n16c    GT 4c20c      HN 4a20n      HR 7n10n      HU 3n4n1n15n1n
IE 4a6n8n    IL 3n3n13n    IQ 4a3n12n    IS 4n2n6n10n  IT 1a5n5n12c  JO 4a4n18c
KW 4a22c     KZ 3n13c      LB 4n20c      LC 4a24c      LI 5n12c      LT 5n11n
LU 3n13c     LV 4a13c      LY 3n3n15n    MC 5n5n11c2n  MD 2c18c      ME 3n13n2n
MK 3n10c2n   MN 4n12n      MR 5n5n11n2n  MT 4a5n18c    MU 4a2n2n12n3n3a NI 4a20n
NL 4a10n     NO 4n6n1n     OM 3n16c      PK 4a16c      PL 8n16n      PS 4a21c
PT 4n4n11n2n QA 4a21c      RO 4a16c      RS 3n13n2n    RU 9n5n15c    SA 2n18c
SC 4a2n2n16n3a SD 2n12n    SE 3n16n1n    SI 5n8n2n     SK 4n6n10n    SM 1a5n5n12c
SO 4n3n12n   ST 4n4n11n2n  SV 4a20n      TL 3n14n2n    TN 2n3n13n2n  TR 5n1n16c
UA 6n19c     VA 3n15n      VG 4a16n      XK 4n10n2n    YE 4a4n18c
"""
_PART = re.compile(r"(\d+)([nac])")


def _expand(structure: str) -> str:
    return "".join(kind * int(count) for count, kind in _PART.findall(structure))


# Country -> one class letter per BBAN character ("nnnnaaaa...").
IBAN_FORMATS: dict[str, str] = {
    country: _expand(structure)
    for country, structure in zip(_REGISTRY.split()[::2], _REGISTRY.split()[1::2], strict=True)
}
_LENGTHS = {country: 4 + len(bban) for country, bban in IBAN_FORMATS.items()}
_CLASS_CHECKS = {"n": str.isdecimal, "a": str.isalpha, "c": str.isalnum}


def iban_valid(compact: str, registered_only: bool = True) -> bool:
    """An IBAN without spaces: one letter case throughout; for a registered
    country its length and BBAN structure, for another (unless
    ``registered_only``) 15-34 characters in capitals; and ISO 7064 mod-97
    == 1."""
    if not (compact.isascii() and compact.isalnum() and compact[2:4].isdecimal()) or not (
        compact.isupper() or compact.islower()
    ):
        return False
    bban_format = IBAN_FORMATS.get(compact[:2].upper())
    if bban_format is None:
        if registered_only or not (compact.isupper() and 15 <= len(compact) <= 34):
            return False
    elif len(compact) != 4 + len(bban_format) or not all(
        _CLASS_CHECKS[kind](char) for kind, char in zip(bban_format, compact[4:], strict=True)
    ):
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(char, 36)) for char in rearranged)) % 97 == 1


_IBAN_WORD = re.compile(r"(?i)(?<![a-z])iban(?![a-z])")
_IBAN_WORD_BEFORE = 24
_COMPACT = re.compile(r"[A-Za-z]{2}\d{2}[A-Za-z0-9]{11,30}+", re.ASCII)
# Groups of four after "CCdd", the last maybe shorter; the registered length
# says where the IBAN ends, so a word after it is not taken in.
_SPACED = re.compile(r"[A-Za-z]{2}\d{2}(?:[ ][A-Za-z0-9]{4}(?![A-Za-z0-9])){2,8}+"
                     r"(?:[ ][A-Za-z0-9]{1,3}(?![A-Za-z0-9]))?+", re.ASCII)  # fmt: skip


def scan_ibans(scan: ScanText, out: list[Candidate]) -> None:
    text, shape = scan.text, scan.shape(rules.WORD_SHAPE)
    index = shape.find(b"aadd")
    while index >= 0:
        end = index + 1
        if index == 0 or not (text[index - 1].isascii() and text[index - 1].isalnum()):
            end = _match_at(text, index, out)
        index = shape.find(b"aadd", max(end, index + 1))


def _match_at(text: str, index: int, out: list[Candidate]) -> int:
    """Adds the IBAN that starts at ``index``, if one does; returns where
    scanning resumes."""
    compact = _COMPACT.match(text, index)
    if compact is not None and not rules.glued_after(text, compact.end()):
        # A country outside the registry (one of those that use IBANs without
        # registering them) only after the word IBAN: one random code in 97
        # passes the check.
        named = rules.last_word_before(_IBAN_WORD, text, index, _IBAN_WORD_BEFORE)
        if iban_valid(compact.group(), registered_only=named is None):
            out.append((index, compact.end(), "iban"))
        return compact.end()
    spaced = _SPACED.match(text, index)
    if spaced is None:
        return index + 1
    expected = _LENGTHS.get(text[index : index + 2].upper())
    if expected is None:
        return spaced.end()  # a country outside the registry is read compact only
    length, end = 0, index
    for part in spaced.group().split(" "):
        if length >= expected:
            break
        length += len(part)
        end += len(part) + (end > index)
    value = text[index:end]
    if length == expected and iban_valid(value.replace(" ", "")):
        out.append((index, end, "iban"))
        return end
    return index + 1


def iban_like(scan: ScanText, position: int) -> bool:
    """Whether ``position`` lies inside something written like an IBAN (a
    country code, two digits and groups), valid or not: its digit groups are
    not card or phone numbers."""
    spans = scan.iban_like
    if spans is None:
        spans = scan.iban_like = []
        text, shape = scan.text, scan.shape(rules.WORD_SHAPE)
        index = shape.find(b"aadd")
        while index >= 0:
            match = _COMPACT.match(text, index) or _SPACED.match(text, index)
            if match is not None and (index == 0 or not text[index - 1].isalnum()):
                spans.append((index, match.end()))
            index = shape.find(b"aadd", match.end() if match else index + 1)
    at = bisect.bisect_right(spans, (position, len(scan.text)))
    return at > 0 and spans[at - 1][0] <= position < spans[at - 1][1]
