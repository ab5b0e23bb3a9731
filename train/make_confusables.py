"""Builds ``pdp/engine/data/confusables.json``: the characters that Unicode's
confusables data (UTS #39, ``confusables.txt``) lists as look-alikes of an
ASCII letter or digit, each mapped to that letter or digit in lower case.

    .venv/bin/pip install confusable-homoglyphs==3.3.1
    .venv/bin/python train/make_confusables.py

``confusable-homoglyphs`` (MIT) ships the Unicode data as JSON; the data
itself is under the Unicode License v3 (see ``train/SOURCES.md``). The engine
reads only the generated file, so the package is not a run-time dependency.
"""

from __future__ import annotations

import json
import sys
import unicodedata
from pathlib import Path

from confusable_homoglyphs import confusables

OUT = Path(__file__).resolve().parent.parent / "pdp" / "engine" / "data" / "confusables.json"
_TARGETS = set("abcdefghijklmnopqrstuvwxyz0123456789")


def table() -> dict[str, str]:
    mapping: dict[str, str] = {}
    # Lower-case entries first: "І" (capital) is listed as a look-alike of
    # "l", its small form "і" of "i", and both fold to "і".
    entries = sorted(
        confusables.confusables_data.items(), key=lambda item: item[0] != item[0].casefold()
    )
    for char, homoglyphs in entries:
        if len(char) != 1 or char.isascii() or unicodedata.category(char)[0] == "M":
            continue
        # Fold the way ``normalize`` does first: only what survives NFKC and
        # case folding needs a mapping.
        folded = unicodedata.normalize("NFKC", char).casefold()
        if len(folded) != 1 or folded.isascii() or folded in mapping:
            continue
        targets = sorted({h["c"].casefold() for h in homoglyphs if h["c"].casefold() in _TARGETS})
        if targets:
            # Letters before digits: "О" (Cyrillic) reads "o", not "0".
            letters = [t for t in targets if t.isalpha()]
            mapping[folded] = (letters or targets)[0]
    return dict(sorted(mapping.items()))


def main() -> int:
    mapping = table()
    OUT.write_text(json.dumps(mapping, ensure_ascii=False, indent=0) + "\n", "utf-8")
    print(f"{len(mapping)} characters -> {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
