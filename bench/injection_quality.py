"""Quality and speed of the injection_scan matcher.

Run: ``make quality`` or ``.venv/bin/python bench/injection_quality.py``.

First one table for the built-in detector (structural rules, the learned
tier and de-obfuscation, sensitivity ``medium``), per data set: texts,
recall at the calibrated threshold, false positive rate, ROC AUC and the
whole scan's cost in microseconds per KB of text (the set's scan time over
its size, so short texts carry their fixed cost) and per text, in CPU time
of the scanning thread (a shared machine's waits for a core are left out).
Data sets:

- the held-out ``test`` split of every training source (``train/SOURCES.md``;
  read from local mirrors, skipped when absent): never used to fit the model
  or to choose its thresholds;
- PIGuard-valid and PIGuard NotInject, read from
  ``$PDP_SHARED/data/injection`` (default: ``<repo>/../shared``): never
  used for training or calibration.

Then the over-blocking checks (NotInject against the built-in rules, a
typical literal pattern list and the bundled example policies), and speed
measured in this run on this machine (CPU time, median of 9 runs):
``normalize`` on 1 KB and 100 KB of text, one literal matcher with 5 versus
1,000 patterns on 1 KB, and the whole built-in scan on 1, 10 and 100 KB of
English, of English with some other characters, and of text in other
scripts throughout. The numbers are a report, not a
test; tests/engine/test_injection.py asserts the over-blocking counts
through the functions here.

``--against-model FILE`` instead times the whole scan of the held-out split
with the committed model and with another model file (a retrained one), in
turn in one process.
"""

from __future__ import annotations

import json
import math
import random
import statistics
import sys
import time
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

if str(Path(__file__).resolve().parent.parent) not in sys.path:  # run as a script
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import REPO, shared_data_dir
from pdp.engine import (
    NO_USAGE,
    Decision,
    DecisionKind,
    EnforceInput,
    compile_snapshot,
    parse_document,
    utc_now,
)
from pdp.engine._deobfuscate import ScanText
from pdp.engine._injection import InjectionMatcher
from pdp.engine._injection_model import InjectionModel, load_model
from pdp.engine._injection_scan import InjectionScanner
from pdp.engine._normalize import normalize
from train.injection_data import load_all

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


def builtin_scanner(sensitivity: str = "medium") -> InjectionScanner:
    """The built-in detector as ``use_builtin: true`` runs it."""
    return InjectionScanner(builtin_matcher(), use_model=True, sensitivity=sensitivity)


def scan_flagged(scanner: InjectionScanner, prompts: Iterable[str]) -> list[str]:
    """The prompts the whole scan (rules, learned tier, readings) flags."""
    return [prompt for prompt in prompts if scanner.scan(ScanText(prompt)) is not None]


_RULES_ONLY = InjectionScanner(InjectionMatcher([], use_builtin=True), use_model=False)


def detector_score(text: str) -> float:
    """A score to rank texts by: infinite when a rule matches, else the
    learned tier's best score over the text and its readings."""
    scan_text = ScanText(text)
    if _RULES_ONLY.scan(scan_text) is not None:
        return math.inf
    model = load_model()
    forms = [scan_text.plain, *(form for _, form in scan_text.variants())]
    return max(model.score(form) for form in forms)


def roc_auc(scores: Sequence[float], labels: Sequence[bool]) -> float | None:
    """Probability that an injection outscores a benign text (ties half)."""
    positives = [s for s, y in zip(scores, labels, strict=True) if y]
    negatives = [s for s, y in zip(scores, labels, strict=True) if not y]
    if not positives or not negatives:
        return None
    ranked = sorted(negatives)
    wins = 0.0
    for score in positives:
        below = _count_below(ranked, score)
        ties = _count_below(ranked, score, inclusive=True) - below
        wins += below + ties / 2
    return wins / (len(positives) * len(negatives))


def _count_below(ranked: Sequence[float], value: float, inclusive: bool = False) -> int:
    return (bisect_right if inclusive else bisect_left)(ranked, value)


@dataclass(frozen=True, slots=True)
class SetResult:
    name: str
    texts: int
    injections: int
    recall: float | None
    false_positive_rate: float | None
    auc: float | None
    us_per_kb: float
    us_per_text: float

    def row(self) -> str:
        def cell(value: float | None, digits: int = 3) -> str:
            return "–" if value is None else f"{value:.{digits}f}"

        return (
            f"| {self.name} | {self.texts} | {self.injections} | {cell(self.recall)} "
            f"| {cell(self.false_positive_rate)} | {cell(self.auc)} | {self.us_per_kb:.0f} "
            f"| {self.us_per_text:.0f} |"
        )


def evaluate(name: str, rows: Sequence[Labelled], scanner: InjectionScanner) -> SetResult:
    flagged_rows: list[bool] = []
    elapsed = 0.0
    size = 0
    for row in rows:
        text = ScanText(row.prompt)
        start = time.thread_time()
        flagged_rows.append(scanner.scan(text) is not None)
        elapsed += time.thread_time() - start
        size += len(row.prompt.encode("utf-8"))
    labels = [row.injection for row in rows]
    positives = sum(labels)
    negatives = len(rows) - positives
    caught = sum(f for f, y in zip(flagged_rows, labels, strict=True) if y)
    false = sum(f for f, y in zip(flagged_rows, labels, strict=True) if not y)
    auc = roc_auc([detector_score(row.prompt) for row in rows], labels)
    return SetResult(
        name,
        len(rows),
        positives,
        caught / positives if positives else None,
        false / negatives if negatives else None,
        auc,
        elapsed * 1e6 / (size / 1024) if size else 0.0,
        elapsed * 1e6 / len(rows) if rows else 0.0,
    )


def detection_table(directory: Path | None) -> list[str]:
    """The README's detection-quality table, one row per data set. Every
    text is scanned once before the timed runs: RE2 builds its DFA states on
    first use, as a sidecar does in its first requests, and keeps them."""
    scanner = builtin_scanner()
    lines = [
        "== built-in detector (rules + learned tier + de-obfuscation), sensitivity medium ==",
        "| data set | texts | injections | recall | FPR | ROC AUC | µs/KB | µs/text |",
        "|---|---|---|---|---|---|---|---|",
    ]
    examples, missing = load_all()
    test = [e for e in examples if e.split == "test"]
    warm_up = [e.text for e in test]
    if directory is not None and directory.is_dir():
        warm_up += [row.prompt for row in load_labelled(directory)] + load_not_inject(directory)
    scan_flagged(scanner, warm_up)
    if test:
        all_rows: list[Labelled] = []
        for source in sorted({e.source for e in test}):
            rows = [Labelled(e.text, e.injection, e.source) for e in test if e.source == source]
            all_rows.extend(rows)
            lines.append(evaluate(f"{source} (held out)", rows, scanner).row())
        lines.append(evaluate("all held-out sources", all_rows, scanner).row())
    if missing:
        lines.append(f"(mirrors missing for {', '.join(missing)}: those sets are skipped)")
    if directory is not None and directory.is_dir():
        valid = load_labelled(directory)
        lines.append(evaluate("PIGuard-valid (never trained on)", valid, scanner).row())
        for source in sorted({row.source for row in valid}):
            part = [row for row in valid if row.source == source]
            lines.append(evaluate(f"  PIGuard-valid: {source}", part, scanner).row())
        benign = [Labelled(p, False, "NotInject") for p in load_not_inject(directory)]
        lines.append(evaluate("PIGuard NotInject (never trained on)", benign, scanner).row())
    return lines


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
    """Median of 9 runs of ``number`` calls, per call, in CPU time of this
    thread: on a shared machine, time spent waiting for a core is not the
    scan's."""
    for _ in range(min(50, number)):
        fn()
    samples = []
    for _ in range(9):
        start = time.thread_time_ns()
        for _ in range(number):
            fn()
        samples.append((time.thread_time_ns() - start) / number)
    return statistics.median(samples) / 1000


def _patterns(count: int) -> list[str]:
    """``count`` (up to 1,000) distinct three-word phrases, none in _english."""
    verbs, things, nouns = (part.split() for part in _PHRASE_PARTS)
    phrases = [f"{v} {t} {n}" for v in verbs for t in things for n in nouns]
    return phrases[:count]


def speed_report() -> list[str]:
    lines = ["== speed (CPU time, median of 9 runs, this machine) =="]
    one_kb, ten_kb, hundred_kb = _english(1024), _english(10_240), _english(102_400)
    wide_1kb = ("Ｐｒｏｍｐｔ café naïve 请忽略 " + one_kb)[:1024]
    wide_10kb = ("Ｐｒｏｍｐｔ café naïve 请忽略 " * 2 + ten_kb)[:10_240]
    wide_100kb = ("Ｐｒｏｍｐｔ café naïve 请忽略 " * 10 + hundred_kb)[:102_400]
    # Text in other scripts throughout: Russian, Chinese and French prose.
    other = (
        "Пожалуйста, помогите мне написать письмо коллеге о встрече. "
        "请帮我总结这份报告的要点。Où est la gare ? "
    )
    other_100kb = (other * 1000)[:100_000]
    other_size = len(other_100kb.encode("utf-8")) / 1024
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
        lines.append(f"  built-in rules find, {name:6}                {us:9.1f} us")
    scanner = builtin_scanner()
    for name, raw, kb in (
        ("1 KB English", one_kb, 1),
        ("10 KB English", ten_kb, 10),
        ("100 KB English", hundred_kb, 100),
        ("1 KB with non-ASCII", wide_1kb, 1),
        ("10 KB with non-ASCII", wide_10kb, 10),
        ("100 KB with non-ASCII", wide_100kb, 100),
        (f"{other_size:.0f} KB in other scripts", other_100kb, other_size),
    ):
        number = 500 if kb == 1 else 50 if kb == 10 else 10
        us = _median_us(lambda raw=raw: scanner.scan(ScanText(raw)), number)  # type: ignore[misc]
        lines.append(f"  whole built-in scan, {name:22} {us:9.1f} us = {us / kb:6.1f} us/KB")
    return lines


def model_comparison(other: Path, rounds: int = 5) -> list[str]:
    """The whole built-in scan (medium) of the held-out sample with the
    committed model and with the model file ``other``, in turn in this
    process, ``rounds`` times: CPU µs per KB, median and range."""
    examples, _ = load_all()
    texts = [e.text for e in examples if e.split == "test"]
    size = sum(len(text.encode("utf-8")) for text in texts) / 1024
    matcher = builtin_matcher()
    scanners = {
        "committed model": InjectionScanner(matcher, use_model=True),
        str(other): InjectionScanner(
            matcher,
            use_model=True,
            model=InjectionModel.from_document(json.loads(other.read_text("utf-8"))),
        ),
    }
    for scanner in scanners.values():
        scan_flagged(scanner, texts)
    timings: dict[str, list[float]] = {name: [] for name in scanners}
    for _ in range(rounds):
        for name, scanner in scanners.items():
            start = time.thread_time()
            scan_flagged(scanner, texts)
            timings[name].append((time.thread_time() - start) * 1e6 / size)
    lines = [f"== whole built-in scan, {len(texts)} held-out texts, {rounds} rounds in turn =="]
    for name, values in timings.items():
        lines.append(
            f"  {name}: median {statistics.median(values):.0f} us/KB"
            f" [{min(values):.0f}-{max(values):.0f}]"
        )
    return lines


def main() -> int:
    if sys.argv[1:2] == ["--against-model"]:
        print("\n".join(model_comparison(Path(sys.argv[2]))))
        return 0
    directory = data_dir()
    present = directory if directory.is_dir() else None
    print("\n".join(detection_table(present)))
    if present is not None:
        print("\n".join(quality_report(present)))
    else:
        print(f"no data at {directory}: set PDP_SHARED; PIGuard sets skipped")
    print("\n".join(speed_report()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
