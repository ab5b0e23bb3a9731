"""Builds ``pdp/engine/data/agent_id_skeleton.json``: the prototype of each
confusable character, for the TR39 skeletons that keep two agents from
having look-alike ids (``pdp/engine/_agent_id.py``).

    .venv/bin/pip install confusable-homoglyphs==3.3.1
    .venv/bin/python train/make_agent_id_skeleton.py

Source: Unicode's UTS #39 ``confusables.txt`` (Unicode License v3), as
shipped in the ``confusable-homoglyphs`` package (MIT), which lists each
``source ; prototype`` pair in both directions. Every source maps to one
prototype and prototypes map to themselves, so each family of look-alikes
is a star around its prototype: the script rebuilds the families and maps
each member to one representative (the prototype where the star shows it,
else the family's smallest code point). Skeletons compare equal exactly
when TR39's do, which is all the engine asks of them.

Only characters that can occur in an agent id are kept: ids are in NFKC
form, so characters NFKC rewrites never reach the table.
"""

from __future__ import annotations

import json
import sys
import unicodedata
from collections import defaultdict
from pathlib import Path

from confusable_homoglyphs import __version__ as package_version
from confusable_homoglyphs import confusables

OUT = Path(__file__).resolve().parent.parent / "pdp" / "engine" / "data" / "agent_id_skeleton.json"
_MARKS = str.maketrans("", "", "\u200e\u200f")  # the package's display marks around RTL text


def _families() -> list[set[str]]:
    edges: dict[str, set[str]] = defaultdict(set)
    for char, homoglyphs in confusables.confusables_data.items():
        a = char.translate(_MARKS)
        for h in homoglyphs:
            b = h["c"].translate(_MARKS)
            if a and b and a != b:
                edges[a].add(b)
                edges[b].add(a)
    seen: set[str] = set()
    families: list[set[str]] = []
    for start in sorted(edges):
        if start in seen:
            continue
        family, todo = set(), [start]
        while todo:
            node = todo.pop()
            if node in family:
                continue
            family.add(node)
            todo.extend(edges[node] - family)
        seen |= family
        families.append(family)
    return families


def _prototype(family: set[str], edges_of: dict[str, set[str]]) -> str:
    strings = [m for m in family if len(m) > 1]
    if strings:  # sources are single code points: a longer member is the prototype
        return min(strings)
    centres = [m for m in family if edges_of[m] >= family - {m}]
    return min(centres if len(family) > 2 and centres else family)


def table() -> dict[str, str]:
    families = _families()
    edges_of: dict[str, set[str]] = defaultdict(set)
    for char, homoglyphs in confusables.confusables_data.items():
        for h in homoglyphs:
            edges_of[char.translate(_MARKS)].add(h["c"].translate(_MARKS))
    single: dict[str, str] = {}
    for family in families:
        prototype = _prototype(family, edges_of)
        for member in family:
            if len(member) == 1 and member != prototype:
                single[member] = prototype

    def resolve(text: str) -> str:  # a prototype's own characters may have prototypes
        return "".join(single.get(c, c) for c in text)

    out: dict[str, str] = {}
    for char, prototype in single.items():
        if unicodedata.normalize("NFKC", char) != char:
            continue
        target = unicodedata.normalize("NFD", resolve(prototype))
        if target != char:
            out[char] = target
    return dict(sorted(out.items()))


def main() -> int:
    mapping = table()
    document = {
        "source": "Unicode UTS #39 confusables.txt, via confusable-homoglyphs "
        f"{package_version} (MIT); data under the Unicode License v3",
        "generator": "train/make_agent_id_skeleton.py",
        "prototypes": mapping,
    }
    OUT.write_text(json.dumps(document, ensure_ascii=False, separators=(",", ":")) + "\n", "utf-8")
    print(f"{len(mapping)} characters -> {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
