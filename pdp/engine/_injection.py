"""The matcher behind ``injection_scan``: literal patterns, RE2 regexes and the
built-in detector, run over text that ``normalize`` already prepared.

Literal patterns
    Each pattern is normalised like the text. All of them go into one
    Aho-Corasick automaton, so a text is scanned once whatever their number.
    Spaces are not significant inside a match: the automaton runs over the
    text with its spaces removed, and a hit counts only if it starts and ends
    on word edges of the spaced text. So ``ignore previous instructions``
    matches ``IGNORE  previous\\u200binstructions`` (the zero-width space is
    removed, leaving ``previousinstructions``) and ``i g n o r e previous
    instructions`` alike, while ``system prompt`` does not match ``ecosystem
    prompts``.

Word edges
    A word is a run of letters and digits. An edge is needed only between
    two "spaced" characters: letters of scripts written with spaces between
    words (Latin, Greek, Cyrillic, Armenian, Georgian) and decimal digits.
    So a pattern that begins or ends with a Han, Kana, Hangul, Thai, Arabic,
    Hebrew, Indic, ... character matches inside a longer run of text
    (``忽略之前的指令`` is found in ``请忽略之前的指令。``, and Korean particles may
    follow a pattern), and a Latin word next to a Han character is at an edge.
    A match never ends just before a combining mark, which would split a
    character from its accents or vowel signs.

Regex patterns
    Compiled with RE2 (linear time, no backtracking), case-insensitive, and
    searched together as one RE2 set over the normalised (spaced) text. A
    regex that matches the empty text is rejected: it would fire on every
    request.

Built-in detector
    Structural rules (``_injection_builtin``; ``_injection_indirect`` for
    instructions hidden in content; ``_injection_multilingual`` for other
    languages), all searched in one pass with an RE2 set; see
    ``BuiltinDetector``. One detector is shared by every matcher.

``find`` tries literals, then regexes, then the built-in rules, and returns a
label for the first that matches: never more of the text than the pattern.
"""

from __future__ import annotations

import unicodedata
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from itertools import accumulate
from typing import Any

import ahocorasick
import re2

from ._injection_builtin import RULES, Rule
from ._injection_indirect import ADDRESSED_RULES, INDIRECT_RULES
from ._injection_multilingual import MULTILINGUAL_RULES
from ._normalize import normalize

__all__ = [
    "MAX_PATTERNS",
    "MAX_PATTERNS_CHARS",
    "MAX_PATTERN_LENGTH",
    "InjectionMatcher",
    "PatternError",
]

MAX_PATTERNS = 10_000
MAX_PATTERN_LENGTH = 1000
# Characters in all the literal (or all the regex) patterns of one policy.
MAX_PATTERNS_CHARS = 1024 * 1024
# RE2 memory budget for all regexes of one matcher, and a cap on their total
# program size that leaves the set's DFA ample room (a set whose DFA cannot
# start reports "no match", which must never happen silently).
_REGEX_MAX_MEM = 128 << 20
_REGEX_MAX_PROGRAM = 400_000

# Code point ranges (beyond ASCII) of letters in scripts that put spaces
# between words; see "Word edges" above.
_SPACED_SCRIPTS = (
    (0x00C0, 0x058F),  # Latin-1 letters .. Armenian (incl. Greek, Cyrillic)
    (0x10A0, 0x10FF),  # Georgian
    (0x1C80, 0x1CBF),  # Cyrillic Extended-C, Georgian Extended
    (0x1D00, 0x1FFF),  # phonetic extensions, Latin Extended Additional, Greek Extended
    (0x2C00, 0x2C7F),  # Glagolitic, Latin Extended-C
    (0x2D00, 0x2D2F),  # Georgian Supplement
    (0x2DE0, 0x2DFF),  # Cyrillic Extended-A
    (0xA640, 0xA69F),  # Cyrillic Extended-B
    (0xA720, 0xA7FF),  # Latin Extended-D
    (0xAB30, 0xAB6F),  # Latin Extended-E
)


class PatternError(ValueError):
    """A pattern of an ``injection_scan`` policy is unusable. ``field`` is
    ``"patterns"`` or ``"regex_patterns"``; ``index`` points into that list."""

    def __init__(self, field: str, index: int, message: str) -> None:
        super().__init__(f"{field}[{index}]: {message}")
        self.field = field
        self.index = index
        self.message = message


def _needs_edge(char: str) -> bool:
    """True for characters of words that are delimited by spaces."""
    if char.isascii():
        return char.isalnum()
    if char.isdecimal():
        return True
    if not char.isalpha():
        return False
    code = ord(char)
    return any(low <= code <= high for low, high in _SPACED_SCRIPTS)


class _WordEdges:
    """Word edges of a normalised text, in the coordinates of the same text
    with its spaces removed. Built only when a literal candidate needs it."""

    __slots__ = ("_ends",)

    def __init__(self, text: str) -> None:
        # Exclusive end offset of each word in the space-free text.
        self._ends = list(accumulate(map(len, text.split(" "))))

    def spaced(self, text: str, start: int, end: int) -> str:
        """The part of the spaced ``text`` that compact ``[start, end)`` covers."""
        ends = self._ends
        return text[start + bisect_right(ends, start) : end + bisect_left(ends, end)]

    def is_edge(self, offset: int) -> bool:
        """Whether a word ends (and the next begins) at ``offset``."""
        if offset == 0 or offset >= self._ends[-1]:
            return True
        i = bisect_left(self._ends, offset)
        return self._ends[i] == offset


# Automaton value for one literal: (label, length without spaces, whether its
# first character needs a word edge, whether its last character does).
_Literal = tuple[str, int, bool, bool]


def _build_automaton(patterns: Sequence[str]) -> Any:
    if len(patterns) > MAX_PATTERNS:
        raise PatternError("patterns", MAX_PATTERNS, f"more than {MAX_PATTERNS} patterns")
    automaton = ahocorasick.Automaton(ahocorasick.STORE_ANY, ahocorasick.KEY_STRING)
    for index, pattern in enumerate(patterns):
        if not isinstance(pattern, str):
            raise PatternError("patterns", index, "must be a string")
        if len(pattern) > MAX_PATTERN_LENGTH:
            raise PatternError("patterns", index, f"longer than {MAX_PATTERN_LENGTH} characters")
        key = normalize(pattern).replace(" ", "")
        if not key:
            raise PatternError(
                "patterns", index, "empty after normalisation (only spaces or punctuation)"
            )
        # Patterns that normalise alike share one entry; the first one names it.
        if key not in automaton:
            literal: _Literal = (pattern, len(key), _needs_edge(key[0]), _needs_edge(key[-1]))
            automaton.add_word(key, literal)
    automaton.make_automaton()
    return automaton


def _build_regex_set(regexes: Sequence[str]) -> Any:
    if len(regexes) > MAX_PATTERNS:
        raise PatternError(
            "regex_patterns", MAX_PATTERNS, f"more than {MAX_PATTERNS} regex patterns"
        )
    options = re2.Options()
    options.case_sensitive = False
    options.log_errors = False
    options.max_mem = _REGEX_MAX_MEM
    regex_set = re2.Set.SearchSet(options)
    program_size = 0
    for index, regex in enumerate(regexes):
        if not isinstance(regex, str):
            raise PatternError("regex_patterns", index, "must be a string")
        if not regex:
            raise PatternError("regex_patterns", index, "empty regex")
        if len(regex) > MAX_PATTERN_LENGTH:
            raise PatternError(
                "regex_patterns", index, f"longer than {MAX_PATTERN_LENGTH} characters"
            )
        try:
            compiled = re2.compile(regex, options)
        except re2.error as exc:
            detail = exc.args[0] if exc.args else "invalid"
            if isinstance(detail, bytes):
                detail = detail.decode("utf-8", "replace")
            raise PatternError("regex_patterns", index, f"invalid RE2 regex: {detail}") from None
        if compiled.search("") is not None:
            raise PatternError(
                "regex_patterns",
                index,
                "matches the empty text, so it would match every request",
            )
        program_size += compiled.programsize
        if program_size > _REGEX_MAX_PROGRAM:
            raise PatternError("regex_patterns", index, "the regex patterns together are too large")
        regex_set.Add(regex)
    regex_set.Compile()
    return regex_set


_NEGATIONS = frozenset(
    {b"not", b"never", b"dont", b"cannot", b"cant", b"wont", b"shouldnt", b"mustnt"}
)
# Words before "t" that spell a negated contraction once the apostrophe is a space.
_NEGATED_T = frozenset(
    {b"don", b"can", b"won", b"shouldn", b"mustn", b"wouldn", b"couldn", b"didn", b"doesn"}
)


def _negated(text: bytes, start: int) -> bool:
    """Whether one of the three words before ``start`` negates the match."""
    low = max(0, start - 40)
    words = text[low:start].split()
    if low > 0 and text[low - 1 : low] != b" ":
        words = words[1:]  # a cut-off word ("cannot" cut to "not") is not a word
    words = words[-3:]
    for i, word in enumerate(words):
        if word in _NEGATIONS:
            return True
        if word == b"t" and i > 0 and words[i - 1] in _NEGATED_T:
            return True
    return False


def _next_word(text: bytes, end: int) -> str:
    return text[end : end + 64].lstrip(b" ").split(b" ", 1)[0].decode("utf-8", "replace")


class BuiltinDetector:
    """Runs the built-in rules (``_injection_builtin``) over normalised text:
    all rules in one pass with an RE2 set (linear time); only a rule the set
    reports is searched again, for spans to check for negation and benign
    following words. Immutable; safe to share between threads."""

    __slots__ = ("_regexes", "_rules", "_set")

    def __init__(self, rules: Sequence[Rule] = RULES) -> None:
        options = re2.Options()
        options.log_errors = False
        options.max_mem = 64 << 20
        self._rules = tuple(rules)
        self._set = re2.Set.SearchSet(options)
        for rule in self._rules:
            self._set.Add(rule.pattern)
        self._set.Compile()
        self._regexes = tuple(re2.compile(rule.pattern, options) for rule in self._rules)

    def find(self, normalized_text: str) -> str | None:
        """The name of the first rule (in rule order) with a match that is not
        negated or followed by a benign word; None when there is none."""
        if not normalized_text:
            return None
        # Work on UTF-8 bytes: RE2 would encode a str again on every call.
        text = normalized_text.encode("utf-8", "surrogatepass")
        hits: list[int] | None = self._set.Match(text)
        if not hits:
            return None
        for index in sorted(hits):
            if self._confirmed(index, text):
                return self._rules[index].name
        return None

    def _confirmed(self, index: int, text: bytes) -> bool:
        rule = self._rules[index]
        if not (rule.negatable or rule.not_followed_by):
            return True
        regex = self._regexes[index]
        position = 0
        while (match := regex.search(text, position)) is not None:
            start, end = match.span()
            negated = rule.negatable and _negated(text, start)
            if not negated and _next_word(text, end) not in rule.not_followed_by:
                return True
            # Step back over the space the match ended with, so an overlapping
            # later match that starts with that space is still found.
            position = max(start + 1, end - 1)
        return False


_BUILTIN: tuple[BuiltinDetector, BuiltinDetector] | None = None


def _builtin_detectors() -> tuple[BuiltinDetector, BuiltinDetector]:
    # Shared detectors, built on first use (tens of ms): the built-in rules
    # never change at run time. A race would only build them twice. The
    # second holds the rules that apply to context items only.
    global _BUILTIN
    if _BUILTIN is None:
        _BUILTIN = (
            BuiltinDetector(RULES + INDIRECT_RULES + MULTILINGUAL_RULES),
            BuiltinDetector(ADDRESSED_RULES),
        )
    return _BUILTIN


class InjectionMatcher:
    """Matches normalised text against one policy's patterns. Immutable after
    construction; safe to share between threads."""

    __slots__ = ("_automaton", "_builtin", "_builtin_context", "_regex_set")

    def __init__(
        self,
        patterns: Sequence[str],
        regex_patterns: Sequence[str] = (),
        use_builtin: bool = False,
    ) -> None:
        self._automaton: Any = _build_automaton(patterns) if patterns else None
        self._regex_set: Any = _build_regex_set(regex_patterns) if regex_patterns else None
        detectors = _builtin_detectors() if use_builtin else None
        self._builtin = detectors[0] if detectors else None
        self._builtin_context = detectors[1] if detectors else None

    def find(self, normalized_text: str) -> str | None:
        """A short label for the first match in ``normalized_text`` (which must
        come from ``normalize``): the literal pattern as written,
        ``regex_patterns[i]``, or ``builtin:<rule>``. None when nothing matches.
        Literal patterns are tried first, then regexes, then the built-in rules."""
        found = self.find_detail(normalized_text)
        return None if found is None else found[0]

    def find_detail(
        self, normalized_text: str, in_context: bool = False
    ) -> tuple[str, bool] | None:
        """Like ``find``, with whether a literal matched only because spaces
        inside its words were ignored (``i g n o r e``, ``ign ore``).
        ``in_context``: the text is a context item, where the built-in rules
        for text addressed to the model apply too."""
        if self._automaton is not None:
            found = self._find_literal(normalized_text)
            if found is not None:
                return found
        if self._regex_set is not None:
            text = normalized_text.encode("utf-8", "surrogatepass")
            hits: list[int] | None = self._regex_set.Match(text)
            if hits:
                return f"regex_patterns[{min(hits)}]", False
        if self._builtin is not None:
            rule = self._builtin.find(normalized_text)
            if rule is None and in_context and self._builtin_context is not None:
                rule = self._builtin_context.find(normalized_text)
            if rule is not None:
                return f"builtin:{rule}", False
        return None

    def _find_literal(self, text: str) -> tuple[str, bool] | None:
        compact = text.replace(" ", "")
        edges: _WordEdges | None = None
        literal: _Literal
        for last, literal in self._automaton.iter(compact):
            label, length, edge_first, edge_last = literal
            start, end = last - length + 1, last + 1
            if edges is None:
                edges = _WordEdges(text)
            if not edges.is_edge(start) and edge_first and _needs_edge(compact[start - 1]):
                continue
            if not edges.is_edge(end):
                following = compact[end]
                if unicodedata.category(following)[0] == "M":
                    continue
                if edge_last and _needs_edge(following):
                    continue
            return label, edges.spaced(text, start, end) != normalize(label)
        return None
