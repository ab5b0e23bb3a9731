"""Secrets: credentials that give access to something.

- tokens with a provider's published prefix (GitHub, Slack, Stripe, OpenAI,
  Anthropic, Google API keys, AWS access key ids) and JWTs;
- an AWS secret access key next to its key id;
- Azure storage and Service Bus connection strings;
- PEM private key blocks, also inside a JSON string as in a GCP
  service-account file;
- a random-looking value given to a secret's name ("api_key=...",
  "token: ...", "Authorization: Bearer ...").

A secret is reported whole: the full token, block or connection string.
"""

from __future__ import annotations

import math
import re
from collections import Counter

from . import _pii_validators as rules
from ._pii_validators import Candidate, ScanText

__all__ = ["scan_secrets"]

_KNOWN_KEY = re.compile(
    r"(?<![\w-])(?:"
    r"sk-(?:proj-|svcacct-|admin-|ant-(?:api|admin)\d\d-)?[A-Za-z0-9_\-]{20,}+"
    r"|(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}+"
    r"|(?P<aws>(?:AKIA|ASIA)[A-Z0-9]{16})"
    r"|gh[pousr]_[A-Za-z0-9]{36,}+"
    r"|github_pat_[A-Za-z0-9_]{40,}+"
    r"|xox[abepr]-[A-Za-z0-9\-]{15,}+"
    r"|AIza[A-Za-z0-9_\-]{35}"
    r"|eyJ[A-Za-z0-9_\-]{17,}+\.eyJ[A-Za-z0-9_\-]{8,}+\.[A-Za-z0-9_\-]{8,}+"
    r")(?![\w-])",
    re.ASCII,
)
# Every known key starts a run of 20 or more token characters.
_TOKEN_SHAPE = rules.shape_table({rules.DIGITS + rules.LETTERS + b"_-": b"t"})
_LONG_TOKEN = (b"t" * 20,)
# Placeholders ("ghp_XXXX...", "sk-xxxx...") repeat a few characters.
_MIN_DISTINCT = 10

# An AWS secret access key: 40 base64 characters near its key id.
_AWS_SECRET = re.compile(r"(?<![A-Za-z0-9/+=])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])", re.ASCII)
_AWS_SECRET_ROOM = 200

# A name whose value is a secret, ending where ":" or "=" follows it.
_SECRET_NAME = re.compile(
    r"(?i)(?:api[_ -]?key|access[_ -]?key|private[_ -]?key|secret|token|passw(?:or)?d)"
    r"[\"']?[ \t]*\Z"
)
_SECRET_NAME_ROOM = 24
_VALUE_LEAD = re.compile(r">?[ \t]*[\"']?")
_SECRET_VALUE = re.compile(r"[A-Za-z0-9_\-./+=~]{16,}+")
_MAX_VALUE = 4096

_PEM_BEGIN = re.compile(r"-----BEGIN [A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----")
# The lines of a key whose end is missing: base64, maybe after "Name: value"
# headers and a blank line; newlines may be written "\n" inside a JSON string.
_PEM_BODY = re.compile(
    r"(?:[ \t]*(?:\r?\n|\\n)"
    r"(?:[A-Za-z-]+: [^\n]*|[A-Za-z0-9+/=]++(?=[ \t]*(?:\r?\n|\\n|\"|\Z))|))*+"
)

# Connection strings: "Key=value;" pairs that hold an account or access key.
_CONNECTION_KEY = re.compile(r"(?<![A-Za-z])(?:AccountKey|SharedAccessKey|SharedAccessSignature)=")
_CONNECTION_START = re.compile(
    r"(?:DefaultEndpointsProtocol|Endpoint|BlobEndpoint|QueueEndpoint|TableEndpoint"
    r"|FileEndpoint|AccountName|SharedAccessKeyName)="
)
_CONNECTION_STOP = re.compile(r"[\s\"'`<>]")


def scan_secrets(scan: ScanText, out: list[Candidate], pii_type: str) -> None:
    """Reports each secret as ``pii_type`` ("secret", or its older name "api_key")."""
    text = scan.text
    for low, _ in rules.shape_regions(scan.shape(_TOKEN_SHAPE), _LONG_TOKEN):
        match = _KNOWN_KEY.match(text, low)
        if match and len(set(match.group())) >= _MIN_DISTINCT:
            out.append((low, match.end(), pii_type))
            if match.group("aws"):
                _add_aws_secret(text, match.start(), match.end(), out, pii_type)
    _scan_named_values(text, out, pii_type)
    if "=" in text and _CONNECTION_KEY.search(text):
        _scan_connection_strings(text, out, pii_type)
    if "-----BEGIN" in text:
        _scan_private_keys(text, out, pii_type)


def _add_aws_secret(text: str, start: int, end: int, out: list[Candidate], pii_type: str) -> None:
    """The secret access key written next to an access key id (a credentials
    file, a CSV export, an environment block): 40 characters mixing capitals,
    small letters and digits, which a hex digest does not."""
    low, high = max(0, start - _AWS_SECRET_ROOM), min(len(text), end + _AWS_SECRET_ROOM)
    for match in _AWS_SECRET.finditer(text, low, high):
        value = match.group()
        if (
            any(c.isupper() for c in value)
            and any(c.islower() for c in value)
            and any(c.isdigit() for c in value)
        ):
            out.append((match.start(), match.end(), pii_type))


def _scan_named_values(text: str, out: list[Candidate], pii_type: str) -> None:
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
                scanned_to = _add_secret_value(text, lead.end() if lead else at + 1, out, pii_type)
            at = text.find(assign, at + 1)
    for bearer in ("Bearer ", "bearer ", "BEARER "):
        at = text.find(bearer)
        while at >= 0:
            _add_secret_value(text, at + len(bearer), out, pii_type)
            at = text.find(bearer, at + 1)


def _add_secret_value(text: str, at: int, out: list[Candidate], pii_type: str) -> int:
    """Add the value at ``at`` if it looks machine-made: 16+ characters,
    letters and digits, and the entropy of random text rather than of a word
    or a repeat. A quoted value runs to its closing quote, whatever it holds
    ("S3cr3t-P4ss!"). Returns where the value ends."""
    quote = text[at - 1 : at]
    close = text.find(quote, at, at + _MAX_VALUE) if quote in ("'", '"') else -1
    if close > at and "\n" not in text[at:close] and not text.startswith("-----", at):
        secret, resume = text[at:close], close  # (a PEM block is read as one below)
    else:
        value = _SECRET_VALUE.match(text, at)
        secret = value.group().rstrip(".,") if value else ""
        resume = value.end() if value else at
    if (
        16 <= len(secret) <= _MAX_VALUE
        and any(c.isdigit() for c in secret)
        and any(c.isalpha() for c in secret)
        and _entropy(secret) >= 3.0
    ):
        out.append((at, at + len(secret), pii_type))
    return resume


def _entropy(value: str) -> float:
    """Shannon entropy in bits per character."""
    return -sum(n / len(value) * math.log2(n / len(value)) for n in Counter(value).values())


def _scan_connection_strings(text: str, out: list[Candidate], pii_type: str) -> None:
    """From the first key of the string to the end of its last value."""
    resume = 0
    for key in _CONNECTION_KEY.finditer(text):
        if key.start() < resume:
            continue
        stop = _CONNECTION_STOP.search(text, key.end())
        end = stop.start() if stop else len(text)
        end = len(text[:end].rstrip(".,);}]"))
        low = key.start()
        while low > resume and not _CONNECTION_STOP.match(text, low - 1):
            low -= 1
        first = _CONNECTION_START.search(text, low, key.start())
        start = first.start() if first else key.start()
        if end - key.end() >= 16:
            out.append((start, end, pii_type))
        resume = end


def _scan_private_keys(text: str, out: list[Candidate], pii_type: str) -> None:
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
        out.append((match.start(), stop, pii_type))
