"""Email addresses and IP addresses (IPv4 and IPv6)."""

from __future__ import annotations

import ipaddress
import re

from . import _pii_validators as rules
from ._pii_validators import Candidate, ScanText

__all__ = ["scan_emails", "scan_ips"]

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


_IPV4 = re.compile(r"(?<![\w.])(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})(?!\.\d)", re.ASCII)
_VERSION_BEFORE = re.compile(r"(?i)(?:\bversion|\bver\.?|\bv)\s*$")


def scan_ips(scan: ScanText, out: list[Candidate]) -> None:
    text = scan.text
    shape = scan.shape(rules.DIGIT_SHAPE)
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
        _scan_ipv6(text, out)


_IPV6_CHARS = frozenset("0123456789abcdefABCDEF:.")
_IPV6 = re.compile(r"(?<![\w:.])[0-9A-Fa-f.]*+:[0-9A-Fa-f:.]*+(?![\w:])")


def _scan_ipv6(text: str, out: list[Candidate]) -> None:
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
