"""The canonical form of an agent id, checked before a request is sent.

A copy of the sidecar's rule (the SDK depends on grpcio and protobuf only,
so it cannot import the engine); ``tests/client/test_agent_id_agreement.py``
checks that the two agree. An id is put in Unicode NFKC form; white space at
either end is refused (never trimmed), and so are control and format
characters (zero-width, bidi), surrogates, private-use and unassigned code
points, and line and paragraph separators, anywhere in the id. Case and
look-alike variants are the sidecar's to resolve (it knows the agents), and
lengths are the sidecar's to check, as for every field.
"""

from __future__ import annotations

import unicodedata

__all__ = ["agent_id_problem", "canonical_agent_id", "plain_agent_id"]

_REFUSED_CATEGORIES = {
    "Cc": "a control character",
    "Cf": "a format character (zero-width or bidi)",
    "Cs": "a lone surrogate",
    "Co": "a private-use character",
    "Cn": "an unassigned code point",
    "Zl": "a line separator",
    "Zp": "a paragraph separator",
}


def plain_agent_id(raw: str) -> bool:
    """Printable ASCII, not blank and not white at either end: its own NFKC
    form with nothing refused (most ids; checked without a loop)."""
    return raw.isascii() and raw.isprintable() and raw[:1] not in ("", " ") and raw[-1] != " "


def agent_id_problem(raw: str) -> str:
    """Why ``raw`` is refused as an agent id; "" when it is not."""
    if plain_agent_id(raw):
        return ""
    if not raw:
        return "required"
    for offset, char in enumerate(raw):
        what = _REFUSED_CATEGORIES.get(unicodedata.category(char))
        if what is not None:
            return f"contains {what}, U+{ord(char):04X}, at offset {offset}"
    text = unicodedata.normalize("NFKC", raw)
    if not text.strip():
        return "required (it is blank)"
    if text != text.strip():
        return "must not begin or end with white space (it is not trimmed)"
    return ""


def canonical_agent_id(raw: str) -> str:
    """``raw`` in NFKC form; ValueError saying why it is refused."""
    if plain_agent_id(raw):
        return raw
    problem = agent_id_problem(raw)
    if problem:
        raise ValueError(problem)
    return unicodedata.normalize("NFKC", raw)
