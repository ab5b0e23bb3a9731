"""More in-the-wild jailbreaks, for ``compare_variants.py`` (not fitted on
by the committed model): the prompts listed in ``Jailbreaks.md`` of
friuns2/BlackFriday-GPTs-Prompts (MIT), collected from FlowGPT, as
``jailbreak_llms`` partly is, read from a local mirror like every source."""

from __future__ import annotations

import re
import subprocess

from pdp.engine._normalize import normalize
from train.injection_data import mirror

__all__ = ["EXTRA_JAILBREAKS", "extra_jailbreaks", "repeats", "shingles"]

EXTRA_JAILBREAKS = ("friuns2/BlackFriday-GPTs-Prompts", "09c530e31212aaca68ab72e2b7fdfbb3faa57a62")


def extra_jailbreaks() -> list[str]:
    """The prompt of each jailbreak listed in the extra source, or none
    without its mirror."""
    repo, commit = EXTRA_JAILBREAKS
    directory = mirror(repo)
    if directory is None:
        return []

    def show(path: str) -> str:
        command = ["git", "-C", str(directory), "show", f"{commit}:{path}"]
        return subprocess.run(command, check=True, capture_output=True, text=True).stdout

    prompts = []
    for path in re.findall(r"^- \[.*?\]\(\./(gpts/[^)]+)\)", show("Jailbreaks.md"), re.M):
        found = re.search(r"# Prompt\s*\n+```[^\n]*\n(.*?)\n```", show(path), re.S)
        if found and found.group(1).strip():
            prompts.append(found.group(1).strip())
    return prompts


def shingles(text: str) -> set[str]:
    words = normalize(text).split(" ")
    return {" ".join(words[i : i + 3]) for i in range(max(1, len(words) - 2))}


def repeats(text: str, others: list[set[str]]) -> bool:
    """Whether ``text`` shares half its word 3-grams (Jaccard) with one of ``others``."""
    own = shingles(text)
    return any(len(own & other) >= 0.5 * len(own | other) for other in others)
