"""PII detection and format-preserving masking.

Each type has a scanner that proposes candidates and a validator that
decides: Luhn and issuer ranges for cards, SSA rules for SSNs, the IBAN
registry and mod-97 for IBANs, numbering plans and context words for phones,
octet ranges for IPv4, provider formats for secrets. Scanners only run where
a byte-level prefilter found what they need (a run of digits, an "@", a long
token), and their patterns are written so that no input makes them backtrack
more than a constant amount per character: repeats are possessive or bounded.
Digits are ASCII or fullwidth; typographic dashes and no-break spaces count
as separators. A finding covers a whole token (all the digit groups of a
number, all of a key), never a piece of one.

Modules: ``_pii_numbers`` (cards, SSNs), ``_pii_phone``, ``_pii_iban``,
``_pii_net`` (email, IP), ``_pii_secrets``, ``_pii_mask``, and
``_pii_validators`` for what they share.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ._pii_iban import scan_ibans
from ._pii_mask import mask_text
from ._pii_net import scan_emails, scan_ips
from ._pii_numbers import scan_numbers
from ._pii_phone import scan_phones
from ._pii_secrets import scan_secrets
from ._pii_validators import Candidate, ScanText

__all__ = ["PII_TYPES", "PiiDetector", "PiiMatch", "mask_text"]

# "api_key" is the older name of "secret": a policy may deny either, and its
# findings carry the name it used.
PII_TYPES: frozenset[str] = frozenset(
    {"ssn", "credit_card", "email", "phone", "iban", "ip_address", "secret", "api_key"}
)

# Where candidates of different types overlap, the more specific type wins.
_PRIORITY = {
    name: rank
    for rank, name in enumerate(
        ("secret", "api_key", "iban", "credit_card", "ssn", "email", "ip_address", "phone")
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


def _scanners(wanted: frozenset[str]) -> tuple[_Scanner, ...]:
    scanners: list[_Scanner] = []
    if wanted & {"credit_card", "ssn"}:
        cards, ssns = "credit_card" in wanted, "ssn" in wanted
        scanners.append(lambda scan, out: scan_numbers(scan, out, cards, ssns))
    if wanted & {"secret", "api_key"}:
        name = "secret" if "secret" in wanted else "api_key"
        scanners.append(lambda scan, out: scan_secrets(scan, out, name))
    by_type: dict[str, _Scanner] = {
        "iban": scan_ibans,
        "email": scan_emails,
        "ip_address": scan_ips,
        "phone": scan_phones,
    }
    scanners.extend(scan for name, scan in by_type.items() if name in wanted)
    return tuple(scanners)


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
        self._scanners = _scanners(wanted)
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
