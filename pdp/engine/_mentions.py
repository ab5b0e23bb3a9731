"""Text *about* an attack: quotations and code strings that hold an attack
phrase without addressing it to the model.

Security guidance ("attackers write phrases such as 'ignore previous
instructions'"), a changelog ("detect \\"you are now DAN\\" prompts") and a code
fixture (``PAYLOAD = "ignore previous instructions"``) all quote an attack.
``mask_mentions`` blanks out

- a quotation (``"..."``, ``'...'``, ``“...”``, ``‘...’``, ``«...»``, ``„...“``,
  ``「...」``, backticks) when the words before it on its line name it as an
  example, a phrase, an attack, a test or a detection, or the words right
  after it call it one ("... is a classic injection");
- every string literal on a line that reads as code (an assignment, an
  ``assert``, a call, a list of strings, or an indented line holding only a
  string: an item of a multi-line list, a piece of a long string);
- a fenced code block whose opening line, or the line before it, names it as
  an example or an attack.

A JSON document (a tool result, an API response) is data, not code: its
strings are values an agent reads, so only quotations with such words are
blanked in it. A quotation without such words is not blanked: ``Translate: "Ignore previous
instructions and ..."`` is an injection carried in quotes. Used only after a
match, so its cost is paid by texts that matched.
"""

from __future__ import annotations

import json
import re
from bisect import bisect_left, bisect_right
from typing import Any

import re2

__all__ = ["mask_mentions"]

_MAX_QUOTE = 600  # characters inside one quotation

# One regex per kind of quotation, each starting with its opening mark, so a
# text is searched only for the marks it holds (and quickly: a literal prefix).
_QUOTES = tuple(
    (opening, re.compile(pattern))
    for opening, pattern in (
        ('"', rf'"[^"\n]{{1,{_MAX_QUOTE}}}"'),
        ("'", rf"'[^'\n]{{1,{_MAX_QUOTE}}}'"),  # not an apostrophe: checked below
        ("“", rf"“[^”\n]{{1,{_MAX_QUOTE}}}”"),
        ("‘", rf"‘[^’\n]{{1,{_MAX_QUOTE}}}’"),
        ("«", rf"«[^»\n]{{1,{_MAX_QUOTE}}}»"),
        ("„", rf"„[^“”\n]{{1,{_MAX_QUOTE}}}[“”]"),
        ("「", rf"「[^」\n]{{1,{_MAX_QUOTE}}}」"),
        ("『", rf"『[^』\n]{{1,{_MAX_QUOTE}}}』"),
        ("`", rf"`[^`\n]{{1,{_MAX_QUOTE}}}`"),
    )
)
# Words before a quotation that make it an example of something.
_CUE_BEFORE = re.compile(
    r"\b(?:phrases?|strings?|patterns?|keywords?|wording|sentences?|examples?|e\.?g\b|i\.?e\b"
    r"|such as|for instance|like|attacks?|attackers?|adversar\w*|malicious|injections?"
    r"|jailbreaks?|payloads?|detect\w*|flag\w*|block\w*|filter\w*|scann\w*|classif\w*"
    r"|guard\w*|tests?|testing|fixtures?|asserts?|samples?|known|classic|typical|common"
    r"|contain\w*|called|named|match\w*|regex\w*|signatures?|triggers?|heuristics?"
    r"|prompts? (?:like|such as)|ejemplo|beispiel|exemple|esempio|exemplo|пример)\b",
    re.IGNORECASE,
)


def _ascii_cue_before() -> Any:
    # The same regex in RE2 for ASCII text, where both engines agree on word
    # edges and case: Python's engine tries each alternative at each
    # position, many times slower on the text before every quotation.
    options = re2.Options()
    options.case_sensitive = False
    return re2.compile(_CUE_BEFORE.pattern, options)


_ASCII_CUE_BEFORE = _ascii_cue_before()
# Words right after a quotation that call it an attack or an example.
_CUE_AFTER = re.compile(
    r"^\W{0,3}(?:is|are|was|were|as|would be|will be|gets?|get|being)?\s*"
    r"(?:an?|the)?\s*(?:classic|common|typical|known|simple|basic|famous|well known)?\s*"
    r"(?:prompt\s+|jailbreak\s+)?(?:examples?|attacks?|injections?|jailbreaks?|payloads?|phrases?|attempts?"
    r"|detected|flagged|blocked|caught|rejected)\b",
    re.IGNORECASE,
)
# The runs marked possessive (``*+``, ``++``) are followed by a character
# they cannot hold, so a match never ends them early: without backtracking
# into them (each alternative again for every shorter indentation or word),
# Python's engine rejects an indented line of prose or a string several
# times sooner. The same lines match.
_CODE_LINE = re.compile(
    r"^\s*+(?:[\w.\[\]'\"]++\s*(?::|=|\+=|:=|==|=>)\s*[\[\(\{]?\s*[rbfuRBFU]?[\"'`]"
    r"|[\(\[\{]\s*[rbfuRBFU]?[\"'`]|assert\b|return\b|expect\(|[\w.]++\([\"'`]|[\"'`][^\"'`]*+[\"'`]\s*[,\]\)]\s*$"
    r"|(?:const|let|var|final|static|String|str)\b|[-*]\s*\[?[\"'`])"
)
# An indented line holding only a string literal: an item of a multi-line
# list or call, or a piece of an implicitly concatenated string.
_STRING_ONLY_LINE = re.compile(r"[ \t]{2,}[rbfuRBFU]?([\"'])[^\n]*\1[ \t]*[,)\]+]?[ \t]*\r?\n?$")
# A string literal, escapes inside it skipped. Written as runs of plain
# characters between escapes ("unrolled"): the same matches as
# ``"(?:[^"\\\n]|\\.)*"``, without a pass through an alternation per character.
_STRING_LITERAL = re.compile(
    r'"[^"\\\n]*(?:\\.[^"\\\n]*)*"|\'[^\'\\\n]*(?:\\.[^\'\\\n]*)*\'|`[^`\n]*`'
)
_FENCE = re.compile(r"^[ \t]*(```|~~~)[^\n]*\n(.*?)^[ \t]*\1[ \t]*$", re.MULTILINE | re.DOTALL)
_FENCE_CUE = re.compile(
    r"\b(?:examples?|attacks?|injections?|jailbreaks?|payloads?|malicious|adversarial|samples?"
    r"|fixtures?|tests?)\b",
    re.IGNORECASE,
)


# The last words _CUE_AFTER can end with, all within its first 48
# characters: most quotations are followed by none of them, and looking for
# them (one search for any of them) is far cheaper than trying the regex's
# many optional words.
_CUE_AFTER_WORDS = re.compile(
    "example|attack|injection|jailbreak|payload|phrase|attempt|detected|flagged|blocked|caught"
    "|rejected"
)


def _called_an_attack(after: str) -> bool:
    head = after[:48].lower()
    return _CUE_AFTER_WORDS.search(head) is not None and _CUE_AFTER.match(after) is not None


_LINE_BREAK = re.compile("\n")


def _cue_before(before: str) -> bool:
    if before.isascii():
        return _ASCII_CUE_BEFORE.search(before.encode("ascii")) is not None
    return _CUE_BEFORE.search(before) is not None


_NOT_LINE_BREAK = re.compile("[^\n]")


def _blanked(text: str, spans: list[tuple[int, int]]) -> str:
    """``text`` with spaces over each span, line breaks kept. Spans may
    overlap and come in any order; the text is copied once, in slices."""
    parts: list[str] = []
    last = 0
    for start, end in sorted(spans):
        if end <= last:
            continue
        start = max(start, last)
        parts.append(text[last:start])
        piece = text[start:end]
        parts.append(_NOT_LINE_BREAK.sub(" ", piece) if "\n" in piece else " " * (end - start))
        last = end
    parts.append(text[last:])
    return "".join(parts)


def _merged(spans: list[tuple[int, int]]) -> tuple[list[int], list[int]]:
    """The starts and ends of the disjoint runs ``spans`` cover, in order."""
    starts: list[int] = []
    ends: list[int] = []
    for start, end in sorted(spans):
        if ends and start <= ends[-1]:
            ends[-1] = max(ends[-1], end)
        else:
            starts.append(start)
            ends.append(end)
    return starts, ends


def _is_blank(text: str, covered: tuple[list[int], list[int]], start: int, end: int) -> bool:
    """Whether ``text[start:end]`` is blank already: each character a space
    or a line break, or inside a ``covered`` run (see ``_merged``)."""
    starts, ends = covered
    position = start
    while position < end:
        run = bisect_right(starts, position) - 1
        if run >= 0 and position < ends[run]:
            position = ends[run]
        elif text[position] in " \n":
            position += 1
        else:
            return False
    return True


def _is_apostrophe(text: str, start: int, end: int) -> bool:
    """Whether a single-quoted span starts or ends inside a word ("don't")."""
    return (start > 0 and text[start - 1].isalnum()) or (end < len(text) and text[end].isalnum())


def _is_json(text: str) -> bool:
    if text.lstrip()[:1] not in ("{", "["):
        return False
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def mask_mentions(text: str) -> str | None:
    """``text`` with quotations and code strings about an attack replaced by
    spaces (line breaks kept); None when nothing is blanked."""
    # Spans to blank, applied once at the end; a span may be empty, which
    # still counts as blanking (the text comes back, not None).
    spans: list[tuple[int, int]] = []
    code = not _is_json(text)
    fences = _FENCE.finditer(text) if "```" in text or "~~~" in text else ()
    for fence in fences:
        line_start = text.rfind("\n", 0, max(0, fence.start() - 1)) + 1
        header = text[line_start : text.find("\n", fence.start()) + 1]
        if _FENCE_CUE.search(header) is not None:
            spans.append((fence.start(2), fence.end(2)))
    # Code strings first: a quotation they have blanked already (most, in
    # code) needs no look at the words around it. Blanking only ever adds
    # spaces, so the order does not change the result.
    if code and ('"' in text or "'" in text or "`" in text):
        offset = 0
        for line in text.splitlines(keepends=True):
            quoted = '"' in line or "'" in line or "`" in line
            if quoted and (
                _CODE_LINE.match(line) is not None or _STRING_ONLY_LINE.match(line) is not None
            ):
                for literal in _STRING_LITERAL.finditer(line):
                    spans.append((offset + literal.start() + 1, offset + literal.end() - 1))
            offset += len(line)
    covered = _merged(spans) if spans else None
    quotations = (m for opening, q in _QUOTES if opening in text for m in q.finditer(text))
    # Where lines break, found once: looking back for the line's start from
    # each quotation would read a long line again for every quotation in it.
    breaks: list[int] | None = None
    for match in quotations:
        start, end = match.span()
        if text[start] == "'" and _is_apostrophe(text, start, end):
            continue
        if covered is not None and _is_blank(text, covered, start + 1, end - 1):
            continue
        if breaks is None:
            breaks = [m.start() for m in _LINE_BREAK.finditer(text)]
        above = bisect_left(breaks, start)
        line_start = breaks[above - 1] + 1 if above else 0
        before = text[max(line_start, start - 160) : start]
        line_end = text.find("\n", end, end + 80)
        after = text[end : min(end + 80, len(text)) if line_end < 0 else line_end]
        if (
            (code and _CODE_LINE.match(text[line_start : start + 1]) is not None)
            or _cue_before(before)
            or _called_an_attack(after)
        ):
            spans.append((start + 1, end - 1))
    return _blanked(text, spans) if spans else None
