"""One ``injection_scan`` policy's scan of one text: its matcher (literal
patterns, regexes, built-in rules) and the learned tier, over the text as
written and then over its de-obfuscated readings, telling text about an
attack from an attack.

Order: the plain (normalised) text, then each reading of ``ScanText.variants``
(confusable characters, leetspeak, joined split words, decoded base64 / hex /
URL-encoding, rot13). On each, the literal patterns, the regexes and the
built-in rules are tried first, then the learned tier (on the plain text and
on decoded readings; a respelt reading differs in a few words, which the
rules are for). The first match wins and is reported with the transformation
that revealed it.

Sensitivity moves the learned tier's threshold (calibrated at training time,
see ``_injection_model``) and decides whether quotations count:

``low``     the strictest threshold (no benign calibration text above it);
            quotations and code strings about an attack are ignored
``medium``  the default: at most 1% of each kind of benign calibration text
            above it; quotations about an attack are ignored
``high``    about 2% of benign calibration text above it; everything counts,
            also a phrase quoted as an example

Quotations: when a text matched, the scan runs again on the same text with
quotations and code strings about an attack blanked out (``_mentions``); if
nothing matches then, the text only talks about an attack.
"""

from __future__ import annotations

from dataclasses import dataclass

from ._deobfuscate import ScanText
from ._injection import InjectionMatcher
from ._injection_model import InjectionModel, load_model

__all__ = ["SENSITIVITIES", "Finding", "InjectionScanner"]

SENSITIVITIES = ("low", "medium", "high")
_SPACING = "joined split words"
# Readings the learned tier scores too: a decoded payload is new text, while
# a respelt one differs from the plain text in a few words, which the
# patterns and rules (cheap) are there for.
_DECODED = frozenset({"base64", "hex", "url-encoding", "rot13"})
CLASSIFIER_LABEL = "builtin:classifier"


@dataclass(frozen=True, slots=True)
class Finding:
    """What matched (a pattern as written, ``regex_patterns[i]``,
    ``builtin:<rule>``, ``builtin:classifier``) and the transformation that
    revealed it (None: the text as written)."""

    label: str
    transformation: str | None = None


class InjectionScanner:
    """Immutable after construction; safe to share between threads."""

    __slots__ = ("_ignore_mentions", "_matcher", "_model", "_threshold")

    def __init__(
        self,
        matcher: InjectionMatcher,
        use_model: bool,
        sensitivity: str = "medium",
        model: InjectionModel | None = None,
    ) -> None:
        """``model``: the learned tier to use instead of the committed one."""
        self._matcher = matcher
        self._model = (model or load_model()) if use_model else None
        self._threshold = self._model.threshold_units[sensitivity] if self._model else 0
        self._ignore_mentions = sensitivity != "high"

    def scan(self, text: ScanText, in_context: bool = False) -> Finding | None:
        """The first match in ``text`` or one of its readings; None when
        there is none, or when every match lies in a quotation about an attack.
        ``in_context``: ``text`` is a context item (see ``_injection_indirect``)."""
        finding = self._scan(text, in_context)
        if finding is None or not self._ignore_mentions:
            return finding
        masked = text.mentions_masked()
        if masked is None:
            return finding
        return self._scan(masked, in_context)

    def _scan(self, text: ScanText, in_context: bool) -> Finding | None:
        found = self._find(text.plain, in_context, True)
        if found is not None:
            return found
        for transformation, form in text.variants():
            found = self._find(form, in_context, transformation in _DECODED)
            if found is not None:
                return Finding(found.label, transformation)
        return None

    def _find(self, normalized_text: str, in_context: bool, use_model: bool) -> Finding | None:
        detail = self._matcher.find_detail(normalized_text, in_context)
        if detail is not None:
            label, respaced = detail
            return Finding(label, _SPACING if respaced else None)
        model = self._model
        if not use_model or model is None:
            return None
        # Integer units: the same decision whichever scorer summed the weights.
        if model.score_units(normalized_text) >= self._threshold:
            return Finding(CLASSIFIER_LABEL)
        return None
