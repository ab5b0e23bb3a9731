"""A JSON object read one item of its top-level lists at a time.

``json.loads`` reads a whole document in one C call that holds the GIL: for
10,000 policies, tens of milliseconds in which no other thread of the
process (the event loop serving decisions) runs. Read here, the top-level
object's values are decoded one by one and the items of its lists one by
one, so the interpreter can switch threads between them. An item whose text
an earlier document had (``known``: item text to the object read then) is
not decoded again: the earlier object is taken, so a compile can tell an
unchanged policy by identity and reuse what it read from it. The result is
what ``json.loads`` gives for the same text. ``pace`` is called after each
item (to let a loading thread give way, see ``pdp.snapshot``)."""

from __future__ import annotations

import json
import json.decoder
import json.scanner
import re
from collections.abc import Callable, Mapping

__all__ = ["Pace", "no_pace", "read_json_object"]

# The C scanner json.loads uses (same defaults), one value per call.
_scan = json.scanner.make_scanner(json.JSONDecoder())  # type: ignore[arg-type]
_scanstring: Callable[[str, int], tuple[str, int]] = json.decoder.scanstring  # type: ignore[attr-defined]
_SPACE = re.compile(r"[ \t\n\r]*")
Pace = Callable[[], None]


def no_pace() -> None:
    return None


class _NotJson(Exception):
    pass


def read_json_object(
    text: str, known: Mapping[str, object], pace: Pace = no_pace
) -> tuple[dict[str, object], dict[str, object]] | None:
    """The object and the text of each item of its top-level lists (to the
    object read); None when ``text`` is not one JSON object, as for
    ``json.loads``, or nests too deep."""
    try:
        return _read(text, known, pace)
    except (_NotJson, ValueError, StopIteration, RecursionError, IndexError):
        return None


def _space(text: str, at: int) -> int:
    match = _SPACE.match(text, at)
    assert match is not None  # matches the empty string
    return match.end()


def _read(
    text: str, known: Mapping[str, object], pace: Pace
) -> tuple[dict[str, object], dict[str, object]]:
    items: dict[str, object] = {}
    out: dict[str, object] = {}
    at = _space(text, 0)
    if text[at : at + 1] != "{":
        raise _NotJson
    at = _space(text, at + 1)
    if text[at : at + 1] == "}":
        at += 1
    else:
        while True:
            if text[at : at + 1] != '"':
                raise _NotJson
            key, at = _scanstring(text, at + 1)
            at = _space(text, at)
            if text[at : at + 1] != ":":
                raise _NotJson
            at = _space(text, at + 1)
            if text[at : at + 1] == "[":
                value, at = _list(text, at + 1, known, items, pace)
            else:
                value, at = _scan(text, at)
            out[key] = value
            at = _space(text, at)
            separator = text[at : at + 1]
            at = _space(text, at + 1)
            if separator == "}":
                break
            if separator != ",":
                raise _NotJson
    if _space(text, at) != len(text):
        raise _NotJson  # extra data after the object
    return out, items


def _list(
    text: str, at: int, known: Mapping[str, object], items: dict[str, object], pace: Pace
) -> tuple[list[object], int]:
    out: list[object] = []
    at = _space(text, at)
    if text[at : at + 1] == "]":
        return out, at + 1
    while True:
        value, end = _scan(text, at)
        item = text[at:end]
        earlier = known.get(item)
        if earlier is not None:
            value = earlier
        items[item] = value
        out.append(value)
        pace()
        at = _space(text, end)
        separator = text[at : at + 1]
        at = _space(text, at + 1)
        if separator == "]":
            return out, at
        if separator != ",":
            raise _NotJson
