"""Quality and speed of the injection_scan matcher.

Run: ``.venv/bin/python bench/injection_quality.py``. The evaluation data is
read from ``$PDP_SHARED/data/injection`` (default: ``<repo>/../shared``):

- PIGuard NotInject (339 benign prompts full of injection trigger words): how
  many the built-in detector and a typical literal pattern list flag;
- PIGuard valid (144 labelled prompts): precision, recall and false positive
  rate of the built-in detector, overall and per source.

Then speed, measured in this run on this machine: ``normalize`` on 1 KB and
100 KB of text, and one literal matcher with 5 versus 1,000 patterns on 1 KB.
The numbers are a report, not a test; tests/engine/test_injection.py asserts
the over-blocking count through the functions here.
"""

from __future__ import annotations

import json
import random
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

if str(Path(__file__).resolve().parent.parent) not in sys.path:  # run as a script
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import REPO, median_us, shared_data_dir
from pdp.engine import (
    NO_USAGE,
    Decision,
    DecisionKind,
    EnforceInput,
    compile_snapshot,
    parse_document,
    utc_now,
)
from pdp.engine._injection import InjectionMatcher
from pdp.engine._normalize import normalize

TYPICAL_PATTERNS = ("ignore previous instructions", "system prompt")


def data_dir() -> Path:
    """Where the injection data sets live (may not exist)."""
    return shared_data_dir() / "injection"


def load_not_inject(directory: Path) -> list[str]:
    """The benign NotInject prompts, all three parts."""
    prompts: list[str] = []
    for part in ("one", "two", "three"):
        rows = json.loads((directory / f"PIGuard-NotInject_{part}.json").read_text("utf-8"))
        prompts.extend(str(row["prompt"]) for row in rows)
    return prompts


@dataclass(frozen=True, slots=True)
class Labelled:
    prompt: str
    injection: bool
    source: str


def load_labelled(directory: Path) -> list[Labelled]:
    """PIGuard-valid: ``label`` 1 is an injection, 0 benign."""
    rows = json.loads((directory / "PIGuard-valid.json").read_text("utf-8"))
    return [Labelled(str(r["prompt"]), int(r["label"]) == 1, str(r["source"])) for r in rows]


def flagged(matcher: InjectionMatcher, prompts: Iterable[str]) -> list[tuple[str, str]]:
    """(prompt, label) for each prompt the matcher flags."""
    hits: list[tuple[str, str]] = []
    for prompt in prompts:
        label = matcher.find(normalize(prompt))
        if label is not None:
            hits.append((prompt, label))
    return hits


def count_flagged(matcher: InjectionMatcher, prompts: Iterable[str]) -> int:
    return len(flagged(matcher, prompts))


def builtin_matcher() -> InjectionMatcher:
    return InjectionMatcher([], use_builtin=True)


def typical_literal_matcher() -> InjectionMatcher:
    return InjectionMatcher(list(TYPICAL_PATTERNS))


@dataclass(frozen=True, slots=True)
class Scores:
    true_positives: int
    false_positives: int
    true_negatives: int
    false_negatives: int

    @property
    def precision(self) -> float:
        flagged_total = self.true_positives + self.false_positives
        return self.true_positives / flagged_total if flagged_total else 1.0

    @property
    def recall(self) -> float:
        positives = self.true_positives + self.false_negatives
        return self.true_positives / positives if positives else 1.0

    @property
    def false_positive_rate(self) -> float:
        negatives = self.false_positives + self.true_negatives
        return self.false_positives / negatives if negatives else 0.0

    def __str__(self) -> str:
        return (
            f"precision {self.precision:.2f}  recall {self.recall:.2f}  "
            f"FPR {self.false_positive_rate:.3f}  (TP {self.true_positives}, "
            f"FP {self.false_positives}, TN {self.true_negatives}, FN {self.false_negatives})"
        )


def score(matcher: InjectionMatcher, rows: Sequence[Labelled]) -> Scores:
    tp = fp = tn = fn = 0
    for row in rows:
        hit = matcher.find(normalize(row.prompt)) is not None
        if row.injection:
            tp, fn = tp + hit, fn + (not hit)
        else:
            fp, tn = fp + hit, tn + (not hit)
    return Scores(tp, fp, tn, fn)


def blocked_by_examples(prompts: Iterable[str]) -> list[str]:
    """The prompts that the bundled example snapshot blocks as an input."""
    snapshot = compile_snapshot(parse_document((REPO / "examples" / "policies.yaml").read_bytes()))
    now = utc_now()
    blocked = []
    for prompt in prompts:
        decision = snapshot.enforce(
            EnforceInput(agent_id="my-chatbot", input=prompt), NO_USAGE, now
        )
        assert isinstance(decision, Decision)  # the example snapshot has no custom validator
        if decision.kind is DecisionKind.BLOCK:
            blocked.append(prompt)
    return blocked


def quality_report(directory: Path) -> list[str]:
    builtin = builtin_matcher()
    lines = ["== quality =="]
    benign = load_not_inject(directory)
    builtin_hits = flagged(builtin, benign)
    literal_hits = flagged(typical_literal_matcher(), benign)
    lines.append(f"NotInject, {len(benign)} benign prompts flagged (lower is better):")
    lines.append(f"  built-in detector:                {len(builtin_hits)}")
    lines.append(f"  patterns {list(TYPICAL_PATTERNS)}: {len(literal_hits)}")
    lines.extend(f"    flagged by {label}: {prompt[:100]!r}" for prompt, label in builtin_hits)
    blocked = blocked_by_examples(benign)
    lines.append(f"  examples/policies.yaml (Enforce for my-chatbot), blocked: {len(blocked)}")
    lines.extend(f"    blocked: {prompt[:100]!r}" for prompt in blocked)
    rows = load_labelled(directory)
    lines.append(f"PIGuard-valid, {len(rows)} labelled prompts, built-in detector:")
    lines.append(f"  all sources: {score(builtin, rows)}")
    for source in sorted({row.source for row in rows}):
        part = [row for row in rows if row.source == source]
        s = score(builtin, part)
        kind = "injections" if part[0].injection else "benign"
        caught = s.true_positives if part[0].injection else s.false_positives
        lines.append(f"    {source:32} {len(part):3} {kind:10} flagged {caught}")
    return lines


_VOCABULARY = (
    "the of and to a in is you that it he was for on are as with his they at be this"
    " have from or one had by word but not what all were we when your can said there"
    " use an each which she do how their if will up other about out many then them"
    " these so some her would make like him into time has look two more write go see"
    " number no way could people my than first water been call who oil its now find"
    " long down day did get come made may part model prompt policy agent request"
)
_PHRASE_PARTS = (
    "disregard override bypass reveal exfiltrate leak dump erase forge spoof",
    "hidden secret internal confidential privileged restricted sealed masked raw root",
    "directive credential keystore passphrase token manifest ledger vault cipher key",
)


def _english(size: int, seed: int = 7) -> str:
    """Deterministic English-like prose: common words, commas, full stops."""
    words = _VOCABULARY.split()
    rng = random.Random(seed)
    out: list[str] = []
    length = 0
    while length < size:
        sentence = [rng.choice(words) for _ in range(rng.randint(6, 18))]
        if rng.random() < 0.4:
            sentence[rng.randrange(1, len(sentence))] += ","
        text = " ".join(sentence).capitalize() + rng.choice([".", ".", ".", "?", "!"])
        out.append(text)
        length += len(text) + 1
    return " ".join(out)[:size]


def _median_us(fn: Callable[[], object], number: int) -> float:
    """Median of 9 runs of ``number`` calls, per call."""
    return median_us(fn, 9, batch=number)


def _patterns(count: int) -> list[str]:
    """``count`` (up to 1,000) distinct three-word phrases, none in _english."""
    verbs, things, nouns = (part.split() for part in _PHRASE_PARTS)
    phrases = [f"{v} {t} {n}" for v in verbs for t in things for n in nouns]
    return phrases[:count]


def speed_report() -> list[str]:
    lines = ["== speed (median of 9 runs, this machine) =="]
    one_kb, hundred_kb = _english(1024), _english(102_400)
    wide_1kb = ("Ｐｒｏｍｐｔ café naïve 请忽略 " + one_kb)[:1024]
    wide_100kb = ("Ｐｒｏｍｐｔ café naïve 请忽略 " * 10 + hundred_kb)[:102_400]
    for name, text, number in (
        ("normalize, 1 KB ASCII English", one_kb, 5000),
        ("normalize, 100 KB ASCII English", hundred_kb, 50),
        ("normalize, 1 KB with non-ASCII", wide_1kb, 2000),
        ("normalize, 100 KB with non-ASCII", wide_100kb, 20),
    ):
        us = _median_us(partial(normalize, text), number)
        lines.append(f"  {name:36} {us:9.1f} us")
    text = normalize(one_kb)
    hit_text = text + " " + normalize(_patterns(5)[-1])
    timings: dict[tuple[int, bool], float] = {}
    for count in (5, 1000):
        matcher = InjectionMatcher(_patterns(count))
        for hit, sample in ((False, text), (True, hit_text)):
            assert (matcher.find(sample) is not None) is hit
            timings[count, hit] = _median_us(partial(matcher.find, sample), 5000)
    for hit in (False, True):
        where = "match at the end" if hit else "no match"
        five, thousand = timings[5, hit], timings[1000, hit]
        lines.append(
            f"  literal find, 1 KB, {where:16}  5 patterns {five:6.1f} us, "
            f"1,000 patterns {thousand:6.1f} us, ratio {thousand / five:.2f}"
        )
    builtin = builtin_matcher()
    for name, sample in (("1 KB", text), ("100 KB", normalize(hundred_kb))):
        number = 2000 if len(sample) < 2000 else 50
        us = _median_us(partial(builtin.find, sample), number)
        lines.append(f"  built-in detector find, {name:6}            {us:9.1f} us")
    return lines


def main() -> int:
    directory = data_dir()
    if directory.is_dir():
        print("\n".join(quality_report(directory)))
    else:
        print(f"no data at {directory}: set PDP_SHARED; quality part skipped")
    print("\n".join(speed_report()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
